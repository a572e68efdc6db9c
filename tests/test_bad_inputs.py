"""Bad input and faults, table-driven: every case gets a one-line error and the right exit
code (2 for a usage error, 1 for bad input, 130 for an interrupt), no traceback, and no
partial output. Each new input path adds its cases here (docs/reliability.md lists them).

The CLI cases call ``nseos.cli.main`` in this process (a subprocess costs seconds of
imports per case); the interrupt and kill cases use real processes.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from conftest import write_csv
from nseos._io import OutputError, json_text, run_directory
from nseos.cli import main
from nseos.eos import EOSValidationError, Tabulated
from nseos.observations import ObservationError, load

OBS_HEADER = "name,kind,mass_msun,mass_sigma_msun,radius_km,radius_sigma_km,correlation"


def _eos_rows(n=30):
    e = np.geomspace(1e-8, 2000.0, n)
    return 0.1 * e ** (4.0 / 3.0) / (1 + e ** (1.0 / 3.0)), e


def _samples(path, mass, radius):
    write_csv(path, ["mass_msun", "radius_km"], zip(mass, radius, strict=True))


def _manifest(tmp, body: str, name="obs.toml"):
    path = tmp / name
    path.write_text(textwrap.dedent(body))
    return str(path)


def _files(tmp):
    """Build every input file the table refers to; returns {name: path}."""
    rng = np.random.default_rng(0)
    f = {}
    p, e = _eos_rows()
    f["eos_dup"] = str(
        write_csv(
            tmp / "dup.csv",
            ["pressure_mev_fm3", "energy_density_mev_fm3", "pressure_mev_fm3"],
            zip(p, e, p, strict=True),
        )
    )
    f["eos_nonnumeric"] = str(tmp / "nonnum.csv")
    (tmp / "nonnum.csv").write_text("pressure_mev_fm3,energy_density_mev_fm3\n1,2\nx,3\n")
    f["eos_missing_col"] = str(tmp / "nocol.csv")
    (tmp / "nocol.csv").write_text("pressure_mev_fm3,energy\n1,2\n2,3\n")
    f["eos_binary"] = str(tmp / "binary.csv")
    (tmp / "binary.csv").write_bytes(bytes(range(256)) * 4)
    f["eos_decreasing"] = str(
        write_csv(
            tmp / "dec.csv",
            ["pressure_mev_fm3", "energy_density_mev_fm3"],
            zip(p[::-1], e, strict=True),
        )
    )
    acausal = p.copy()
    acausal[-5:] = acausal[-6] + 1.5 * (e[-5:] - e[-6])  # dp/de = 1.5 at the top
    f["eos_acausal"] = str(
        write_csv(
            tmp / "acausal.csv",
            ["pressure_mev_fm3", "energy_density_mev_fm3"],
            zip(acausal, e, strict=True),
        )
    )
    f["dir"] = str(tmp / "adir")
    (tmp / "adir").mkdir()
    f["file"] = str(tmp / "afile")
    (tmp / "afile").write_text("not a directory\n")
    good = "A,mass_radius,1.4,0.1,12,1,0\n"
    for key, text in {
        "obs_dup": OBS_HEADER + ",name\n" + good.strip() + ",B\n",
        "obs_unknown_col": OBS_HEADER + ",colour\n" + good.strip() + ",red\n",
        "obs_empty": "",
        "obs_header_only": OBS_HEADER + "\n",
        "obs_nonnumeric": OBS_HEADER + "\nA,mass_radius,heavy,0.1,12,1,0\n",
        "obs_inf": OBS_HEADER + "\nA,mass_radius,inf,0.1,12,1,0\n",
        "obs_fields": OBS_HEADER + "\nA,mass_radius,1.4,0.1\n",
        "obs_neg_sigma": OBS_HEADER + "\nA,mass_radius,1.4,-0.1,12,1,0\n",
        "obs_corr": OBS_HEADER + "\nA,mass_radius,1.4,0.1,12,1,1.5\n",
        "obs_kind": OBS_HEADER + "\nA,radius,1.4,0.1,12,1,0\n",
        "obs_buchdahl": OBS_HEADER + "\nA,mass_radius,2.0,0.1,5.0,0.5,0\n",
    }.items():
        f[key] = str(tmp / f"{key}.csv")
        (tmp / f"{key}.csv").write_text(text)
    _samples(tmp / "const.csv", np.full(200, 1.4), np.full(200, 12.0))
    m = 1.4 + 0.01 * rng.standard_normal(200)
    _samples(tmp / "line.csv", m, 2.0 * m + 9.0)
    _samples(tmp / "few.csv", m[:20], 12 + m[:20])
    write_csv(tmp / "nomass.csv", ["m", "radius_km"], zip(m, 12 + m, strict=True))
    (tmp / "nan.csv").write_text("mass_msun,radius_km\n" + "1.4,12\n" * 150 + "nan,12\n")
    for key, body in {
        "toml_typo": """
            [[observation]]
            name = "J1"
            kind = "mass"
            mass_msun = 2.0
            minus_sigma_msun = 0.05
            plus_sigm_msun = 0.1
            """,
        "toml_top": """
            observations = 1
            [[observation]]
            name = "J1"
            kind = "mass"
            mass_msun = 2.0
            minus_sigma_msun = 0.05
            """,
        "toml_kind": """
            [[observation]]
            name = "J1"
            kind = "massive"
            """,
        "toml_noname": """
            [[observation]]
            kind = "mass"
            mass_msun = 2.0
            minus_sigma_msun = 0.05
            """,
        "toml_invalid": "[[observation]\nname = \n",
        "toml_string": """
            [[observation]]
            name = "J1"
            kind = "mass"
            mass_msun = "2.0"
            minus_sigma_msun = 0.05
            """,
        "toml_missing": """
            [[observation]]
            name = "J1"
            kind = "mass"
            mass_msun = 2.0
            """,
        "toml_none": "title = 'no observations'\n",
        "toml_neg": """
            [[observation]]
            name = "J1"
            kind = "mass"
            mass_msun = 2.0
            minus_sigma_msun = -0.05
            """,
    }.items():
        f[key] = _manifest(tmp, body, f"{key}.toml")
    for key, (file, kind) in {
        "samples_const": ("const.csv", "mass_radius_samples"),
        "samples_line": ("line.csv", "mass_radius_samples"),
        "samples_few": ("few.csv", "mass_radius_samples"),
        "samples_missing_file": ("nowhere.csv", "mass_radius_samples"),
        "samples_missing_col": ("nomass.csv", "mass_radius_samples"),
        "samples_nan": ("nan.csv", "mass_radius_samples"),
        "samples_dir": ("adir", "mass_radius_samples"),
        "tidal_wrong_cols": ("const.csv", "tidal"),
    }.items():
        f[key] = _manifest(
            tmp, f'[[observation]]\nname = "S"\nkind = "{kind}"\nfile = "{file}"\n', f"{key}.toml"
        )
    f["nonempty"] = str(tmp / "previous")
    (tmp / "previous").mkdir()
    (tmp / "previous" / "summary.json").write_text("{}")
    return f


# (id, argv with {placeholders} for _files' names and {new} for a fresh --out, exit code,
# a fragment of the message)
CLI_CASES = [
    # usage errors: argparse, exit 2, before any work
    ("fit-draws-0", "fit --observations modern --draws 0 --out {new}", 2, "at least 1"),
    ("fit-warmup-0", "fit --observations modern --warmup 0 --out {new}", 2, "at least 1"),
    ("fit-chains-0", "fit --observations modern --chains 0 --out {new}", 2, "at least 1"),
    ("fit-chains-text", "fit --observations modern --chains two --out {new}", 2, "integer"),
    ("fit-accept-1.5", "fit --observations modern --target-accept 1.5 --out {new}", 2, "(0.0"),
    ("fit-accept-0", "fit --observations modern --target-accept 0 --out {new}", 2, "(0.0"),
    ("fit-accept-nan", "fit --observations modern --target-accept nan --out {new}", 2, "lie in"),
    ("fit-prior-draws--5", "fit --observations modern --prior-draws -5 --out {new}", 2, "least 0"),
    ("fit-no-out", "fit --observations modern", 2, "--out"),
    ("fit-method", "fit --observations modern --method mcmc --out {new}", 2, "invalid choice"),
    ("tov-n-stars-2", "tov --eos SLy4 --n-stars 2", 2, "at least 25"),
    ("tov-n-stars-4", "tov --eos SLy4 --n-stars 4", 2, "at least 25"),
    ("tov-n-stars-text", "tov --eos SLy4 --n-stars abc", 2, "integer"),
    ("tov-steps-0", "tov --eos SLy4 --steps 0", 2, "at least 1"),
    ("toy-steps-0", "toy --steps 0 --out {new}", 2, "at least 1"),
    ("toy-seeds-0", "toy --seeds 0 --out {new}", 2, "at least 1"),
    ("toy-lr-negative", "toy --learning-rate -1 --out {new}", 2, "lie in"),
    ("toy-dropout-1", "toy --dropout-rate 1.0 --out {new}", 2, "lie in"),
    ("toy-sigma-negative", "toy --input-sigma -0.1 --out {new}", 2, "lie in"),
    ("validate-n-eos-1", "validate --n-eos 1 --out {new}", 2, "at least 2"),
    ("validate-models-0", "validate --models 0 --out {new}", 2, "at least 1"),
    ("validate-batch-0", "validate --batch-size 0 --out {new}", 2, "at least 1"),
    ("validate-n-val-1", "validate --n-val 1 --out {new}", 2, "at least 2"),
    ("calibrate-universes-1", "calibrate --method bayes --universes 1 --out {new}", 2, "least 2"),
    ("calibrate-chunk-0", "calibrate --method bayes --chunk-size 0 --out {new}", 2, "least 1"),
    ("unknown-command", "solve --eos SLy4", 2, "invalid choice"),
    # output locations: checked before any work, exit 1
    ("tov-out-dir", "tov --eos SLy4 --out {dir}", 1, "is a directory"),
    ("tov-out-under-file", "tov --eos SLy4 --out {file}/x.csv", 1, "is a file"),
    ("tov-plot-format", "tov --eos SLy4 --out {new}.csv --plot {new}.xyz", 1, "figure format"),
    ("obs-plot-format", "observations modern --plot {new}.docx", 1, "figure format"),
    ("fit-out-is-file", "fit --observations modern --out {file}", 1, "not a directory"),
    ("fit-out-under-file", "fit --observations modern --out {file}/sub", 1, "is a file"),
    ("fit-out-previous-run", "fit --observations modern --out {nonempty}", 1, "--overwrite"),
    ("calibrate-out-file", "calibrate --method bayes --out {file}", 1, "not a directory"),
    ("compare-input-inside-out", "compare {nonempty} --overwrite --out {nonempty}", 1, "inside"),
    # EoS input
    ("tov-missing-file", "tov {new}.csv", 1, "not found"),
    ("tov-dir-as-file", "tov {dir}", 1, "is a directory"),
    ("tov-duplicate-column", "tov {eos_dup}", 1, "more than once"),
    ("tov-non-numeric", "tov {eos_nonnumeric}", 1, "non-numeric"),
    ("tov-missing-column", "tov {eos_missing_col}", 1, "missing column"),
    ("tov-binary-file", "tov {eos_binary}", 1, "UTF-8"),
    ("tov-non-monotonic", "tov {eos_decreasing}", 1, "increase strictly"),
    ("tov-acausal", "tov {eos_acausal}", 1, "--truncate-acausal"),
    ("tov-file-and-name", "tov {eos_dup} --eos SLy4", 1, "not both"),
    ("tov-no-eos", "tov", 1, "give an EoS file"),
    ("tov-unknown-name", "tov --eos SLy5", 1, "SLy5"),
    # observation input
    ("obs-missing", "observations {new}.csv", 1, "neither an observation file"),
    ("obs-dir-as-file", "observations {dir}", 1, "is a directory"),
    ("obs-duplicate-column", "observations {obs_dup}", 1, "more than once"),
    ("obs-unknown-column", "observations {obs_unknown_col}", 1, "unknown column"),
    ("obs-empty", "observations {obs_empty}", 1, "empty"),
    ("obs-header-only", "observations {obs_header_only}", 1, "no observations"),
    ("obs-non-numeric", "observations {obs_nonnumeric}", 1, "not a number"),
    ("obs-infinite", "observations {obs_inf}", 1, "finite"),
    ("obs-field-count", "observations {obs_fields}", 1, "fields"),
    ("obs-negative-sigma", "observations {obs_neg_sigma}", 1, "positive"),
    ("obs-correlation", "observations {obs_corr}", 1, "correlation"),
    ("obs-unknown-kind", "observations {obs_kind}", 1, "unknown kind"),
    ("obs-buchdahl", "observations {obs_buchdahl}", 1, "Buchdahl"),
    ("toml-misspelt-key", "observations {toml_typo}", 1, "did you mean 'plus_sigma_msun'"),
    ("toml-top-level-key", "observations {toml_top}", 1, "did you mean 'observation'"),
    ("toml-unknown-kind", "observations {toml_kind}", 1, "unknown kind"),
    ("toml-no-name", "observations {toml_noname}", 1, "'name' is missing"),
    ("toml-invalid", "observations {toml_invalid}", 1, "not valid TOML"),
    ("toml-string-number", "observations {toml_string}", 1, "not a number"),
    ("toml-missing-number", "observations {toml_missing}", 1, "'minus_sigma_msun' is missing"),
    ("toml-no-tables", "observations {toml_none}", 1, "unknown top-level key"),
    ("toml-negative-sigma", "observations {toml_neg}", 1, "positive"),
    ("samples-constant", "observations {samples_const}", 1, "degenerate"),
    ("samples-on-a-line", "observations {samples_line}", 1, "degenerate"),
    ("samples-too-few", "observations {samples_few}", 1, "at least 100"),
    ("samples-file-missing", "observations {samples_missing_file}", 1, "not found"),
    ("samples-column-missing", "observations {samples_missing_col}", 1, "missing column"),
    ("samples-nan", "observations {samples_nan}", 1, "non-finite"),
    ("samples-dir", "observations {samples_dir}", 1, "is a directory"),
    ("tidal-wrong-columns", "observations {tidal_wrong_cols}", 1, "missing column"),
    ("fit-bad-manifest", "fit --observations {toml_typo} --out {new}", 1, "did you mean"),
    # estimator settings and saved runs
    ("fit-unknown-prior", "fit --observations modern --prior flat --out {new}", 1, "prior"),
    (
        "fit-replica-no-model",
        "fit --method replica --observations modern --out {new}",
        1,
        "--model",
    ),
    (
        "fit-replica-bad-model",
        "fit --method replica --model {dir} --observations modern --out {new}",
        1,
        "model.json",
    ),
    ("validate-bad-model", "validate --model {dir} --out {new}", 1, "model.json"),
    ("compare-missing-run", "compare {new}-run --out {new}", 1, "not found"),
]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return _files(tmp_path_factory.mktemp("inputs"))


@pytest.mark.parametrize(
    ("case", "argv", "code", "fragment"), CLI_CASES, ids=[c[0] for c in CLI_CASES]
)
def test_cli_bad_input(case, argv, code, fragment, files, tmp_path, capsys):
    new = tmp_path / "new"
    args = [a.format(new=new, **files) for a in argv.split()]
    if args[0] != "solve":
        args.append("--no-compile-cache")
    before = sorted(os.listdir(tmp_path))
    try:
        status = main(args)
    except SystemExit as exit_:  # argparse's usage errors
        status = exit_.code
    err = capsys.readouterr().err
    assert status == code, err
    assert "Traceback" not in err
    assert fragment in err, err
    if code == 1:
        assert err.count("\n") == 1 and err.startswith("nseos: error: "), err
    # No partial output: nothing new beside the inputs (no --out, no temporary folder).
    assert sorted(os.listdir(tmp_path)) == before


def test_the_table_covers_at_least_60_distinct_cases():
    assert len({c[0] for c in CLI_CASES}) == len(CLI_CASES) >= 60


# --- the Python API --------------------------------------------------------------------------


def test_a_byte_order_mark_is_accepted_in_every_csv_reader(tmp_path):
    p, e = _eos_rows()
    plain = write_csv(
        tmp_path / "plain.csv",
        ["pressure_mev_fm3", "energy_density_mev_fm3"],
        zip(p, e, strict=True),
    )
    bom = tmp_path / "bom.csv"
    bom.write_bytes(b"\xef\xbb\xbf" + plain.read_bytes())
    a, b = Tabulated.from_csv(plain), Tabulated.from_csv(bom)
    np.testing.assert_array_equal(a.node_pressure_mev_fm3, b.node_pressure_mev_fm3)
    obs = tmp_path / "obs.csv"
    obs.write_bytes(b"\xef\xbb\xbf" + (OBS_HEADER + "\nA,mass_radius,1.4,0.1,12,1,0\n").encode())
    (o,) = load(obs)
    assert o.name == "A"


def test_api_errors_are_the_documented_types(files):
    with pytest.raises(EOSValidationError, match="more than once"):
        Tabulated.from_csv(files["eos_dup"])
    with pytest.raises(IsADirectoryError):
        Tabulated.from_csv(files["dir"])
    with pytest.raises(ObservationError, match="did you mean 'plus_sigma_msun'"):
        load(files["toml_typo"])
    with pytest.raises(ObservationError, match="degenerate"):
        load(files["samples_line"])
    with pytest.raises(IsADirectoryError):
        load(files["dir"])


def test_json_out_is_strict():
    text = json_text(
        {
            "a": float("nan"),
            "b": [1.0, float("inf")],
            "c": np.float64(2.5),
            "d": np.array([np.nan, 1.0]),
        }
    )

    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    assert json.loads(text, parse_constant=refuse) == {
        "a": None,
        "b": [1.0, None],
        "c": 2.5,
        "d": [None, 1.0],
    }


# --- run directories: the old run or the new one, never a mix -----------------------------


def _snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _old_run(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "posterior.nc").write_bytes(b"old posterior")
    (out / "summary.json").write_text('{"old": true}')
    return out


@pytest.mark.parametrize("failure", [ValueError, KeyboardInterrupt])
def test_a_failed_run_leaves_the_previous_run_untouched(tmp_path, failure):
    out = _old_run(tmp_path)
    old = _snapshot(out)
    with pytest.raises(failure):
        with run_directory(out, overwrite=True) as tmp:
            (tmp / "posterior.nc").write_bytes(b"new posterior")
            raise failure("in the middle of writing")
    assert _snapshot(out) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # no temporary folder left


def test_a_complete_run_replaces_the_previous_one_whole(tmp_path):
    out = _old_run(tmp_path)
    with run_directory(out, overwrite=True) as tmp:
        (tmp / "posterior.nc").write_bytes(b"new posterior")
    assert _snapshot(out) == {out.relative_to(out) / "posterior.nc": b"new posterior"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    with pytest.raises(OutputError, match="--overwrite"):
        with run_directory(out):
            pass


_WRITER = """
import sys, time
from pathlib import Path
from nseos._io import run_directory
with run_directory(sys.argv[1], overwrite=True) as tmp:
    print("started", flush=True)
    (tmp / "posterior.nc").write_bytes(b"new posterior " * 1000)
    time.sleep(float(sys.argv[2]))
    (tmp / "summary.json").write_text('{"new": true}')
print("done", flush=True)
time.sleep(10)
"""


@pytest.mark.parametrize("when", ["before", "during", "after"])
def test_a_killed_writer_leaves_the_old_run_or_the_new_one(tmp_path, when):
    """SIGKILL (no cleanup runs) before the run starts writing, while it writes, and after
    the swap: the directory is the old run or the complete new one, bit for bit."""
    out = _old_run(tmp_path)
    old = _snapshot(out)
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(out), "1.0"], stdout=subprocess.PIPE, text=True
    )
    if when == "before":
        proc.kill()
    else:
        assert proc.stdout.readline().strip() == "started"
        if when == "after":
            assert proc.stdout.readline().strip() == "done"
        else:
            time.sleep(0.3)
        proc.kill()
    proc.wait()
    proc.stdout.close()
    now = _snapshot(out)
    new = {
        out.relative_to(out) / "posterior.nc": b"new posterior " * 1000,
        out.relative_to(out) / "summary.json": b'{"new": true}',
    }
    assert now == (new if when == "after" else old)


def test_ctrl_c_during_a_fit_exits_130_at_once_and_keeps_the_previous_run(tmp_path):
    """A real `nseos fit`, interrupted while it draws from the prior or compiles (native code
    where Python's own handler cannot run): exit 130 within seconds, one line, the previous
    run bit for bit, no temporary folder."""
    out = _old_run(tmp_path)
    old = _snapshot(out)
    cmd = [
        sys.executable,
        "-m",
        "nseos.cli",
        "fit",
        "--observations",
        "modern",
        "--quiet",
        "--no-compile-cache",
        "--overwrite",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not any(p.name.startswith(".run.new-") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.2)
    time.sleep(3.0)  # inside the work
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert time.monotonic() - sent < 5.0
    assert err.strip() == "nseos: interrupted; nothing was written"
    assert _snapshot(out) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]


def test_docs_reliability_lists_every_case():
    """docs/reliability.md's table is generated from CLI_CASES and must be current."""
    import importlib.util
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location(
        "gen_reliability_table", root / "scripts" / "gen_reliability_table.py"
    )
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)
    assert gen.table(CLI_CASES) in (root / "docs" / "reliability.md").read_text(), (
        "run python scripts/gen_reliability_table.py"
    )


# --- tampering: every saved file type refuses to load once modified --------------------------


@pytest.mark.parametrize("tamper", ["flip-bytes", "edit-values", "edit-attribute", "no-hash"])
def test_an_edited_or_damaged_posterior_is_refused(tmp_path, tamper):
    """Issue 21: 400 flipped bytes in a posterior.nc gave negative radii that `nseos compare`
    used. Now the load fails and names the file."""
    import xarray as xr

    from nseos._io import DIGEST_KEY, IntegrityError
    from nseos.posterior import EoSPosterior
    from test_compare import synthetic_posterior

    path = synthetic_posterior(0, radius_km=12.0, radius_sigma_km=0.3).save(tmp_path / "p.nc")
    EoSPosterior.load(path)  # intact: loads
    if tamper == "flip-bytes":
        raw = bytearray(path.read_bytes())
        errors = []
        for start in (len(raw) // 3, len(raw) // 2, 2 * len(raw) // 3):
            bad = raw.copy()
            bad[start : start + 400] = bytes(b ^ 0xFF for b in bad[start : start + 400])
            (tmp_path / "bad.nc").write_bytes(bytes(bad))
            with pytest.raises(ValueError) as caught:  # IntegrityError, or unreadable HDF5
                EoSPosterior.load(tmp_path / "bad.nc")
            errors.append(caught.value)
        assert any(isinstance(e, IntegrityError) for e in errors)  # the data were hit
        return
    tree = xr.open_datatree(path, engine="h5netcdf").load()
    if tamper == "edit-values":
        post = tree["posterior"].to_dataset()
        post["radius_1p4_km"] = -post["radius_1p4_km"]
        tree["posterior"] = xr.DataTree(post)
    elif tamper == "edit-attribute":
        tree.attrs = {**tree.attrs, "method": "replica"}
    else:
        tree.attrs = {k: v for k, v in tree.attrs.items() if k != DIGEST_KEY}
    tree.to_netcdf(tmp_path / "edited.nc", engine="h5netcdf")
    match = "no content hash" if tamper == "no-hash" else "modified or damaged"
    with pytest.raises(IntegrityError, match=match):
        EoSPosterior.load(tmp_path / "edited.nc")


def test_an_edited_or_damaged_state_file_is_refused(tmp_path):
    """The training-data cache and the calibration state (.npz, no pickle) carry the hash of
    their arrays: an edited array, a removed hash or a damaged archive are refused."""
    from nseos._io import DIGEST_KEY, IntegrityError, load_npz, save_npz
    from nseos.calibration import Universes

    path = save_npz(tmp_path / "s.npz", {"draws": np.arange(6.0), "divergences": np.int64(0)})
    assert load_npz(path, what="state")["draws"].tolist() == list(range(6))
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez(tmp_path / "edited.npz", **{**arrays, "draws": np.arange(6.0) + 1e-9})
    with pytest.raises(IntegrityError, match=r"edited.npz: the content does not match"):
        load_npz(tmp_path / "edited.npz", what="state")
    np.savez(tmp_path / "nohash.npz", **{k: v for k, v in arrays.items() if k != DIGEST_KEY})
    with pytest.raises(IntegrityError, match="no content hash"):
        Universes.load(tmp_path / "nohash.npz")
    raw = bytearray(path.read_bytes())
    raw[100:140] = bytes(40)
    (tmp_path / "damaged.npz").write_bytes(bytes(raw))
    with pytest.raises(ValueError, match=r"damaged\.npz"):
        load_npz(tmp_path / "damaged.npz", what="state")


def test_a_catalog_built_in_32_bit_mode_is_rebuilt_after_x64_is_switched_on():
    """Issue 21: a catalog built before jax_enable_x64 stayed float32 afterwards (the
    catalogs are cached per process). A fresh process, since this one runs in 64-bit mode."""
    script = textwrap.dedent(
        """
        import jax, jax.numpy as jnp
        from nseos import catalogs

        def dtypes(c):
            return {str(a.dtype) for a in jax.tree.leaves(c)
                    if hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.floating)}

        before = dtypes(catalogs.nicer())
        jax.config.update("jax_enable_x64", True)
        print(sorted(before), sorted(dtypes(catalogs.nicer())))
        """
    )
    env = {k: v for k, v in os.environ.items() if k != "JAX_ENABLE_X64"}
    res = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["['float32']", "['float64']"]

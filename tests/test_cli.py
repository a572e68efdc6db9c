"""The `nseos` command line: outputs, and one-line errors with exit code 1 on bad input."""

import csv
import json
import subprocess
import sys

import jax
import numpy as np
import pytest

from conftest import write_csv
from nseos.observations._files import CSV_COLUMNS

jax.config.update("jax_enable_x64", True)


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "nseos.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=600,
    )


def test_tov_named_eos_json_csv_and_plot(tmp_path):
    out, plot = tmp_path / "curve.csv", tmp_path / "mr.png"
    res = run("tov", "--eos", "SLy4", "--json", "--out", str(out), "--plot", str(plot))
    assert res.returncode == 0, res.stderr
    summary = json.loads(res.stdout)
    assert set(summary) >= {"max_mass_msun", "radius_at_max_mass_km", "radius_1p4_km", "lambda_1p4"}
    assert summary["max_mass_msun"] == pytest.approx(2.050, abs=0.005)
    assert summary["radius_1p4_km"] == pytest.approx(11.71, abs=0.03)
    with open(out) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["central_pressure_mev_fm3", "mass_msun", "radius_km", "lambda"]
    masses = np.array([float(r["mass_msun"]) for r in rows])
    assert np.all(np.diff(masses) > 0)  # the stable branch only
    assert plot.stat().st_size > 10_000


def _good_rows(n=30):
    e = np.geomspace(1e-8, 2000.0, n)
    p = 0.1 * e ** (4.0 / 3.0) / (1 + e ** (1.0 / 3.0))
    return p, e


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing-file", "not found"),
        ("missing-column", "missing column"),
        ("non-numeric", "non-numeric"),
        ("non-monotonic", "increase strictly"),
        ("acausal", "acausal"),
        ("never-1.4", "never reaches 1.4"),
    ],
)
def test_tov_bad_input_gives_one_line_error(tmp_path, case, message):
    path = tmp_path / "eos.csv"
    header = ["pressure_mev_fm3", "energy_density_mev_fm3"]
    p, e = _good_rows()
    if case == "missing-file":
        path = tmp_path / "absent.csv"
    elif case == "missing-column":
        write_csv(path, ["pressure_mev_fm3", "rho"], zip(p, e, strict=True))
    elif case == "non-numeric":
        rows = [list(r) for r in zip(p, e, strict=True)]
        rows[5][1] = "abc"
        write_csv(path, header, rows)
    elif case == "non-monotonic":
        p = p.copy()
        p[10] = p[8]
        write_csv(path, header, zip(p, e, strict=True))
    elif case == "acausal":
        p = p.copy()
        p[-1] = p[-2] + 1.5 * (e[-1] - e[-2])
        write_csv(path, header, zip(p, e, strict=True))
    elif case == "never-1.4":
        # SLy4 cut at eps = 400 MeV fm^-3: the table ends before 1.4 M_sun is reached.
        from nseos.eos import sly4

        t = sly4()
        keep = np.asarray(t.node_energy_density_mev_fm3) < 400.0
        rows = zip(
            np.asarray(t.node_pressure_mev_fm3)[keep],
            np.asarray(t.node_energy_density_mev_fm3)[keep],
            strict=True,
        )
        write_csv(path, header, rows)
    res = run("tov", str(path))
    assert res.returncode == 1
    assert "Traceback" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], res.stderr


def test_usage_error_exit_code():
    res = run("tov", "--n-stars", "abc")
    assert res.returncode == 2


def test_every_help_text_renders():
    """Each subcommand's --help formats (no stray '%%' from an unformatted description)."""
    import argparse

    from nseos.cli import build_parser

    parser = build_parser()
    subs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert len(subs.choices) >= 8
    for name, sub in subs.choices.items():
        text = sub.format_help()
        assert "%%" not in text and "%(" not in text, name


def test_observations_catalog_table_plot_and_likelihood(tmp_path):
    res = run("observations", "pulsar_masses", "--eos", "SLy4", "--out", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert "J1614-2230" in res.stdout and "1.937 +- 0.014" in res.stdout
    assert "status OK" in res.stdout
    assert (tmp_path / "observations.png").stat().st_size > 10_000
    assert (tmp_path / "observations.pdf").exists()
    assert "J0348+0432" in (tmp_path / "observations.txt").read_text()


def test_observations_file_and_errors(tmp_path):
    header = list(CSV_COLUMNS)
    good = write_csv(tmp_path / "obs.csv", header, [["A", "mass_radius", 1.4, 0.1, 12, 1, 0.3]])
    res = run("observations", str(good), "--plot", str(tmp_path / "c.png"))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "c.png").exists()
    bad = write_csv(tmp_path / "bad.csv", header, [["A", "mass_radius", 1.4, -0.1, 12, 1, 0]])
    res = run("observations", str(bad))
    assert res.returncode == 1
    assert res.stderr.count("\n") == 1 and "row 2: mass_sigma_msun = -0.1" in res.stderr
    res = run("observations", "no_such_catalog")
    assert res.returncode == 1 and "neither an observation file nor a catalog" in res.stderr


def test_validate_trains_reports_and_reloads(tmp_path):
    out = tmp_path / "val"
    small = ("--n-eos", "24", "--n-sets", "4", "--n-s", "2", "--models", "2", "--epochs", "2")
    res = run("validate", "--method", "replica", *small, "--n-val", "8", "--out", str(out))
    assert res.returncode == 0, res.stderr
    rows = json.loads((out / "validation.json").read_text())
    assert rows[0]["regularisation"] == "replicas" and len(rows[0]["rms_km"]) == 7
    assert all(0.0 < r < 5.0 for r in rows[0]["rms_km"])
    assert "published" in (out / "validation.md").read_text()
    assert (out / "validation.png").stat().st_size > 0
    model = str(out / "model-replicas-mlp")
    again = run("validate", "--model", model, "--n-val", "8", "--out", str(tmp_path / "again"))
    assert again.returncode == 0, again.stderr
    reloaded = json.loads((tmp_path / "again" / "validation.json").read_text())
    assert reloaded[0]["rms_km"] == rows[0]["rms_km"]
    # --overwrite would delete the model that the run reads: refused, nothing touched.
    inside = run("validate", "--model", model, "--n-val", "8", "--overwrite", "--out", str(out))
    assert inside.returncode == 1 and "inside --out" in inside.stderr
    assert (out / "model-replicas-mlp" / "model.json").exists()
    bad = run("validate", "--model", str(tmp_path), "--out", str(tmp_path / "bad"))
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "model.json" in bad.stderr
    assert not (tmp_path / "bad").exists()  # a failed run leaves no directory behind


def test_toy_quick_writes_the_study(tmp_path):
    """`nseos toy --quick` (what CI runs): every configuration on a tiny budget, the tables,
    the claims' numbers and the figures; a results.json that reloads into the same table."""
    from nseos.toy._report import load_study, summary_rows

    out = tmp_path / "toy"
    res = run("toy", "--quick", "--quiet", "--out", str(out))
    assert res.returncode == 0, res.stderr
    with open(out / "table.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 3 * 7  # architectures x activations x modes
    assert {r["architecture"] for r in rows} == {"1-2-2-1", "1-4-4-1", "1-9-9-1"}
    claims = json.loads((out / "claims.json").read_text())
    assert set(claims) == {
        "1_replicas_curb_overfitting",
        "2_parameter_noise_like_replicas",
        "3_replicas_vs_dropout",
        "4_relu_dies",
    }
    for name in ("summary", "loss-relu", "fits-relu"):
        assert (out / f"{name}.png").stat().st_size > 10_000
    reloaded = summary_rows(load_study(out / "results.json"))
    assert [r["validation_mse_median"] for r in reloaded] == pytest.approx(
        [float(r["validation_mse_median"]) for r in rows], rel=1e-6
    )
    bad = run("toy", "--quick", "--steps", "15", "--out", str(tmp_path / "bad"))
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "multiple" in bad.stderr


def _mock_catalogue_csv(path):
    """14 stars on the SLy4-like member's M-R curve (masses 1.0 ... 2.0 M_sun), observed with
    sigma_M = 0.05 M_sun and sigma_R = 0.15 km; returns the true R(1.4) [km]."""
    from conftest import curve_jit
    from nseos.eos import SpeedOfSoundSegments

    curve = curve_jit(SpeedOfSoundSegments(np.array([0.0603, 0.1308, 0.2629, 0.4497, 0.6796])))
    rng = np.random.default_rng(11)
    masses = np.linspace(1.0, 2.0, 14)
    radii = np.asarray(curve.radius_at(masses))
    rows = [
        [f"m{i}", "mass_radius", m + 0.05 * rng.standard_normal(), 0.05,
         r + 0.15 * rng.standard_normal(), 0.15, 0.0]
        for i, (m, r) in enumerate(zip(masses, radii, strict=True))
    ]  # fmt: skip
    write_csv(path, list(CSV_COLUMNS), rows)
    return float(curve.radius_at(1.4))


def test_fit_and_compare_on_a_known_mock_catalogue(tmp_path):
    """`nseos fit` recovers the SLy4-like truth from precise mock stars and writes the
    summary schema; `nseos compare` turns two fits into a report."""
    truth_r14 = _mock_catalogue_csv(tmp_path / "mock.csv")
    short = ("--warmup", "150", "--draws", "150", "--chains", "2", "--prior-draws", "64")
    out = tmp_path / "fit"
    res = run("fit", "--observations", str(tmp_path / "mock.csv"), *short, "--out", str(out))
    assert res.returncode == 0, res.stderr
    doc = json.loads((out / "summary.json").read_text())
    assert doc["format"] == "nseos-summary" and doc["run"]["observations"][0] == "m0"
    r14 = doc["quantities"]["radius_km_at_1p4"]
    assert r14["unit"] == "km" and r14["q2.5"] < truth_r14 < r14["q97.5"]
    assert abs(r14["median"] - truth_r14) < 0.25
    assert r14["q97.5"] - r14["q2.5"] < 1.5  # the data, not the prior, set it
    # A star of 2.0 +- 0.05 M_sun was seen: M_max lies above ~its mass - 3 sigma (the 2.5 %
    # quantile of 2 x 150 short draws scatters by ~0.02 M_sun; it came out at 1.899 once).
    assert doc["quantities"]["max_mass_msun"]["q2.5"] > 1.85
    assert "radius_km_at_1p4" in doc["quantities"] and "R(1.4 M_sun) [km]" in res.stdout
    from nseos.posterior import EoSPosterior

    post = EoSPosterior.load(out / "posterior.nc")
    assert post.datatree["posterior"].sizes["draw"] == 150
    cmp_out = tmp_path / "cmp"
    res = run("compare", str(out), str(out / "posterior.nc"), "--quiet", "--out", str(cmp_out))
    assert res.returncode == 0, res.stderr
    assert (cmp_out / "figures" / "eos_band.png").stat().st_size > 10_000
    assert "Prior dependence" in (cmp_out / "report.md").read_text()
    assert (cmp_out / "tables" / "agreement.csv").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (("fit", "--observations", "modern", "--prior", "flat", "--out", "x"), "unknown prior"),
        (("fit", "--observations", "nope", "--out", "x"), "neither an observation file"),
        (("fit", "--method", "replica", "--observations", "xray_2016", "--out", "x"), "--model"),
        (("compare", "no/such/dir", "--out", "x"), "not found"),
    ],
)
def test_fit_and_compare_bad_input_one_line(tmp_path, args, message):
    res = run(*args, cwd=tmp_path)
    assert res.returncode == 1, res.stderr
    assert res.stderr.count("\n") == 1 and message in res.stderr


def test_validate_bayes_runs_nuts_on_every_case(tmp_path):
    """`nseos validate --method bayes`: a NUTS run per held-out case (tiny budget), RMS and
    coverage per mass; a replica-only option is refused with a one-line error."""
    out = tmp_path / "vb"
    tiny = ("--n-val", "2", "--warmup", "20", "--draws", "20", "--chunk-size", "2")
    res = run("validate", "--method", "bayes", *tiny, "--quiet", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert res.stdout == ""  # --quiet
    (row,) = json.loads((out / "validation.json").read_text())
    assert row["method"] == "bayes" and row["n_validation_eos"] == 2
    assert all(0.0 < r < 5.0 for r in row["rms_km"])
    assert all(c in (0.0, 0.5, 1.0) for c in row["coverage_68"] + row["coverage_95"])
    assert all(c95 >= c68 for c68, c95 in zip(row["coverage_68"], row["coverage_95"], strict=True))
    assert "95% cov." in (out / "validation.md").read_text()
    bad = run(
        "validate", "--method", "bayes", "--model", str(tmp_path), "--out", str(tmp_path / "b")
    )
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "--model" in bad.stderr

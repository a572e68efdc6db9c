"""Property-based tests (hypothesis) of the file readers: random valid files load (and an
EoS table solves); random corruptions are refused with the reader's own error
(``EOSValidationError`` / ``ObservationError``), never another exception."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import curve_jit
from nseos.eos import EOSValidationError, Tabulated
from nseos.observations import ObservationError, load
from nseos.tov import RK4

ROWS = 40  # one table shape: the TOV solve compiles once for every example
PROPERTY = settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _table(p_saturation, gamma):
    """A causal, monotonic table: p = p_sat (e / 150)^gamma up to e = 2000 MeV/fm^3 (the
    sound speed there stays below 0.75 for these ranges)."""
    e = np.geomspace(1e-7, 2000.0, ROWS)
    return p_saturation * (e / 150.0) ** gamma, e


def _csv(p, e) -> str:
    rows = "".join(f"{float(x)!r},{float(y)!r}\n" for x, y in zip(p, e, strict=True))
    return "pressure_mev_fm3,energy_density_mev_fm3\n" + rows


tables = st.tuples(st.floats(1.5, 4.0), st.floats(1.7, 2.0))


@PROPERTY
@given(tables)
def test_random_valid_eos_tables_load_exactly_and_solve(tmp_path, params):
    p, e = _table(*params)
    path = tmp_path / "eos.csv"
    path.write_text(_csv(p, e))
    eos = Tabulated.from_csv(path)
    np.testing.assert_array_equal(np.asarray(eos.node_pressure_mev_fm3)[-1], p[-1])
    curve = curve_jit(eos, 40, RK4())
    m_max = float(curve.max_mass_msun)
    assert math.isfinite(m_max) and 0.3 < m_max < 4.0
    stable = np.asarray(curve.stable)
    assert np.all(np.isfinite(np.asarray(curve.radius_km)[stable]))


CORRUPTIONS = ("text", "drop-cell", "duplicate-header", "swap-rows", "nan", "truncate", "bytes")


@PROPERTY
@given(
    tables,
    st.sampled_from(CORRUPTIONS),
    st.integers(1, ROWS - 2),
    st.text(min_size=1, max_size=8),
    st.binary(min_size=1, max_size=64),
)
def test_corrupted_eos_tables_raise_only_eos_validation_error(
    tmp_path, params, corruption, row, text, junk
):
    p, e = _table(*params)
    lines = _csv(p, e).splitlines(keepends=True)
    if corruption == "text":
        lines[row] = f"{text.replace(',', ';').replace(chr(10), ' ')}x,{float(e[row - 1])!r}\n"
    elif corruption == "drop-cell":
        lines[row] = lines[row].split(",")[0] + "\n"
    elif corruption == "duplicate-header":
        lines[0] = "pressure_mev_fm3,pressure_mev_fm3\n"
    elif corruption == "swap-rows":
        lines[row], lines[row + 1] = lines[row + 1], lines[row]
    elif corruption == "nan":
        lines[row] = f"nan,{float(e[row - 1])!r}\n"
    elif corruption == "truncate":
        lines = [*lines[:row], lines[row][: len(lines[row]) // 2]]
    data = "".join(lines).encode()
    if corruption == "bytes":
        cut = len(data) * row // ROWS
        data = data[:cut] + junk + data[cut:]
    path = tmp_path / "eos.csv"
    path.write_bytes(data)
    try:
        Tabulated.from_csv(path)
    except EOSValidationError:
        return
    # Loaded: then the corruption left a valid table (e.g. bytes that are a digit).
    assert corruption in ("bytes", "truncate", "text")


HEADER = "name,kind,mass_msun,mass_sigma_msun,radius_km,radius_sigma_km,correlation\n"
stars = st.lists(
    st.tuples(
        st.floats(1.0, 2.4),  # M
        st.floats(0.01, 0.4),  # sigma_M
        st.floats(9.5, 16.0),  # R (above the Buchdahl limit for these masses)
        st.floats(0.1, 2.0),  # sigma_R
        st.floats(-0.95, 0.95),  # correlation
    ),
    min_size=1,
    max_size=6,
)


def _obs_csv(rows) -> str:
    return HEADER + "".join(
        f"S{i},mass_radius,{m!r},{sm!r},{r!r},{sr!r},{c!r}\n"
        for i, (m, sm, r, sr, c) in enumerate(rows)
    )


@PROPERTY
@given(stars)
def test_random_valid_observation_files_load_exactly(tmp_path, rows):
    path = tmp_path / "obs.csv"
    path.write_text(_obs_csv(rows))
    observations = load(path)
    assert len(observations) == len(rows)
    for obs, (m, sm, r, sr, c) in zip(observations, rows, strict=True):
        assert float(obs.mass_msun) == m and float(obs.radius_km) == r
        assert float(obs.mass_sigma_msun) == sm and float(obs.radius_sigma_km) == sr
        assert float(obs.correlation) == pytest.approx(c, abs=0.0)


@PROPERTY
@given(
    stars,
    st.sampled_from(("cell", "negative-sigma", "drop-cell", "header", "bytes", "correlation")),
    st.text(min_size=1, max_size=8),
    st.binary(min_size=1, max_size=64),
)
def test_corrupted_observation_files_raise_only_observation_error(
    tmp_path, rows, corruption, text, junk
):
    lines = _obs_csv(rows).splitlines(keepends=True)
    cells = lines[1].rstrip("\n").split(",")
    if corruption == "cell":
        cells[2] = text.replace(",", ";").replace("\n", " ") + "x"
    elif corruption == "negative-sigma":
        cells[3] = "-" + cells[3]
    elif corruption == "drop-cell":
        cells = cells[:-1]
    elif corruption == "correlation":
        cells[6] = "1.0"
    lines[1] = ",".join(cells) + "\n"
    if corruption == "header":
        lines[0] = lines[0].replace("radius_km,", "radius,", 1)
    data = "".join(lines).encode()
    if corruption == "bytes":
        data = data[: len(data) // 2] + junk + data[len(data) // 2 :]
    path = tmp_path / "obs.csv"
    path.write_bytes(data)
    try:
        load(path)
    except ObservationError:
        return
    assert corruption == "bytes"  # only random bytes can leave a valid file behind

"""EoS family: interpolation, thermodynamic consistency, reference values, validation."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import write_csv
from nseos import units
from nseos.eos import (
    AcausalEOSWarning,
    EOSValidationError,
    SpeedOfSoundSegments,
    Tabulated,
    polytrope,
    read2009,
    read2009_named,
    read2009_parameters,
    reference_eos,
    sly4,
)


def _table_rows(n=30):
    e = np.geomspace(1e-8, 2000.0, n)
    p = 0.1 * e ** (4.0 / 3.0) / (1 + e ** (1.0 / 3.0))  # causal, p << e at low density
    return p, e


def test_table_interpolant_passes_through_every_row(sly4_table):
    t = sly4_table
    s = t.state(t.node_enthalpy)
    np.testing.assert_allclose(s.pressure_mev_fm3, t.node_pressure_mev_fm3, rtol=1e-12)
    np.testing.assert_allclose(s.energy_density_mev_fm3, t.node_energy_density_mev_fm3, rtol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        sly4,
        lambda: read2009_named("SLy"),
        lambda: SpeedOfSoundSegments(),
        lambda: polytrope(100.0, 2.0),
    ],
    ids=["table", "read2009", "cs2-segments", "polytrope"],
)
def test_first_law_dp_dh_equals_enthalpy_density(make):
    """dp/dh = eps + p and deps/dh = (eps + p) / c_s^2, by finite differences."""
    eos = make()
    h = jnp.linspace(0.005, 0.6, 37) + 1.234e-4  # off the nodes
    step = 1e-6
    s = eos.state(h)
    dp = (eos.pressure_mev_fm3(h + step) - eos.pressure_mev_fm3(h - step)) / (2 * step)
    de = (eos.energy_density_mev_fm3(h + step) - eos.energy_density_mev_fm3(h - step)) / (2 * step)
    np.testing.assert_allclose(dp, s.energy_density_mev_fm3 + s.pressure_mev_fm3, rtol=1e-6)
    np.testing.assert_allclose(de, s.denergy_dh_mev_fm3, rtol=1e-5)


@pytest.mark.parametrize(
    "make",
    [sly4, lambda: read2009_named("SLy"), lambda: SpeedOfSoundSegments()],
    ids=["table", "read2009", "cs2-segments"],
)
def test_enthalpy_inverts_pressure(make):
    eos = make()
    h = jnp.linspace(1e-3, 0.7, 50)
    np.testing.assert_allclose(eos.enthalpy(eos.pressure_mev_fm3(h)), h, rtol=1e-10, atol=1e-13)


def test_sly4_against_lal_table_and_sanity_numbers(sly4_table):
    """Douchin-Haensel SLy4 vs the README's numbers: P(eps = 150, 300, 600) = 2.136, 16.08,
    104.3 MeV fm^-3; the LAL SLY4 table agrees to 0.1-0.3 %."""
    e = jnp.array([150.0, 300.0, 600.0])
    p_dh = sly4_table.pressure_of_energy_density(e)
    np.testing.assert_allclose(p_dh, [2.136, 16.08, 104.3], rtol=3e-3)
    p_lal = reference_eos("SLy4-LAL").pressure_of_energy_density(e)
    np.testing.assert_allclose(p_lal, [2.131, 16.04, 104.1], rtol=3e-3)


def test_speed_of_sound_segments_are_exact():
    cs2 = jnp.array([0.2, 0.9, 0.05, 0.5, 0.33])
    eos = SpeedOfSoundSegments(cs2)
    h_k, p_k, e_k = eos._segments()
    np.testing.assert_allclose(
        e_k / units.SATURATION_ENERGY_DENSITY_MEV_FM3, [1, 1.4, 2.2, 3.3, 4.9]
    )
    mid = 0.5 * (h_k[:-1] + h_k[1:])
    np.testing.assert_allclose(eos.speed_of_sound_squared(mid), cs2[:-1], rtol=1e-12)
    np.testing.assert_allclose(eos.speed_of_sound_squared(h_k[-1] + 0.3), cs2[-1], rtol=1e-12)
    # p(eps) is linear on each segment: p_{k+1} - p_k = c_k^2 (eps_{k+1} - eps_k).
    np.testing.assert_allclose(np.diff(p_k), cs2[:-1] * np.diff(e_k), rtol=1e-12)
    # Below rho0 it is the SLy4 table.
    h = jnp.linspace(1e-4, 0.9 * h_k[0], 20)
    np.testing.assert_allclose(eos.pressure_mev_fm3(h), sly4().pressure_mev_fm3(h), rtol=1e-12)


def test_speed_of_sound_segments_validation():
    with pytest.raises(EOSValidationError, match="outside"):
        SpeedOfSoundSegments(jnp.array([0.3, 1.2, 0.5, 0.4, 0.3]))
    with pytest.raises(EOSValidationError, match="shape"):
        SpeedOfSoundSegments(jnp.array([0.3, 0.5]))


def test_read2009_reproduces_p1_and_continuity():
    """p(rho1 = 10^14.7 g cm^-3) = 10^log_p1, and p, eps are continuous at every boundary."""
    params = read2009_parameters()
    assert len(params) == 34
    for name in ("SLy", "APR4", "MS1", "H4"):
        eos = read2009_named(name)
        rho = eos.rest_mass_bounds_mev_fm3
        h_lower, _, p_a, _, _ = eos._nodes()
        i1 = 5  # 4 crust pieces, then Gamma1, Gamma2 (starting at rho1), Gamma3
        assert np.isclose(rho[i1], units.g_cm3_to_mev_fm3(10**14.7))
        p1 = units.dyn_cm2_to_mev_fm3(10 ** params[name][0])
        assert np.isclose(p_a[i1], p1, rtol=1e-10)
        eps = 1e-12
        above = eos.state(h_lower[1:] * (1 + eps))
        below = eos.state(h_lower[1:] * (1 - eps))
        np.testing.assert_allclose(above.pressure_mev_fm3, below.pressure_mev_fm3, rtol=1e-9)
        np.testing.assert_allclose(
            above.energy_density_mev_fm3, below.energy_density_mev_fm3, rtol=1e-9
        )


def test_read2009_is_differentiable():
    def p_at(log_p1):
        return read2009(log_p1, 3.005, 2.988, 2.851).pressure_mev_fm3(0.3)

    g = jax.grad(p_at)(34.384)
    fd = (p_at(34.384 + 1e-6) - p_at(34.384 - 1e-6)) / 2e-6
    assert np.isclose(g, fd, rtol=1e-6)


# --- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p, e: (p[:5], e[:5]), "at least 8"),
        (lambda p, e: (p.at[3].set(np.nan), e), "not finite at row 4"),
        (lambda p, e: (p.at[6].set(-1.0), e), "positive; row 7"),
        (lambda p, e: (p.at[10].set(p[9]), e), "increase strictly; row 11"),
        (lambda p, e: (p, e.at[12].set(e[11] * 0.5)), "increase strictly; row 13"),
        (lambda p, e: (p[16:], e[16:]), "reach down to the crust"),
    ],
    ids=["short", "nan", "negative", "flat-pressure", "energy-decreases", "no-crust"],
)
def test_table_validation_names_the_row(mutate, message):
    p, e = (jnp.asarray(v) for v in _table_rows())
    bad_p, bad_e = mutate(p, e)
    with pytest.raises(EOSValidationError, match=message):
        Tabulated(np.asarray(bad_p), np.asarray(bad_e))


def test_acausal_table_rejected_warned_or_truncated():
    with pytest.raises(EOSValidationError, match=r"acausal table: c_s\^2 = dp/deps = 1.01"):
        reference_eos("APR4")
    with pytest.warns(AcausalEOSWarning, match=r"eps = 980.3"):
        eos = reference_eos("APR4", allow_acausal=True)
    assert eos.node_pressure_mev_fm3.shape[0] == 210
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        p = np.asarray(eos.node_pressure_mev_fm3)
        e = np.asarray(eos.node_energy_density_mev_fm3)
        cut = Tabulated(p, e, truncate_acausal=True)
    assert float(cut.node_energy_density_mev_fm3[-1]) == pytest.approx(980.324, rel=1e-5)


def test_csv_roundtrip_any_column_order(tmp_path):
    p, e = _table_rows()
    header = ["energy_density_mev_fm3", "pressure_mev_fm3"]
    path = write_csv(tmp_path / "t.csv", header, zip(e, p, strict=True))
    eos = Tabulated.from_csv(path)
    np.testing.assert_allclose(eos.node_pressure_mev_fm3, p)
    assert eos.name == "t"


@pytest.mark.parametrize(
    ("header", "rows", "message"),
    [
        (["pressure_mev_fm3", "density"], [[1, 2]], "missing column"),
        (["pressure_mev_fm3", "energy_density_mev_fm3"], [[1, 2], ["x", 3]], "line 3: non-numeric"),
        (["pressure_mev_fm3", "energy_density_mev_fm3"], [], "no data rows"),
        (["pressure_mev_fm3", "energy_density_mev_fm3"], [[1, 2, 3]], "line 2: 3 fields"),
    ],
)
def test_csv_errors(tmp_path, header, rows, message):
    path = write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(EOSValidationError, match=message):
        Tabulated.from_csv(path)


def test_csv_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        Tabulated.from_csv(tmp_path / "nope.csv")


def test_x64_is_required():
    from nseos import PrecisionError

    jax.config.update("jax_enable_x64", False)
    try:
        with pytest.raises(PrecisionError, match="jax_enable_x64"):
            SpeedOfSoundSegments()
    finally:
        jax.config.update("jax_enable_x64", True)

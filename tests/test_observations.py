"""Observation types, validation, files, catalogs, the Gaussian reduction and mock data."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import curve_jit, write_csv
from nseos import catalogs
from nseos.eos import SpeedOfSoundSegments
from nseos.observations import (
    GaussianReductionWarning,
    MassRadiusGaussian,
    MassRadiusSamples,
    ObservationError,
    ObservationSet,
    PulsarMass,
    TidalDeformability,
    UniformMass,
    buchdahl_radius_km,
    load,
    mock_observations,
)
from nseos.observations._files import CSV_COLUMNS
from nseos.tov import solve_at_mass

HEADER = list(CSV_COLUMNS)


# --- construction and validation -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"mass_sigma_msun": -0.1}, "mass_sigma_msun = -0.1 must be positive"),
        ({"radius_sigma_km": 0.0}, "radius_sigma_km = 0 must be positive"),
        ({"correlation": 1.0}, "correlation = 1 must lie strictly in"),
        ({"correlation": -1.5}, "correlation = -1.5 must lie strictly in"),
        ({"radius_km": 4.0}, "inside the Buchdahl limit"),
        ({"mass_msun": float("nan")}, "mass_msun is nan"),
    ],
)
def test_gaussian_rejects_bad_values(kwargs, message):
    values = {
        "mass_msun": 1.4,
        "mass_sigma_msun": 0.1,
        "radius_km": 12.0,
        "radius_sigma_km": 1.0,
        "correlation": 0.0,
    } | kwargs
    with pytest.raises(ObservationError, match=message) as err:
        MassRadiusGaussian("star", **values)
    assert "'star'" in str(err.value)


def test_a_noisy_mock_centroid_may_lie_inside_the_buchdahl_limit():
    """User input inside the limit is refused; a mock catalogue's noisy centroid is not
    (observed M = 2.87 +/- 0.3, R = 7.3 +/- 2 km happened in a calibration run)."""
    with pytest.raises(ObservationError, match="Buchdahl"):
        MassRadiusGaussian("star", 2.87, 0.3, 7.3, 2.0)
    star = MassRadiusGaussian("star", 2.87, 0.3, 7.3, 2.0, check_buchdahl=False)
    assert star.radius_km == 7.3
    with pytest.raises(ObservationError, match="must be positive"):
        MassRadiusGaussian("star", 2.87, -0.3, 7.3, 2.0, check_buchdahl=False)


def test_buchdahl_limit_value():
    # 9/4 * 1.4766250 km per M_sun: R_min(1.4 M_sun) = 4.651 km.
    assert buchdahl_radius_km(1.4) == pytest.approx(2.25 * 1.4766250 * 1.4, rel=1e-7)
    MassRadiusGaussian("just outside", 1.4, 0.1, 4.66, 0.5)


def test_samples_need_enough_finite_rows():
    rng = np.random.default_rng(0)
    m, r = rng.normal(1.4, 0.1, 99), rng.normal(12, 1, 99)
    with pytest.raises(ObservationError, match="99 samples; at least 100"):
        MassRadiusSamples("few", m, r)
    m, r = rng.normal(1.4, 0.1, 200), rng.normal(12, 1, 200)
    m[17] = np.nan
    with pytest.raises(ObservationError, match="non-finite value in sample 17"):
        MassRadiusSamples("nan", m, r)
    with pytest.raises(ObservationError, match="tidal deformabilities must be non-negative"):
        TidalDeformability("gw", r / 8, r / 9, -np.ones(200), np.ones(200))


def test_set_rejects_duplicate_names_and_indexes_by_name():
    a = PulsarMass("A", 2.0, 0.05)
    with pytest.raises(ObservationError, match="duplicate observation names: A"):
        ObservationSet([a, a])
    s = ObservationSet([a, MassRadiusGaussian("B", 1.4, 0.1, 12, 1)])
    assert s["B"].radius_km == 12 and s[0] is a and len(s) == 2
    assert "B" in repr(s) and "mass_radius" in s.table()
    with pytest.raises(KeyError, match="no observation named 'C'"):
        s["C"]


# --- files ---
def test_csv_round_trip(tmp_path):
    path = write_csv(
        tmp_path / "obs.csv",
        HEADER,
        [
            ["J0030", "mass_radius", 1.44, 0.15, 13.0, 1.2, 0.8],
            ["J0348", "mass", 2.01, 0.04, "", "", ""],
            ["X", "mass_radius", 1.2, 0.2, 10.0, 1.0, ""],
        ],
    )
    s = load(path)
    assert s.names == ("J0030", "J0348", "X")
    assert s["J0030"].correlation == 0.8 and s["X"].correlation == 0.0
    assert isinstance(s["J0348"], PulsarMass) and s["J0348"].plus_sigma_msun == 0.04


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        ([["a", "mass_radius", 1.4, -0.1, 12, 1, 0]], HEADER, r"row 2: mass_sigma_msun = -0.1"),
        ([["a", "mass_radius", 1.4, 0.1, 12, 0, 0]], HEADER, r"row 2: radius_sigma_km = 0 must"),
        ([["a", "mass_radius", 1.4, 0.1, 12, 1, 1.0]], HEADER, r"row 2: correlation = 1 must"),
        ([["a", "mass_radius", 1.4, 0.1, 3.0, 1, 0]], HEADER, r"row 2: .*Buchdahl"),
        ([["a", "mass_radius", "nan", 0.1, 12, 1, 0]], HEADER, r"row 2: mass_msun is 'nan'"),
        ([["a", "mass_radius", "x", 0.1, 12, 1, 0]], HEADER, r"row 2: mass_msun = 'x' is not"),
        ([["a", "radius", 1.4, 0.1, 12, 1, 0]], HEADER, r"row 2: unknown kind 'radius'"),
        ([["a", "mass", 1.4, 0.1, 12, "", ""]], HEADER, r"row 2: a 'mass' row has no radius"),
        ([["a", "mass", 1.4, 0.1, "", ""]], HEADER, r"row 2: 6 fields, expected 7"),
        (
            [["a", "mass", 1.4, 0.1, "", "", ""]],
            [*HEADER[:-1], "rho"],
            r"unknown column\(s\) rho; missing column\(s\) correlation",
        ),
        ([], HEADER, "header but no observations"),
    ],
)
def test_csv_bad_input_names_the_row(tmp_path, rows, header, message):
    path = write_csv(tmp_path / "bad.csv", header, rows)
    with pytest.raises(ObservationError, match=message):
        load(path)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ObservationError, match="the file is empty"):
        load(tmp_path / "empty.csv")
    with pytest.raises(FileNotFoundError, match="not found"):
        load(tmp_path / "nope.csv")


def _write_samples(path, header, rows):
    return write_csv(path, header, rows)


def test_toml_manifest_with_sample_files(tmp_path):
    rng = np.random.default_rng(1)
    _write_samples(
        tmp_path / "mr.csv",
        ["mass_msun", "radius_km"],
        np.stack([rng.normal(1.4, 0.1, 500), rng.normal(12, 1, 500)], 1),
    )
    m1 = rng.uniform(1.4, 1.6, 500)
    _write_samples(
        tmp_path / "gw.csv",
        ["m1_source_msun", "m2_source_msun", "lambda1", "lambda2"],
        np.stack([m1, m1 * 0.85, rng.uniform(0, 800, 500), rng.uniform(0, 1500, 500)], 1),
    )
    (tmp_path / "obs.toml").write_text(
        '[[observation]]\nname = "nicer"\nkind = "mass_radius_samples"\nfile = "mr.csv"\n'
        '[[observation]]\nname = "gw"\nkind = "tidal"\nfile = "gw.csv"\n'
        "analysis_lambda_max = 5000.0\n"
        '[[observation]]\nname = "psr"\nkind = "mass"\nmass_msun = 2.0\n'
        "minus_sigma_msun = 0.05\nplus_sigma_msun = 0.07\n"
        '[[observation]]\nname = "burst"\nkind = "mass_radius"\nmass_msun = 1.5\n'
        "mass_sigma_msun = 0.2\nradius_km = 11.0\nradius_sigma_km = 1.5\n"
    )
    s = load(tmp_path / "obs.toml")
    assert s.names == ("nicer", "gw", "psr", "burst")
    assert isinstance(s["nicer"], MassRadiusSamples)
    assert isinstance(s["gw"], TidalDeformability)
    assert s["psr"].plus_sigma_msun == 0.07


@pytest.mark.parametrize(
    ("body", "extra_file", "message"),
    [
        ('[[observation]]\nname = "a"\nkind = "blob"\n', None, "unknown kind 'blob'"),
        (
            '[[observation]]\nname = "a"\nkind = "mass_radius_samples"\nfile = "s.csv"\n',
            ("s.csv", ["mass_msun", "radius_km"], [[1.4, 12.0]] * 50),
            "50 samples; at least 100",
        ),
        (
            '[[observation]]\nname = "a"\nkind = "mass_radius_samples"\nfile = "s.csv"\n',
            ("s.csv", ["mass_msun", "r_km"], [[1.4, 12.0]] * 200),
            r"missing column\(s\) radius_km",
        ),
        (
            '[[observation]]\nname = "a"\nkind = "mass"\nmass_msun = "2"\nminus_sigma_msun = 0.1\n',
            None,
            "mass_msun = '2' is not a number",
        ),
        ("[[observation]\n", None, "not valid TOML"),
        ('title = "nothing"\n', None, "unknown top-level key 'title'"),
        ("", None, r"no \[\[observation\]\] tables"),
    ],
)
def test_toml_bad_input(tmp_path, body, extra_file, message):
    if extra_file is not None:
        _write_samples(tmp_path / extra_file[0], extra_file[1], extra_file[2])
    (tmp_path / "o.toml").write_text(body)
    with pytest.raises(ObservationError, match=message):
        load(tmp_path / "o.toml")


# --- catalogs ---
def test_every_catalog_loads_with_expected_content():
    xray = catalogs.xray_2016()
    assert len(xray) == 14 and xray["NGC 6397"].mass_msun == pytest.approx(0.7276)
    xs = catalogs.xray_2016(bursters_as_samples=True)
    assert sum(isinstance(o, MassRadiusSamples) for o in xs) == 6

    nicer = catalogs.nicer()
    assert nicer.names == ("J0030+0451", "J0740+6620", "J0437-4715", "J0614-3329")
    # Sample medians reproduce the published values (Choudhury et al. 2024: 11.36 km,
    # Salmi et al. 2024: 12.49 km; M = 1.418 and 2.073).
    j0437 = nicer["J0437-4715"].samples
    assert np.median(j0437["radius_km"]) == pytest.approx(11.36, abs=0.02)
    assert np.median(j0437["mass_msun"]) == pytest.approx(1.418, abs=0.002)
    assert np.median(nicer["J0740+6620"].samples["radius_km"]) == pytest.approx(12.49, abs=0.03)
    maryland = catalogs.nicer(j0030="maryland")["J0030+0451"].samples
    assert np.median(maryland["radius_km"]) == pytest.approx(13.02, abs=0.03)
    with pytest.raises(ValueError, match="amsterdam"):
        catalogs.nicer(j0030="both")

    psr = catalogs.pulsar_masses()
    assert psr.names == ("J0740+6620", "J0348+0432", "J1614-2230")
    assert psr["J1614-2230"].mass_msun == 1.937
    assert catalogs.pulsar_masses(j1614="nanograv11")["J1614-2230"].mass_msun == 1.908

    gw = catalogs.gw170817()["GW170817"]
    summary = gw.summary()
    assert summary["chirp_mass_msun"] == pytest.approx(1.1869, abs=5e-4)
    assert summary["lambda_tilde_median"] == pytest.approx(406, abs=10)
    assert len(catalogs.gw190425()) == 1

    modern = catalogs.modern()
    assert modern.names == (
        "J0030+0451",
        "J0740+6620",
        "J0437-4715",
        "J0614-3329",
        "J0348+0432",
        "J1614-2230",
        "GW170817",
    )


def test_dividing_the_gw_analysis_prior_favours_small_lambda_tilde():
    """The raw draws carry a prior rising linearly in Lambda-tilde; dividing it out moves the
    likelihood's weight to smaller Lambda-tilde (the LVK's 406 -> ~300 shift)."""
    raw = catalogs.gw170817(divide_analysis_prior=False)["GW170817"]
    divided = catalogs.gw170817()["GW170817"]
    mc, q = 1.1869, 0.87
    from nseos.observations import lambda_tilde

    m1 = mc * (1 + q) ** 0.2 * q**-0.6
    unit = float(lambda_tilde(m1, q * m1, 1.0, 1.0))
    lt = jnp.array([150.0, 300.0, 600.0])

    def ratio(obs):
        v = obs.log_likelihood(mc, q, lt / unit, lt / unit)
        return float(v[0] - v[2])

    assert ratio(divided) > ratio(raw) + 0.5


def test_gaussian_reduction_flags_skewed_posteriors():
    with pytest.warns(GaussianReductionWarning) as record:
        reduced = catalogs.modern().to_gaussian()
    messages = " ".join(str(w.message) for w in record)
    assert "dropped" in messages and "GW170817" in messages and "J1614-2230" in messages
    assert reduced.names == ("J0030+0451", "J0740+6620", "J0437-4715", "J0614-3329")
    j0740 = reduced["J0740+6620"]
    assert j0740.radius_km == pytest.approx(12.66, abs=0.01)  # the mean, above the median
    report = {r["name"]: r for r in catalogs.nicer().gaussian_reduction_report()}
    assert report["J0740+6620"]["radius_skewness"] > 0.3
    # A Gaussian set passes through unchanged and silently.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert catalogs.xray_2016().to_gaussian().names == catalogs.xray_2016().names


# --- mock data ---
@pytest.fixture(scope="module")
def sos_curve():
    return curve_jit(SpeedOfSoundSegments(jnp.array([0.25, 0.45, 0.5, 0.35, 0.3])))


def test_mock_data_lies_on_the_curve_within_the_noise(sos_curve):
    keys = jax.random.split(jax.random.key(42), 2000)
    mock = jax.jit(jax.vmap(lambda k: mock_observations(sos_curve, k)))(keys)
    assert mock.mass_msun.shape == (2000, 14) and bool(jnp.all(mock.valid))
    # True stars are on the EoS's stable branch: direct solves at the true masses agree.
    stars, valid = solve_at_mass(
        SpeedOfSoundSegments(jnp.array([0.25, 0.45, 0.5, 0.35, 0.3])), mock.true_mass_msun[0]
    )
    assert bool(jnp.all(valid))
    np.testing.assert_allclose(mock.true_radius_km[0], stars.radius_km, atol=2e-3)
    # True masses are uniform on [1, M_max]: mean and variance of U(a, b).
    m_max = float(sos_curve.max_mass_msun)
    true_m = np.asarray(mock.true_mass_msun).ravel()
    assert true_m.min() >= 1.0 and true_m.max() <= m_max
    n = true_m.size
    assert abs(true_m.mean() - (1 + m_max) / 2) < 4 * (m_max - 1) / np.sqrt(12 * n)
    # Normalised residuals are standard normal: chi^2 with 2 * 28000 degrees of freedom.
    zm = (mock.mass_msun - mock.true_mass_msun) / mock.mass_sigma_msun
    zr = (mock.radius_km - mock.true_radius_km) / mock.radius_sigma_km
    chi2 = float(jnp.sum(zm**2) + jnp.sum(zr**2))
    dof = 2 * n
    assert abs(chi2 - dof) < 5 * np.sqrt(2 * dof)
    assert abs(float(jnp.mean(zm))) < 5 / np.sqrt(n) and abs(float(jnp.mean(zr))) < 5 / np.sqrt(n)
    # Error bars span the X-ray catalogue's range.
    assert 0.094 <= float(mock.mass_sigma_msun.min()) and float(mock.mass_sigma_msun.max()) <= 0.369
    assert 0.557 <= float(mock.radius_sigma_km.min()) and float(mock.radius_sigma_km.max()) <= 2.345


def test_mock_data_is_reproducible_and_vectorises_over_eos(sos_curve):
    a = mock_observations(sos_curve, jax.random.key(3))
    b = mock_observations(sos_curve, jax.random.key(3))
    c = mock_observations(sos_curve, jax.random.key(4))
    np.testing.assert_array_equal(a.mass_msun, b.mass_msun)
    assert not np.allclose(a.mass_msun, c.mass_msun)
    cs2 = jnp.array([[0.25, 0.45, 0.5, 0.35, 0.3], [0.02, 0.02, 0.02, 0.02, 0.02]])
    curves = jax.vmap(lambda x: curve_jit(SpeedOfSoundSegments(x)))(cs2)
    keys = jax.random.split(jax.random.key(0), 2)
    mocks = jax.vmap(mock_observations)(curves, keys)
    # The very soft EoS cannot reach 1 M_sun... or barely: validity follows M_max.
    assert bool(mocks.valid[0])
    assert bool(mocks.valid[1]) == bool(curves.max_mass_msun[1] > 1.0)
    s = a.to_observation_set()
    assert len(s) == 14 and s[0].mass_msun == pytest.approx(float(a.mass_msun[0]))
    np.testing.assert_array_equal(a.features()[:, 0], a.mass_msun)
    np.testing.assert_array_equal(a.features()[:, 3], a.radius_sigma_km)
    heavy = mock_observations(sos_curve, jax.random.key(1), mass_distribution=UniformMass(1.8))
    assert float(heavy.true_mass_msun.min()) >= 1.8

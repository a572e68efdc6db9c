"""Coverage and SBC: the rank statistics on a conjugate model with a known posterior, the
recalibration fit, and tiny-budget smoke runs of both estimators (resumable)."""

import warnings

import jax
import numpy as np
import pytest

from nseos.calibration import (
    Universes,
    binomial_interval,
    calibrate_bayes,
    calibrate_replica,
    central_interval,
    coverage,
    coverage_table,
    ecdf_difference,
    fit_band_scale,
    ranks,
    write_calibration,
)
from nseos.observations import MassRadiusGaussian, ObservationSet
from nseos.posterior import ENERGY_DENSITY_GRID_MEV_FM3, MASS_GRID_MSUN
from nseos.replica import BandScale, stretch_band


def _conjugate(n_universes=400, n_draws=99, width_factor=1.0, seed=0):
    """theta ~ N(0, 1), y ~ N(theta, 0.5^2): the posterior is N(0.8 y, 0.2) exactly. Draws
    from it (width_factor = 1) or from a posterior with a wrong width."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=n_universes)
    y = theta + 0.5 * rng.normal(size=n_universes)
    mean, sd = 0.8 * y, np.sqrt(0.2)
    draws = mean[:, None] + width_factor * sd * rng.normal(size=(n_universes, n_draws))
    return draws, theta


def test_exact_posterior_passes_sbc_and_coverage():
    draws, theta = _conjugate()
    r = ranks(draws, theta)
    assert r.min() >= 0 and r.max() <= 99
    _z, d, env = ecdf_difference(r, 99)
    assert np.all(np.abs(d) <= env)
    for row in coverage(draws, theta, "theta"):
        assert row.consistent, row
        assert row.ci_lo <= row.nominal <= row.ci_hi


@pytest.mark.parametrize("factor", [0.5, 2.0])
def test_too_narrow_or_too_wide_posteriors_are_caught(factor):
    draws, theta = _conjugate(width_factor=factor)
    _z, d, env = ecdf_difference(ranks(draws, theta), 99)
    assert np.any(np.abs(d) > env)
    rows = coverage(draws, theta, "theta")
    assert not any(r.consistent for r in rows)
    assert all((r.empirical < r.nominal) == (factor < 1) for r in rows)


def test_binomial_interval_and_undefined_values():
    lo, hi = binomial_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025 ** (1 / 10), rel=1e-9)
    lo, hi = binomial_interval(68, 100)
    assert 0.57 < lo < 0.6 and 0.76 < hi < 0.78
    draws, theta = _conjugate(n_universes=50)
    theta[:5] = np.nan  # undefined truths (e.g. R(1.8) above M_max) are left out
    draws[5:10, 0] = np.nan  # undefined draws are dropped
    (row,) = coverage(draws, theta, "theta", levels=[0.68])
    assert row.n_universes == 45
    assert np.sum(ranks(draws, theta) < 0) == 10


def test_band_scale_recovers_the_missing_width():
    """Draws with a third of the true spread about the right centre: the fitted inner
    stretch is about 3, the outer one a little more (40 members' 2.5-97.5 % quantiles fall
    short of the 95 % width), and the stretched draws cover as nominal at both levels."""
    rng = np.random.default_rng(1)
    n, members = 2000, 40
    centre = rng.uniform(0.3, 0.7, size=(n, 2))
    truth = centre + 0.03 * rng.normal(size=(n, 2))
    draws = centre[:, None] + 0.01 * rng.normal(size=(n, members, 2))
    # A derived quantity on a grid of 3 points: twice the width at the first two, and an
    # undefined truth everywhere at the third (it takes its neighbour's factors).
    grid_truth = np.concatenate(
        [centre + 0.02 * rng.normal(size=(n, 2)), np.full((n, 1), np.nan)], 1
    )
    grid_draws = np.concatenate([draws, draws[..., :1]], -1)
    u = Universes({}, {}, truth, draws, {"radius_km": grid_truth}, {"radius_km": grid_draws})
    band = fit_band_scale(u)
    scale = band.cs2_array()
    assert scale.shape == (2, 2)
    assert np.all((scale[:, 0] > 2.9) & (scale[:, 0] < 3.4)), scale
    assert np.all((scale[:, 1] > 3.0) & (scale[:, 1] < 4.5)), scale
    grid_scale = band.derived_arrays()["radius_km"]
    assert grid_scale.shape == (3, 2)
    assert np.all((grid_scale[:2, 0] > 1.9) & (grid_scale[:2, 0] < 2.3)), grid_scale
    np.testing.assert_array_equal(grid_scale[2], grid_scale[1])
    stretched = np.stack([stretch_band(d, scale, -np.inf, np.inf) for d in draws])
    np.testing.assert_allclose(stretch_band(draws, scale, axis=1), stretched)
    for k in range(2):
        for row in coverage(stretched[..., k], truth[:, k], "x"):
            assert abs(row.empirical - row.nominal) < 0.03, row
    wide = stretch_band(grid_draws, grid_scale, axis=1)
    for k in range(2):
        for row in coverage(wide[..., k], grid_truth[:, k], "x"):
            assert abs(row.empirical - row.nominal) < 0.03, row


@pytest.fixture(scope="module")
def tiny_ensemble():
    jax.config.update("jax_enable_x64", True)
    from nseos.replica import ReplicaEstimator, TrainingConfig, TrainSettings

    est = ReplicaEstimator(
        training=TrainingConfig(n_eos=24, n_sets=4),
        settings=TrainSettings(epochs=2, batch_size=64),
        n_models=3,
    )
    return est.train(jax.random.key(0), progress=False)


def test_replica_calibration_smoke_and_resume(tiny_ensemble, tmp_path):
    variants, scale = calibrate_replica(
        tiny_ensemble,
        jax.random.key(2),
        n_universes=6,
        n_calibration=12,
        input_draws=2,
        out=tmp_path,
    )
    assert list(variants) == ["ensemble band", "+ input noise (2 draws)", "recalibrated"]
    assert variants["ensemble band"].draws["cs2_1"].shape == (6, 3)
    assert variants["+ input noise (2 draws)"].draws["radius_km_at_1p4"].shape == (6, 6)
    assert scale.cs2_array().shape == (5, 2) and np.all(scale.cs2_array() > 0)
    assert set(scale.derived_arrays()) == set(variants["ensemble band"].draws_derived)
    # The recalibrated band is the plain one stretched about its median: c_s^2 and, on their
    # own, the members' derived quantities (R on the mass grid).
    plain, recal = variants["ensemble band"], variants["recalibrated"]
    expected = [
        stretch_band(p, scale.cs2_array(), *tiny_ensemble.cs2_range) for p in plain.draws_params
    ]
    np.testing.assert_allclose(recal.draws_params, np.stack(expected), rtol=1e-5, atol=1e-6)
    r_scale = scale.derived_arrays()["radius_km"]
    expected = stretch_band(plain.draws_derived["radius_km"], r_scale, axis=1)
    np.testing.assert_allclose(recal.draws_derived["radius_km"], expected, rtol=1e-6)
    i14 = int(np.flatnonzero(np.isclose(MASS_GRID_MSUN, 1.4))[0])
    np.testing.assert_allclose(recal.draws["radius_km_at_1p4"], expected[..., i14], rtol=1e-6)
    _again, scale2 = calibrate_replica(
        tiny_ensemble,
        jax.random.key(2),
        n_universes=6,
        n_calibration=12,
        input_draws=2,
        out=tmp_path,
    )
    assert scale == scale2
    report = write_calibration(tmp_path, "smoke", variants)
    assert report.exists() and (tmp_path / "tables" / "coverage.csv").exists()
    assert (tmp_path / "figures" / "sbc_rank_ecdf.png").exists()
    assert (tmp_path / "figures" / "coverage_curve.pdf").exists()


@pytest.mark.slow
def test_bayes_sbc_smoke_resumes_from_the_stored_universes(tmp_path):
    jax.config.update("jax_enable_x64", True)
    from nseos.bayes import BayesianEstimator, NumPyroNUTS

    est = BayesianEstimator(sampler=NumPyroNUTS(15, 15, 2, progress=False))
    variants, _div = calibrate_bayes(
        est, jax.random.key(3), n_universes=3, n_draws=10, chunk_size=2, out=tmp_path
    )
    u = variants["posterior"]
    assert u.draws["cs2_3"].shape == (3, 10) and u.truth["max_mass_msun"].shape == (3,)
    assert np.all(u.truth["max_mass_msun"] > 1.05)
    stored = sorted((tmp_path / "universes" / "bayes").glob("universe-*.npz"))
    assert len(stored) == 3
    stored[1].unlink()  # an interrupted run: universe 1 is sampled again, the rest reused
    again, _div2 = calibrate_bayes(
        est, jax.random.key(3), n_universes=3, n_draws=10, chunk_size=2, out=tmp_path
    )
    # The stored universes are reused as they are; the lost one is sampled again (its chunk
    # differs, so its draws need not be bitwise equal on every platform).
    redo = again["posterior"].draws_params
    np.testing.assert_array_equal(redo[[0, 2]], u.draws_params[[0, 2]])
    assert redo.shape == u.draws_params.shape and np.all(np.isfinite(redo[1]))
    assert len(list((tmp_path / "universes" / "bayes").glob("universe-*.npz"))) == 3


def test_band_scale_is_an_option_that_saves_and_loads(tiny_ensemble, tmp_path):
    import dataclasses

    from nseos.replica import ReplicaEstimator

    pairs = ((2.0, 3.0), (1.0, 1.0), (1.0, 1.0), (1.0, 1.0), (3.0, 5.0))
    scaled = dataclasses.replace(tiny_ensemble, band_scale=pairs)
    x = np.array([[1.0 + 0.05 * i, 11.0 + 0.1 * i, 0.1, 0.5] for i in range(14)], np.float32)
    plain, wide = tiny_ensemble.predict(x), scaled.predict(x)
    np.testing.assert_allclose(wide, stretch_band(plain, np.array(pairs), *scaled.cs2_range))
    np.testing.assert_allclose(wide[:, 1:4], plain[:, 1:4])  # factor 1: unchanged
    again = ReplicaEstimator.load(scaled.save(tmp_path / "m"))
    assert again.band_scale == scaled.band_scale
    np.testing.assert_array_equal(again.predict(x), wide)
    # With derived factors, each derived quantity is the members' own, stretched on its own.
    obs = ObservationSet(
        [
            MassRadiusGaussian(f"s{i}", float(m), float(sm), float(r), float(sr))
            for i, (m, r, sm, sr) in enumerate(x)
        ]
    )
    raw = tiny_ensemble.fit(obs, key=jax.random.key(0))
    factors = {
        "radius_km": np.full((MASS_GRID_MSUN.size, 2), 2.0),
        "max_mass_msun": np.full(2, 0.5),
    }
    others = {
        k: np.ones(2)
        for k in (
            "radius_1p4_km",
            "lambda_1p4",
            "pressure_2rho0_mev_fm3",
            "pressure_3rho0_mev_fm3",
            "pressure_5rho0_mev_fm3",
        )
    }
    others["pressure_mev_fm3"] = np.ones((ENERGY_DENSITY_GRID_MEV_FM3.size, 2))
    full = BandScale.from_arrays(pairs, factors | others)
    fitted = ReplicaEstimator.load(
        dataclasses.replace(tiny_ensemble, band_scale=full).save(tmp_path / "full")
    )
    assert fitted.band_scale == full
    post = fitted.fit(obs, key=jax.random.key(0))
    for name, f in (("radius_km", 2.0), ("max_mass_msun", 0.5)):
        r0 = np.asarray(raw.datatree["posterior"][name].values)[0]
        r1 = np.asarray(post.datatree["posterior"][name].values)[0]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # R above every member's M_max
            med = np.nanmedian(r0, axis=0)
        np.testing.assert_allclose(r1 - med, f * (r0 - med), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(post.datatree["posterior"]["cs2"].values[0], wide, rtol=1e-6)
    with pytest.raises(ValueError, match="no factors for"):
        dataclasses.replace(tiny_ensemble, band_scale=BandScale.from_arrays(pairs, factors)).fit(
            obs, key=jax.random.key(0)
        )
    with pytest.raises(ValueError, match="band_scale needs 5 pairs"):
        dataclasses.replace(tiny_ensemble, band_scale=((1.0, 1.0),) * 4 + ((1.0, -1.0),))


def test_calibrate_command_writes_the_report_and_refuses_bad_input(tiny_ensemble, tmp_path):
    import json
    import subprocess
    import sys

    model = tiny_ensemble.save(tmp_path / "model")
    out = tmp_path / "cal"

    def run(*args):
        cmd = [sys.executable, "-m", "nseos.cli", "calibrate", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=600)

    small = ("--universes", "5", "--calibration-universes", "12", "--input-draws", "2")
    res = run("--method", "replica", "--model", str(model), *small, "--quiet", "--out", str(out))
    assert res.returncode == 0, res.stderr
    doc = json.loads((out / "calibration.json").read_text())
    assert doc["format"] == "nseos-calibration" and doc["method"] == "replica"
    assert len(doc["band_scale"]["cs2"]) == 5 and len(doc["coverage"]["recalibrated"]) == 22
    assert np.shape(doc["band_scale"]["derived"]["radius_km"]) == (MASS_GRID_MSUN.size, 2)
    assert (out / "report.html").exists() and (out / "tables" / "coverage.md").exists()
    # The universes fitted so far lived beside --out until the run completed.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal", "model"]
    again = run("--method", "replica", "--model", str(model), *small, "--out", str(out))
    assert again.returncode == 1 and "--overwrite" in again.stderr  # a previous run is kept
    bad = run("--method", "replica", "--model", str(tmp_path / "nope"), "--out", str(out) + "2")
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1, bad.stderr
    bad = run("--method", "bayes", "--prior", "flat", "--out", str(out) + "3")
    assert bad.returncode == 1 and "unknown prior" in bad.stderr


def test_misspecified_truths_and_their_coverage_run(tiny_ensemble, tmp_path):
    """Truths from outside the family: the Read et al. polytropes and the tables that reach
    2 M_sun and stay causal, each universe a catalogue of one of them (cycling); only the
    derived quantities are compared, against the truth's own values."""
    from nseos.calibration import Misspecified, misspecified_truths
    from nseos.calibration._universes import DERIVED_KEYS
    from nseos.eos import read2009_named
    from nseos.tov import mass_radius_curve

    kept, left_out = misspecified_truths()
    names = [t.name for t, _, _ in kept]
    assert {"SLy (PP)", "MS1 (PP)", "H4 (PP)", "MPA1 (table)", "SLy4 (table)"} <= set(names)
    assert "acausal" in left_out["MPA1 (PP)"]  # Read et al.'s fit exceeds c_s^2 = 1 by ~9 %
    assert left_out["PAL6 (PP)"].startswith("M_max = 1.4")  # too soft for 2 M_sun
    assert "acausal" in left_out["APR4 (PP)"] and "acausal" in left_out["WFF1 (table)"]
    for _t, derived, _c in kept:
        assert derived["max_mass_msun"] >= 2.0
    sly = kept[names.index("SLy (PP)")][1]
    assert abs(sly["max_mass_msun"] - 2.049) < 0.01  # Read et al. Table III: 2.049 M_sun
    curve = mass_radius_curve(read2009_named("SLy"))
    np.testing.assert_allclose(sly["radius_1p4_km"], curve.radius_at(1.4), rtol=1e-6)

    variants, _scale = calibrate_replica(
        tiny_ensemble,
        jax.random.key(4),
        n_universes=len(kept) + 2,
        n_calibration=12,
        input_draws=0,
        truths=Misspecified(),
        out=tmp_path,
    )
    u = variants["recalibrated"]
    assert u.quantities == DERIVED_KEYS  # no c_s^2: it has no true value here
    assert list(u.labels[: len(kept) + 2]) == names + names[:2]
    np.testing.assert_allclose(u.truth["max_mass_msun"][0], kept[0][1]["max_mass_msun"])
    assert np.all(np.isnan(u.truth_params))
    again = Universes.load(next((tmp_path / "universes").glob("misspecified-ensemble-*.npz")))
    assert list(again.labels) == list(variants["ensemble band"].labels)
    rows = coverage_table(variants).rows
    assert len(rows) == 2 * 6 * 2  # variants x derived quantities x levels


def test_stretched_quantiles_are_those_of_the_stretched_clipped_draws():
    """The fit's shortcut (quantiles from two order statistics) against stretching every
    draw, with NaN draws, clipping at the bounds, and NaN-aware quantiles against numpy."""
    from nseos.replica._band import nan_quantile, stretched_quantiles

    rng = np.random.default_rng(3)
    x = rng.uniform(0.0, 1.0, size=(300, 10))
    x[:5, :3] = np.nan
    x[5] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = np.nanquantile(x, [0.025, 0.16, 0.5, 0.84, 0.975], axis=1)
    got = nan_quantile(x, [0.025, 0.16, 0.5, 0.84, 0.975], axis=1)
    np.testing.assert_allclose(got, expected, equal_nan=True)
    for inner, outer in ((3.0, 9.0), (0.5, 2.0), (20.0, 60.0)):
        y = stretch_band(x, np.array([inner, outer]), 0.01, 0.99, axis=1)
        for level in (0.68, 0.95):
            lo, hi = central_interval(y, level)
            tail = 0.5 * (1.0 - level)
            lo2, hi2 = stretched_quantiles(x.T, (tail, 1.0 - tail), inner, outer, 0.01, 0.99)
            np.testing.assert_allclose(lo2, lo, atol=1e-12, equal_nan=True)
            np.testing.assert_allclose(hi2, hi, atol=1e-12, equal_nan=True)
    # The 68 % interval moves with the inner factor alone.
    a = stretched_quantiles(x.T, (0.16, 0.84), 4.0, 5.0)
    b = stretched_quantiles(x.T, (0.16, 0.84), 4.0, 50.0)
    np.testing.assert_allclose(a, b, equal_nan=True)

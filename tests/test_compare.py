"""Method comparison and summaries: metrics against known distributions, tables, figures."""

import json
import math

import numpy as np
import pytest

from nseos.compare import (
    Table,
    compare,
    kl_divergence,
    prior_dependence_table,
    wasserstein_distance,
    width_ratio_vs_density,
    widths_table,
    write_comparison,
)
from nseos.pipeline import summary_document
from nseos.posterior import (
    ENERGY_DENSITY_GRID_MEV_FM3,
    MASS_GRID_MSUN,
    RHO0_MEV_FM3,
    SUMMARY_QUANTITIES,
    EoSPosterior,
)

Z68 = 0.994457883  # standard-normal quantile of 0.84
Z95 = 1.959963985  # ... of 0.975


def synthetic_posterior(
    seed, *, radius_km=12.0, radius_sigma_km=0.3, p_scale=1.0, prior=True, method="bayes"
):
    """A posterior whose derived quantities are known distributions (2 chains x 4000):
    R(M) = radius_km + sigma * z for every M below M_max ~ N(2.2, 0.1); ln p(eps) normal
    around a polytrope-like curve with ln-width 0.2 * p_scale; Lambda log-normal."""
    rng = np.random.default_rng(seed)
    shape = (2, 4000)

    def draws(p_width):
        z = rng.standard_normal(shape)
        m_max = 2.2 + 0.1 * rng.standard_normal(shape)
        radius = radius_km + radius_sigma_km * z
        r_grid = np.where(
            MASS_GRID_MSUN <= m_max[..., None], radius[..., None] + 0 * MASS_GRID_MSUN, np.nan
        )
        eps = ENERGY_DENSITY_GRID_MEV_FM3 / RHO0_MEV_FM3
        lnp = np.log(20.0) + 2.0 * np.log(eps) + p_width * rng.standard_normal(shape)[..., None]
        derived = {
            "pressure_mev_fm3": np.exp(lnp),
            "radius_km": r_grid,
            "max_mass_msun": m_max,
            "radius_1p4_km": radius,
            "lambda_1p4": np.exp(6.0 + 0.2 * z),
            **{f"pressure_{k}rho0_mev_fm3": 20.0 * k**2 * np.exp(p_width * z) for k in (2, 3, 5)},
        }
        params = rng.uniform(0.01, 0.99, (*shape, 5))
        return params, derived

    params, derived = draws(0.2 * p_scale)
    prior_params, prior_derived = draws(1.0) if prior else (None, None)
    return EoSPosterior.from_draws(
        params,
        derived,
        prior_params=prior_params,
        prior_derived=prior_derived,
        attrs={"method": method, "prior": "test"},
    )


def test_summary_quantiles_match_the_known_distribution():
    post = synthetic_posterior(0, radius_km=12.0, radius_sigma_km=0.3)
    s = post.summary()
    assert set(s) == {q.key for q in SUMMARY_QUANTITIES}
    r = s["radius_km_at_1p4"]
    assert r["unit"] == "km"
    assert r["median"] == pytest.approx(12.0, abs=0.02)
    assert r["q84"] - r["q16"] == pytest.approx(2 * Z68 * 0.3, rel=0.05)
    assert r["q97.5"] - r["q2.5"] == pytest.approx(2 * Z95 * 0.3, rel=0.06)
    # R(2.0) exists only below M_max ~ N(2.2, 0.1): P(M_max >= 2.0) = Phi(2) = 0.977.
    assert s["radius_km_at_2p0"]["fraction_defined"] == pytest.approx(0.977, abs=0.01)
    assert s["pressure_mev_fm3_at_5rho0"]["median"] == pytest.approx(500.0, rel=0.02)


def test_summary_document_schema_round_trips_through_json(tmp_path):
    post = synthetic_posterior(1)
    doc = json.loads(json.dumps(summary_document(post)))
    assert doc["format"] == "nseos-summary" and doc["version"] == 1
    for key in (
        "radius_km_at_1p0",
        "radius_km_at_1p4",
        "radius_km_at_1p8",
        "radius_km_at_2p0",
        "max_mass_msun",
        "lambda_at_1p4",
        "pressure_mev_fm3_at_2rho0",
        "pressure_mev_fm3_at_3rho0",
        "pressure_mev_fm3_at_5rho0",
    ):
        entry = doc["quantities"][key]
        assert set(entry) == {"unit", "median", "q2.5", "q16", "q84", "q97.5", "fraction_defined"}
        assert entry["q2.5"] <= entry["q16"] <= entry["median"] <= entry["q84"] <= entry["q97.5"]
    assert doc["run"]["method"] == "bayes" and doc["run"]["chains"] == 2


def test_distances_against_normal_closed_forms():
    rng = np.random.default_rng(3)
    x = rng.standard_normal(4000)
    y = 0.5 + rng.standard_normal(4000)
    # W1 between N(0,1) and N(0.5,1) is the shift; KL is shift^2 / 2 = 0.125.
    assert wasserstein_distance(x, y) == pytest.approx(0.5, abs=0.06)
    assert kl_divergence(x, y) == pytest.approx(0.125, abs=0.06)
    assert kl_divergence(x, x[::-1]) == pytest.approx(0.0, abs=0.03)
    with_nan = np.concatenate([y, [np.nan] * 100])
    assert math.isfinite(wasserstein_distance(x, with_nan))


def test_widths_and_prior_dependence_tables():
    a = synthetic_posterior(4, radius_km=12.0, radius_sigma_km=0.3)
    b = synthetic_posterior(5, radius_km=12.15, radius_sigma_km=0.3)  # shifted by sigma / 2
    widths = widths_table({"a": a, "b": b})
    row = next(r for r in widths.rows if r[0].startswith("R(1.4"))
    assert row[2] == pytest.approx(2 * Z68 * 0.3, rel=0.06)  # a: 68 % width
    assert row[3] == pytest.approx(2 * Z95 * 0.3, rel=0.06)  # a: 95 % width
    dep = prior_dependence_table({"a": a, "b": b}, "a")
    row = next(r for r in dep.rows if r[0].startswith("R(1.4") and r[1] == "b")
    assert row[2] == pytest.approx(0.5, abs=0.08)  # median shift in reference sigma
    assert row[3] == pytest.approx(0.15, abs=0.04)  # W1 [km]
    # ln p: posterior width 0.2 against a prior width 1.0 on every density.
    ratio = width_ratio_vs_density(a)
    np.testing.assert_allclose(ratio, 0.2, rtol=0.08)
    assert "[km]" in widths.to_markdown() and "n/a" not in widths.to_markdown()


def test_compare_groups_runs_by_method_and_reports_agreement():
    runs = {
        "bayes u": synthetic_posterior(6),
        "bayes chieft": synthetic_posterior(7, p_scale=0.5),
        "replica": synthetic_posterior(8, method="replica", prior=False),
    }
    c = compare(runs)
    assert [t.title.split(": ")[-1].rstrip(")") for t in c.prior_dependence] == [
        "bayes u",
        "replica",
    ]
    assert len(c.agreement.rows) == 3 * len(SUMMARY_QUANTITIES)
    assert c.health.rows == ()  # no sampler statistics in these runs
    with pytest.raises(KeyError, match="unknown runs"):
        compare(runs, prior_groups=[["bayes u", "nope"]])
    with pytest.raises(ValueError, match="at least one"):
        compare({})


def test_table_markdown_csv_and_bad_rows():
    t = Table("T", ("quantity [unit]", "x [km]"), (("a", 1.23456), ("b", None)))
    assert "| a | 1.235 |" in t.to_markdown() and "| b | n/a |" in t.to_markdown()
    assert t.to_csv().splitlines()[1] == "a,1.23456"
    with pytest.raises(ValueError, match="wrong number of cells"):
        Table("T", ("a",), (("x", 1),)).to_markdown()


def test_write_comparison_report_with_every_figure(tmp_path):
    runs = {"bayes": synthetic_posterior(9), "replica": synthetic_posterior(10, method="replica")}
    md = write_comparison(compare(runs), runs, tmp_path)
    text = md.read_text()
    for stem in ("eos_band", "mass_radius_band", "width_vs_density", "prior_dependence"):
        assert (tmp_path / "figures" / f"{stem}.png").stat().st_size > 10_000
        assert (tmp_path / "figures" / f"{stem}.pdf").is_file()
        assert f"figures/{stem}.png" in text
    assert (tmp_path / "figures" / "corner_all.png").is_file()
    assert (tmp_path / "tables" / "widths.csv").read_text().startswith("quantity [unit]")
    assert "<img src='figures/eos_band.png'" in (tmp_path / "report.html").read_text()


def test_distances_with_few_defined_draws():
    """Fewer defined draws than ArviZ's subsample size (R(2.0) of a soft posterior)."""
    rng = np.random.default_rng(12)
    x = np.where(rng.uniform(size=3000) < 0.05, rng.standard_normal(3000), np.nan)
    y = rng.standard_normal(3000)
    assert 0.0 <= wasserstein_distance(x, y) < 0.5
    assert math.isfinite(kl_divergence(x, y))


@pytest.mark.slow
def test_demo_at_a_tiny_scale_reports_every_run_and_names_unconverged_ones(tmp_path):
    """The main job end to end (``nseos demo`` at a tiny scale): every posterior, the report
    with its sampler table, and the timings with each fit's compile time. 2 x (30 + 30)
    draws cannot converge, and the report must say so in words, not in a footnote."""
    import jax

    from nseos.pipeline import DemoScale, run_demo

    path = run_demo(
        tmp_path / "demo",
        key=jax.random.key(0),
        scale=DemoScale.tiny(),
        cache_dir=tmp_path / "cache",
        quiet=True,
    )
    text = path.read_text()
    for stem, runs in (("modern", 2), ("xray", 2)):
        for i in range(1, runs + 1):
            assert (tmp_path / "demo" / stem / f"run{i}" / "summary.json").is_file()
    assert "## Runs that did NOT converge" in text or "# Runs that did NOT converge" in text
    assert text.count("NOT CONVERGED: ") >= 3  # the three Bayesian runs, in the table
    assert "compiling the sampler" in text and "total:" in text

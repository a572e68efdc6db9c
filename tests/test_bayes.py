"""Bayesian estimator pieces: priors, samplers (NumPyro vs BlackJAX), EoSPosterior, checks."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pytest

from nseos.bayes import (
    BayesianEstimator,
    BlackJAXNUTS,
    ChiEFTBand,
    ChiEFTConstrained,
    LogUniformSoundSpeed,
    NumPyroNUTS,
    UniformSoundSpeed,
)
from nseos.bayes._estimator import _warn_if_unconverged
from nseos.eos import SpeedOfSoundSegments
from nseos.observations import MassRadiusGaussian, ObservationSet, PulsarMass
from nseos.posterior import (
    ENERGY_DENSITY_GRID_MEV_FM3,
    MASS_GRID_MSUN,
    ConvergenceWarning,
    EoSPosterior,
)

SLY4_LIKE = jnp.array([0.0603, 0.1308, 0.2629, 0.4497, 0.6796])
"""Secant c_s^2 of the SLy4 table across the five segments."""


# --- priors -------------------------------------------------------------------------------------
def test_uniform_and_log_uniform_priors():
    x = np.asarray(UniformSoundSpeed().sample(jax.random.key(0), 20000, 5))
    assert x.shape == (20000, 5) and x.min() >= 0.01 and x.max() <= 0.99
    assert abs(x.mean() - 0.5) < 0.01
    y = np.asarray(LogUniformSoundSpeed().sample(jax.random.key(1), 20000, 5))
    assert y.min() >= 0.01 and y.max() <= 0.99
    # Log-uniform on [0.01, 0.99]: the median is sqrt(0.01 * 0.99) = 0.0995.
    assert abs(np.median(y) - np.sqrt(0.0099)) < 0.005
    with pytest.raises(ValueError, match="delta"):
        UniformSoundSpeed(delta=0.6)


def test_chieft_band_accepts_sly4_and_penalises_stiff_low_density_matter():
    prior = ChiEFTConstrained()
    band = ChiEFTBand.koehn2025()
    assert float(band.max_energy_density_mev_fm3) == pytest.approx(307.9, abs=0.5)  # eps(2 n0)
    inside = float(prior.log_factor(SpeedOfSoundSegments(jnp.array([0.04, 0.06, 0.3, 0.5, 0.5]))))
    # The SLy4 secant member runs just above the band's upper edge between 1.5 and 1.9 rho0
    # (p = 15.6 against 14.8 MeV fm^-3 at eps = 287): mildly penalised.
    edge = float(prior.log_factor(SpeedOfSoundSegments(SLY4_LIKE)))
    stiff = float(prior.log_factor(SpeedOfSoundSegments(jnp.array([0.9, 0.9, 0.5, 0.5, 0.5]))))
    assert inside > -0.01
    assert -30.0 < edge < -1.0
    assert stiff < -100.0
    draws = prior.sample(jax.random.key(3), 200, 5, SpeedOfSoundSegments)
    # The band caps the first segment's stiffness: far below the base prior's mean of 0.5.
    assert float(jnp.mean(draws[:, 0])) < 0.3


@pytest.mark.parametrize(
    "prior", [UniformSoundSpeed(), LogUniformSoundSpeed()], ids=["uniform", "log-uniform"]
)
def test_priors_are_a_unit_normal_in_the_sampler_coordinates(prior):
    """Probit coordinates: the potential of the prior alone is |z|^2 / 2 + const, exactly, so
    a direction the data leave free is a unit Gaussian for NUTS (the logit would give a
    logistic with exponential tails); the map round-trips and lands inside the support."""
    from numpyro.distributions.transforms import biject_to
    from numpyro.infer.util import potential_energy

    def model():
        prior.sample_site(5)

    z = jax.random.normal(jax.random.key(0), (20, 5)) * 2.5
    energy = jax.vmap(lambda v: potential_energy(model, (), {}, {"cs2": v}))(z)
    np.testing.assert_allclose(
        energy - energy[0], 0.5 * jnp.sum(z**2 - z[:1] ** 2, axis=-1), rtol=1e-9, atol=1e-9
    )
    transform = biject_to(prior.base_distribution(5).support)
    x = transform(z)
    assert float(x.min()) >= 0.01 and float(x.max()) <= 0.99
    # Above z ~ 5, 1 - Phi(z) < 3e-7 is resolved to float64 rounding only: the round trip
    # holds to ~1e-8 there (measured: 2e-9 at z = 5; 1e-6 at z = 6.3, hence |z| <= 5 here).
    inner = jnp.abs(z) <= 5.0
    np.testing.assert_allclose(
        jnp.where(inner, transform.inv(x), 0.0), jnp.where(inner, z, 0.0), rtol=0, atol=1e-7
    )
    # The prior's CDF at x is Phi(z): a quantile check of the map against the distribution.
    if isinstance(prior, UniformSoundSpeed):
        expected = 0.01 + 0.98 * jax.scipy.stats.norm.cdf(z)
    else:
        expected = 0.01 * (0.99 / 0.01) ** jax.scipy.stats.norm.cdf(z)
    np.testing.assert_allclose(x, expected, rtol=1e-12)


def test_the_sampler_gradient_is_the_likelihood_gradient():
    """The potential's forward-mode gradient (what NUTS integrates with) equals reverse mode
    and central finite differences of the log-posterior on real data."""
    from numpyro.infer.util import constrain_fn, potential_energy

    from nseos import catalogs
    from nseos.bayes._samplers import _Potential

    est = BayesianEstimator()
    model = est.model(catalogs.modern())
    potential = _Potential(model)
    z = {"cs2": jnp.array([-0.3, 0.4, 0.2, -0.1, 0.5])}
    value, grad = jax.jit(jax.value_and_grad(potential.energy))(z)
    reference = jax.jit(jax.grad(lambda v: potential_energy(model, (), {}, v)))(z)
    np.testing.assert_allclose(grad["cs2"], reference["cs2"], rtol=1e-8, atol=1e-8)
    # Finite differences see the placed sequence move with the EoS, the gradient does not
    # (the placement is outside the gradient; docs/tov.md): they differ by the sequence's
    # interpolation error: measured at most 1.4e-3 in absolute terms here, against a largest
    # component of 39 (3.6e-5 of it), hence a bound of 1e-3 of the largest component.
    energy = jax.jit(potential.energy)
    step = 1e-5
    for i in range(5):
        e = jnp.zeros(5).at[i].set(step)
        fd = (energy({"cs2": z["cs2"] + e}) - energy({"cs2": z["cs2"] - e})) / (2 * step)
        bound = 1e-3 * float(jnp.max(jnp.abs(grad["cs2"])))
        assert abs(float(grad["cs2"][i]) - float(fd)) < bound, (i, grad["cs2"][i], fd)
    # NUTS's starting energy and gradient come from the point program (central differences
    # of step 1e-4, three chains, one of them the point above): same bound.
    rows = jnp.stack([z["cs2"], z["cs2"] + 0.3, z["cs2"] - 0.2])
    start_energy, start_gradient = potential.energy_and_difference_gradient({"cs2": rows})
    np.testing.assert_allclose(start_energy[0], value, rtol=1e-10)
    for c in range(3):
        exact = jax.grad(potential.energy)({"cs2": rows[c]})["cs2"]
        err = np.abs(np.asarray(start_gradient["cs2"][c]) - np.asarray(exact))
        assert np.all(err < 1e-3 * float(jnp.max(jnp.abs(exact)))), (c, err, exact)
    # The same program's sites: the constrained point and the likelihood's deterministics.
    energies, sites = potential.evaluate({"cs2": rows})
    np.testing.assert_allclose(energies, start_energy, rtol=1e-12)
    expected = constrain_fn(model, (), {}, {"cs2": rows[1]}, return_deterministic=True)
    for name in ("cs2", "log_likelihood_per_observation", "likelihood_status"):
        np.testing.assert_allclose(sites[name][1], expected[name], rtol=1e-10)
    assert np.isfinite(float(value))


# --- samplers ------------------------------------------------------------------------------------
def _beta_model():
    numpyro.sample(
        "cs2", dist.Beta(jnp.array([2.0, 5.0, 3.0]), jnp.array([5.0, 2.0, 3.0])).to_event(1)
    )


@pytest.mark.parametrize(
    "sampler",
    [
        NumPyroNUTS(warmup=300, draws=1000, chains=2, progress=False),
        BlackJAXNUTS(warmup=300, draws=1000, chains=2, progress=False),
    ],
    ids=["numpyro", "blackjax"],
)
def test_both_backends_recover_a_known_posterior(sampler):
    """Beta(a, b) marginals: mean a/(a+b); both backends agree with it (and so with each
    other) within 4 Monte Carlo standard errors."""
    result = sampler.run(_beta_model, jax.random.key(0))
    x = result.samples["cs2"]
    assert x.shape == (2, 1000, 3)
    assert result.stats["diverging"].shape == (2, 1000)
    a, b = np.array([2.0, 5.0, 3.0]), np.array([5.0, 2.0, 3.0])
    mean, var = a / (a + b), a * b / ((a + b) ** 2 * (a + b + 1))
    import arviz as az

    ess = az.ess(x.astype(float))  # (3,) bulk ESS over chains and draws
    mcse = np.sqrt(var / np.asarray(ess))
    assert np.all(np.abs(x.mean(axis=(0, 1)) - mean) < 4 * mcse), (x.mean(axis=(0, 1)), mean)
    assert int(result.stats["diverging"].sum()) == 0
    # Every gradient evaluation is counted: warm-up steps per chain, and at least one per
    # warm-up iteration.
    warm = result.stats["warmup_n_steps"]
    assert warm.shape == (2,) and np.all(warm >= 300), warm
    assert result.compile_s > 0


@pytest.mark.parametrize(
    "sampler",
    [
        NumPyroNUTS(warmup=5, draws=3, chains=3, progress=False),
        BlackJAXNUTS(warmup=5, draws=3, chains=3, progress=False),
    ],
    ids=["numpyro", "blackjax"],
)
def test_chains_start_where_they_are_told(sampler, monkeypatch):
    """init_params (unconstrained, one row per chain) reach every chain, padding included:
    the starting point each compiled chain receives is read back (NumPyro's kernel no longer
    evaluates the model there: its starting energy and gradient come with the point)."""
    from nseos.bayes import _samplers

    name = "numpyro_chain" if isinstance(sampler, NumPyroNUTS) else "blackjax_chain"
    original = getattr(_samplers, name)
    seen = []

    def recording(settings, kernel, key, start, tick=None):
        z = start[0] if isinstance(start, tuple) else start
        jax.debug.callback(lambda v: seen.append(np.asarray(v)), z["cs2"])
        return original(settings, kernel, key, start, tick)

    monkeypatch.setattr(_samplers, name, recording)

    def model():
        numpyro.sample("cs2", dist.Normal(0.0, 1.0).expand([2]).to_event(1))

    start = jnp.array([[5.0, -5.0], [6.0, -6.0], [7.0, -7.0]])
    sampler.run(model, jax.random.key(0), init_params={"cs2": start})
    firsts = np.array(seen)
    for row in np.asarray(start):
        assert np.any(np.all(np.isclose(firsts, row), axis=-1)), row


def test_numpyro_chains_trace_the_model_once(monkeypatch):
    """The chain program holds the potential once (the tree builder's gradient): the starting
    energy and gradient and the draws' sites come from the point program, itself compiled
    once for every call. The code before held three copies (the kernel's starting gradient,
    the tree builder, the sites), each a full likelihood to compile (counting traces, as
    blackjax and optax test that a log-density compiles once)."""
    from nseos.bayes import _samplers

    traces = []

    def model():
        traces.append(1)  # runs whenever JAX traces the model
        numpyro.sample("cs2", dist.Normal(0.0, 1.0).expand([2]).to_event(1))

    original, in_chains = _samplers.run_chains, []

    def counting(*args, **kwargs):
        before = len(traces)
        out = original(*args, **kwargs)
        in_chains.append(len(traces) - before)
        return out

    monkeypatch.setattr(_samplers, "run_chains", counting)
    start = {"cs2": jnp.zeros((2, 2))}
    NumPyroNUTS(warmup=5, draws=5, chains=2, progress=False).run(
        model, jax.random.key(0), init_params=start
    )
    assert in_chains == [1]
    assert len(traces) == 2  # and the point program, for the start and the draws


def test_starting_gradients_next_to_a_wall_and_beyond_it():
    """The starting gradient is a central difference, one-sided where one side is a masked
    likelihood (-inf), and a start where the potential is not finite is refused by name."""
    from nseos.bayes._samplers import DIFFERENCE_STEP, potential_of

    def model():
        x = numpyro.sample("cs2", dist.Normal(0.0, 1.0).expand([1]).to_event(1))
        numpyro.factor("wall", jnp.where(x[0] > 0.5, -jnp.inf, 0.0))

    potential = potential_of(model)
    inside = 0.5 - 0.5 * DIFFERENCE_STEP  # one step up crosses the wall
    energy, gradient = potential.energy_and_difference_gradient({"cs2": jnp.array([[inside]])})
    np.testing.assert_allclose(energy[0], 0.5 * inside**2 + 0.5 * np.log(2 * np.pi), rtol=1e-12)
    # Backward difference of x^2 / 2: x - step / 2, exact for a parabola.
    np.testing.assert_allclose(gradient["cs2"][0, 0], inside - 0.5 * DIFFERENCE_STEP, rtol=1e-8)
    with pytest.raises(ValueError, match=r"not finite at the starting point of chain\(s\) \[1\]"):
        potential.energy_and_difference_gradient({"cs2": jnp.array([[0.0], [1.0]])})


@pytest.mark.parametrize("chain_method", ["sequential", "vectorized"])
def test_progress_bar_counts_every_iteration_of_every_chain(monkeypatch, chain_method):
    """The bar is advanced from inside the compiled sampler, once per iteration of each
    chain (a batch of chains under vmap reports in one call)."""
    from nseos.bayes import _samplers

    seen = []
    monkeypatch.setattr(_samplers._Progress, "_tick", lambda self, n=1: seen.append(n))
    sampler = NumPyroNUTS(warmup=7, draws=5, chains=3, chain_method=chain_method)
    result = sampler.run(_beta_model, jax.random.key(0))
    assert result.samples["cs2"].shape == (3, 5, 3)
    assert sum(seen) == 3 * (7 + 5)
    seen.clear()
    BlackJAXNUTS(warmup=7, draws=5, chains=2).run(_beta_model, jax.random.key(0))
    assert sum(seen) == 2 * (7 + 5)


_DEVICE_COUNT_SCRIPT = """
import sys
import numpyro
numpyro.set_host_device_count(int(sys.argv[1]))
import jax
import numpy as np
import numpyro.distributions as dist
from nseos.bayes import NumPyroNUTS

def model():
    numpyro.sample("x", dist.Normal(0.0, 1.0).expand([2]).to_event(1))

r = NumPyroNUTS(warmup=20, draws=15, chains=3, progress=False).run(model, jax.random.key(3))
np.save(sys.argv[2], r.samples["x"])
"""


def test_draws_do_not_depend_on_the_device_count(tmp_path):
    """3 chains on 2 devices (one device gets a padding chain, dropped afterwards) give the
    same draws, chain for chain, as on 1 device: a mix-up of the padding or of the
    device-major reshape would reorder or replace chains."""
    import subprocess
    import sys

    draws = []
    for n_dev in (1, 2):
        out = tmp_path / f"x{n_dev}.npy"
        subprocess.run(
            [sys.executable, "-c", _DEVICE_COUNT_SCRIPT, str(n_dev), str(out)], check=True
        )
        draws.append(np.load(out))
    assert draws[0].shape == (3, 15, 2)
    assert len({tuple(c[0]) for c in draws[0]}) == 3  # the chains differ
    np.testing.assert_allclose(draws[1], draws[0], rtol=1e-10, atol=1e-12)


def test_chieft_chains_start_inside_the_band():
    """The chiEFT prior's steep walls collapsed NUTS's step size when chains started outside
    the band (init_to_uniform); starting points come from the prior with its factor."""
    from numpyro.distributions.transforms import biject_to

    est = BayesianEstimator(
        prior=ChiEFTConstrained(), sampler=NumPyroNUTS(chains=8, progress=False)
    )
    z = est.initial_points(jax.random.key(4))["cs2"]
    assert z.shape == (8, 5)
    x = biject_to(est.prior.base_distribution(5).support)(z)
    factors = np.array([float(est.prior.log_factor(est.make_eos(p))) for p in x])
    assert np.all(factors > -5.0), factors  # inside (or at the soft edge of) the band
    assert len({tuple(np.round(np.asarray(p), 6)) for p in x}) > 1  # chains differ


def test_sampler_settings_are_validated():
    with pytest.raises(ValueError, match="draws"):
        NumPyroNUTS(draws=0)
    with pytest.raises(ValueError, match="target_accept"):
        BlackJAXNUTS(target_accept=1.2)
    with pytest.raises(ValueError, match="chain_method"):
        NumPyroNUTS(chain_method="threads")


# --- EoSPosterior --------------------------------------------------------------------------------
def _synthetic_posterior(rng, chains=4, draws=500, shift=0.0):
    params = rng.uniform(0.1, 0.9, (chains, draws, 5))
    params[1] += shift
    derived = {
        "pressure_mev_fm3": rng.lognormal(
            3.0, 0.3, (chains, draws, ENERGY_DENSITY_GRID_MEV_FM3.size)
        ),
        "radius_km": rng.normal(12.0, 0.5, (chains, draws, MASS_GRID_MSUN.size)),
        "max_mass_msun": rng.normal(2.2, 0.1, (chains, draws)),
        "radius_1p4_km": rng.normal(12.0, 0.5, (chains, draws)),
        "lambda_1p4": rng.lognormal(6.0, 0.3, (chains, draws)),
        "pressure_2rho0_mev_fm3": rng.normal(15.0, 2.0, (chains, draws)),
        "pressure_3rho0_mev_fm3": rng.normal(50.0, 5.0, (chains, draws)),
    }
    derived["radius_km"][:, : draws // 4, -1] = np.nan  # above M_max for a quarter of draws
    stats = {
        "diverging": np.zeros((chains, draws), bool),
        "energy": rng.normal(size=(chains, draws)),
    }
    return EoSPosterior.from_draws(
        params,
        derived,
        sample_stats=stats,
        log_likelihood={"A": rng.normal(size=(chains, draws))},
        prior_params=rng.uniform(0.01, 0.99, (1, 100, 5)),
        observed_data={"observation_name": np.array(["A"])},
        attrs={"method": "synthetic"},
    )


def test_posterior_bands_round_trip_and_diagnostics(tmp_path):
    rng = np.random.default_rng(0)
    post = _synthetic_posterior(rng)
    assert set(post.datatree.children) == {
        "posterior",
        "sample_stats",
        "log_likelihood",
        "prior",
        "observed_data",
    }
    lo, hi = post.band("radius_1p4_km", 0.95)
    values = post.posterior["radius_1p4_km"].values.ravel()
    assert lo == pytest.approx(np.quantile(values, 0.025))
    assert hi == pytest.approx(np.quantile(values, 0.975))
    r_lo, r_hi = post.band("radius_km", 0.68)
    assert r_lo.shape == MASS_GRID_MSUN.shape and np.all(np.isfinite(r_hi))
    assert post.fraction_defined("radius_km")[-1] == pytest.approx(0.75)
    assert post.median("max_mass_msun") == pytest.approx(2.2, abs=0.02)
    rows = {r["parameter"]: r for r in post.diagnostics()}
    assert rows["cs2[0]"]["r_hat"] < 1.01 and rows["cs2[0]"]["ess_bulk"] > 1000
    assert rows["divergences"]["value"] == 0

    path = post.save(tmp_path / "posterior.nc")
    back = EoSPosterior.load(path)
    np.testing.assert_array_equal(back.posterior["cs2"].values, post.posterior["cs2"].values)
    assert back.datatree.attrs["method"] == "synthetic"
    assert list(back.datatree["observed_data"]["observation_name"].values) == ["A"]
    (tmp_path / "junk.nc").write_text("not netcdf")
    with pytest.raises(ValueError, match="not a netCDF-4 posterior"):
        EoSPosterior.load(tmp_path / "junk.nc")
    with pytest.raises(FileNotFoundError):
        EoSPosterior.load(tmp_path / "missing.nc")


def test_unconverged_chains_warn_with_numbers():
    rng = np.random.default_rng(1)
    bad = _synthetic_posterior(rng, shift=0.5)  # one chain offset: R-hat >> 1.01
    with pytest.warns(ConvergenceWarning, match=r"R-hat 1\.\d+ > 1.01.*Run longer"):
        _warn_if_unconverged(bad, {})
    good = _synthetic_posterior(rng)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _warn_if_unconverged(good, {})
    # The comparison's sampler table says the same in words.
    from nseos.compare import health_table

    table = health_table({"bad": bad, "good": good})
    verdicts = {row[0]: row[1] for row in table.rows}
    assert verdicts["good"] == "converged"
    assert verdicts["bad"].startswith("NOT CONVERGED: ") and "R-hat" in verdicts["bad"]


# --- the estimator --------------------------------------------------------------------------------
def test_estimator_rejects_empty_and_unreachable_data():
    est = BayesianEstimator(sampler=NumPyroNUTS(warmup=1, draws=1, chains=1, progress=False))
    with pytest.raises(ValueError, match="non-empty ObservationSet"):
        est.fit(ObservationSet([]), key=jax.random.key(0))
    impossible = ObservationSet(
        [PulsarMass("too heavy", 4.5, 0.01), MassRadiusGaussian("ok", 1.4, 0.1, 12.0, 0.5)]
    )
    with pytest.raises(ValueError, match="no draw reaches: too heavy"):
        est.fit(impossible, key=jax.random.key(0))


@pytest.mark.slow
def test_prior_predictive_shows_what_each_prior_says():
    """The uniform c_s^2 prior favours stiff matter (R(1.4) of 13-15 km, M_max > 2.4 M_sun for
    95 % of draws); the log-uniform prior is far softer and wider."""
    uniform = BayesianEstimator(n_stars=50).prior_predictive(64, key=jax.random.key(0))
    log_uniform = BayesianEstimator(n_stars=50, prior=LogUniformSoundSpeed()).prior_predictive(
        64, key=jax.random.key(0)
    )
    lo, hi = uniform.band("radius_1p4_km", 0.95)
    assert 12.0 < lo < 14.0 and 14.0 < hi < 16.0
    assert uniform.band("max_mass_msun", 0.95)[0] > 2.2
    l_lo, l_hi = log_uniform.band("radius_1p4_km", 0.95)
    assert l_lo < lo - 2.0 and l_hi - l_lo > 2 * (hi - lo)
    assert log_uniform.median("max_mass_msun") < uniform.median("max_mass_msun") - 0.3
    # Stars of 2 M_sun exist for every uniform draw but not for every log-uniform one.
    i_2 = int(np.argmin(np.abs(MASS_GRID_MSUN - 2.0)))
    assert uniform.fraction_defined()[i_2] == 1.0 > log_uniform.fraction_defined()[i_2]
    p_lo, p_hi = uniform.band("pressure_mev_fm3", 0.95)
    # At rho0 every member is SLy4 (zero width); above, the band opens.
    assert p_hi[0] == pytest.approx(p_lo[0]) and np.all(p_hi[1:] > p_lo[1:])
    assert np.all(np.diff(uniform.median("pressure_mev_fm3")) > 0)


@pytest.mark.slow
def test_mock_recovery_of_the_sly4_like_member():
    """Issue 4's acceptance: from 14 mock stars of the SLy4-like member (fixed seed), the
    95 % bands of R(M) at 1.0, 1.4, 1.8 M_sun and of p(eps) over 1-5 rho0 hold the truth.
    Short chains (2 x (300 + 300)) and the estimator's defaults."""
    from nseos.observations import mock_observations
    from nseos.posterior import RHO0_MEV_FM3
    from nseos.tov import mass_radius_curve

    truth = SpeedOfSoundSegments(SLY4_LIKE)
    curve = mass_radius_curve(truth)
    data = mock_observations(curve, jax.random.key(7)).to_observation_set()
    est = BayesianEstimator(
        sampler=NumPyroNUTS(warmup=300, draws=300, chains=2, progress=False), n_prior_draws=64
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # short chains: ESS < 400
        post = est.fit(data, key=jax.random.key(0))
    lo, hi = post.band("radius_km", 0.95)
    for m in (1.0, 1.4, 1.8):
        i = int(np.argmin(np.abs(MASS_GRID_MSUN - m)))
        r_true = float(curve.radius_at(m))
        assert lo[i] < r_true < hi[i], (m, lo[i], r_true, hi[i])
        assert hi[i] - lo[i] < 3.0  # informative, not the prior's spread
    p_lo, p_hi = post.band("pressure_mev_fm3", 0.95)
    eps = ENERGY_DENSITY_GRID_MEV_FM3
    inside = (eps >= RHO0_MEV_FM3 * (1 - 1e-9)) & (eps <= 5 * RHO0_MEV_FM3)
    p_true = np.asarray(truth.pressure_of_energy_density(jnp.asarray(eps)))
    assert np.all(
        (p_lo[inside] <= p_true[inside] * (1 + 1e-9))
        & (p_true[inside] <= p_hi[inside] * (1 + 1e-9))
    )
    diag = {row["parameter"]: row for row in post.diagnostics()}
    # A divergent transition is a rare event whose count at one seed depends on how XLA's
    # CPU code rounds: with the same code (2cf18d2), this seed gave 0 of 600 on the machine
    # of that CI run and 1 on this project's 2-core AMD EPYC machine (2026-12-07). A sampler
    # that diverges systematically gives many more; at most 1 % of the draws is allowed.
    assert diag["divergences"]["value"] <= 6

"""Likelihood blocks: brute-force integrals, convergence, KDE accuracy, gradients, failures."""

import functools
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conftest import curve_jit, star_vmap_jit
from nseos.eos import SpeedOfSoundSegments, reference_eos
from nseos.observations import (
    BranchQuadrature,
    FlatComponentTidalPrior,
    GaussianMass,
    Likelihood,
    LikelihoodStatus,
    MassRadiusGaussian,
    MassRadiusSamples,
    ObservationSet,
    PulsarMass,
    TidalDeformability,
    UniformMass,
    count_failures,
    fit_gridded_kde,
    lambda_tilde,
)
from nseos.tov import RK4, SolveStatus

J0030_LIKE = MassRadiusGaussian("J0030-like", 1.40, 0.12, 12.2, 0.9, 0.6)
NARROW = PulsarMass("J1614-like", 1.937, 0.014)


SOS = SpeedOfSoundSegments(jnp.array([0.25, 0.45, 0.5, 0.35, 0.3]))


@pytest.fixture(scope="module")
def sly4_curve(sly4_table):
    return curve_jit(sly4_table)


def _eos(name):
    from nseos.eos import sly4

    return sly4() if name == "SLy4" else SOS


@functools.cache
def _brute_force_branch(eos_name):
    """8001 stars solved directly (no sequence interpolation) along the stable branch;
    cached per EoS name, so the parametrised tests share one set of solves."""
    eos = _eos(eos_name)
    curve = curve_jit(eos)
    t = np.linspace(
        np.log(float(curve.central_pressure_mev_fm3[0])),
        np.log(float(curve.central_pressure_at_max_mass_mev_fm3)),
        8001,
    )
    stars = star_vmap_jit(eos, eos.enthalpy(jnp.exp(jnp.asarray(t))), RK4())
    assert np.all(np.asarray(stars.status) == SolveStatus.SUCCESS)
    return np.asarray(stars.mass_msun), np.asarray(stars.radius_km)


def _brute_force_marginal(obs, branch, prior_lo, prior_hi):
    """Trapezoid integral of p(m) L(m, R(m)) dm on 200 001 masses, R from the directly
    solved branch (uniform prior on [prior_lo, prior_hi])."""
    masses, radii = branch
    grid = np.linspace(prior_lo, prior_hi, 200001)
    r = np.interp(grid, masses, radii)
    like = np.exp(np.asarray(obs.log_likelihood(jnp.asarray(grid), jnp.asarray(r), None)))
    return np.log(np.trapezoid(like, grid) / (prior_hi - prior_lo))


@pytest.mark.parametrize("obs", [J0030_LIKE, NARROW], ids=["gaussian_mr", "narrow_pulsar"])
@pytest.mark.parametrize("eos_name", ["SLy4", "sound_speed"])
def test_marginal_matches_brute_force_integral(obs, eos_name):
    eos = _eos(eos_name)
    curve = curve_jit(eos)
    got = float(Likelihood(ObservationSet([obs])).from_curve(curve, eos).total)
    want = _brute_force_marginal(
        obs, _brute_force_branch(eos_name), 1.0, float(curve.max_mass_msun)
    )
    assert abs(got - want) < 1e-4, (got, want)


def test_marginal_converges_as_the_sequence_is_refined():
    branch = _brute_force_branch("sound_speed")
    like = Likelihood(ObservationSet([J0030_LIKE]))
    errors = []
    for n in (25, 100, 400):
        curve = curve_jit(SOS, n)
        want = _brute_force_marginal(J0030_LIKE, branch, 1.0, float(curve.max_mass_msun))
        errors.append(abs(float(like.from_curve(curve).total) - want))
    assert errors[2] < errors[1] < errors[0], errors
    assert errors[2] < 5e-6 and errors[0] / errors[2] > 30, errors


@pytest.mark.parametrize("obs", [NARROW, "J0437-4715"])
def test_quadrature_converges(obs, sly4_curve):
    if isinstance(obs, str):
        from nseos import catalogs

        obs = catalogs.nicer()[obs]

    def value(panels, order):
        # A Gaussian population prior: under a uniform one the pulsar integral is closed-form.
        like = Likelihood(
            ObservationSet([obs]),
            mass_prior=GaussianMass(1.5, 0.4, 1.0),
            quadrature=BranchQuadrature(panels, order),
        )
        return float(like.from_curve(sly4_curve).total)

    reference = value(128, 8)
    errors = [abs(value(p, k) - reference) for p, k in ((1, 1), (4, 2), (32, 4))]
    assert errors[2] < 1e-6, errors
    assert errors[2] < min(errors[:2]), errors


def test_pulsar_marginal_is_analytic(sly4_curve):
    """Uniform prior on [1, M_max]: L = [Phi((M_max-mu)/s) - Phi((1-mu)/s)] / (M_max - 1)."""
    from jax.scipy.special import ndtr

    obs = PulsarMass("p", 2.0, 0.03)
    m_max = float(sly4_curve.max_mass_msun)
    want = np.log(float(ndtr((m_max - 2.0) / 0.03) - ndtr((1.0 - 2.0) / 0.03)) / (m_max - 1.0))
    got = float(Likelihood(ObservationSet([obs])).from_curve(sly4_curve).total)
    assert abs(got - want) < 1e-8
    # The split normal's closed form on intervals below, across and above the mean.
    split = PulsarMass("split", 2.0, 0.03, 0.08)
    for lo, hi in ((1.0, 1.97), (1.0, 2.1), (2.05, 2.3), (1.5, 1.9)):
        grid = np.linspace(lo, hi, 400001)
        dens = np.exp(np.asarray(split.log_likelihood(jnp.asarray(grid))))
        want = np.log(np.trapezoid(dens, grid))
        got = float(split.log_mass_integral(lo, hi))
        assert abs(got - want) < 1e-6 * max(1.0, abs(want)), (lo, hi, got, want)
    assert float(split.log_mass_integral(2.1, 2.0)) == -np.inf


def test_latent_mass_form_integrates_to_the_marginal(sly4_curve):
    like = Likelihood(ObservationSet([J0030_LIKE]), mass_prior=GaussianMass(1.35, 0.1, 1.0))
    marginal = float(like.from_curve(sly4_curve).total)
    grid = np.linspace(1.0, float(sly4_curve.max_mass_msun) - 1e-9, 20001)
    cond = jax.vmap(lambda m: like.conditional(sly4_curve, m[None]).total)(jnp.asarray(grid))
    assert abs(np.log(np.trapezoid(np.exp(np.asarray(cond)), grid)) - marginal) < 1e-6
    off_branch = like.conditional(sly4_curve, jnp.array([2.3]))
    assert off_branch.total == -np.inf


# --- KDE ----------------------------------------------------------------------------------------
def _gaussian_logpdf(x, mean, cov):
    d = x - mean
    return -0.5 * np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d) - 0.5 * np.log(
        np.linalg.det(2 * np.pi * cov)
    )


def test_kde_of_gaussian_samples_matches_the_smoothed_gaussian():
    rng = np.random.default_rng(7)
    mean = np.array([1.4, 12.0])
    cov = np.array([[0.15**2, 0.8 * 0.15 * 1.1], [0.8 * 0.15 * 1.1, 1.1**2]])
    x = rng.multivariate_normal(mean, cov, 20000)
    obs = MassRadiusSamples("g", x[:, 0], x[:, 1])
    h = obs.kde.bandwidth
    chol = np.linalg.cholesky(cov)
    angle = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    for r in (0.0, 0.7, 1.4):
        q = mean + (chol @ np.stack([r * np.cos(angle), r * np.sin(angle)])).T
        got = np.asarray(obs.log_likelihood(jnp.asarray(q[:, 0]), jnp.asarray(q[:, 1])))
        biased = _gaussian_logpdf(q, mean, cov * (1 + h * h))
        # Statistical error of a KDE at density f: sd(ln f) ~ 1/sqrt(n h^2 4 pi f_whitened).
        assert np.max(np.abs(got - biased)) < 0.1, r
    peak = float(obs.log_likelihood(mean[0], mean[1]))
    assert abs(peak - _gaussian_logpdf(mean[None], mean, cov * (1 + h * h))[0]) < 0.05


def test_kde_weights_divide_out_a_prior():
    """Samples from N(0,1) x prior exp(x) (i.e. N(1,1)) reweighted by exp(-x) give N(0,1)."""
    rng = np.random.default_rng(3)
    x = rng.normal(1.0, 1.0, size=(40000, 1))
    kde = fit_gridded_kde(x, np.exp(-x[:, 0]))
    q = jnp.linspace(-1.0, 1.0, 5)[:, None]
    got = np.asarray(kde(q))
    want = -0.5 * np.asarray(q[:, 0]) ** 2 - 0.5 * np.log(2 * np.pi)
    assert np.max(np.abs(got - want)) < 0.08


def test_sampled_gaussian_likelihood_matches_analytic_marginal(sly4_curve):
    rng = np.random.default_rng(11)
    o = J0030_LIKE
    cov = np.array(
        [
            [o.mass_sigma_msun**2, 0.6 * o.mass_sigma_msun * o.radius_sigma_km],
            [0.6 * o.mass_sigma_msun * o.radius_sigma_km, o.radius_sigma_km**2],
        ]
    )
    x = rng.multivariate_normal([o.mass_msun, o.radius_km], cov, 20000)
    samples = MassRadiusSamples("s", x[:, 0], x[:, 1])
    h2 = samples.kde.bandwidth**2
    smoothed = MassRadiusGaussian(
        "b",
        o.mass_msun,
        o.mass_sigma_msun * np.sqrt(1 + h2),
        o.radius_km,
        o.radius_sigma_km * np.sqrt(1 + h2),
        0.6,
    )
    got = float(Likelihood(ObservationSet([samples])).from_curve(sly4_curve).total)
    want = float(Likelihood(ObservationSet([smoothed])).from_curve(sly4_curve).total)
    assert abs(got - want) < 0.03


# --- tidal deformability -------------------------------------------------------------------------
def test_flat_component_prior_is_the_lambda_tilde_marginal():
    """Monte Carlo: Lambda1, Lambda2 ~ U[0, 5000] at fixed masses; the histogram of
    Lambda-tilde must match the analytic trapezoid that the prior divides out."""
    rng = np.random.default_rng(5)
    n = 400000
    m1, m2 = np.full(n, 1.5), np.full(n, 1.2)
    l1, l2 = rng.uniform(0, 5000, n), rng.uniform(0, 5000, n)
    lt = lambda_tilde(m1, m2, l1, l2)
    hist, edges = np.histogram(lt, bins=40, range=(100, 4900), density=False)
    centres = 0.5 * (edges[1:] + edges[:-1])
    density = hist / (n * (edges[1] - edges[0]))
    prior = FlatComponentTidalPrior(5000.0)
    m_c, m_c2 = np.full(40, 1.5), np.full(40, 1.2)
    # Lambda1 = Lambda2 = L gives Lambda-tilde = L * lambda_tilde(m1, m2, 1, 1).
    equal = centres / lambda_tilde(m_c, m_c2, 1.0, 1.0)
    logp = prior.log_density(m1_msun=m_c, m2_msun=m_c2, lambda1=equal, lambda2=equal)
    jac = m_c**2 / ((m_c * m_c2) ** 0.6 / (m_c + m_c2) ** 0.2)
    analytic = np.exp(logp) / jac
    rel = np.abs(density - analytic) / analytic
    assert np.max(rel[2:-2]) < 0.06


@pytest.fixture(scope="module")
def synthetic_gw():
    """A synthetic event: Lambda-tilde ~ N(350, 60) for chirp mass 1.1975 and q in
    [0.75, 1], flat in (Lambda1 - Lambda2) direction (no analysis prior)."""
    rng = np.random.default_rng(9)
    n = 20000
    q = rng.uniform(0.75, 1.0, n)
    mc = rng.normal(1.1975, 0.0005, n)
    m1 = mc * (1 + q) ** 0.2 * q**-0.6
    m2 = q * m1
    lt_target = rng.normal(350.0, 60.0, n)
    # Lambda2 = 1.5 Lambda1 (a fixed direction), scaled to the target Lambda-tilde.
    unit = lambda_tilde(m1, m2, np.ones(n), 1.5 * np.ones(n))
    l1 = lt_target / unit
    return TidalDeformability("synthetic", m1, m2, l1, 1.5 * l1)


def test_tidal_likelihood_prefers_the_right_stiffness(synthetic_gw):
    """SLy4 (Lambda-tilde ~ 300 at this chirp mass) beats MS1 (~1300) by a large margin."""
    like = Likelihood(ObservationSet([synthetic_gw]))
    soft = float(like(reference_eos("SLy4")).total)
    stiff = float(like(reference_eos("MS1")).total)
    assert soft - stiff > 20


def test_gw170817_bundled_ranks_soft_above_stiff():
    from nseos import catalogs

    like = Likelihood(catalogs.gw170817())
    soft = float(like(reference_eos("SLy4")).total)
    stiff = float(like(reference_eos("MS1")).total)
    assert soft - stiff > 3


# --- gradients ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_gradient_matches_finite_differences(synthetic_gw):
    rng = np.random.default_rng(2)
    x = rng.multivariate_normal([1.5, 12.5], [[0.01, 0.05], [0.05, 0.8]], 5000)
    obs = ObservationSet(
        [J0030_LIKE, NARROW, MassRadiusSamples("s", x[:, 0], x[:, 1]), synthetic_gw]
    )
    like = Likelihood(obs)

    @eqx.filter_jit
    def total(cs2):
        return like(SpeedOfSoundSegments(cs2)).total

    cs2 = jnp.array([0.25, 0.45, 0.5, 0.35, 0.3])
    grad = np.asarray(jax.grad(total)(cs2))
    assert np.all(np.isfinite(grad))
    step = 1e-4
    for i in range(5):
        e = jnp.zeros(5).at[i].set(step)
        fd = (float(total(cs2 + e)) - float(total(cs2 - e))) / (2 * step)
        assert abs(grad[i] - fd) < 2e-3 * max(1.0, abs(fd)), (i, grad[i], fd)


# --- failures ----------------------------------------------------------------------------------
def test_unreachable_pulsar_is_small_but_finite_and_acausal_eos_is_counted(sly4_curve):
    """A radio mass above M_max has the exact (tiny) split-normal integral, not a -inf wall;
    `reached` says the branch misses it. An acausal EoS is masked and counted."""
    heavy = Likelihood(ObservationSet([PulsarMass("too heavy", 2.6, 0.03)]))
    res = heavy.from_curve(sly4_curve)
    m_max = float(sly4_curve.max_mass_msun)
    z_hi, z_lo = (m_max - 2.6) / 0.03, (1.0 - 2.6) / 0.03
    # Phi(z_hi) - Phi(z_lo) in the far left tail, from erfc (no cancellation at this size).
    want = np.log(0.5 * math.erfc(-z_hi / math.sqrt(2)) - 0.5 * math.erfc(-z_lo / math.sqrt(2)))
    want -= np.log(m_max - 1.0)
    assert res.status == LikelihoodStatus.OK and not bool(res.reached[0])
    assert float(res.total) == pytest.approx(want, rel=1e-9) and float(res.total) < -150
    grad = jax.grad(lambda c: heavy.from_curve(c).total, allow_int=True)(sly4_curve)
    assert np.isfinite(float(grad.max_mass_msun)) and float(grad.max_mass_msun) > 100

    with pytest.warns(UserWarning, match="acausal"):
        ap4 = reference_eos("APR4", allow_acausal=True)
    res_ap4 = Likelihood(ObservationSet([J0030_LIKE]))(ap4)
    assert res_ap4.total == -np.inf
    assert res_ap4.status == LikelihoodStatus.ACAUSAL

    # MPA1 reaches c_s^2 = 1.0057 within its table's rounding: accepted, like Tabulated does.
    assert Likelihood(ObservationSet([J0030_LIKE]))(reference_eos("MPA1")).status == 0

    ok = Likelihood(ObservationSet([J0030_LIKE])).from_curve(sly4_curve)
    assert np.isfinite(ok.total) and ok.status == LikelihoodStatus.OK and bool(ok.reached[0])
    counts = count_failures(jnp.stack([res.status, res_ap4.status, ok.status, res_ap4.status]))
    assert counts == {"ACAUSAL": 2}


def test_batch_of_eos_counts_failures_without_nan():
    """A soft EoS whose M_max is below the mass prior's 1 M_sun has no population at all
    (NO_SUPPORT, -inf); a stiff one is fine; nothing is NaN."""
    like = Likelihood(ObservationSet([J0030_LIKE, PulsarMass("heavy", 2.2, 0.02)]))
    cs2 = jnp.array([[0.02, 0.02, 0.02, 0.02, 0.02], [0.3, 0.6, 0.6, 0.5, 0.4]])
    res = eqx.filter_jit(jax.vmap(lambda c: like(SpeedOfSoundSegments(c))))(cs2)
    assert float(res.max_mass_msun[0]) < 1.0
    assert res.status[0] == LikelihoodStatus.NO_SUPPORT and res.total[0] == -np.inf
    assert res.status[1] == LikelihoodStatus.OK and np.isfinite(res.total[1])
    assert np.all(np.asarray(res.reached[1]))
    assert not np.any(np.isnan(np.asarray(res.total)))


def test_range_top_ends_the_branch_without_a_wall():
    """A family cut off below its maximum mass (here at eps_c = 3-8 rho0; in practice a soft
    top segment, whose mass still rises at 15 rho0): the strict likelihood masks it, with
    end_at_range_top it is finite and continuous as the maximum enters the range."""
    obs = ObservationSet([J0030_LIKE, PulsarMass("J0740-like", 2.0, 0.07)])
    strict, lenient = Likelihood(obs), Likelihood(obs, end_at_range_top=True)

    def at(like, top):
        return like(SpeedOfSoundSegments(jnp.full(5, 0.5), max_central_energy_density_rho0=top))

    cut = at(strict, 3.0)
    assert cut.status == LikelihoodStatus.MAX_MASS_NOT_REACHED and cut.total == -np.inf
    tops = np.linspace(3.0, 8.0, 21)
    results = [at(lenient, t) for t in tops]
    scan = np.array([float(r.total) for r in results])
    m_max = np.array([float(r.max_mass_msun) for r in results])
    assert np.all(np.isfinite(scan)) and np.all(np.diff(m_max) > -1e-3), m_max
    assert np.max(np.abs(np.diff(scan))) < 0.2, scan
    assert float(at(strict, 8.0).total) == pytest.approx(scan[-1], abs=1e-9)


def test_batched_observations_equal_one_at_a_time(sly4_curve):
    """Star observations of one kind are integrated as one vmapped block (KDE grids of
    different sizes padded); the values are those of each observation alone."""
    from nseos import catalogs

    stars = [*catalogs.nicer(), J0030_LIKE, MassRadiusGaussian("other", 1.8, 0.2, 11.5, 1.0)]
    batched = Likelihood(ObservationSet(stars)).from_curve(sly4_curve)
    alone = [float(Likelihood(ObservationSet([o])).from_curve(sly4_curve).total) for o in stars]
    np.testing.assert_allclose(np.asarray(batched.per_observation), alone, rtol=1e-12)
    kde = catalogs.nicer()[0].kde
    x = jnp.array([[1.4, 12.0], [2.5, 9.0], [0.5, 20.0]])
    big = tuple(n + 7 for n in kde.log_density.shape)
    np.testing.assert_allclose(np.asarray(kde.padded(big)(x)), np.asarray(kde(x)), rtol=1e-12)


def test_placed_sequence_matches_the_full_one():
    """32 stars placed from 0.9 M_sun to just past M_max reproduce a 400-star sequence."""
    from nseos.tov import mass_radius_curve, placed_mass_radius_curve

    for cs2 in (
        [0.25, 0.45, 0.5, 0.35, 0.3],
        [0.05, 0.1, 0.6, 0.2, 0.02],
        [0.6, 0.1, 0.9, 0.4, 0.1],
    ):
        eos = SpeedOfSoundSegments(jnp.array(cs2))
        full = mass_radius_curve(eos, 400)
        placed = eqx.filter_jit(placed_mass_radius_curve)(eos, 32)
        assert abs(float(placed.max_mass_msun - full.max_mass_msun)) < 1e-3
        assert float(placed.min_mass_msun) < 0.95
        m = jnp.array([1.0, 1.4, float(full.max_mass_msun) - 0.05])
        r_full, lam_full = full.radius_and_lambda_at(m)
        r, lam = placed.radius_and_lambda_at(m)
        np.testing.assert_allclose(np.asarray(r), np.asarray(r_full), atol=2e-3)
        np.testing.assert_allclose(np.asarray(lam), np.asarray(lam_full), rtol=5e-3)


def test_fast_settings_track_the_accurate_likelihood_and_its_gradient():
    """The Bayesian estimator's likelihood (32 placed stars, RK4.scaled(3), batched
    observations) against 400 stars at the default RK4, on catalogs.modern()."""
    from nseos import catalogs

    obs = catalogs.modern()
    fast = Likelihood(
        obs, n_stars=32, method=RK4.scaled(3), placed_stars=True, end_at_range_top=True
    )
    accurate = Likelihood(obs, n_stars=400, end_at_range_top=True)
    cs2 = jnp.array([0.041, 0.057, 0.425, 0.615, 0.186])

    def total(like):
        return jax.value_and_grad(lambda c: like(SpeedOfSoundSegments(c)).total)

    (v_fast, g_fast), (v_acc, g_acc) = jax.jit(total(fast))(cs2), jax.jit(total(accurate))(cs2)
    assert abs(float(v_fast - v_acc)) < 5e-3
    np.testing.assert_allclose(np.asarray(g_fast), np.asarray(g_acc), rtol=0.02, atol=0.05)


def test_mass_prior_is_swappable(sly4_curve):
    wide = Likelihood(ObservationSet([J0030_LIKE]), mass_prior=UniformMass(0.5))
    narrow = Likelihood(ObservationSet([J0030_LIKE]), mass_prior=UniformMass(1.0, 1.8))
    a, b = float(wide.from_curve(sly4_curve).total), float(narrow.from_curve(sly4_curve).total)
    assert np.isfinite(a) and np.isfinite(b) and abs(a - b) > 0.1

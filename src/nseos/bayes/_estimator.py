"""The Bayesian estimator: NUTS over the EoS parameters with the masses marginalised."""

from __future__ import annotations

import time
import warnings

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro

from ..eos import SpeedOfSoundSegments
from ..estimator import AbstractEstimator
from ..observations import (
    AbstractBinaryObservation,
    AbstractMassPrior,
    BinaryQuadrature,
    BranchQuadrature,
    Likelihood,
    LikelihoodStatus,
    ObservationSet,
    UniformMass,
    component_masses,
    count_failures,
)
from ..posterior import ConvergenceWarning, EoSPosterior, derived_quantities
from ..tov import RK4
from ._priors import PARAMETER_SITE, AbstractEoSPrior, UniformSoundSpeed
from ._samplers import AbstractSampler, NumPyroNUTS, potential_of

_INIT_POOL = 512
"""Prior draws from which the chains' starting points are picked."""
_REACHABILITY_DRAWS = 64
"""At least this many prior draws are solved before sampling, to check that the data are
within the prior's reach at all."""


class BayesianEstimator(AbstractEstimator):
    """Full posterior sampling of the EoS parameters with NUTS.

    The likelihood is :class:`nseos.observations.Likelihood` (each star's mass marginalised
    along the stable branch under ``mass_prior``); gradients flow through the TOV solver.

    Parameters
    ----------
    eos_family : SpeedOfSoundSegments
        The family; its ``cs2`` are the sampled parameters (its value here is ignored).
    prior : AbstractEoSPrior
        Prior on c_s^2; :class:`UniformSoundSpeed` (U[0.01, 0.99]) by default.
    mass_prior : AbstractMassPrior
        Population prior of each star's mass; uniform on [1 M_sun, M_max] by default.
    sampler : AbstractSampler
        :class:`NumPyroNUTS` (default) or :class:`BlackJAXNUTS`.
    n_stars : int
        Stars per M-R sequence inside the likelihood, placed from just below the mass
        prior's lowest mass to just beyond M_max (``Likelihood(placed_stars=True)``).
    method : RK4
        TOV solver settings inside the likelihood.
    quadrature : BranchQuadrature
        Quadrature of each star's mass along the branch inside the likelihood: 16 panels
        (the likelihood's own default has 32). Over 40 posterior draws of
        ``catalogs.modern()`` both agree with 400 stars at ``RK4.scaled(20)`` and 64 panels to
        4.0e-3 in ln L (the error is the sequence's, not the quadrature's). Half the nodes;
        the gradient's time changed by less than the machine's noise (docs/bayes.md).

    The likelihood's defaults (32 placed stars, ``RK4.scaled(3)``) trade accuracy for speed
    where the data cannot tell: over prior draws and the posterior of
    ``catalogs.modern()`` they agree with 400 stars at ``RK4.scaled(20)`` to 4e-3 in ln L
    (5e-4 in the posterior region; docs/bayes.md). The derived quantities of the draws
    (R(M), Lambda, M_max) are recomputed with the full-accuracy defaults (100 stars,
    ``RK4()``). Binaries are integrated over q with their chirp-mass marginal
    (``BinaryQuadrature(marginal_chirp_mass=True)``). The sequence ends at the top of the
    family's density range when the mass still rises there
    (``Likelihood(end_at_range_top=True)``): a soft top segment must not put a -inf wall
    inside the prior.
    n_prior_draws : int
        Prior draws stored with the posterior (for prior-vs-posterior comparisons).
    """

    eos_family: SpeedOfSoundSegments = eqx.field(default_factory=SpeedOfSoundSegments)
    prior: AbstractEoSPrior = UniformSoundSpeed()
    mass_prior: AbstractMassPrior = UniformMass()
    sampler: AbstractSampler = NumPyroNUTS()
    n_stars: int = eqx.field(static=True, default=32)
    method: RK4 = eqx.field(default_factory=lambda: RK4.scaled(3))
    quadrature: BranchQuadrature = BranchQuadrature(panels=16)
    n_prior_draws: int = eqx.field(static=True, default=500)

    def __check_init__(self):
        if int(self.n_prior_draws) < 0:  # a negative count would slice off the last draws
            raise ValueError(f"n_prior_draws must be >= 0, got {self.n_prior_draws}")
        if int(self.n_stars) < 8:
            raise ValueError(f"n_stars must be at least 8, got {self.n_stars}")

    @property
    def n_params(self) -> int:
        return self.eos_family.cs2.shape[0]

    def make_eos(self, params) -> SpeedOfSoundSegments:
        """The family member with the given c_s^2."""
        return eqx.tree_at(lambda e: e.cs2, self.eos_family, jnp.asarray(params))

    def likelihood(self, observations: ObservationSet) -> Likelihood:
        return Likelihood(
            observations,
            mass_prior=self.mass_prior,
            quadrature=self.quadrature,
            n_stars=self.n_stars,
            method=self.method,
            binary_quadrature=BinaryQuadrature(marginal_chirp_mass=True),
            placed_stars=True,
            end_at_range_top=True,
        )

    def model(self, observations: ObservationSet):
        """The NumPyro model: prior sites, the EoS factor, and the likelihood factor."""
        return self.model_of(self.likelihood(observations))

    def model_of(self, like: Likelihood):
        """The NumPyro model of a given likelihood (:meth:`model` builds it from data)."""

        def model():
            params = self.prior.sample_site(self.n_params)
            result, log_factor = _evaluate(self, like, params)
            numpyro.deterministic("log_likelihood_per_observation", result.per_observation)
            numpyro.deterministic("likelihood_status", result.status)
            numpyro.factor("eos_prior_factor", log_factor)
            numpyro.factor("log_likelihood", result.total)

        return model

    def prior_predictive(self, n: int, *, key: jax.Array, progress: bool = False) -> EoSPosterior:
        """``n`` draws from the prior alone, with their EoS and M-R derived quantities (one
        chain): what the prior says before any data."""
        params = np.asarray(self.prior.sample(key, n, self.n_params, self.make_eos))
        derived = derived_quantities(self.make_eos, params[None], progress=progress)
        return EoSPosterior.from_draws(
            params[None], derived, attrs={"method": "prior", "prior": self.prior.name}
        )

    def initial_points(self, key: jax.Array, model=None) -> dict[str, jax.Array]:
        """One starting point per chain, in NumPyro's unconstrained space.

        A pool of prior draws *with* the prior's EoS factor (so a chiral-EFT-constrained
        chain starts inside the band, not on a steep wall). Given the ``model`` (from
        :meth:`model_of`), the chains' points are drawn from the pool without replacement
        with probability proportional to the likelihood (sampling-importance-resampling, by
        Gumbel top-k): approximate posterior draws, so no chain spends its warm-up climbing
        out of a region the data exclude, such as the cliff where M_max falls below a heavy
        pulsar, where the step size would adapt to the cliff's curvature. The pool is
        evaluated by the model's point program, the one the sampler uses for its starting
        gradients and its draws (one compilation for all three). Without a model, distinct
        pool members are picked at random.
        """
        from numpyro.distributions.transforms import biject_to

        chains = self.sampler.chains
        k_pool, k_pick = jax.random.split(key)
        # A large pool: importance resampling by the factor needs many base draws to find
        # several distinct ones inside a narrow band; each chain gets a different one.
        pool = np.asarray(
            self.prior.sample(k_pool, max(64 * chains, _INIT_POOL), self.n_params, self.make_eos)
        )
        distinct = np.unique(pool, axis=0)
        to_constrained = biject_to(self.prior.base_distribution(self.n_params).support)
        points = np.asarray(to_constrained.inv(jnp.asarray(distinct)))
        score = np.asarray(jax.random.gumbel(k_pick, (distinct.shape[0],)))
        if model is not None:
            _, sites = potential_of(model).evaluate({PARAMETER_SITE: points})
            ok = sites["likelihood_status"] == LikelihoodStatus.OK
            log_l = np.where(ok, sites["log_likelihood_per_observation"].sum(axis=-1), -np.inf)
            if np.any(np.isfinite(log_l)):
                score = np.where(np.isfinite(log_l), log_l + score, -np.inf)
        order = np.argsort(-score, kind="stable")
        return {PARAMETER_SITE: jnp.asarray(points[order[np.arange(chains) % points.shape[0]]])}

    @staticmethod
    def _check_reachable(observations: ObservationSet, max_mass_msun: np.ndarray) -> None:
        """Refuse data that no prior draw can reach: an observation whose lowest supported
        mass (for a binary: the heavier star's, at q = 1) lies above every draw's M_max."""
        reach = float(np.nanmax(max_mass_msun)) if np.any(np.isfinite(max_mass_msun)) else 0.0
        never = []
        for obs in observations:
            if isinstance(obs, AbstractBinaryObservation):
                lowest = float(component_masses(obs.chirp_mass_support_msun()[0], 1.0)[0])
            else:
                lowest = float(obs.mass_support_msun()[0])
            if lowest > reach:
                never.append(f"{obs.name} (needs M >= {lowest:.3f} M_sun)")
        if never:
            raise ValueError(
                f"the prior cannot reach the data: the heaviest of {max_mass_msun.size} prior "
                f"draws has M_max = {reach:.3f} M_sun; observations that no draw reaches: "
                f"{', '.join(never)}. Check the data (units: M_sun, km) or widen the prior."
            )

    def fit(self, observations: ObservationSet, *, key: jax.Array) -> EoSPosterior:
        """Sample the posterior; warn (:class:`ConvergenceWarning`) if it did not converge."""
        self.check_observations(observations)
        k_run, k_prior = jax.random.split(key)
        k_init = jax.random.fold_in(k_prior, 1)
        # The prior's own draws come first: they are stored with the posterior, and their M_max
        # shows whether the data are within the prior's reach at all.
        n_prior = max(self.n_prior_draws, _REACHABILITY_DRAWS)
        prior_params = np.asarray(self.prior.sample(k_prior, n_prior, self.n_params, self.make_eos))
        prior_derived = derived_quantities(self.make_eos, prior_params[None])
        self._check_reachable(observations, prior_derived["max_mass_msun"])
        prior_params = prior_params[None, : self.n_prior_draws]
        prior_derived = {k: v[:, : self.n_prior_draws] for k, v in prior_derived.items()}
        started = time.perf_counter()
        model = self.model(observations)
        result = self.sampler.run(model, k_run, init_params=self.initial_points(k_init, model))
        sampling_s = time.perf_counter() - started
        params = result.samples[PARAMETER_SITE]
        progress = getattr(self.sampler, "progress", False)
        derived = derived_quantities(self.make_eos, params, progress=progress)
        per_obs = result.samples["log_likelihood_per_observation"]
        status = result.samples["likelihood_status"]
        failures = count_failures(status)
        stats = dict(result.stats)
        gradients = int(np.sum(stats.pop("warmup_n_steps")) + np.sum(stats["n_steps"]))
        posterior = EoSPosterior.from_draws(
            params,
            derived,
            sample_stats={**stats, "likelihood_status": status},
            log_likelihood={name: per_obs[..., i] for i, name in enumerate(observations.names)},
            prior_params=prior_params,
            prior_derived=prior_derived,
            observed_data={
                "observation_name": np.array(observations.names),
                "observation_kind": np.array([o.kind for o in observations]),
            },
            attrs={
                "method": "bayes",
                "sampler": type(self.sampler).__name__,
                "prior": self.prior.name,
                "mass_prior": repr(self.mass_prior),
                "n_masked_draws": int(np.sum(status != LikelihoodStatus.OK)),
                "sampling_wall_time_s": round(sampling_s, 2),
                "compile_wall_time_s": round(result.compile_s, 2),
                "n_gradient_evaluations": gradients,
            },
        )
        _warn_if_unconverged(posterior, failures)
        return posterior


@eqx.filter_jit
def _evaluate(estimator: BayesianEstimator, like: Likelihood, params):
    """The likelihood and the prior's EoS factor at ``params``, as one compiled program.

    NumPyro runs the model eagerly while it sets up (site shapes, starting points): without
    this, each of the TOV solver's operations would be dispatched and compiled on its own,
    which cost about 100 s per model; inside the sampler's own trace it is simply inlined.
    """
    eos = estimator.make_eos(params)
    return like(eos), estimator.prior.log_factor(eos)


def _warn_if_unconverged(posterior: EoSPosterior, failures: dict[str, int]) -> None:
    problems = posterior.convergence_problems()
    if failures:
        problems.append(f"masked likelihood evaluations in the draws: {failures}")
    if problems:
        warnings.warn(
            "the sampler did not converge cleanly: " + "; ".join(problems) + ". Run longer "
            "(more warm-up and draws), raise target_accept (e.g. 0.98) against divergences, "
            "or use more chains; see EoSPosterior.diagnostics().",
            ConvergenceWarning,
            stacklevel=3,
        )

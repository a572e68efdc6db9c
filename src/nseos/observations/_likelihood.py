"""Likelihood blocks: ln p(data | EoS), pure JAX (jit, vmap, grad).

Each observed star has an unknown mass. Two standard treatments:

* **Marginalised** (the default, :class:`Likelihood`): integrate the mass out,
  L_i(EoS) = int dm p(m | EoS) L_i(m, R(m), Lambda(m)), by Gauss-Legendre quadrature
  *along the stable branch*, parameterised by t = ln p_c. In t the integrand
  p(M(t)) L(M(t), R(t)) dM/dt is smooth right up to the maximum mass (where dM/dt -> 0),
  whereas R(M) has a square-root singularity there. The range is the observation's support
  intersected with the prior's [M_min, M_max(EoS)]; its ends move with the EoS, so the
  derivative of the range is exact too. The posterior has only the EoS parameters.
* **Latent masses** (:meth:`Likelihood.conditional`): one mass per star (two per binary) is a
  parameter of the sampler, and the likelihood is p(m | EoS) L_i(m, R(m), Lambda(m)). The
  cost per evaluation is lower (no quadrature), but the posterior gains one dimension per
  star, and the masses live on an EoS-dependent support [M_min, M_max(EoS)]: a mass proposed
  above the current M_max has zero density, which makes the posterior's geometry awkward for
  HMC near the maximum mass. Use it for few stars, or when the masses are wanted themselves.

Failures never pass silently: a curve with failed stars, a maximum mass beyond the
central-pressure grid (unless ``end_at_range_top``), an acausal EoS, or a binary or population
that no star of the branch can form gives ln L = -inf, and :class:`LikelihoodStatus` records
which; count them over a batch with :func:`count_failures`. A star whose measured mass the
branch does not reach is not a failure: its likelihood is small but finite (a radio mass far
above M_max has ln L ~ -z^2/2), so that HMC meets a slope rather than a -inf wall, and
:attr:`LogLikelihood.reached` says which observations the branch reaches.
"""

from __future__ import annotations

import enum
import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from .._typing import Array, Bool, Float, Int
from ..eos import DEFAULT_CAUSALITY_TOLERANCE, AbstractEOS
from ..tov import RK4, MassRadiusCurve, SolveStatus, mass_radius_curve, placed_mass_radius_curve
from ._base import (
    AbstractBinaryObservation,
    AbstractStarObservation,
    chirp_mass,
    component_masses,
)
from ._priors import AbstractMassPrior, UniformMass
from ._set import ObservationSet

CAUSALITY_TOLERANCE = DEFAULT_CAUSALITY_TOLERANCE
"""c_s^2 may exceed 1 by this much before the EoS counts as acausal: the same 1 % that
:class:`nseos.eos.Tabulated` accepts, because published tables carry 4-10 digits and their
finite-difference sound speeds scatter by that much (LAL's MPA1 reaches 1.0057)."""
_MAX_MASS_GUARD_MSUN = 1e-9
"""Inverting M(p_c) exactly at the maximum has an infinite derivative; limits within this
distance of M_max use the maximum's own central pressure instead."""
_PLACEMENT_CUSHION_MSUN = 0.1
"""With ``placed_stars``, the sequence starts this far below the mass prior's lowest mass, so
that the coarse pass's error in locating that star never cuts the integration range."""


class LikelihoodStatus(enum.IntEnum):
    """Why a likelihood evaluation was masked to -inf (0 = it was not).

    ``NO_SUPPORT``: some observation's own term is -inf. Radio masses (closed form, a
    Gaussian tail for every M_max) and mass-radius stars out of the branch's reach (their
    density integrated over the whole branch, tiny but finite; ``LogLikelihood.reached``
    records the miss) never cause it: a pulsar heavier than M_max lowers ln L smoothly.
    This docstring is the one statement of these semantics; the docs point here.
    """

    OK = 0
    SOLVER_FAILED = 1
    MAX_MASS_NOT_REACHED = 2
    ACAUSAL = 3
    NO_SUPPORT = 4
    NON_FINITE = 5


class LogLikelihood(NamedTuple):
    """One likelihood evaluation."""

    total: Float[Array, ""]
    per_observation: Float[Array, " n_obs"]
    status: Int[Array, ""]
    max_mass_msun: Float[Array, ""]
    reached: Bool[Array, " n_obs"]
    """Whether the branch reaches each observation's mass support. An observation out of
    reach still has a finite (tiny) likelihood when it has one at all."""


def count_failures(status) -> dict[str, int]:
    """How many evaluations of a batch failed, by reason (outside jit)."""
    s = np.asarray(status).reshape(-1)
    return {
        reason.name: int(np.sum(s == reason.value))
        for reason in LikelihoodStatus
        if reason is not LikelihoodStatus.OK and np.any(s == reason.value)
    }


class BranchQuadrature(eqx.Module):
    """Gauss-Legendre quadrature along the stable branch.

    The integration range in ln p_c is split at every star of the sequence *and* into
    ``panels`` equal panels; each resulting interval gets ``order`` Gauss-Legendre nodes.
    Splitting at the sequence's stars means no interval straddles a node of the cubic
    interpolant (whose second derivative jumps there), so the result converges with the
    sequence's ``n_stars``; the equal panels resolve observations narrower than one segment
    of the sequence (J1614-2230's sigma_M = 0.014 M_sun, J0437-4715's 0.035). The default
    reproduces brute-force integrals to better than 1e-4 in ln L at ``n_stars = 100`` (see
    tests/test_likelihood.py).
    """

    panels: int = eqx.field(static=True, default=32)
    order: int = eqx.field(static=True, default=4)

    def __check_init__(self):
        if self.order < 1 or self.panels < 1:
            raise ValueError("panels and order must be at least 1")

    def nodes(self) -> tuple[np.ndarray, np.ndarray]:
        """Gauss-Legendre nodes in [0, 1] and their weights (summing to 1)."""
        x, w = np.polynomial.legendre.leggauss(self.order)
        return 0.5 * (x + 1.0), 0.5 * w


class BinaryQuadrature(eqx.Module):
    """Gauss-Legendre nodes in source-frame chirp mass and in q = m2/m1 for binaries.

    With ``marginal_chirp_mass``, an observation that offers a chirp-mass marginal
    (:meth:`~nseos.observations.AbstractBinaryObservation.chirp_mass_marginal`, as
    :class:`~nseos.observations.TidalDeformability` does) is integrated over q alone, both
    stars at its reference chirp mass: ``mass_ratio_nodes`` evaluations instead of
    ``chirp_mass_nodes`` times as many. Valid when the chirp mass is measured far more
    precisely than the tidal deformabilities change across its spread (GW170817: 0.1 %).
    """

    chirp_mass_nodes: int = eqx.field(static=True, default=12)
    mass_ratio_nodes: int = eqx.field(static=True, default=24)
    marginal_chirp_mass: bool = eqx.field(static=True, default=False)


def _log_central_pressure(curve: MassRadiusCurve, mass_msun):
    """ln p_c at a mass on the branch, safe (finite derivative) up to the maximum."""
    t_max = jnp.log(curve.central_pressure_at_max_mass_mev_fm3)
    near_max = mass_msun >= curve.max_mass_msun - _MAX_MASS_GUARD_MSUN
    safe = jnp.where(near_max, curve.min_mass_msun, mass_msun)
    return jnp.where(near_max, t_max, jnp.log(curve.central_pressure_at(safe)))


def _star_log_marginal(curve, obs: AbstractStarObservation, prior, quadrature):
    """ln of the mass-marginalised likelihood of one star, and whether the branch reaches
    the observation's mass support."""
    prior_lo, prior_hi = prior.bounds_msun(curve.max_mass_msun)
    lo = jnp.maximum(prior_lo, curve.min_mass_msun)
    hi = jnp.minimum(prior_hi, curve.max_mass_msun)
    populated = hi > lo
    support_lo, support_hi = obs.mass_support_msun()
    a, b = jnp.maximum(lo, support_lo), jnp.minimum(hi, support_hi)
    reached = b > a
    if isinstance(prior, UniformMass):
        closed = obs.log_mass_integral(jnp.where(populated, lo, 0.0), jnp.where(populated, hi, 1.0))
        if closed is not None:
            value = closed + prior.log_density(hi, curve.max_mass_msun)
            return jnp.where(populated, value, -jnp.inf), reached
    # Integrate over the support on the branch; where the branch misses the support, over
    # the whole populated branch instead, where the likelihood is tiny but finite (an
    # observation out of reach lowers ln L smoothly instead of raising a -inf wall).
    a = jnp.where(reached, a, jnp.where(populated, lo, curve.min_mass_msun))
    b = jnp.where(reached, b, jnp.where(populated, hi, curve.max_mass_msun))
    t_a = _log_central_pressure(curve, a)
    t_b = _log_central_pressure(curve, b)
    # Breakpoints: the sequence's stars inside [t_a, t_b] plus equal panels (static count;
    # points outside the range collapse onto its ends and give empty intervals).
    x, w = quadrature.nodes()
    stars = jnp.clip(curve.branch_log_pressure, t_a, t_b)
    panels = t_a + (t_b - t_a) * jnp.linspace(0.0, 1.0, quadrature.panels + 1)
    edges = jnp.sort(jnp.concatenate([stars, panels]))
    lo_edge, width = edges[:-1], edges[1:] - edges[:-1]
    pts = curve.along_branch(lo_edge[:, None] + width[:, None] * jnp.asarray(x)[None, :])
    log_f = (
        prior.log_density(pts.mass_msun, curve.max_mass_msun)
        + obs.log_likelihood(pts.mass_msun, pts.radius_km, pts.tidal_deformability)
        + jnp.log(jnp.maximum(pts.dmass_dlog_pressure_msun, 1e-300))
        + jnp.log(jnp.maximum(width, 1e-300))[:, None]
        + jnp.log(jnp.asarray(w))[None, :]
    )
    log_f = jnp.where((width > 0)[:, None], log_f, -jnp.inf)
    return jnp.where(populated, logsumexp(log_f), -jnp.inf), reached


def _binary_log_marginal(curve, obs: AbstractBinaryObservation, prior, quadrature):
    """ln of the binary's likelihood marginalised over both masses, and whether any
    quadrature node lies on the branch."""
    q_lo, q_hi = obs.mass_ratio_support()
    xq, wq = np.polynomial.legendre.leggauss(quadrature.mass_ratio_nodes)
    q = q_lo + (q_hi - q_lo) * 0.5 * (xq[None, :] + 1.0)
    log_w = np.log(0.5 * (q_hi - q_lo) * wq)[None, :]
    marginal = obs.chirp_mass_marginal() if quadrature.marginal_chirp_mass else None
    if marginal is None:
        mc_lo, mc_hi = obs.chirp_mass_support_msun()
        xc, wc = np.polynomial.legendre.leggauss(quadrature.chirp_mass_nodes)
        mc = mc_lo + (mc_hi - mc_lo) * 0.5 * (xc[:, None] + 1.0)
        log_w = log_w + np.log(0.5 * (mc_hi - mc_lo) * wc)[:, None]
        mc, q = np.broadcast_arrays(mc, q)

        def log_likelihood(q, lambda1, lambda2):
            return obs.log_likelihood(mc, q, lambda1, lambda2)
    else:
        # Both stars at the reference chirp mass; the likelihood is already integrated over it.
        mc_ref, log_likelihood = marginal
        mc = np.full_like(q, mc_ref)
    m1, m2 = component_masses(mc, q)
    prior_lo, prior_hi = prior.bounds_msun(curve.max_mass_msun)
    valid = (m2 >= prior_lo) & (m1 <= prior_hi) & curve.contains(m1) & curve.contains(m2)
    _, lam1 = curve.radius_and_lambda_at(jnp.asarray(m1))
    _, lam2 = curve.radius_and_lambda_at(jnp.asarray(m2))
    lam1, lam2 = jnp.where(valid, lam1, 1.0), jnp.where(valid, lam2, 1.0)
    # Two stars from the same population, ordered m1 >= m2: density 2 p(m1) p(m2), and
    # dm1 dm2 = (m1^2 / Mc) dMc dq.
    log_f = (
        math.log(2.0)
        + prior.log_density(m1, curve.max_mass_msun)
        + prior.log_density(m2, curve.max_mass_msun)
        + np.log(m1**2 / mc)
        + log_likelihood(q, lam1, lam2)
        + log_w
    )
    return logsumexp(jnp.where(valid, log_f, -jnp.inf)), jnp.any(valid)


class Likelihood(eqx.Module):
    """ln p(observations | EoS), with every star's mass marginalised.

    Parameters
    ----------
    observations : ObservationSet
    mass_prior : AbstractMassPrior
        Population prior of each star's mass; uniform on [1 M_sun, M_max(EoS)] by default.
    quadrature, binary_quadrature
        Integration settings along the branch and over (chirp mass, q).
    n_stars : int
        Stars per M-R curve when the likelihood solves the TOV sequence itself.
    method : RK4
        TOV solver settings.
    placed_stars : bool
        If True, the ``n_stars`` are spread from the star of the mass prior's lowest mass
        (less 0.1 M_sun) to just beyond the maximum mass
        (:func:`nseos.tov.placed_mass_radius_curve`), instead of over the EoS's whole default
        central-pressure range, half of which holds stars lighter than any observed one.
    end_at_range_top : bool
        If True, a sequence whose mass still rises at the top of the central-pressure range
        is used up to that top (M_max = the mass there) instead of being masked as
        ``MAX_MASS_NOT_REACHED``. For a family defined up to a maximum density (e.g.
        :class:`~nseos.eos.SpeedOfSoundSegments`, up to 15 rho0 c^2), this treats the top of
        the domain as the end of the branch: a soft top segment (c_s^2 below ~0.015) keeps
        the mass rising there by less than 1e-3 M_sun per star, and masking it would put a
        -inf wall inside the prior.

    Calling it on an EoS solves the sequence and returns a :class:`LogLikelihood`;
    :meth:`from_curve` starts from a sequence already solved.
    """

    observations: ObservationSet
    mass_prior: AbstractMassPrior = UniformMass()
    quadrature: BranchQuadrature = BranchQuadrature()
    binary_quadrature: BinaryQuadrature = BinaryQuadrature()
    n_stars: int = eqx.field(static=True, default=100)
    method: RK4 = RK4()
    placed_stars: bool = eqx.field(static=True, default=False)
    end_at_range_top: bool = eqx.field(static=True, default=False)

    def __call__(self, eos: AbstractEOS) -> LogLikelihood:
        if self.placed_stars:
            lowest = self.mass_prior.bounds_msun(jnp.inf)[0] - _PLACEMENT_CUSHION_MSUN
            curve = placed_mass_radius_curve(
                eos, self.n_stars, self.method, lowest_mass_msun=lowest
            )
        else:
            curve = mass_radius_curve(eos, self.n_stars, self.method)
        return self.from_curve(curve, eos)

    def curve_status(self, curve: MassRadiusCurve, eos: AbstractEOS | None = None):
        """The first reason (if any) why this curve cannot be used."""
        status = jnp.asarray(LikelihoodStatus.OK)
        if eos is not None:
            cs2 = eos.speed_of_sound_squared(curve.central_enthalpy)
            acausal = jnp.any(jnp.where(curve.stable, cs2, 0.0) > 1.0 + CAUSALITY_TOLERANCE)
            status = jnp.where(acausal, LikelihoodStatus.ACAUSAL, status)
        if not self.end_at_range_top:
            status = jnp.where(
                ~curve.max_mass_reached, LikelihoodStatus.MAX_MASS_NOT_REACHED, status
            )
        failed = jnp.any(curve.status != SolveStatus.SUCCESS)
        return jnp.where(failed, LikelihoodStatus.SOLVER_FAILED, status)

    def from_curve(self, curve: MassRadiusCurve, eos: AbstractEOS | None = None) -> LogLikelihood:
        """ln L from a solved sequence (``eos``, if given, is checked for causality)."""
        n = len(self.observations)
        values, reached = [None] * n, [None] * n
        batches: dict[tuple, list[int]] = {}
        for i, obs in enumerate(self.observations):
            key = None if isinstance(obs, AbstractBinaryObservation) else obs.batch_key()
            if key is not None:
                batches.setdefault((type(obs), key), []).append(i)
            elif isinstance(obs, AbstractBinaryObservation):
                args = (curve, obs, self.mass_prior, self.binary_quadrature)
                values[i], reached[i] = _binary_log_marginal(*args)
            else:
                args = (curve, obs, self.mass_prior, self.quadrature)
                values[i], reached[i] = _star_log_marginal(*args)
        for (cls, _), members in batches.items():
            if len(members) == 1:
                obs = self.observations[members[0]]
                v, r = _star_log_marginal(curve, obs, self.mass_prior, self.quadrature)
                values[members[0]], reached[members[0]] = v, r
                continue
            stacked = cls.stack([self.observations[i] for i in members])
            v, r = jax.vmap(
                lambda o: _star_log_marginal(curve, o, self.mass_prior, self.quadrature)
            )(stacked)
            for j, i in enumerate(members):
                values[i], reached[i] = v[j], r[j]
        return self._finish(curve, eos, values, reached)

    def conditional(
        self, curve: MassRadiusCurve, masses_msun: Float[Array, " n_latent"], eos=None
    ) -> LogLikelihood:
        """ln [p(m | EoS) L(data | m, EoS)] for given latent masses (the alternative to
        marginalisation). ``masses_msun`` holds one mass per star observation and two
        (m1 >= m2) per binary, in the order of the observations; see
        :meth:`ObservationSet.n_latent_masses`."""
        m = jnp.asarray(masses_msun)
        if m.shape != (self.observations.n_latent_masses,):
            raise ValueError(
                f"expected {self.observations.n_latent_masses} latent masses, got {m.shape}"
            )
        prior_lo, prior_hi = self.mass_prior.bounds_msun(curve.max_mass_msun)
        values, reached, i = [], [], 0
        for obs in self.observations:
            k = 2 if isinstance(obs, AbstractBinaryObservation) else 1
            mi = m[i : i + k]
            i += k
            on_branch = jnp.all(curve.contains(mi) & (mi >= prior_lo) & (mi <= prior_hi))
            safe = jnp.where(on_branch, mi, curve.min_mass_msun)
            r, lam = curve.radius_and_lambda_at(safe)
            log_p = jnp.sum(self.mass_prior.log_density(safe, curve.max_mass_msun))
            if k == 2:
                mc = chirp_mass(safe[0], safe[1])
                ordered = safe[0] >= safe[1]
                on_branch = on_branch & ordered
                q = jnp.where(ordered, safe[1] / safe[0], 1.0)
                ll = obs.log_likelihood(mc, q, lam[0], lam[1]) + math.log(2.0)
            else:
                ll = obs.log_likelihood(safe[0], r[0], lam[0])
            values.append(jnp.where(on_branch, ll + log_p, -jnp.inf))
            reached.append(on_branch)
        return self._finish(curve, eos, values, reached)

    def _finish(self, curve, eos, values, reached) -> LogLikelihood:
        per_obs = jnp.stack(values) if values else jnp.zeros((0,))
        reached = jnp.stack(reached) if reached else jnp.zeros((0,), bool)
        status = self.curve_status(curve, eos)
        status = jnp.where(
            (status == LikelihoodStatus.OK) & jnp.any(jnp.isnan(per_obs)),
            LikelihoodStatus.NON_FINITE,
            status,
        )
        status = jnp.where(
            (status == LikelihoodStatus.OK) & jnp.any(per_obs == -jnp.inf),
            LikelihoodStatus.NO_SUPPORT,
            status,
        )
        ok = status == LikelihoodStatus.OK
        total = jnp.where(ok, jnp.sum(jnp.where(ok, per_obs, 0.0)), -jnp.inf)
        return LogLikelihood(total, per_obs, status, curve.max_mass_msun, reached)

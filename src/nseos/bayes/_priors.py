"""Priors on the EoS parameters: explicit, named, swappable objects.

Each prior knows how to declare itself inside a NumPyro model (:meth:`sample_site`), how to
draw from itself outside one (:meth:`sample`, for prior-predictive bands), and may add a
factor that depends on the whole EoS (:meth:`log_factor`, e.g. a chiral-EFT band).

**Sampler coordinates.** The samplers move in an unconstrained space, and the map from it to
c_s^2 decides how well NUTS can move there. NumPyro's default for an interval is the logit,
under which a uniform prior becomes a logistic density with exponential tails: where the
data leave a segment's c_s^2 free down to its lower bound (the stiff segments above the
heaviest star, soft segments allowed by the heavy pulsars), the posterior has a long tail in
the logit, which costs tree depth. The built-in priors use the *probit* instead,
c_s^2 = F^-1(Phi(z)) with F the prior's own CDF and Phi the standard normal CDF: the prior
becomes exactly N(0, 1) in z, so a direction the data do not constrain is a unit Gaussian,
the easiest target NUTS has. The prior density on c_s^2 is unchanged; only the coordinates
change (see :class:`ProbitInterval`).
"""

from __future__ import annotations

import abc
import math
from importlib import resources
from pathlib import Path
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from jax.scipy.special import ndtr, ndtri
from numpyro.distributions import constraints
from numpyro.distributions.transforms import (
    AffineTransform,
    ComposeTransform,
    ExpTransform,
    ParameterFreeTransform,
    biject_to,
)

from .._typing import Array, Float
from ..eos import AbstractEOS

PARAMETER_SITE = "cs2"
"""Name of the EoS parameter vector in the NumPyro model and in the posterior."""


class ProbitInterval(constraints._Interval):
    """The interval [lower, upper], reached from the real line through the probit of a
    uniform (``log=False``) or log-uniform (``log=True``) distribution on it.

    NumPyro picks a site's unconstrained coordinates by its support (``biject_to``); this
    support makes that coordinate the standard normal quantile of the prior's CDF, so the
    uniform and log-uniform priors are N(0, 1) in it. Everything that maps c_s^2 to the
    sampler's space and back (``biject_to(prior.support)``) gets the same map.
    """

    def __init__(self, lower_bound, upper_bound, log: bool = False):
        super().__init__(lower_bound, upper_bound)
        self.log = log

    def tree_flatten(self):
        return (self.lower_bound, self.upper_bound), (
            ("lower_bound", "upper_bound"),
            {"log": self.log},
        )


class _NormalCDF(ParameterFreeTransform):
    """z -> Phi(z), the standard normal CDF, from the real line onto (0, 1)."""

    domain = constraints.real
    codomain = constraints.unit_interval
    sign = 1

    def __call__(self, x):
        tiny = jnp.finfo(jnp.result_type(x, float)).tiny
        eps = jnp.finfo(jnp.result_type(x, float)).eps
        return jnp.clip(ndtr(x), tiny, 1.0 - eps)

    def _inverse(self, y):
        return ndtri(y)

    def log_abs_det_jacobian(self, x, y, intermediates=None):
        return -0.5 * x * x - 0.5 * math.log(2.0 * math.pi)


@biject_to.register(ProbitInterval)
def _probit_to_interval(constraint: ProbitInterval) -> ComposeTransform:
    lo, hi = constraint.lower_bound, constraint.upper_bound
    if not constraint.log:
        return ComposeTransform(
            [_NormalCDF(), AffineTransform(lo, hi - lo, domain=constraints.unit_interval)]
        )
    log_lo, log_hi = jnp.log(lo), jnp.log(hi)
    return ComposeTransform(
        [
            _NormalCDF(),
            AffineTransform(log_lo, log_hi - log_lo, domain=constraints.unit_interval),
            ExpTransform(),
        ]
    )


class _ProbitUniform(dist.Uniform):
    """``Uniform(low, high)`` sampled in probit coordinates (see :class:`ProbitInterval`)."""

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return ProbitInterval(self.low, self.high)


class _ProbitLogUniform(dist.LogUniform):
    """``LogUniform(low, high)`` sampled in probit coordinates (see :class:`ProbitInterval`)."""

    @constraints.dependent_property(is_discrete=False, event_dim=0)
    def support(self):
        return ProbitInterval(self.low, self.high, log=True)


class AbstractEoSPrior(eqx.Module):
    """A prior on the squared sound speeds c_s^2 of the K segments."""

    name: eqx.AbstractClassVar[str]

    @abc.abstractmethod
    def base_distribution(self, n_params: int) -> dist.Distribution:
        """The distribution of the parameter vector before any EoS-dependent factor."""

    def log_factor(self, eos: AbstractEOS) -> Float[Array, ""]:
        """An extra ln factor that depends on the whole EoS (0 unless overridden)."""
        return jnp.zeros(())

    def sample_site(self, n_params: int) -> Float[Array, " K"]:
        """Declare the parameters inside a NumPyro model."""
        return numpyro.sample(PARAMETER_SITE, self.base_distribution(n_params))

    def sample(self, key, n: int, n_params: int, make_eos=None) -> Float[Array, "n K"]:
        """Draw ``n`` parameter vectors. With an EoS-dependent factor, ``make_eos`` (params
        -> EoS) is needed: base draws are importance-resampled by the factor."""
        k_base, k_resample = jax.random.split(key)
        if type(self).log_factor is AbstractEoSPrior.log_factor:
            return self.base_distribution(n_params).sample(k_base, (n,))
        if make_eos is None:
            raise ValueError(f"the {self.name} prior needs make_eos to be sampled")
        pool = self.base_distribution(n_params).sample(k_base, (8 * n,))
        log_w = jax.vmap(lambda p: self.log_factor(make_eos(p)))(pool)
        idx = jax.random.categorical(k_resample, log_w, shape=(n,))
        return pool[idx]


class UniformSoundSpeed(AbstractEoSPrior):
    """Each c_s^2 ~ U[delta, 1 - delta], independently: the prior of Fujimoto, Fukushima and
    Murase (arXiv:1711.06748), who draw c_s^2 uniformly in [delta, 1 - delta] with
    delta = 0.01 so that the EoS is neither flat nor at the causal limit."""

    name: ClassVar[str] = "uniform c_s^2"
    delta: float = 0.01

    def __check_init__(self):
        if not 0.0 <= self.delta < 0.5:
            raise ValueError(f"delta = {self.delta} must lie in [0, 0.5)")

    def base_distribution(self, n_params):
        return _ProbitUniform(self.delta, 1.0 - self.delta).expand([n_params]).to_event(1)


class LogUniformSoundSpeed(AbstractEoSPrior):
    """Each c_s^2 log-uniform on [low, high]: uniform weight per decade of stiffness instead of
    per unit of c_s^2. It puts much more prior mass on soft segments (half of it below
    c_s^2 = 0.1 for the default range), the alternative a referee asks for when a result might
    be driven by the uniform prior's preference for stiff matter."""

    name: ClassVar[str] = "log-uniform c_s^2"
    low: float = 0.01
    high: float = 0.99

    def __check_init__(self):
        if not 0.0 < self.low < self.high <= 1.0:
            raise ValueError(f"need 0 < low < high <= 1, got {self.low}, {self.high}")

    def base_distribution(self, n_params):
        return _ProbitLogUniform(self.low, self.high).expand([n_params]).to_event(1)


def _constraint_path(name: str) -> Path:
    return Path(str(resources.files("nseos.data.constraints").joinpath(name)))


class ChiEFTBand(eqx.Module):
    """A pressure band p_low(eps) <= p <= p_high(eps) from chiral effective field theory.

    The default is the band of Koehn et al. 2025 (PRX 15, 021014, arXiv:2402.04172) up to
    2 n0, as packaged by jester (see ``nseos/data/constraints/PROVENANCE.md``). Only the part
    above ``min_energy_density_mev_fm3`` (default rho0 c^2, where the family's free segments
    begin) is used; below, every member of the family is SLy4.
    """

    log_energy_density: Float[Array, " n"]
    log_pressure_low: Float[Array, " n"]
    log_pressure_high: Float[Array, " n"]

    @classmethod
    def koehn2025(cls, min_energy_density_mev_fm3: float = 151.46) -> ChiEFTBand:
        lo = np.loadtxt(_constraint_path("chieft_koehn2025_low.csv"), delimiter=",", skiprows=1)
        hi = np.loadtxt(_constraint_path("chieft_koehn2025_high.csv"), delimiter=",", skiprows=1)
        # Both files share one density grid; the energy densities differ slightly, so the
        # band is put on the low edge's eps grid (interpolating the high edge onto it).
        keep = lo[:, 2] >= min_energy_density_mev_fm3
        eps = lo[keep, 2]
        p_lo = lo[keep, 1]
        p_hi = np.interp(np.log(eps), np.log(hi[:, 2]), np.log(hi[:, 1]))
        lower, upper = np.minimum(np.log(p_lo), p_hi), np.maximum(np.log(p_lo), p_hi)
        return cls(jnp.asarray(np.log(eps)), jnp.asarray(lower), jnp.asarray(upper))

    @property
    def max_energy_density_mev_fm3(self) -> Float[Array, ""]:
        return jnp.exp(self.log_energy_density[-1])


class ChiEFTConstrained(AbstractEoSPrior):
    """A base prior times a soft indicator that p(eps) lies inside a chiral-EFT band.

    At 48 enthalpies between rho0 and the band's top (2 n0) the EoS pressure is compared with
    the band; each point contributes ln sigmoid((ln p - ln p_low)/w) +
    ln sigmoid((ln p_high - ln p)/w) with w = 0.02 (a 2 % soft edge), which is ~0 inside the
    band and falls steeply outside. Informative at low density: it mainly constrains the
    first two segments (rho0 to 2.2 rho0).
    """

    name: ClassVar[str] = "uniform c_s^2 + chiEFT band"
    base: AbstractEoSPrior = UniformSoundSpeed()
    band: ChiEFTBand = eqx.field(default_factory=ChiEFTBand.koehn2025)
    softness: float = 0.02

    def base_distribution(self, n_params):
        return self.base.base_distribution(n_params)

    def log_factor(self, eos: AbstractEOS) -> Float[Array, ""]:
        # Enthalpies from p = 1 MeV fm^-3 (below the band's start for any member of the
        # family) upwards, denser near the start; points outside the band's eps range are
        # masked.
        h = eos.enthalpy(jnp.asarray(1.0)) + jnp.geomspace(1e-4, 0.8, 48)
        state = eos.state(h)
        log_eps, log_p = jnp.log(state.energy_density_mev_fm3), jnp.log(state.pressure_mev_fm3)
        grid = self.band.log_energy_density
        inside = (log_eps >= grid[0]) & (log_eps <= grid[-1])
        lo = jnp.interp(log_eps, self.band.log_energy_density, self.band.log_pressure_low)
        hi = jnp.interp(log_eps, self.band.log_energy_density, self.band.log_pressure_high)
        w = self.softness
        score = jax.nn.log_sigmoid((log_p - lo) / w) + jax.nn.log_sigmoid((hi - log_p) / w)
        return jnp.sum(jnp.where(inside, score, 0.0))

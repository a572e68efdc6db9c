"""Population priors for the masses of observed stars, and error-size distributions for
mock catalogues. Each is an object: pass ``UniformMass(minimum_msun=1.2)``, not a string."""

from __future__ import annotations

import abc
import math

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr, ndtri

from .._typing import Array, Float

DEFAULT_MINIMUM_MASS_MSUN = 1.0
"""Lower end of the default mass prior and of mock masses (the protocol of Fujimoto,
Fukushima and Murase, arXiv:1711.06748: stars between 1 M_sun and M_max)."""


class AbstractMassPrior(eqx.Module):
    """The distribution of an observed star's mass given the EoS (normalised on its
    support, which may end at the EoS's maximum mass)."""

    @abc.abstractmethod
    def bounds_msun(self, max_mass_msun) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """Support [lo, hi] given the EoS's maximum mass."""

    @abc.abstractmethod
    def log_density(self, mass_msun, max_mass_msun) -> Float[Array, ...]:
        """ln p(m) on the support (outside it the value is undefined; callers mask)."""

    @abc.abstractmethod
    def sample(self, key, shape: tuple[int, ...], max_mass_msun) -> Float[Array, ...]:
        """Draw masses (for mock data)."""


class UniformMass(AbstractMassPrior):
    """Uniform between ``minimum_msun`` and ``maximum_msun`` (default: the EoS's M_max).

    With the default upper end the prior is 1 / (M_max - M_min): a stiffer EoS spreads the
    same prior over more masses, the usual Occam factor of population-marginalised
    likelihoods (e.g. Miller et al. 2019, arXiv:1912.05705).
    """

    minimum_msun: float = DEFAULT_MINIMUM_MASS_MSUN
    maximum_msun: float | None = None

    def __check_init__(self):
        if not self.minimum_msun >= 0:
            raise ValueError(f"minimum_msun = {self.minimum_msun} must be >= 0")
        if self.maximum_msun is not None and not self.maximum_msun > self.minimum_msun:
            raise ValueError("maximum_msun must exceed minimum_msun")

    def bounds_msun(self, max_mass_msun):
        hi = jnp.asarray(max_mass_msun)
        if self.maximum_msun is not None:
            hi = jnp.minimum(hi, self.maximum_msun)
        return jnp.asarray(self.minimum_msun, hi.dtype), hi

    def log_density(self, mass_msun, max_mass_msun):
        lo, hi = self.bounds_msun(max_mass_msun)
        width = jnp.maximum(hi - lo, 1e-12)
        return jnp.zeros_like(jnp.asarray(mass_msun, float)) - jnp.log(width)

    def sample(self, key, shape, max_mass_msun):
        lo, hi = self.bounds_msun(max_mass_msun)
        return lo + (hi - lo) * jax.random.uniform(key, shape, dtype=jnp.result_type(float))


class GaussianMass(AbstractMassPrior):
    """A Gaussian truncated to [``minimum_msun``, M_max], e.g. the double-neutron-star
    population 1.33 +- 0.09 M_sun of Özel et al. 2012 (arXiv:1201.1006)."""

    mean_msun: float
    sigma_msun: float
    minimum_msun: float = 0.5

    def __check_init__(self):
        if not self.sigma_msun > 0:
            raise ValueError(f"sigma_msun = {self.sigma_msun} must be positive")

    def bounds_msun(self, max_mass_msun):
        hi = jnp.asarray(max_mass_msun)
        return jnp.asarray(self.minimum_msun, hi.dtype), hi

    def _cdf_bounds(self, max_mass_msun):
        lo, hi = self.bounds_msun(max_mass_msun)
        return ndtr((lo - self.mean_msun) / self.sigma_msun), ndtr(
            (hi - self.mean_msun) / self.sigma_msun
        )

    def log_density(self, mass_msun, max_mass_msun):
        c_lo, c_hi = self._cdf_bounds(max_mass_msun)
        z = (jnp.asarray(mass_msun) - self.mean_msun) / self.sigma_msun
        norm = jnp.log(jnp.maximum(c_hi - c_lo, 1e-300)) + jnp.log(self.sigma_msun)
        return -0.5 * z * z - 0.5 * math.log(2 * math.pi) - norm

    def sample(self, key, shape, max_mass_msun):
        c_lo, c_hi = self._cdf_bounds(max_mass_msun)
        u = jax.random.uniform(key, shape, dtype=jnp.result_type(float))
        return self.mean_msun + self.sigma_msun * ndtri(c_lo + (c_hi - c_lo) * u)


class AbstractErrorDistribution(eqx.Module):
    """The distribution of measurement errors (standard deviations) in mock catalogues."""

    @abc.abstractmethod
    def sample(self, key, shape: tuple[int, ...]) -> Float[Array, ...]:
        """Draw standard deviations."""


class UniformError(AbstractErrorDistribution):
    """Standard deviations uniform on [low, high]."""

    low: float
    high: float

    def __check_init__(self):
        if not 0 < self.low <= self.high:
            raise ValueError(f"need 0 < low <= high, got low={self.low}, high={self.high}")

    def sample(self, key, shape):
        u = jax.random.uniform(key, shape, dtype=jnp.result_type(float))
        return self.low + (self.high - self.low) * u


XRAY_MASS_SIGMA_MSUN = UniformError(0.094, 0.369)
"""Default mock mass errors: uniform over the range of sigma_M in the bundled X-ray catalogue
(``catalogs.xray_2016()``: 0.094 for M30 to 0.369 for 47 Tuc X7)."""
XRAY_RADIUS_SIGMA_KM = UniformError(0.557, 2.345)
"""Default mock radius errors: uniform over the catalogue's sigma_R range (0.557 km for
NGC 6397 to 2.345 km for 4U 1724-207)."""

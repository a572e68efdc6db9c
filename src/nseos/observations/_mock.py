"""Mock catalogues: the protocol of Fujimoto, Fukushima and Murase (arXiv:1711.06748).

For an EoS: draw true masses on the stable branch (uniform between 1 M_sun and M_max by
default), read the true radii off the M-R curve, draw each star's sigma_M and sigma_R, and
displace the observed values by Gaussian noise of those widths. Everything is one pure JAX
function of a solved curve and a key, so ``jax.vmap`` runs it over many EoS (batched curves)
and many keys (mock universes) at once.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from .._typing import Array, Bool, Float
from ..tov import MassRadiusCurve
from ._gaussian import MassRadiusGaussian
from ._priors import (
    XRAY_MASS_SIGMA_MSUN,
    XRAY_RADIUS_SIGMA_KM,
    AbstractErrorDistribution,
    AbstractMassPrior,
    UniformMass,
)
from ._set import ObservationSet

DEFAULT_MOCK_STARS = 14
"""Stars per mock universe: the size of the X-ray catalogue of the original study."""


class MockObservations(NamedTuple):
    """One (or, batched, many) mock catalogues; arrays have shape (..., n_stars)."""

    true_mass_msun: Float[Array, "... n_stars"]
    true_radius_km: Float[Array, "... n_stars"]
    mass_msun: Float[Array, "... n_stars"]
    radius_km: Float[Array, "... n_stars"]
    mass_sigma_msun: Float[Array, "... n_stars"]
    radius_sigma_km: Float[Array, "... n_stars"]
    valid: Bool[Array, ...]
    """False where the EoS cannot host the mass distribution (M_max below its lower end, or
    a failed curve); the stars of such a universe are placeholders."""

    def features(self) -> Float[Array, "... n_stars 4"]:
        """(M, R, sigma_M, sigma_R) per star: the network's input layout."""
        return jnp.stack(
            [self.mass_msun, self.radius_km, self.mass_sigma_msun, self.radius_sigma_km], -1
        )

    def to_observation_set(self, prefix: str = "mock") -> ObservationSet:
        """The observed stars of one (unbatched) universe as Gaussian observations."""
        if self.mass_msun.ndim != 1:
            raise ValueError("to_observation_set needs a single universe; index the batch first")
        if not bool(self.valid):
            raise ValueError("this mock universe is invalid (see MockObservations.valid)")
        return ObservationSet(
            [
                MassRadiusGaussian(
                    f"{prefix}-{i}",
                    float(m),
                    float(sm),
                    float(r),
                    float(sr),
                    check_buchdahl=False,  # noise may carry a centroid past the limit
                )
                for i, (m, sm, r, sr) in enumerate(
                    zip(
                        self.mass_msun,
                        self.mass_sigma_msun,
                        self.radius_km,
                        self.radius_sigma_km,
                        strict=True,
                    )
                )
            ]
        )


def mock_observations(
    curve: MassRadiusCurve,
    key: jax.Array,
    n_stars: int = DEFAULT_MOCK_STARS,
    mass_distribution: AbstractMassPrior = UniformMass(),
    mass_sigma: AbstractErrorDistribution = XRAY_MASS_SIGMA_MSUN,
    radius_sigma: AbstractErrorDistribution = XRAY_RADIUS_SIGMA_KM,
) -> MockObservations:
    """Draw one mock catalogue of ``n_stars`` stars from a solved M-R curve.

    Parameters
    ----------
    curve : MassRadiusCurve
        The true EoS's sequence (``mass_radius_curve(eos)``).
    key : jax.Array
        PRNG key; the same key gives the same catalogue.
    n_stars : int
    mass_distribution : AbstractMassPrior
        True masses; uniform on [1 M_sun, M_max] by default.
    mass_sigma, radius_sigma : AbstractErrorDistribution
        Per-star standard deviations; by default uniform over the ranges of the bundled X-ray
        catalogue (0.094-0.369 M_sun and 0.557-2.345 km).

    Vectorise with ``jax.vmap(mock_observations, in_axes=(None, 0))`` over keys, or
    ``in_axes=(0, 0)`` over a batch of curves and keys.
    """
    k_mass, k_sm, k_sr, k_noise_m, k_noise_r = jax.random.split(key, 5)
    lo, hi = mass_distribution.bounds_msun(curve.max_mass_msun)
    valid = (hi > lo) & (lo >= curve.min_mass_msun) & ~curve.failed & curve.max_mass_reached
    true_m = mass_distribution.sample(k_mass, (n_stars,), curve.max_mass_msun)
    true_m = jnp.where(valid, true_m, curve.min_mass_msun)
    true_r = curve.radius_at(true_m)
    sigma_m = mass_sigma.sample(k_sm, (n_stars,))
    sigma_r = radius_sigma.sample(k_sr, (n_stars,))
    dtype = true_r.dtype
    obs_m = true_m + sigma_m * jax.random.normal(k_noise_m, (n_stars,), dtype)
    obs_r = true_r + sigma_r * jax.random.normal(k_noise_r, (n_stars,), dtype)
    return MockObservations(true_m, true_r, obs_m, obs_r, sigma_m, sigma_r, valid)

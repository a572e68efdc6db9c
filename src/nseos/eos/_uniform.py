"""The incompressible (uniform-density) star: an analytic test case for the TOV solver."""

from __future__ import annotations

import jax.numpy as jnp

from .._config import require_x64
from .._typing import Array, Float
from ._base import AbstractEOS, EOSState


class UniformDensity(AbstractEOS):
    """eps = const for any p > 0: Schwarzschild's interior solution.

    Acausal (c_s = infinity) and discontinuous at the surface, where eps drops from eps0 to 0;
    it tests the solver's surface correction of the tidal equation. With
    p = eps0 (e^h - 1), the stellar structure is known in closed form.
    """

    energy_density_mev_fm3_value: Float[Array, ""]

    def __init__(self, energy_density_mev_fm3):
        require_x64()
        self.energy_density_mev_fm3_value = jnp.asarray(energy_density_mev_fm3, float)

    def state(self, h) -> EOSState:
        h = jnp.asarray(h)
        e = self.energy_density_mev_fm3_value
        return EOSState(e * jnp.expm1(h), jnp.full_like(h, e), jnp.zeros_like(h))

    def enthalpy(self, pressure_mev_fm3):
        return jnp.log1p(jnp.asarray(pressure_mev_fm3) / self.energy_density_mev_fm3_value)

    @property
    def enthalpy_breaks(self):
        return jnp.zeros(0)

    def default_central_pressure_range_mev_fm3(self):
        """Compactness from about 0.01 to the Buchdahl-like limit p_c -> infinity (C = 4/9)."""
        e = self.energy_density_mev_fm3_value
        return 1e-2 * e, 1e2 * e

"""The abstract EoS interface that the TOV solver consumes."""

from __future__ import annotations

import abc
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from .._typing import Array, Float


class EOSState(NamedTuple):
    """Thermodynamic state at given pseudo-enthalpies, in MeV fm^-3.

    ``denergy_dh`` is d eps / dh = (eps + p) / c_s^2, the combination that enters the tidal
    equation; it is zero for incompressible matter (c_s^2 -> infinity).
    """

    pressure_mev_fm3: Float[Array, ...]
    energy_density_mev_fm3: Float[Array, ...]
    denergy_dh_mev_fm3: Float[Array, ...]


class AbstractEOS(eqx.Module):
    """A cold, barotropic equation of state, parameterised by the pseudo-enthalpy h.

    h = ln(mu / mu_surface) with mu = (eps + p) / n the baryon chemical potential, so that
    dh = dp / (eps + p) and the stellar surface is at h = 0. Subclasses are equinox modules:
    their numerical fields are pytree leaves, so an EoS can be vmapped over and differentiated
    with respect to its parameters, and a new EoS of the same family never recompiles.

    Subclasses implement :meth:`state`, :meth:`enthalpy` and :attr:`enthalpy_breaks`.
    """

    @abc.abstractmethod
    def state(self, h: Float[Array, ...]) -> EOSState:
        """Pressure, energy density and d eps / dh at pseudo-enthalpy ``h`` (>= 0)."""

    @abc.abstractmethod
    def enthalpy(self, pressure_mev_fm3: Float[Array, ...]) -> Float[Array, ...]:
        """Pseudo-enthalpy at the given pressure (the inverse of p(h))."""

    @property
    @abc.abstractmethod
    def enthalpy_breaks(self) -> Float[Array, " n_breaks"]:
        """Ascending enthalpies where eps(h) or its derivative jumps.

        The TOV solver places step boundaries exactly on these points, so that its
        Runge-Kutta steps never straddle a kink and keep their full order. The number of
        breaks is fixed by the EoS's shape (static), their positions may depend on parameters.
        """

    @abc.abstractmethod
    def default_central_pressure_range_mev_fm3(self) -> tuple[Array, Array]:
        """Central-pressure range of the default M-R sequence: from about rho0 to beyond M_max."""

    # --- convenience, in physical units --------------------------------------------------------
    def pressure_mev_fm3(self, h: Float[Array, ...]) -> Float[Array, ...]:
        """Pressure [MeV fm^-3] at pseudo-enthalpy ``h``."""
        return self.state(h).pressure_mev_fm3

    def energy_density_mev_fm3(self, h: Float[Array, ...]) -> Float[Array, ...]:
        """Energy density eps [MeV fm^-3] (rest mass included) at pseudo-enthalpy ``h``."""
        return self.state(h).energy_density_mev_fm3

    def speed_of_sound_squared(self, h: Float[Array, ...]) -> Float[Array, ...]:
        """c_s^2 = dp / d eps (in units of c^2) at pseudo-enthalpy ``h``."""
        s = self.state(h)
        return (s.pressure_mev_fm3 + s.energy_density_mev_fm3) / s.denergy_dh_mev_fm3

    def pressure_of_energy_density(self, energy_density_mev_fm3, *, iterations: int = 60):
        """p(eps) [MeV fm^-3], by bisection in h on the monotone eps(h) (jit-friendly)."""
        e = jnp.asarray(energy_density_mev_fm3)
        lo = jnp.zeros_like(e)
        hi = jnp.full_like(e, 1.0)

        def expand(_, hi_):
            return jnp.where(self.energy_density_mev_fm3(hi_) < e, 2.0 * hi_, hi_)

        hi = jax.lax.fori_loop(0, 8, expand, hi)

        def bisect(_, bounds):
            a, b = bounds
            mid = 0.5 * (a + b)
            below = self.energy_density_mev_fm3(mid) < e
            return jnp.where(below, mid, a), jnp.where(below, b, mid)

        lo, hi = jax.lax.fori_loop(0, iterations, bisect, (lo, hi))
        return self.pressure_mev_fm3(0.5 * (lo + hi))

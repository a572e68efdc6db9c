"""The Fujimoto-Fukushima-Murase family: SLy4 below rho0, constant c_s^2 segments above."""

from __future__ import annotations

import functools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import units
from .._config import require_x64
from .._typing import Array, Float
from ._base import AbstractEOS, EOSState
from ._errors import EOSValidationError
from ._pieces import sound_speed_enthalpy, sound_speed_state
from ._reference import sly4
from ._tabulated import Tabulated, cut_table

DEFAULT_BOUNDARIES_RHO0 = (1.0, 1.4, 2.2, 3.3, 4.9, 7.4)
"""Energy-density boundaries of the 5 segments of arXiv:1711.06748, in units of rho0 c^2.
The last segment's c_s^2 continues above the last boundary."""
DEFAULT_MAX_CENTRAL_ENERGY_DENSITY_RHO0 = 15.0
"""Top of the default M-R sequence, eps_c = 15 rho0 c^2 (2270 MeV fm^-3): beyond the
maximum-mass star of every EoS of the family that reaches 1 M_sun."""


@functools.cache
def sly4_crust(energy_density_mev_fm3: float = units.SATURATION_ENERGY_DENSITY_MEV_FM3):
    """The SLy4 table cut at the given energy density, with the cut point as its last row."""
    with jax.ensure_compile_time_eval():  # built once, possibly while tracing
        return cut_table(
            sly4(),
            energy_density_mev_fm3,
            name=f"SLy4 crust (eps < {energy_density_mev_fm3:.2f} MeV fm^-3)",
        )


class SpeedOfSoundSegments(AbstractEOS):
    """SLy4 up to rho0, then K segments of constant squared speed of sound.

    p(eps) is continuous and analytic on each segment: p = p_k + c_k^2 (eps - eps_k).

    Parameters
    ----------
    cs2 : array, shape (K,)
        Squared speed of sound (units of c^2) in each segment, each in (0, 1].
    boundaries_rho0 : tuple of float, length K + 1
        Segment boundaries in energy density, in units of rho0 c^2 = 151.46 MeV fm^-3. The
        first must be 1 (the crust ends at rho0); the last segment continues above the last.
    max_central_energy_density_rho0 : float
        Top of the default central-pressure range, in units of rho0 c^2.

    **References:** Fujimoto, Fukushima & Murase 2018, PRD 98, 023019 (arXiv:1711.06748);
    2020, PRD 101, 054016 (arXiv:1903.03400).
    """

    cs2: Float[Array, " K"]
    boundaries_rho0: tuple[float, ...] = eqx.field(static=True)
    max_central_energy_density_rho0: float = eqx.field(static=True)

    def __init__(
        self,
        cs2=(0.3, 0.5, 0.5, 0.4, 0.3),
        boundaries_rho0: tuple[float, ...] = DEFAULT_BOUNDARIES_RHO0,
        max_central_energy_density_rho0: float = DEFAULT_MAX_CENTRAL_ENERGY_DENSITY_RHO0,
    ):
        require_x64()
        self.cs2 = jnp.asarray(cs2, float)
        self.boundaries_rho0 = tuple(float(b) for b in boundaries_rho0)
        self.max_central_energy_density_rho0 = float(max_central_energy_density_rho0)
        if self.cs2.ndim != 1 or self.cs2.shape[0] != len(self.boundaries_rho0) - 1:
            raise EOSValidationError(
                f"cs2 has shape {self.cs2.shape}; with {len(self.boundaries_rho0)} boundaries "
                f"it must have shape ({len(self.boundaries_rho0) - 1},)."
            )
        if self.boundaries_rho0[0] != 1.0 or np.any(np.diff(self.boundaries_rho0) <= 0):
            raise EOSValidationError(
                f"boundaries_rho0 {self.boundaries_rho0} must start at 1 and increase strictly."
            )
        if not isinstance(self.cs2, jax.core.Tracer):
            values = np.asarray(self.cs2)
            bad = np.nonzero(~((values > 0) & (values <= 1)))[0]
            if bad.size:
                raise EOSValidationError(
                    f"cs2[{bad[0]}] = {values[bad[0]]:.6g} is outside (0, 1]: the speed of "
                    "sound must be real and causal."
                )

    @property
    def crust(self) -> Tabulated:
        return sly4_crust()

    def _segments(self):
        """(h, p, eps) at the lower end of each segment.

        In closed form with cumulative sums (p_k = p_0 + sum c_j^2 d eps_j, and h from
        dh = c_s^2 / (1 + c_s^2) d ln(eps + p)): every EoS evaluation calls this, so a few
        vectorised operations instead of a loop per segment keep the compiled likelihood
        small (the loop was a tenth of its operations).
        """
        crust = self.crust
        e0 = crust.node_energy_density_mev_fm3[-1]
        e_lo = e0 * jnp.asarray(self.boundaries_rho0[:-1]) / self.boundaries_rho0[0]
        s = self.cs2[:-1]
        p_lo = crust.node_pressure_mev_fm3[-1] + jnp.concatenate(
            [jnp.zeros(1), jnp.cumsum(s * jnp.diff(e_lo))]
        )
        log_ep = jnp.log(e_lo + p_lo)
        h_lo = crust.node_enthalpy[-1] + jnp.concatenate(
            [jnp.zeros(1), jnp.cumsum(s / (1.0 + s) * jnp.diff(log_ep))]
        )
        return h_lo, p_lo, e_lo

    def state(self, h) -> EOSState:
        h = jnp.asarray(h)
        h_k, p_k, e_k = self._segments()
        in_core = h >= h_k[0]
        crust = self.crust.state(jnp.minimum(h, h_k[0]))
        hc = jnp.maximum(h, h_k[0])
        k = jnp.clip(jnp.searchsorted(h_k, hc, side="right") - 1, 0, h_k.shape[0] - 1)
        core = sound_speed_state(hc, h_k[k], p_k[k], e_k[k], self.cs2[k])
        return EOSState(*(jnp.where(in_core, a, b) for a, b in zip(core, crust, strict=True)))

    def enthalpy(self, pressure_mev_fm3):
        p = jnp.asarray(pressure_mev_fm3)
        h_k, p_k, e_k = self._segments()
        in_core = p >= p_k[0]
        crust = self.crust.enthalpy(jnp.minimum(p, p_k[0]))
        pc = jnp.maximum(p, p_k[0])
        k = jnp.clip(jnp.searchsorted(p_k, pc, side="right") - 1, 0, h_k.shape[0] - 1)
        core = sound_speed_enthalpy(pc, h_k[k], p_k[k], e_k[k], self.cs2[k])
        return jnp.where(in_core, core, crust)

    @property
    def enthalpy_breaks(self):
        return jnp.concatenate([self.crust.breaks, self._segments()[0]])

    def default_central_pressure_range_mev_fm3(self):
        """From p(rho0) to p at eps = ``max_central_energy_density_rho0`` rho0 c^2."""
        _, p_k, e_k = self._segments()
        e_max = e_k[0] * self.max_central_energy_density_rho0
        k = jnp.clip(jnp.searchsorted(e_k, e_max, side="right") - 1, 0, None)
        return p_k[0], p_k[k] + self.cs2[k] * (e_max - e_k[k])

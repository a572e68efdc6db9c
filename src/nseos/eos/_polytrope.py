"""Piecewise polytropes, including the Read et al. (2009) four-parameter family."""

from __future__ import annotations

import csv
from importlib import resources

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .. import units
from .._config import require_x64
from .._typing import Array, Float
from ._base import AbstractEOS, EOSState
from ._errors import EOSValidationError
from ._pieces import (
    PolytropicPieces,
    polytrope_enthalpy,
    polytrope_state,
    polytropic_pieces,
)

READ2009_RHO1_G_CM3 = 10**14.7
"""First core dividing rest-mass density of Read et al. (2009); p1 is the pressure there."""
READ2009_RHO2_G_CM3 = 10**15.0
"""Second core dividing rest-mass density of Read et al. (2009)."""
_LOG_DYN_CM2_PER_MEV_FM3 = np.log(units.MEV_FM3_TO_DYN_CM2)
_LOG_G_CM3_PER_MEV_FM3 = np.log(units.MEV_FM3_TO_G_CM3)


class PiecewisePolytrope(AbstractEOS):
    """p = K_i rho^Gamma_i on consecutive rest-mass-density pieces, eps from the first law.

    Parameters
    ----------
    rest_mass_bounds_mev_fm3 : array, shape (n_pieces,)
        Lower bound of each piece in rest-mass energy density rho c^2 [MeV fm^-3]; the first
        must be 0 (the surface), the others ascending. The last piece extends to infinity.
    log_k_ref : float
        ln K of piece ``ref_piece``, for p [MeV fm^-3] = K (rho c^2 [MeV fm^-3])^Gamma;
        continuity of p fixes the other pieces' K.
    gamma : array, shape (n_pieces,)
        Adiabatic indices Gamma_i.
    max_central_pressure_mev_fm3 : float
        Upper end of the default M-R sequence.
    ref_piece : int
        The piece whose K is given (static).

    Notes
    -----
    eps_i(rho) = (1 + a_i) rho + K_i rho^Gamma_i / (Gamma_i - 1), with a_0 = 0 and a_i fixed by
    continuity of eps, so that h = ln((eps + p) / rho) is continuous and h(0) = 0. The dividing
    densities are enthalpy breaks of the TOV solver.

    **References:** Read, Lackey, Owen & Friedman 2009, PRD 79, 124032 (arXiv:0812.2163).
    """

    rest_mass_bounds_mev_fm3: Float[Array, " n_pieces"]
    log_k_ref: Float[Array, ""]
    gamma: Float[Array, " n_pieces"]
    max_central_pressure_mev_fm3: Float[Array, ""]
    ref_piece: int = eqx.field(static=True)

    def __init__(
        self,
        rest_mass_bounds_mev_fm3,
        log_k_ref,
        gamma,
        max_central_pressure_mev_fm3,
        ref_piece: int = 0,
    ):
        require_x64()
        self.rest_mass_bounds_mev_fm3 = jnp.asarray(rest_mass_bounds_mev_fm3, float)
        self.log_k_ref = jnp.asarray(log_k_ref, float)
        self.ref_piece = int(ref_piece)
        self.gamma = jnp.asarray(gamma, float)
        self.max_central_pressure_mev_fm3 = jnp.asarray(max_central_pressure_mev_fm3, float)
        if self.gamma.shape != self.rest_mass_bounds_mev_fm3.shape:
            raise EOSValidationError("gamma and rest_mass_bounds_mev_fm3 need the same shape.")

    # --- node thermodynamics (jnp, differentiable in the parameters) --------------------------
    def _nodes(self):
        """(h, p, eps) at each piece's lower bound; the first piece's anchor is its upper end."""
        rho = self.rest_mass_bounds_mev_fm3
        g = self.gamma
        # ln K_i from continuity of p at each dividing density.
        log_rho = jnp.log(jnp.where(rho > 0, rho, 1.0))
        steps = (g[:-1] - g[1:]) * log_rho[1:]
        cum = jnp.concatenate([jnp.zeros(1), jnp.cumsum(steps)])
        log_k = self.log_k_ref + cum - cum[self.ref_piece]
        # Pressure and the specific internal-energy jump at each boundary.
        p_b = jnp.exp(log_k[1:] + g[1:] * log_rho[1:])  # p at rho_i, i >= 1
        # a_i - a_{i-1} = K_{i-1} rho_i^(G_{i-1}-1)/(G_{i-1}-1) - K_i rho_i^(G_i-1)/(G_i-1)
        #              = (p_i / rho_i) (1/(G_{i-1}-1) - 1/(G_i-1))
        da = p_b / rho[1:] * (1.0 / (g[:-1] - 1.0) - 1.0 / (g[1:] - 1.0))
        a = jnp.concatenate([jnp.zeros(1), jnp.cumsum(da)])
        e_b = (1.0 + a[1:]) * rho[1:] + p_b / (g[1:] - 1.0)
        h_b = jnp.log((e_b + p_b) / rho[1:])
        # Anchor of piece 0: any point with p > 0 on it (its lower end has p = 0); take its
        # upper end, or rho c^2 = 100 MeV fm^-3 for a single polytrope.
        rho_a = rho[1] if rho.shape[0] > 1 else jnp.asarray(100.0)
        p_a0 = jnp.exp(log_k[0] + g[0] * jnp.log(rho_a))
        e_a0 = rho_a + p_a0 / (g[0] - 1.0)
        h_a0 = jnp.log((e_a0 + p_a0) / rho_a)
        h_anchor = jnp.concatenate([h_a0[None], h_b])
        p_anchor = jnp.concatenate([p_a0[None], p_b])
        e_anchor = jnp.concatenate([e_a0[None], e_b])
        h_lower = jnp.concatenate([jnp.zeros(1), h_b])
        return h_lower, h_anchor, p_anchor, e_anchor, log_k

    def state(self, h) -> EOSState:
        h = jnp.asarray(h)
        h_lower, h_a, p_a, e_a, _ = self._nodes()
        i = jnp.clip(jnp.searchsorted(h_lower, h, side="right") - 1, 0, h_lower.shape[0] - 1)
        pieces = polytropic_pieces(h_a, p_a, e_a, self.gamma)
        return EOSState(*polytrope_state(h, PolytropicPieces(*(v[i] for v in pieces))))

    def enthalpy(self, pressure_mev_fm3):
        p = jnp.asarray(pressure_mev_fm3)
        h_lower, h_a, p_a, e_a, _ = self._nodes()
        p_lower = jnp.concatenate([jnp.zeros(1), p_a[1:]])
        i = jnp.clip(jnp.searchsorted(p_lower, p, side="right") - 1, 0, h_lower.shape[0] - 1)
        return polytrope_enthalpy(p, h_a[i], p_a[i], e_a[i], self.gamma[i])

    @property
    def enthalpy_breaks(self):
        return self._nodes()[0][1:]

    def default_central_pressure_range_mev_fm3(self):
        """From the pressure at rho c^2 = rho0 c^2 to ``max_central_pressure_mev_fm3``."""
        log_k = self._nodes()[-1]
        rho0 = units.SATURATION_ENERGY_DENSITY_MEV_FM3
        i = jnp.clip(jnp.searchsorted(self.rest_mass_bounds_mev_fm3, rho0) - 1, 0, None)
        p_lo = jnp.exp(log_k[i] + self.gamma[i] * jnp.log(rho0))
        return p_lo, self.max_central_pressure_mev_fm3


def polytrope(k: float, gamma: float, *, max_central_pressure_mev_fm3: float = 1e4):
    """A single polytrope p = K rho^Gamma in units G = c = M_sun = 1.

    With K = 100, Gamma = 2 this is the standard test star of numerical relativity
    (M_max = 1.637 M_sun).
    """
    require_x64()
    # Density and pressure in G = c = M_sun = 1 units are L^-2 with L = G M_sun / c^2; in km^-2
    # a value v becomes v / L^2, and km^-2 converts to MeV fm^-3 through MEV_FM3_TO_GEOMETRIC_KM2.
    log_l = np.log(units.SOLAR_MASS_KM)
    log_c = np.log(units.MEV_FM3_TO_GEOMETRIC_KM2)
    log_k0 = np.log(k) + (2 * gamma - 2) * log_l + (gamma - 1) * log_c
    return PiecewisePolytrope(
        np.zeros(1),
        log_k0,
        np.full(1, float(gamma)),
        max_central_pressure_mev_fm3,
    )


def _read_crust():
    path = resources.files("nseos.data.eos").joinpath("read2009_sly_crust.csv")
    with path.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rho = np.array([float(r["rho_lower_g_cm3"]) for r in rows])
    gamma = np.array([float(r["gamma"]) for r in rows])
    k_cgs = np.array([float(r["K_for_p_in_dyn_cm2"]) for r in rows])
    return rho, gamma, k_cgs


def read2009(log10_p1_dyn_cm2, gamma1, gamma2, gamma3, *, max_central_pressure_mev_fm3=3e3):
    """Read et al. (2009) piecewise polytrope: the 4-piece SLy crust plus three core pieces.

    Parameters
    ----------
    log10_p1_dyn_cm2 : float or array
        log10 of the pressure [dyn cm^-2] at rho1 = 10^14.7 g cm^-3.
    gamma1, gamma2, gamma3 : float or array
        Adiabatic indices below rho1, between rho1 and rho2 = 10^15 g cm^-3, and above rho2.

    All four may be traced (jit, vmap, grad). The crust-core density rho0 is where the last
    crust piece meets the Gamma1 piece.
    """
    require_x64()
    rho_c, gamma_c, k_c = _read_crust()
    # Convert K from (p [dyn cm^-2], rho [g cm^-3]) to (p [MeV fm^-3], rho c^2 [MeV fm^-3]).
    log_k_c = np.log(k_c) + gamma_c * _LOG_G_CM3_PER_MEV_FM3 - _LOG_DYN_CM2_PER_MEV_FM3
    log_rho_c = np.log(np.where(rho_c > 0, rho_c, 1.0)) - _LOG_G_CM3_PER_MEV_FM3
    log_rho1 = np.log(READ2009_RHO1_G_CM3) - _LOG_G_CM3_PER_MEV_FM3
    log_rho2 = np.log(READ2009_RHO2_G_CM3) - _LOG_G_CM3_PER_MEV_FM3
    g1, g2, g3 = (jnp.asarray(g, float) for g in (gamma1, gamma2, gamma3))
    log_p1 = jnp.asarray(log10_p1_dyn_cm2, float) * np.log(10.0) - _LOG_DYN_CM2_PER_MEV_FM3
    log_k1 = log_p1 - g1 * log_rho1
    log_rho0 = (log_k_c[-1] - log_k1) / (g1 - gamma_c[-1])
    bounds = jnp.concatenate(
        [
            jnp.where(rho_c > 0, jnp.exp(log_rho_c), 0.0),
            jnp.exp(jnp.stack([log_rho0, jnp.asarray(log_rho1), jnp.asarray(log_rho2)])),
        ]
    )
    gamma = jnp.concatenate([jnp.asarray(gamma_c), jnp.stack([g1, g2, g3])])
    # Anchor K at the Gamma1 piece, so that p(rho1) = p1 exactly (the crust constants are
    # continuous only to ~1e-7 in the source, so chaining up from the surface would not be).
    return PiecewisePolytrope(
        bounds, log_k1, gamma, max_central_pressure_mev_fm3, ref_piece=rho_c.shape[0]
    )


def read2009_parameters() -> dict[str, tuple[float, float, float, float]]:
    """The 34 named parameter sets of Read et al. (2009) Table III.

    Returns a mapping name -> (log10 p1 [dyn cm^-2], Gamma1, Gamma2, Gamma3).
    """
    path = resources.files("nseos.data.eos").joinpath("read2009_piecewise_polytropes.csv")
    with path.open(encoding="utf-8") as fh:
        return {
            r["name"]: (
                float(r["log10_p1_dyn_cm2"]),
                float(r["gamma1"]),
                float(r["gamma2"]),
                float(r["gamma3"]),
            )
            for r in csv.DictReader(fh)
        }


def read2009_named(name: str) -> PiecewisePolytrope:
    """A named Read et al. (2009) EoS (case-insensitive), e.g. ``read2009_named("SLy")``."""
    table = read2009_parameters()
    lookup = {k.lower(): k for k in table}
    key = lookup.get(name.lower())
    if key is None:
        raise KeyError(f"unknown Read et al. 2009 EoS {name!r}; choose from {', '.join(table)}")
    return read2009(*table[key])

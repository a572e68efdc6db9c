"""Closed-form thermodynamics of the EoS building blocks, as functions of pseudo-enthalpy.

The TOV solver integrates in the pseudo-enthalpy h = ln(mu / mu_surface), where
mu = (eps + p) / n is the baryon chemical potential, so dh = dp / (eps + p). Every EoS in nseos
is built from pieces on which p(h), eps(h) and d eps / dh are analytic:

* **polytropic pieces**, p = K n^Gamma in the baryon (rest-mass) density n, with eps from the
  first law d eps = (eps + p) dn / n. This covers the Read et al. (2009) piecewise polytropes
  and the thermodynamically consistent interpolation of tables (one piece per table interval);
* **constant-speed-of-sound pieces**, p = p_a + c_s^2 (eps - eps_a), the family of Fujimoto,
  Fukushima and Murase.

Each piece is described by an *anchor* point (h_a, p_a, eps_a) on it and its exponent. All
functions here are pure jax.numpy and work elementwise, so they vmap and differentiate.
Pressures and energy densities are in MeV fm^-3.
"""

from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

# Below this |Gamma - 1| the expansion log1p(w t) / t = w - w^2 t / 2 is used; its error,
# O(w^3 t^2), is then below double-precision round-off for the |w| < 1e3 met in practice.
_GAMMA_ONE_EPS = 1e-7


class PolytropicPieces(NamedTuple):
    """Per-piece constants of polytropic pieces, precomputed once per EoS (not per point)."""

    h_a: jnp.ndarray
    log_p_a: jnp.ndarray
    log_ep_a: jnp.ndarray
    w_coef: jnp.ndarray
    gamma: jnp.ndarray


def polytropic_pieces(h_a, p_a, e_a, gamma) -> PolytropicPieces:
    """Constants of polytropic pieces anchored at (h_a, p_a, eps_a) with exponents Gamma."""
    return PolytropicPieces(
        h_a, jnp.log(p_a), jnp.log(e_a + p_a), (e_a + p_a) / (p_a * gamma), gamma
    )


def polytrope_state(h, pieces: PolytropicPieces):
    """Pressure, energy density and d eps / dh on a polytropic piece p = K n^Gamma.

    Parameters
    ----------
    h : array
        Pseudo-enthalpy.
    pieces : PolytropicPieces
        The constants of the piece at each point (already gathered or broadcastable).

    Returns
    -------
    tuple of arrays
        ``(p, eps, deps_dh)`` in MeV fm^-3. With x = n / n_a and z = x^(Gamma - 1), the first
        law gives (eps + p) / n = mu_a + Gamma p_a (z - 1) / ((Gamma - 1) n_a), and
        mu / mu_a = exp(h - h_a), so z follows in closed form.
    """
    h_a, log_p_a, log_ep_a, w_coef, gamma = pieces
    t = gamma - 1.0
    dh = h - h_a
    w = w_coef * jnp.expm1(dh)
    small = jnp.abs(t) < _GAMMA_ONE_EPS
    t_safe = jnp.where(small, 1.0, t)
    # z = 1 + w t > 0 inside the piece; at the surface of a pure polytrope z -> 0 and the
    # clamp keeps ln z finite (n / n_a ~ 1e-15^(1 / (Gamma - 1)), i.e. p ~ 0).
    arg = jnp.maximum(w * t_safe, -1.0 + 1e-15)
    log_x = jnp.where(small, w - 0.5 * w * w * t, jnp.log1p(arg) / t_safe)  # ln(n / n_a)
    p = jnp.exp(log_p_a + gamma * log_x)
    e_plus_p = jnp.exp(log_ep_a + dh + log_x)
    # (eps + p)^2 / (Gamma p): finite at the surface of a pure polytrope too, where p is tiny
    # but not zero (see the clamp), tending to 0 for Gamma < 2 and a constant for Gamma = 2.
    return p, e_plus_p - p, e_plus_p * e_plus_p / (gamma * p)


def polytrope_enthalpy(p, h_a, p_a, e_a, gamma):
    """Inverse of :func:`polytrope_state`: the enthalpy at pressure ``p`` on the piece."""
    log_x = jnp.log(p / p_a) / gamma
    t = gamma - 1.0
    small = jnp.abs(t) < _GAMMA_ONE_EPS
    t_safe = jnp.where(small, 1.0, t)
    w = jnp.where(small, log_x * (1.0 + 0.5 * log_x * t), jnp.expm1(t_safe * log_x) / t_safe)
    return h_a + jnp.log1p(w * p_a * gamma / (e_a + p_a))


def sound_speed_state(h, h_a, p_a, e_a, cs2):
    """Pressure, energy density and d eps / dh on a piece of constant c_s^2.

    On such a piece dh = c_s^2 / (1 + c_s^2) d ln(eps + p), so
    eps + p = (eps_a + p_a) exp((1 + c_s^2) (h - h_a) / c_s^2).
    """
    e_plus_p = (e_a + p_a) * jnp.exp((1.0 + cs2) / cs2 * (h - h_a))
    e = e_a + (e_plus_p - (e_a + p_a)) / (1.0 + cs2)
    p = p_a + cs2 * (e - e_a)
    return p, e, e_plus_p / cs2


def sound_speed_enthalpy(p, h_a, p_a, e_a, cs2):
    """Inverse of :func:`sound_speed_state`: the enthalpy at pressure ``p`` on the piece."""
    e = e_a + (p - p_a) / cs2
    return h_a + cs2 / (1.0 + cs2) * jnp.log((e + p) / (e_a + p_a))

"""Stars at given masses, solved directly, with cheap exact derivatives.

Interpolating on a :class:`MassRadiusCurve` is accurate, but differentiating through it
carries the tangents of every star of the sequence. Here the sequence only locates the
star (it is computed under ``stop_gradient``); the star itself is then solved directly, so
values carry the solver's accuracy, not the interpolation's, and derivatives follow from the
implicit-function theorem on one stellar solve: at fixed mass m,
dh_c/dtheta = -(dM/dtheta) / (dM/dh_c), implemented as Newton steps
h1 = h0 - (M(h0) - m) / stop_gradient(dM/dh_c) from a stopped h0.

The maximum mass needs no such help: :attr:`MassRadiusCurve.max_mass_msun` is a smooth
function of the sequence and differentiates exactly.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..eos import AbstractEOS
from ._curve import DEFAULT_N_STARS, MassRadiusCurve, mass_radius_curve
from ._solver import RK4, StarSolution, solve_star

_NEWTON_PASSES = 2
"""Newton passes from the interpolated central enthalpy. The sequence's cubic interpolation
puts the first guess within ~1e-6 in mass, so two passes reach the solver's precision and make
the implicit-function derivative exact to ~1e-10."""


def _locating_curve(eos, curve, method):
    if curve is None:
        curve = mass_radius_curve(jax.lax.stop_gradient(eos), DEFAULT_N_STARS, method)
    return jax.lax.stop_gradient(curve)


def solve_at_mass(
    eos: AbstractEOS,
    mass_msun,
    method: RK4 = RK4(),
    curve: MassRadiusCurve | None = None,
) -> tuple[StarSolution, jax.Array]:
    """Solve the stable stars of the given gravitational masses directly.

    Parameters
    ----------
    eos : AbstractEOS
        The EoS; derivatives with respect to its parameters are exact (to solver accuracy).
    mass_msun : array
        Target masses [M_sun], any shape.
    method : RK4
        Solver settings.
    curve : MassRadiusCurve, optional
        A sequence for ``eos`` used to locate the stars (computed if not given; it never
        carries derivatives).

    Returns
    -------
    (StarSolution, valid)
        The stars, and a boolean mask that is False where the mass is off the stable branch
        (there the star is a placeholder and must be masked by the caller).
    """
    m = jnp.asarray(mass_msun, float)
    curve = _locating_curve(eos, curve, method)
    valid = curve.contains(m)
    p0 = jnp.where(valid, curve.central_pressure_at(m), curve.central_pressure_mev_fm3[-1])
    h0 = jax.lax.stop_gradient(eos.enthalpy(p0))

    def solve_and_slope(h):
        return jax.jvp(lambda h_: solve_star(eos, h_, method), (h,), (jnp.ones_like(h),))

    def newton(h, target):
        # Each pass: the star at a stopped h_c, its slopes along h_c, and the Newton-corrected
        # properties; only the last pass's outputs are kept. One solve is compiled, however
        # many passes run.
        def body(_, carry):
            h_c, _ = carry
            star, slope = solve_and_slope(jax.lax.stop_gradient(h_c))
            step = (star.mass_msun - target) / jax.lax.stop_gradient(slope.mass_msun)
            corrected = StarSolution(
                *(
                    v - jax.lax.stop_gradient(dv) * step
                    for v, dv in zip(star[:-1], slope[:-1], strict=True)
                ),
                status=star.status,
            )
            return jax.lax.stop_gradient(h_c - step), corrected

        # The carry's star is overwritten by the first pass: zeros of the right structure.
        shape = jax.eval_shape(solve_star, eos, h, method)
        placeholder = jax.tree_util.tree_map(lambda a: jnp.zeros(a.shape, a.dtype), shape)
        return jax.lax.fori_loop(0, _NEWTON_PASSES, body, (h, placeholder))[1]

    flat = jax.vmap(newton)(h0.reshape(-1), m.reshape(-1))
    return jax.tree_util.tree_map(lambda v: v.reshape(m.shape), flat), valid

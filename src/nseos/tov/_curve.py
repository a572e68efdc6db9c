"""Mass-radius-tidal sequences on a fixed central-pressure grid, with jit-friendly lookups."""

from __future__ import annotations

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from .._config import require_x64
from .._typing import Array, Bool, Float, Int
from ..eos import AbstractEOS
from ._solver import RK4, SolveStatus, solve_star

DEFAULT_N_STARS = 100
"""Stars per sequence. With cubic Hermite lookups, 100 log-spaced central pressures put the
interpolation error of R(M) below 1 m (see docs/performance.md)."""
_NEWTON_ITERATIONS = 5


class TOVSolveError(RuntimeError):
    """A stellar solve failed (non-finite or unphysical result)."""


class BranchPoint(NamedTuple):
    """Stars on the stable branch, parameterised by ln p_c (see ``along_branch``)."""

    mass_msun: Float[Array, ...]
    radius_km: Float[Array, ...]
    tidal_deformability: Float[Array, ...]
    dmass_dlog_pressure_msun: Float[Array, ...]


class MassRadiusCurve(eqx.Module):
    """A sequence of stars over a log-spaced central-pressure grid.

    All arrays have shape (n_stars,) (plus any leading batch axes when vmapped). The maximum
    mass is located beyond the grid resolution: a parabola through the three grid points
    around the discrete maximum gives its central pressure; cubic Hermite interpolation of M,
    R and ln Lambda gives the values there.
    The stable branch is the sequence from the first star up to the maximum mass.
    ``radius_at`` and ``lambda_at`` interpolate on it with cubic Hermite splines in
    ln p_c (R and ln Lambda), after inverting M(ln p_c) by Newton iterations.
    """

    central_pressure_mev_fm3: Float[Array, " n_stars"]
    central_enthalpy: Float[Array, " n_stars"]
    mass_msun: Float[Array, " n_stars"]
    radius_km: Float[Array, " n_stars"]
    love_number_k2: Float[Array, " n_stars"]
    tidal_deformability: Float[Array, " n_stars"]
    status: Int[Array, " n_stars"]
    stable: Bool[Array, " n_stars"]
    max_mass_msun: Float[Array, ""]
    radius_at_max_mass_km: Float[Array, ""]
    tidal_deformability_at_max_mass: Float[Array, ""]
    central_pressure_at_max_mass_mev_fm3: Float[Array, ""]
    max_mass_reached: Bool[Array, ""]
    # Stable branch with the maximum inserted, padded to n_stars + 1 (entries > last unused).
    branch_log_pressure: Float[Array, " n_stars+1"]
    branch_mass_msun: Float[Array, " n_stars+1"]
    branch_radius_km: Float[Array, " n_stars+1"]
    branch_log_lambda: Float[Array, " n_stars+1"]
    branch_last: Int[Array, ""]
    # Slopes d/d ln p_c of the Hermite interpolants at the branch nodes, computed once per
    # sequence (every lookup shares them: the compiled likelihood holds one copy, not one per
    # lookup); the mass slope is zero at a reached maximum.
    branch_mass_slope: Float[Array, " n_stars+1"]
    branch_radius_slope: Float[Array, " n_stars+1"]
    branch_log_lambda_slope: Float[Array, " n_stars+1"]

    @property
    def failed(self) -> Bool[Array, ""]:
        """True if any star of the sequence failed to solve.

        The whole grid counts, not only the stable branch: a failure can hide the true
        maximum (the sequence would then end early at a spurious one).
        """
        return jnp.any(self.status != SolveStatus.SUCCESS)

    @property
    def min_mass_msun(self) -> Float[Array, ""]:
        """Mass of the lightest star on the sequence."""
        return self.branch_mass_msun[0]

    def contains(self, mass_msun) -> Bool[Array, ...]:
        """Whether a star of this mass lies on the stable branch of the sequence."""
        m = jnp.asarray(mass_msun)
        return (m >= self.branch_mass_msun[0]) & (m <= self.max_mass_msun)

    def _locate(self, mass_msun):
        """Segment index and local coordinate s in [0, 1] of each mass on the stable branch."""
        m = jnp.asarray(mass_msun)
        last = self.branch_last
        idx = jnp.arange(self.branch_mass_msun.shape[0])
        masses = jnp.where(idx <= last, self.branch_mass_msun, jnp.inf)
        k = jnp.clip(jnp.searchsorted(masses, m, side="right") - 1, 0, last - 1)
        t = self.branch_log_pressure
        dt = t[k + 1] - t[k]
        d_m = self.branch_mass_slope
        m0, m1 = self.branch_mass_msun[k], self.branch_mass_msun[k + 1]
        d0, d1 = dt * d_m[k], dt * d_m[k + 1]

        def newton_step(s, m0, m1, d0, d1, m):
            f, df = _hermite(s, m0, m1, d0, d1)
            return jnp.clip(s - (f - m) / jnp.maximum(df, 1e-12 * (m1 - m0)), 0.0, 1.0)

        # Converge without a gradient, then take one differentiable step: at the root, its
        # derivative is the implicit-function one, ds = -(df/dtheta) / (df/ds), so reverse
        # mode stores one step instead of all of them.
        frozen = jax.lax.stop_gradient((m0, m1, d0, d1, m))
        s = jnp.clip((frozen[-1] - frozen[0]) / (frozen[1] - frozen[0]), 0.0, 1.0)
        s = jax.lax.fori_loop(0, _NEWTON_ITERATIONS, lambda _, s: newton_step(s, *frozen), s)
        return k, newton_step(jax.lax.stop_gradient(s), m0, m1, d0, d1, m), dt

    def _interpolate(self, mass_msun, *values_and_slopes):
        """Hermite values of each (values, slopes) pair at the given masses, sharing one M
        inversion."""
        k, s, dt = self._locate(mass_msun)
        inside = self.contains(mass_msun)
        out = []
        for v, d in values_and_slopes:
            f, _ = _hermite(s, v[k], v[k + 1], dt * d[k], dt * d[k + 1])
            out.append(jnp.where(inside, f, jnp.nan))
        return out

    def radius_at(self, mass_msun) -> Float[Array, ...]:
        """Radius [km] of the stable star of the given mass; NaN off the stable branch
        (check with :meth:`contains`)."""
        return self._interpolate(mass_msun, self._radius)[0]

    def lambda_at(self, mass_msun) -> Float[Array, ...]:
        """Tidal deformability of the stable star of the given mass; NaN off the branch."""
        return jnp.exp(self._interpolate(mass_msun, self._log_lambda)[0])

    def radius_and_lambda_at(self, mass_msun) -> tuple[Float[Array, ...], Float[Array, ...]]:
        """``(radius_at(m), lambda_at(m))`` with a single inversion of M(p_c)."""
        r, log_lam = self._interpolate(mass_msun, self._radius, self._log_lambda)
        return r, jnp.exp(log_lam)

    @property
    def _radius(self):
        return self.branch_radius_km, self.branch_radius_slope

    @property
    def _log_lambda(self):
        return self.branch_log_lambda, self.branch_log_lambda_slope

    def along_branch(self, log_central_pressure) -> BranchPoint:
        """Stars at given ln p_c [ln(MeV fm^-3)] on the stable branch, with dM/d ln p_c.

        The same cubic Hermite interpolation as :meth:`radius_at`, but parameterised by the
        central pressure, so nothing is inverted: values and derivatives stay smooth up to
        the maximum mass, where dM/d ln p_c -> 0. This is the parameterisation for
        quadrature along the branch. Points outside the branch are clamped to its ends.
        """
        t = jnp.asarray(log_central_pressure)
        last = self.branch_last
        nodes = self.branch_log_pressure
        idx = jnp.arange(nodes.shape[0])
        masked = jnp.where(idx <= last, nodes, jnp.inf)
        k = jnp.clip(jnp.searchsorted(masked, t, side="right") - 1, 0, last - 1)
        s = jnp.clip((t - nodes[k]) / (nodes[k + 1] - nodes[k]), 0.0, 1.0)
        return self._branch_point(k, s)

    def _branch_point(self, k, s) -> BranchPoint:
        nodes = self.branch_log_pressure
        dt = nodes[k + 1] - nodes[k]
        out = []
        for values, d in (
            (self.branch_mass_msun, self.branch_mass_slope),
            self._radius,
            self._log_lambda,
        ):
            out.append(_hermite(s, values[k], values[k + 1], dt * d[k], dt * d[k + 1]))
        (m, dm_ds), (r, _), (log_lam, _) = out
        return BranchPoint(m, r, jnp.exp(log_lam), dm_ds / jnp.where(dt > 0, dt, 1.0))

    def central_pressure_at(self, mass_msun) -> Float[Array, ...]:
        """Central pressure [MeV fm^-3] of the stable star of the given mass."""
        k, s, dt = self._locate(mass_msun)
        t = self.branch_log_pressure[k] + s * dt
        return jnp.where(self.contains(mass_msun), jnp.exp(t), jnp.nan)


def _hermite(s, f0, f1, d0, d1):
    """Cubic Hermite value and d/ds on [0, 1] (d0, d1 are slopes times the interval)."""
    s2, s3 = s * s, s * s * s
    f = (
        (2 * s3 - 3 * s2 + 1) * f0
        + (s3 - 2 * s2 + s) * d0
        + (-2 * s3 + 3 * s2) * f1
        + (s3 - s2) * d1
    )
    df = (6 * s2 - 6 * s) * f0 + (3 * s2 - 4 * s + 1) * d0 + (6 * s - 6 * s2) * f1
    df = df + (3 * s2 - 2 * s) * d1
    return f, df


def _node_slopes(t, f, last):
    """Second-order slopes df/dt at the nodes 0..last of a non-uniform sequence ``t``; ``f``
    may stack several sequences on leading axes (one set of index operations for all)."""
    n = t.shape[0]
    i = jnp.arange(n)
    im, ip = jnp.clip(i - 1, 0, n - 1), jnp.clip(i + 1, 0, n - 1)
    lead = (1,) * (jnp.ndim(f) - 1)  # explicit broadcasting over the stacked sequences
    a = (t - t[im]).reshape((*lead, n))
    b = (t[ip] - t).reshape((*lead, n))
    sa = (f - f[..., im]) / jnp.where(a > 0, a, 1.0)
    sb = (f[..., ip] - f) / jnp.where(b > 0, b, 1.0)
    central = (b * sa + a * sb) / jnp.where(a + b > 0, a + b, 1.0)
    # One-sided second-order slopes at the two ends.
    a0, b0 = t[1] - t[0], t[2] - t[1]
    s0, s1 = (f[..., 1] - f[..., 0]) / a0, (f[..., 2] - f[..., 1]) / b0
    first = s0 * (2 * a0 + b0) / (a0 + b0) - s1 * a0 / (a0 + b0)
    al, bl = t[last - 1] - t[last - 2], t[last] - t[last - 1]
    f_l = jnp.take(f, jnp.stack([last - 2, last - 1, last]), axis=-1)
    sl_a, sl_b = (f_l[..., 1] - f_l[..., 0]) / al, (f_l[..., 2] - f_l[..., 1]) / bl
    end = sl_b * (2 * bl + al) / (al + bl) - sl_a * bl / (al + bl)
    i = i.reshape((*lead, n))
    out = jnp.where(i == 0, first[..., None], central)
    return jnp.where(i == last, end[..., None], out)


def mass_radius_curve(
    eos: AbstractEOS,
    n_stars: int = DEFAULT_N_STARS,
    method: RK4 = RK4(),
    central_pressure_range_mev_fm3: tuple[float, float] | None = None,
) -> MassRadiusCurve:
    """Solve a sequence of stars from about rho0 to beyond the maximum mass.

    Pure and jit/vmap/grad-friendly: the shapes depend only on ``n_stars``. Failures are
    recorded in ``status`` (see :class:`SolveStatus` and :attr:`MassRadiusCurve.failed`);
    use :func:`checked_mass_radius_curve` outside jit for an exception instead.

    Parameters
    ----------
    eos : AbstractEOS
        The equation of state.
    n_stars : int
        Number of central pressures, log-spaced.
    method : RK4
        The integration method and its accuracy setting.
    central_pressure_range_mev_fm3 : (float, float), optional
        Lowest and highest central pressure; defaults to the EoS's
        ``default_central_pressure_range_mev_fm3()``.
    """
    require_x64()
    if n_stars < 4:
        raise ValueError("n_stars must be at least 4.")
    if central_pressure_range_mev_fm3 is None:
        p_lo, p_hi = eos.default_central_pressure_range_mev_fm3()
    else:
        p_lo, p_hi = (jnp.asarray(v, float) for v in central_pressure_range_mev_fm3)
    t = jnp.linspace(jnp.log(p_lo), jnp.log(p_hi), n_stars)
    h_c = eos.enthalpy(jnp.exp(t))
    stars = jax.vmap(lambda h: solve_star(eos, h, method))(h_c)
    ok = stars.status == SolveStatus.SUCCESS
    masses = jnp.where(ok, stars.mass_msun, -jnp.inf)
    i_max = jnp.argmax(masses)
    reached = (i_max > 0) & (i_max < n_stars - 1)

    # Locate the maximum between grid points: vertex of the parabola through the three
    # points around the discrete maximum, then cubic Hermite values there (no extra solve, so
    # the sequence compiles as one vmapped integration).
    j = jnp.clip(i_max, 1, n_stars - 2)
    m_l, m_c, m_r = stars.mass_msun[j - 1], stars.mass_msun[j], stars.mass_msun[j + 1]
    dt = t[1] - t[0]
    curvature = m_l - 2.0 * m_c + m_r
    shift = 0.5 * dt * (m_l - m_r) / jnp.where(curvature < 0, curvature, -1.0)
    t_max = jnp.where(reached, t[j] + jnp.clip(shift, -dt, dt), t[-1])
    log_lam = jnp.log(jnp.maximum(stars.tidal_deformability, 1e-300))
    k = jnp.clip(jnp.searchsorted(t, t_max) - 1, 0, n_stars - 2)
    s = (t_max - t[k]) / dt

    grid = jnp.stack([stars.mass_msun, stars.radius_km, log_lam])
    d = _node_slopes(t, grid, n_stars - 1)
    at_max = _hermite(s, grid[:, k], grid[:, k + 1], dt * d[:, k], dt * d[:, k + 1])[0]
    m_max, r_max, log_lam_max = at_max[0], at_max[1], at_max[2]
    m_max = jnp.maximum(m_max, stars.mass_msun[i_max])

    # Stable branch with the maximum inserted in order (a duplicate of the last grid point
    # when the maximum is not reached).
    q = jnp.where(reached, jnp.searchsorted(t, t_max), n_stars)
    idx = jnp.arange(n_stars + 1)
    src = jnp.clip(jnp.where(idx < q, idx, idx - 1), 0, n_stars - 1)

    def insert(grid, value):
        return jnp.where(idx == q, value, grid[src])

    last = jnp.where(reached, q, n_stars - 1)
    branch_t = insert(t, t_max)
    branch = {
        "branch_mass_msun": insert(stars.mass_msun, m_max),
        "branch_radius_km": insert(stars.radius_km, r_max),
        "branch_log_lambda": insert(log_lam, log_lam_max),
    }
    d = _node_slopes(branch_t, jnp.stack(list(branch.values())), last)
    slopes = {
        "branch_mass_slope": jnp.where(idx == last, jnp.where(reached, 0.0, d[0]), d[0]),
        "branch_radius_slope": d[1],
        "branch_log_lambda_slope": d[2],
    }
    return MassRadiusCurve(
        central_pressure_mev_fm3=jnp.exp(t),
        central_enthalpy=h_c,
        mass_msun=stars.mass_msun,
        radius_km=stars.radius_km,
        love_number_k2=stars.love_number_k2,
        tidal_deformability=stars.tidal_deformability,
        status=stars.status,
        stable=t <= t_max,
        max_mass_msun=m_max,
        radius_at_max_mass_km=r_max,
        tidal_deformability_at_max_mass=jnp.exp(log_lam_max),
        central_pressure_at_max_mass_mev_fm3=jnp.exp(t_max),
        max_mass_reached=reached,
        branch_log_pressure=branch_t,
        branch_last=last,
        **branch,
        **slopes,
    )


def placed_mass_radius_curve(
    eos: AbstractEOS,
    n_stars: int,
    method: RK4 = RK4(),
    *,
    lowest_mass_msun: float = 0.9,
    n_coarse: int = 16,
    margin_log_pressure: float = 0.08,
) -> MassRadiusCurve:
    """A sequence whose ``n_stars`` lie where masses of interest are: from the star of
    ``lowest_mass_msun`` to just beyond the maximum mass.

    A coarse sequence of ``n_coarse`` stars over the default range, outside the gradient
    (``stop_gradient``), locates ln p_c of the lowest mass and of the maximum mass; the
    returned sequence spreads its stars over [ln p_c(lowest mass), ln p_c(M_max) +
    ``margin_log_pressure``] (clipped to the default range). The placement only moves the
    interpolation nodes, so the values, and their derivatives with respect to the EoS, are
    those of :func:`mass_radius_curve` up to its interpolation error, for a fraction of the
    stars: the stars below the lowest mass of interest (half of a default sequence) are not
    solved at all. Pure and jit/vmap/grad-friendly.
    """
    if n_coarse < 4:
        raise ValueError("n_coarse must be at least 4.")
    frozen = jax.lax.stop_gradient(eos)
    coarse = jax.lax.stop_gradient(mass_radius_curve(frozen, n_coarse, method))
    p_lo, p_hi = frozen.default_central_pressure_range_mev_fm3()
    low_mass = jnp.minimum(lowest_mass_msun, coarse.max_mass_msun - 1e-3)
    lo = jnp.where(coarse.min_mass_msun < low_mass, coarse.central_pressure_at(low_mass), p_lo)
    lo = jnp.where(jnp.isfinite(lo), lo, p_lo)
    hi = coarse.central_pressure_at_max_mass_mev_fm3 * math.exp(margin_log_pressure)
    hi = jnp.where(coarse.max_mass_reached, jnp.minimum(hi, p_hi), p_hi)
    return mass_radius_curve(eos, n_stars, method, (lo, hi))


def check_curve(curve: MassRadiusCurve) -> MassRadiusCurve:
    """Raise :class:`TOVSolveError` if any star of the sequence failed (outside jit)."""
    bad = jnp.nonzero(curve.status != SolveStatus.SUCCESS)[0]
    if bad.size:
        i = int(bad[0])
        raise TOVSolveError(
            f"{bad.size} of {curve.status.shape[0]} stars failed to solve; the first at "
            f"p_c = {float(curve.central_pressure_mev_fm3[i]):.6g} MeV fm^-3 "
            f"({SolveStatus(int(curve.status[i])).name}). Increase the solver's "
            "steps_per_interval or narrow central_pressure_range_mev_fm3."
        )
    return curve

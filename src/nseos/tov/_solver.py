"""Fixed-schedule Runge-Kutta integration of the TOV and tidal equations in pseudo-enthalpy.

Variables, in geometric units with lengths in km (G = c = 1), integrated from the centre
(h = h_c) to the surface (h = 0), which is therefore a fixed end point:

* x = r^2 [km^2],
* mu = m / r^3 [km^-2] (finite at the centre, where m ~ r^3),
* z = y - 4 pi eps / (mu + 4 pi p), where y = r H' / H is the logarithmic derivative of the
  quadrupolar metric perturbation.

With these variables the solution is analytic in h at the centre (r and m are not: r ~
sqrt(h_c - h)), so the Runge-Kutta scheme keeps its order from the first step::

    dx/dh  = -2 (1 - 2 mu x) / (mu + 4 pi p)
    dmu/dh = -(dx/dh) (3 mu - 4 pi eps) / (2 x)
    dy/dh  = -(dx/dh) (y^2 + y F + r^2 Q) / (2 x)

    F     = e^lambda [1 + 4 pi x (p - eps)],          e^lambda = 1 / (1 - 2 mu x)
    r^2 Q = 4 pi x e^lambda (5 eps + 9 p + deps/dh) - 6 e^lambda - 4 x^2 (mu + 4 pi p)^2
            / (1 - 2 mu x)^2

where deps/dh = (eps + p) / c_s^2. That term is discontinuous wherever c_s^2 jumps (every
node of a table, every segment boundary) and a delta function where eps jumps (a first-order
transition, the surface of a self-bound star). With G = 4 pi / (mu + 4 pi p), the y equation
reads dy/dh = G deps/dh + S(h), so z = y - G eps obeys

    dz/dh = S + 4 pi eps (dmu/dh + 4 pi (eps + p)) / (mu + 4 pi p)^2

with no deps/dh at all: z is continuous through any density jump, and y = z + G eps
reproduces the jump conditions y+ - y- = 4 pi r^3 (eps+ - eps-) / (m + 4 pi r^3 p) exactly.
At the surface (p = 0) z equals the exterior y(R) that enters the Love number, including the
correction -4 pi R^3 eps(R) / M for a star whose surface density is not zero.

Because h is the independent variable and the step schedule does not depend on the solution,
every EoS evaluation is known in advance: the solver evaluates the EoS at all Runge-Kutta
stage points in vectorised calls and the sequential loop only does the stellar-structure
arithmetic. Step boundaries are placed on the
EoS's enthalpy breaks (:attr:`AbstractEOS.enthalpy_breaks`), where eps(h) has kinks, so the
scheme keeps its fourth order across them.

**References:** Lindblom 1992, ApJ 398, 569 (enthalpy form and central series);
Hinderer 2008, ApJ 677, 1216; Damour & Nagar 2009, PRD 80, 084035; Postnikov, Prakash &
Lattimer 2010, PRD 82, 024016 (tidal equation and density discontinuities).
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import units
from .._typing import Array, Float, Int
from ..eos import AbstractEOS

_FOUR_PI = 4.0 * jnp.pi


class SolveStatus(enum.IntEnum):
    """Outcome of one stellar solve, as stored in ``status`` arrays."""

    SUCCESS = 0
    NONFINITE = 1
    """The integration produced a NaN or infinity."""
    UNPHYSICAL = 2
    """Mass, radius or Love number out of range (M <= 0, 2M/R >= 1, k2 <= 0)."""


_GEOMETRIC_STEPS = 10
"""Growing steps from the start of the integration: they double (reaching 1023 times the
start offset), or grow faster when the start is so close to the centre that doubling would
not reach the size of the central region's uniform steps (see :func:`solve_star`)."""


class RK4(eqx.Module):
    """Classical fourth-order Runge-Kutta with a fixed number of steps per enthalpy interval.

    The central region (from the centre down to the first EoS break below h_c (1 -
    center_fraction)) gets ``center_steps`` equal steps plus doubling steps from the centre
    and a boundary at every break inside it; every interval between EoS breaks below it gets
    ``steps_per_interval`` equal steps (see :func:`solve_star`). The error scales as
    steps^-4. The defaults are the cheapest tried that meet the project's accuracy targets on
    all 34 Read et al. (2009) EoS, for every stable star above 0.5 M_sun, against a 64-step
    solve: |dR| <= 5 m, |dM|/M <= 1e-4 and |dLambda|/Lambda <= 0.3 % (measured: 0.03 m,
    5.6e-5 and 0.013 %; see docs/performance.md).

    Parameters
    ----------
    steps_per_interval : int
        Runge-Kutta steps in each interval between enthalpy breaks.
    center_steps : int
        Steps in the central region.
    center_fraction : float
        Depth of the central region as a fraction of the central enthalpy.
    center_offset : float
        The integration starts at h_c (1 - center_offset) from the second-order central
        series of Lindblom (1992), truncation error O(center_offset^3); never further down
        than halfway to the next break below the centre, since the series assumes a smooth
        EoS.
    """

    steps_per_interval: int = eqx.field(static=True, default=10)
    center_steps: int = eqx.field(static=True, default=24)
    center_fraction: float = eqx.field(static=True, default=0.5)
    center_offset: float = eqx.field(static=True, default=3e-3)

    @classmethod
    def scaled(cls, steps_per_interval: int) -> RK4:
        """The default schedule at another resolution: ``steps_per_interval`` steps per
        interval and the default ratio of central-region steps (24 / 10) scaled along."""
        ratio = cls.center_steps / cls.steps_per_interval
        return cls(steps_per_interval, center_steps=max(1, round(ratio * steps_per_interval)))

    def __check_init__(self):
        if self.steps_per_interval < 1 or self.center_steps < 1:
            raise ValueError("steps_per_interval and center_steps must be at least 1.")
        if not 0.0 < self.center_fraction < 1.0:
            raise ValueError("center_fraction must lie in (0, 1).")
        if not 0.0 < self.center_offset < 0.1:
            raise ValueError("center_offset must lie in (0, 0.1).")


class StarSolution(NamedTuple):
    """One star (or a batch, with leading axes). Masses in M_sun, radii in km."""

    mass_msun: Float[Array, ...]
    radius_km: Float[Array, ...]
    compactness: Float[Array, ...]
    love_number_k2: Float[Array, ...]
    tidal_deformability: Float[Array, ...]
    status: Int[Array, ...]


def _rhs(state, p, e):
    x, mu, z = state
    one_minus = 1.0 - 2.0 * mu * x
    e_lambda = 1.0 / one_minus
    mu_p = mu + _FOUR_PI * p
    g = _FOUR_PI / mu_p
    y = z + g * e
    dx = -2.0 * one_minus / mu_p
    f = e_lambda * (1.0 + _FOUR_PI * x * (p - e))
    r2q = (
        _FOUR_PI * x * e_lambda * (5.0 * e + 9.0 * p)
        - 6.0 * e_lambda
        - 4.0 * x * x * mu_p * mu_p * e_lambda * e_lambda
    )
    scale = -dx / (2.0 * x)
    dmu = scale * (3.0 * mu - _FOUR_PI * e)
    dz = scale * (y * y + y * f + r2q) + g * g / _FOUR_PI * e * (dmu + _FOUR_PI * (e + p))
    return dx, dmu, dz


def _love_number(c, y):
    """k2 from compactness C = M/R and y(R) (exterior value), Hinderer (2008) eq. 23."""
    one_2c = 1.0 - 2.0 * c
    num = 1.6 * c**5 * one_2c**2 * (2.0 + 2.0 * c * (y - 1.0) - y)
    den = (
        2.0 * c * (6.0 - 3.0 * y + 3.0 * c * (5.0 * y - 8.0))
        + 4.0 * c**3 * (13.0 - 11.0 * y + c * (3.0 * y - 2.0) + 2.0 * c * c * (1.0 + y))
        + 3.0 * one_2c**2 * (2.0 - y + 2.0 * c * (y - 1.0)) * jnp.log1p(-2.0 * c)
    )
    return num / den


def _just_below(top):
    """``top`` moved down by one ulp (no gradient through the shift).

    A step's top may be a break, which the EoS assigns to the piece above it; starting one
    ulp lower makes every stage point of the step see the piece below, i.e. the one-sided
    limit at the kink (RK4 would otherwise drop to first order there).
    """
    return top - jax.lax.stop_gradient(top - jnp.nextafter(top, -jnp.inf))


def _interval_points(lower, upper, n):
    """Stage points (..., 2n + 1) of n equal RK4 steps from ``upper`` down to ``lower``,
    the top one ulp below ``upper`` (see :func:`_just_below`)."""
    frac = (jnp.arange(2 * n + 1) / (2 * n)).reshape((1,) * jnp.ndim(upper) + (-1,))
    points = upper[..., None] + (lower - upper)[..., None] * frac
    return jnp.minimum(points, _just_below(upper)[..., None])


def solve_star(
    eos: AbstractEOS, central_enthalpy: Float[Array, ""], method: RK4 = RK4()
) -> StarSolution:
    """Integrate one star from pseudo-enthalpy ``central_enthalpy`` to the surface.

    Pure and jit/vmap/grad-friendly; failures are reported in ``status``
    (:class:`SolveStatus`), never raised. :func:`nseos.tov.mass_radius_curve` solves whole
    sequences and :func:`nseos.tov.check_curve` turns failures into exceptions.

    The step schedule has two parts. The *central region* runs from the start h_s =
    h_c (1 - center_offset) down to the first EoS break below h_s (1 - center_fraction), in
    ``center_steps`` equal steps, plus steps that double from the start and a boundary at
    every break inside it, so the scheme keeps its order across kinks however many there
    are. Below it, every interval between consecutive breaks gets ``steps_per_interval``
    equal steps on a grid that depends on the EoS alone, so under ``vmap`` over central
    enthalpies it is evaluated once and shared by all stars. Those intervals start at least
    center_fraction * h_s away from the centre, where the mu and y perturbations decay like
    (h_c - h)^(-3/2): a long step close to the centre would make RK4 unstable, which is why
    the central region is star-dependent.
    """
    to_geo = units.MEV_FM3_TO_GEOMETRIC_KM2
    n = method.steps_per_interval
    m = method.center_steps
    h_c = jnp.asarray(central_enthalpy, float)
    breaks = eos.enthalpy_breaks
    # The central series assumes a smooth EoS: it must not reach across a break below h_c.
    below_centre = jnp.max(jnp.where(breaks < h_c, breaks, 0.0), initial=0.0)
    h_start = jnp.maximum(h_c * (1.0 - method.center_offset), 0.5 * (h_c + below_centre))
    lower = jnp.concatenate([jnp.zeros(1), breaks])  # interval j is [lower_j, upper_j]
    upper = jnp.concatenate([breaks, lower[-1:]])  # the unbounded top one capped (unused)
    j = jnp.arange(lower.shape[0])
    j_t = jnp.searchsorted(breaks, h_start * (1.0 - method.center_fraction), side="right")
    h_bottom = lower[j_t]  # bottom of the central region: a break, or the surface

    # Central region: m equal steps, with every break inside the region added as a step
    # boundary (breaks outside it are clipped to its ends and give zero-length steps).
    uniform = h_start + (h_bottom - h_start) * jnp.arange(m + 1) / m
    # Near the centre the mu and y perturbations decay like (h_c - h)^(-3/2): RK4 is stable
    # only for steps below ~2 (h_c - h). Steps that grow geometrically from the start keep
    # every step within that bound, however close to the centre a break forces a new
    # interval to begin. They double, unless the start offset is so small (a break just
    # below the centre) that ten doublings would end far short of the uniform step length:
    # then they grow by the ratio that reaches it, so that the first uniform step is no
    # longer than its distance from the centre. With doubling only, a centre 7e-6 above a
    # break, next to a segment of c_s^2 = 0.013, gave M wrong by 0.13 M_sun and a
    # non-finite Love number.
    delta = h_c - h_start
    uniform_step = (h_start - h_bottom) / m
    ratio = jnp.maximum(2.0, (uniform_step / delta) ** (1.0 / _GEOMETRIC_STEPS))
    geometric = h_start - delta * (ratio ** jnp.arange(1, _GEOMETRIC_STEPS + 1) - 1.0)
    extra = jnp.clip(jnp.concatenate([geometric, breaks]), h_bottom, h_start)
    bounds = jnp.sort(jnp.concatenate([uniform, extra]))[::-1]
    top, end = bounds[:-1], bounds[1:]
    top = jnp.where(top > end, _just_below(top), top)  # zero-length steps stay as they are
    central_pts = jnp.stack([top, 0.5 * (top + end), end], axis=-1)

    # Shared intervals below the central region.
    shared_pts = _interval_points(lower, upper, n)
    active = (j < j_t)[:, None]
    central, shared = eos.state(central_pts), eos.state(shared_pts)

    def stages(central_v, shared_v):
        # Skipped intervals (dh = 0) are still stepped through; the EoS may be undefined there
        # (NaN beyond a table), and 0 * NaN would poison the state, hence the placeholders.
        rows = jnp.where(active, shared_v, 1.0)[::-1]  # top interval first
        return tuple(
            jnp.concatenate([central_v[:, k], rows[:, sl].reshape(-1)]) * to_geo
            for k, sl in enumerate((slice(0, -1, 2), slice(1, None, 2), slice(2, None, 2)))
        )

    p = stages(central.pressure_mev_fm3, shared.pressure_mev_fm3)
    e = stages(central.energy_density_mev_fm3, shared.energy_density_mev_fm3)
    shared_dh = jnp.where(active, shared_pts[:, 2::2] - shared_pts[:, 0:-1:2], 0.0)
    dh = jnp.concatenate([end - top, shared_dh[::-1].reshape(-1)])
    p_c, e_c, de_c = (v * to_geo for v in eos.state(h_c))

    # Second-order central series (Lindblom 1992, eqs. 6-7; y from the tidal equation).
    delta = h_c - h_start
    x0 = 1.5 * delta / (jnp.pi * (e_c + 3.0 * p_c))
    x0 = x0 * (1.0 - 0.5 * (e_c - 3.0 * p_c - 0.6 * de_c) * delta / (e_c + 3.0 * p_c))
    mu0 = _FOUR_PI / 3.0 * (e_c - 0.6 * de_c * delta)
    y0 = 2.0 - _FOUR_PI / 7.0 * (11.0 * p_c + e_c / 3.0 + de_c) * x0
    z0 = y0 - _FOUR_PI * e_c / (mu0 + _FOUR_PI * p_c)

    # The four Runge-Kutta stages run as a loop over one right-hand side: the compiled step
    # holds _rhs (and, under forward-mode differentiation, its tangent) once instead of four
    # times, which keeps the step's fused kernel small (it dominated the likelihood's
    # compilation).
    offsets = jnp.array([0.0, 0.5, 0.5, 1.0])
    weights = jnp.array([1.0, 2.0, 2.0, 1.0]) / 6.0

    def step(state, xs):
        h, (p0, pm, p1), (e0, em, e1) = xs
        p_stage, e_stage = jnp.stack([p0, pm, pm, p1]), jnp.stack([e0, em, em, e1])

        def stage(i, carry):
            new, k = carry
            at = tuple(s + offsets[i] * h * d for s, d in zip(state, k, strict=True))
            k = _rhs(at, p_stage[i], e_stage[i])
            return tuple(n + weights[i] * h * d for n, d in zip(new, k, strict=True)), k

        zero = tuple(jnp.zeros_like(s) for s in state)
        new, _ = jax.lax.fori_loop(0, 4, stage, (state, zero))
        return new, None

    xs = (dh, p, e)
    (x, mu, y_ext), _ = jax.lax.scan(step, (x0, mu0, z0), xs)

    radius = jnp.sqrt(x)
    mass = mu * x * radius
    c = mu * x
    k2 = _love_number(c, y_ext)
    lam = 2.0 / 3.0 * k2 / c**5
    finite = jnp.isfinite(mass) & jnp.isfinite(radius) & jnp.isfinite(lam)
    physical = (mass > 0) & (c < 0.5) & (k2 > 0)
    status = jnp.where(
        finite,
        jnp.where(physical, SolveStatus.SUCCESS, SolveStatus.UNPHYSICAL),
        SolveStatus.NONFINITE,
    )
    return StarSolution(
        mass_msun=units.km_to_msun(mass),
        radius_km=radius,
        compactness=c,
        love_number_k2=k2,
        tidal_deformability=lam,
        status=status.astype(jnp.int32),
    )

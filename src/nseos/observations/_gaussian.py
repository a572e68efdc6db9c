"""Observations summarised by Gaussians: M-R ellipses and radio pulsar masses."""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
from jax.scipy.special import log_ndtr

from .._typing import Array, Float
from ._base import (
    AbstractStarObservation,
    ObservationError,
    buchdahl_radius_km,
    check_finite,
    check_positive,
)

SUPPORT_SIGMAS = 8.0
"""Mass integration range, in standard deviations either side: the Gaussian there is
exp(-32) ~ 1e-14 of its peak."""
_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


def _log_ndtr_difference(za, zb):
    """ln[Phi(zb) - Phi(za)] elementwise for za, zb <= 0 (-inf where za >= zb), with finite
    gradients. Every pair goes through one ``log_ndtr`` call: each call site of that
    piecewise series adds ~2000 operations to a compiled gradient."""
    za, zb = jnp.broadcast_arrays(jnp.asarray(za, float), jnp.asarray(zb, float))
    ok = zb > za
    lb, la = log_ndtr(jnp.stack([zb, jnp.where(ok, za, zb - 1.0)]))
    value = lb + jnp.log(-jnp.expm1(la - lb))
    return jnp.where(ok, value, -jnp.inf)


class MassRadiusGaussian(AbstractStarObservation):
    """A bivariate Gaussian in (M, R): the four (five) numbers the network consumes.

    Parameters
    ----------
    name : str
    mass_msun, mass_sigma_msun : float
        Mean and standard deviation of the gravitational mass [M_sun].
    radius_km, radius_sigma_km : float
        Mean and standard deviation of the circumferential radius [km].
    correlation : float
        Pearson correlation of M and R, in (-1, 1); 0 by default.
    check_buchdahl : bool
        Refuse a centroid inside the Buchdahl limit R < 9/4 GM/c^2 (default; it catches unit
        mistakes). Mock catalogues turn it off: a noisy mock measurement of a compact, heavy
        star may legitimately land there.
    """

    name: str = eqx.field(static=True)
    mass_msun: float
    mass_sigma_msun: float
    radius_km: float
    radius_sigma_km: float
    correlation: float = 0.0

    def __init__(
        self,
        name: str,
        mass_msun: float,
        mass_sigma_msun: float,
        radius_km: float,
        radius_sigma_km: float,
        correlation: float = 0.0,
        *,
        check_buchdahl: bool = True,
    ):
        where = f"observation {name!r}"
        self.name = str(name)
        self.mass_msun = check_positive(mass_msun, "mass_msun", where)
        self.mass_sigma_msun = check_positive(mass_sigma_msun, "mass_sigma_msun", where)
        self.radius_km = check_positive(radius_km, "radius_km", where)
        self.radius_sigma_km = check_positive(radius_sigma_km, "radius_sigma_km", where)
        rho = check_finite(correlation, "correlation", where)
        if not abs(rho) < 1.0:
            raise ObservationError(f"{where}: correlation = {rho:g} must lie strictly in (-1, 1)")
        self.correlation = rho
        limit = buchdahl_radius_km(self.mass_msun)
        if check_buchdahl and self.radius_km < limit:
            raise ObservationError(
                f"{where}: radius_km = {self.radius_km:g} lies inside the Buchdahl limit "
                f"9/4 GM/c^2 = {limit:.3f} km for M = {self.mass_msun:g} M_sun; no static "
                "star is that compact (check the units: km and M_sun)"
            )

    @property
    def kind(self) -> str:
        return "mass_radius"

    def summary(self) -> dict[str, float | str]:
        return {
            "mass_msun": self.mass_msun,
            "mass_sigma_msun": self.mass_sigma_msun,
            "radius_km": self.radius_km,
            "radius_sigma_km": self.radius_sigma_km,
            "correlation": self.correlation,
        }

    def log_likelihood(self, mass_msun, radius_km, tidal_deformability=None):
        x = (jnp.asarray(mass_msun) - self.mass_msun) / self.mass_sigma_msun
        y = (jnp.asarray(radius_km) - self.radius_km) / self.radius_sigma_km
        rho = self.correlation
        one_minus = 1.0 - rho * rho
        quad = (x * x - 2.0 * rho * x * y + y * y) / one_minus
        norm = (
            2.0 * _LOG_SQRT_2PI
            + jnp.log(self.mass_sigma_msun * self.radius_sigma_km)
            + 0.5 * jnp.log(one_minus)
        )
        return -0.5 * quad - norm

    def mass_support_msun(self):
        half = SUPPORT_SIGMAS * self.mass_sigma_msun
        return jnp.maximum(self.mass_msun - half, 0.0), self.mass_msun + half

    def batch_key(self):
        return "mass_radius_gaussian"

    def confidence_ellipse(self, probability: float, n_points: int = 200):
        """(M [M_sun], R [km]) arrays tracing the ellipse that holds ``probability``."""
        import numpy as np

        radius = math.sqrt(-2.0 * math.log(1.0 - probability))
        cov = np.array(
            [
                [
                    self.mass_sigma_msun**2,
                    self.correlation * self.mass_sigma_msun * self.radius_sigma_km,
                ],
                [
                    self.correlation * self.mass_sigma_msun * self.radius_sigma_km,
                    self.radius_sigma_km**2,
                ],
            ]
        )
        chol = np.linalg.cholesky(cov)
        angle = np.linspace(0.0, 2.0 * np.pi, n_points)
        pts = chol @ np.stack([np.cos(angle), np.sin(angle)]) * radius
        return self.mass_msun + pts[0], self.radius_km + pts[1]


class PulsarMass(AbstractStarObservation):
    """A radio-timing mass: median and asymmetric 68 % errors (a split normal).

    The likelihood depends on the mass only. Marginalised over the star's mass with a prior
    that ends at the EoS's maximum mass, it requires the pulsar to sit on the stable branch:
    a maximum mass far below the measurement drives the likelihood to zero.

    Parameters
    ----------
    name : str
    mass_msun : float
        Median [M_sun].
    minus_sigma_msun, plus_sigma_msun : float
        68 % errors below and above the median [M_sun]; ``plus_sigma_msun`` defaults to
        ``minus_sigma_msun`` (symmetric).
    reference : str
        Where the number comes from.
    """

    name: str = eqx.field(static=True)
    mass_msun: float
    minus_sigma_msun: float
    plus_sigma_msun: float
    reference: str = eqx.field(static=True, default="")

    def __init__(
        self,
        name: str,
        mass_msun: float,
        minus_sigma_msun: float,
        plus_sigma_msun: float | None = None,
        reference: str = "",
    ):
        where = f"observation {name!r}"
        self.name = str(name)
        self.mass_msun = check_positive(mass_msun, "mass_msun", where)
        self.minus_sigma_msun = check_positive(minus_sigma_msun, "minus_sigma_msun", where)
        plus = self.minus_sigma_msun if plus_sigma_msun is None else plus_sigma_msun
        self.plus_sigma_msun = check_positive(plus, "plus_sigma_msun", where)
        self.reference = str(reference)

    @property
    def kind(self) -> str:
        return "mass"

    def summary(self) -> dict[str, float | str]:
        return {
            "mass_msun": self.mass_msun,
            "mass_sigma_msun": 0.5 * (self.minus_sigma_msun + self.plus_sigma_msun),
        }

    def log_likelihood(
        self, mass_msun, radius_km=None, tidal_deformability=None
    ) -> Float[Array, ...]:
        m = jnp.asarray(mass_msun)
        sigma = jnp.where(m < self.mass_msun, self.minus_sigma_msun, self.plus_sigma_msun)
        z = (m - self.mass_msun) / sigma
        norm = jnp.log(0.5 * (self.minus_sigma_msun + self.plus_sigma_msun)) + _LOG_SQRT_2PI
        return -0.5 * z * z - norm

    def log_mass_integral(self, lo_msun, hi_msun) -> Float[Array, ""]:
        """ln of the split normal's integral over [lo, hi]: each half is a difference of
        normal CDFs, evaluated in the left tail (``log_ndtr``), so the value and its
        gradient stay finite however far the interval lies from the measured mass (no
        support cut, no -inf wall for HMC). -inf for an empty interval."""
        lo, hi = jnp.asarray(lo_msun, float), jnp.asarray(hi_msun, float)
        mu, s_minus, s_plus = self.mass_msun, self.minus_sigma_msun, self.plus_sigma_msun
        # Below the mean: Phi(zb) - Phi(za) with za < zb <= 0; above it, mirrored into the
        # left tail: Phi(-za) - Phi(-zb), 0 <= za < zb. Both halves in one call.
        za = jnp.stack([(lo - mu) / s_minus, -(hi - mu) / s_plus])
        zb = jnp.stack([(jnp.minimum(hi, mu) - mu) / s_minus, -(jnp.maximum(lo, mu) - mu) / s_plus])
        log_sigma = jnp.log(jnp.stack([s_minus, s_plus]) / (0.5 * (s_minus + s_plus)))
        below, above = _log_ndtr_difference(za, zb) + log_sigma
        return jnp.logaddexp(below, above)

    def batch_key(self):
        return "pulsar_mass"

    def mass_support_msun(self) -> tuple[Float[Array, ""], Float[Array, ""]]:
        # jnp, not Python arithmetic: stacked pulsars (see ``batch_key``) carry arrays.
        return (
            jnp.maximum(self.mass_msun - SUPPORT_SIGMAS * self.minus_sigma_msun, 0.0),
            jnp.asarray(self.mass_msun + SUPPORT_SIGMAS * self.plus_sigma_msun),
        )

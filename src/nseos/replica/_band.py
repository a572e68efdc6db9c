"""Recalibrated NN bands: every reported quantity's draws stretched about their median.

The bootstrap ensemble's spread is far narrower than its error on held-out mock universes
(``docs/calibration.md``). :class:`BandScale` holds stretch factors fitted on such universes
(:func:`nseos.calibration.fit_band_scale`): one (inner, outer) pair per c_s^2 segment and,
for the derived quantities, one pair per quantity and grid point (R on the mass grid, p on
the energy-density grid, and each scalar). :func:`stretch_band` applies a pair.

The calibration is *marginal*: each quantity's band covers the truth as often as nominal on
its own. The derived quantities are computed from the raw members and then stretched, so a
stretched draw's R(M) is not the M-R curve of that draw's stretched c_s^2 (a stretch
applied to c_s^2 alone makes the derived bands over-cover at 68 %: measured 75-82 %).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

BAND_INNER_LEVEL = 0.68
"""The stretch of :func:`stretch_band` changes factor at each draw set's 68 % interval."""


def _nested(a) -> tuple:
    a = np.asarray(a, float)
    return tuple(_nested(x) for x in a) if a.ndim > 1 else tuple(float(x) for x in a)


class BandScale(NamedTuple):
    """Stretch factors of a recalibrated band (hashable: nested tuples of floats).

    Parameters
    ----------
    cs2 : tuple of (inner, outer) pairs
        One pair per c_s^2 segment.
    derived : tuple of (name, factors) pairs
        Derived quantity -> factors shaped (*grid, 2) as nested tuples. Empty: the derived
        quantities follow from the stretched c_s^2 (the c_s^2-only recalibration). Otherwise
        it must name every derived quantity.
    """

    cs2: tuple[tuple[float, float], ...]
    derived: tuple[tuple[str, tuple], ...] = ()

    @classmethod
    def from_arrays(cls, cs2, derived: Mapping[str, np.ndarray] | None = None) -> BandScale:
        items = sorted((derived or {}).items())
        return cls(_nested(cs2), tuple((k, _nested(v)) for k, v in items))

    @classmethod
    def coerce(cls, value) -> BandScale | None:
        """A BandScale from itself, from (inner, outer) pairs (c_s^2 only), or from its JSON
        form (:meth:`to_json`); None stays None."""
        if value is None or isinstance(value, BandScale):
            return value
        if isinstance(value, Mapping):
            return cls.from_arrays(value["cs2"], value.get("derived"))
        return cls.from_arrays(value)

    def cs2_array(self) -> np.ndarray:
        return np.asarray(self.cs2, float)

    def derived_arrays(self) -> dict[str, np.ndarray]:
        return {k: np.asarray(v, float) for k, v in self.derived}

    def to_json(self) -> dict:
        return {"cs2": [list(p) for p in self.cs2], "derived": dict(self.derived)}

    def check(self, n_segments: int) -> None:
        """Raise a ValueError unless there is one positive pair per segment and every derived
        factor is positive."""
        cs2 = self.cs2_array()
        if cs2.shape != (n_segments, 2) or not np.all(cs2 > 0):
            raise ValueError(
                f"band_scale needs {n_segments} pairs of positive factors (inner, outer; one "
                f"pair per c_s^2 segment), got {self.cs2}"
            )
        for name, v in self.derived_arrays().items():
            if v.ndim < 1 or v.shape[-1] != 2 or not np.all(v > 0):
                raise ValueError(f"band_scale factors of {name!r} must be positive pairs")

    def apply(
        self,
        params: np.ndarray,
        derived: Mapping[str, np.ndarray],
        cs2_range: tuple[float, float],
        axis: int = 0,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Stretch the draws of c_s^2 (draws along ``axis``, segments last) and of every
        derived quantity (draws along ``axis``, its grid after it). ``derived`` must hold the
        members' raw derived quantities when this scale has derived factors."""
        params = stretch_band(params, self.cs2_array(), *cs2_range, axis=axis)
        factors = self.derived_arrays()
        if not factors:
            return params, dict(derived)
        missing = sorted(set(derived) - set(factors))
        if missing:
            raise ValueError(f"band_scale has no factors for {', '.join(missing)}")
        out = {k: stretch_band(v, factors[k], axis=axis) for k, v in derived.items()}
        return params, out


def stretch_band(
    draws: np.ndarray,
    scale: np.ndarray,
    lo: float = -np.inf,
    hi: float = np.inf,
    *,
    axis: int = 0,
) -> np.ndarray:
    """Stretch draws about their median, independently at every other index.

    A draw's distance d from the median becomes ``inner * d`` up to the 68 % half-width w on
    its side, and ``inner * w + outer * (d - w)`` beyond. The map is monotone, so the band's
    quantiles move with it; the result is clipped to [lo, hi]. NaN draws (e.g. R above a
    member's M_max) stay NaN and are left out of the median and quantiles.

    Parameters
    ----------
    draws : array
        The draws along ``axis``.
    scale : array, shape (..., 2)
        (inner, outer) factors; ``...`` broadcasts against the axes after ``axis``.
    """
    x = np.moveaxis(np.asarray(draws, float), axis, 0)
    scale = np.asarray(scale, float)
    tail = 0.5 * (1.0 - BAND_INNER_LEVEL)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        med = np.nanmedian(x, axis=0)
        q_lo, q_hi = np.nanquantile(x, [tail, 1.0 - tail], axis=0)
        d = x - med
        w = np.where(d < 0, med - q_lo, q_hi - med)
        inner, outer = scale[..., 0], scale[..., 1]
        far = np.abs(d) > w
        dist = np.where(far, inner * w + outer * (np.abs(d) - w), inner * np.abs(d))
        out = np.clip(med + np.sign(d) * dist, lo, hi)
    return np.moveaxis(out, 0, axis)

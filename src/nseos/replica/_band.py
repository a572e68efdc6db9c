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
from collections.abc import Callable, Mapping
from typing import NamedTuple

import numpy as np

BAND_INNER_LEVEL = 0.68
"""The stretch of :func:`stretch_band` changes factor at the first draw beyond each draw
set's central 68 % interval, on each side."""
DERIVED_BOUNDS = (0.0, np.inf)
"""Recalibrated derived quantities (R, M_max, Lambda, p) are clipped to stay non-negative."""


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
        raw: np.ndarray,
        derived_of: Callable[[np.ndarray], Mapping[str, np.ndarray]],
        cs2_range: tuple[float, float],
        axis: int = 0,
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Recalibrated (c_s^2 draws, derived quantities) from the members' raw c_s^2 (draws
        along ``axis``, segments last). ``derived_of(params)`` solves the derived quantities
        (draws along ``axis``, each quantity's grid after it). With derived factors, the raw
        members' derived quantities are stretched, each on its own; without, they are those
        of the stretched c_s^2."""
        params = stretch_band(raw, self.cs2_array(), *cs2_range, axis=axis)
        factors = self.derived_arrays()
        if not factors:
            return params, dict(derived_of(params))
        derived = derived_of(raw)
        missing = sorted(set(derived) - set(factors))
        if missing:
            raise ValueError(f"band_scale has no factors for {', '.join(missing)}")
        out = {
            k: stretch_band(v, factors[k], *DERIVED_BOUNDS, axis=axis) for k, v in derived.items()
        }
        return params, out


def nan_quantile(x: np.ndarray, qs, axis: int = 0) -> np.ndarray:
    """``np.nanquantile(x, qs, axis)`` (linear interpolation), vectorised: numpy loops in
    Python over every 1-D slice when NaNs are present. All-NaN slices give NaN, silently."""
    x = np.moveaxis(np.asarray(x, float), axis, -1)
    xs = np.sort(x, axis=-1)  # NaN last
    n = np.sum(~np.isnan(x), axis=-1, keepdims=True)
    out = []
    for q in np.atleast_1d(qs):
        pos = q * (n - 1)
        lo = np.clip(np.floor(pos).astype(int), 0, None)
        hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
        frac = pos - lo
        a = np.take_along_axis(xs, lo, axis=-1)
        b = np.take_along_axis(xs, hi, axis=-1)
        v = np.where(frac > 0, a + (b - a) * frac, a)
        out.append(np.where(n > 0, v, np.nan)[..., 0])
    out = np.stack(out)
    return out if np.ndim(qs) else out[0]


def band_geometry(x: np.ndarray, levels=(BAND_INNER_LEVEL,)):
    """For draws along axis 0: the median, the distances from it to the draws where the
    stretch changes factor (below, above), and the distances to the central ``levels``
    intervals' ends (below, above) per level.

    The stretch changes factor at the first draw at or beyond the 68 % interval's end on
    each side (not at the interval's end itself): every quantile then interpolates between
    two draws on the same linear piece, so the stretched draws' quantiles are exactly the
    stretched quantiles, and the factors can be fitted on the raw quantiles.
    """
    tails = [0.5 * (1.0 - lv) for lv in levels]
    qs = nan_quantile(x, [0.5, *tails, *(1.0 - t for t in tails)], axis=0)
    med, q_lo, q_hi = qs[0], qs[1 : 1 + len(tails)], qs[1 + len(tails) :]
    tail = 0.5 * (1.0 - BAND_INNER_LEVEL)
    k_lo, k_hi = nan_quantile(x, [tail, 1.0 - tail], axis=0)
    valid = ~np.isnan(x)
    below = np.max(np.where(valid & (x <= k_lo), x, -np.inf), axis=0)
    above = np.min(np.where(valid & (x >= k_hi), x, np.inf), axis=0)
    return med, (med - below, above - med), (med - q_lo, q_hi - med)


def _anatomy(x: np.ndarray):
    """Median, signed distances from it and the distance to the change of factor on each
    draw's side, for draws along axis 0."""
    med, (w_lo, w_hi), _ = band_geometry(x)
    d = x - med
    return med, d, np.where(d < 0, w_lo, w_hi)


def _stretched(med, d, w, inner, outer):
    a = np.abs(d)
    return med + np.sign(d) * (inner * np.minimum(a, w) + outer * np.maximum(a - w, 0.0))


def stretched_distance(dist, w, inner, outer):
    """Where :func:`stretch_band` moves a point at distance ``dist`` from the median (on a
    side whose change of factor is at ``w``)."""
    return inner * np.minimum(dist, w) + outer * np.maximum(dist - w, 0.0)


def stretched_quantiles(x, qs, inner, outer, lo=-np.inf, hi=np.inf) -> list[np.ndarray]:
    """The ``qs`` quantiles of ``stretch_band(x, (inner, outer), lo, hi)`` along axis 0,
    without stretching every draw: the stretch and clip are monotone, so each quantile
    interpolates between the images of the same two order statistics. Exact, and cheap for
    many candidate factors at once (``inner``, ``outer`` broadcast against x's other axes,
    e.g. shaped (C, 1) against (L, U) draws)."""
    x = np.asarray(x, float)
    with np.errstate(invalid="ignore"):
        med, (w_lo, w_hi), _ = band_geometry(x)
    xs = np.sort(x, axis=0)
    n = np.sum(~np.isnan(x), axis=0)

    def image(v):
        d = v - med
        w = np.where(d < 0, w_lo, w_hi)
        return np.clip(med + np.sign(d) * stretched_distance(np.abs(d), w, inner, outer), lo, hi)

    out = []
    for q in qs:
        pos = q * (n - 1)
        k = np.clip(np.floor(pos).astype(int), 0, None)
        k1 = np.minimum(k + 1, np.maximum(n - 1, 0))
        frac = pos - k
        a = np.take_along_axis(xs, k[None], axis=0)[0]
        b = np.take_along_axis(xs, k1[None], axis=0)[0]
        ia, ib = image(a), image(b)
        v = np.where(frac > 0, ia + (ib - ia) * frac, ia)
        out.append(np.where(n > 0, v, np.nan))
    return out


def stretch_band(
    draws: np.ndarray,
    scale: np.ndarray,
    lo: float = -np.inf,
    hi: float = np.inf,
    *,
    axis: int = 0,
) -> np.ndarray:
    """Stretch draws about their median, independently at every other index.

    A draw's distance d from the median becomes ``inner * d`` up to the distance w of the
    first draw at or beyond the 68 % interval's end on its side, and
    ``inner * w + outer * (d - w)`` beyond. The map is monotone and linear between adjacent
    draws, so the central intervals of the stretched draws are the stretched intervals
    (:func:`band_geometry`). The result is clipped to [lo, hi]. NaN draws (e.g. R above a
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
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns stay NaN
        out = np.clip(_stretched(*_anatomy(x), scale[..., 0], scale[..., 1]), lo, hi)
    return np.moveaxis(out, 0, axis)

"""Rank statistics and interval coverage over mock universes.

For universes u = 1..U with a known truth theta_u and L posterior draws each:

* the **rank** of the truth among the draws, r_u = #{draws < theta_u} in {0, ..., L}, is
  uniform when the posterior is calibrated (simulation-based calibration, Talts et al. 2018,
  arXiv:1804.06788); its ECDF minus the uniform CDF, with a simultaneous envelope
  (Säilynoja, Bürkner and Vehtari 2022, arXiv:2103.10522), shows how it fails: a
  falling curve (above zero, then below: ranks piled at both ends) means bands too narrow,
  a rising one too wide, a one-signed hump a bias;
* the **coverage** of the central p-interval is the fraction of universes whose truth lies
  inside it; with U universes it is Binomial(U, p) / U when calibrated, so the verdict uses
  the Clopper-Pearson 95 % interval of the empirical fraction.

Draws may be NaN where a quantity is undefined (e.g. R(1.8) of an EoS with M_max < 1.8): such
draws are dropped, and a universe whose truth is undefined is left out of that quantity.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats

NOMINAL_LEVELS = (0.68, 0.95)


def ranks(draws: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Rank of each truth among its universe's draws, shape (U,), in {0, ..., L}.

    ``draws`` (U, L), ``truth`` (U,). Ties (a discrete quantity) are broken at random with a
    fixed seed, as SBC requires. Universes with an undefined truth, or with fewer than L
    defined draws, get rank -1 (left out by :func:`ecdf_difference`).
    """
    draws, truth = np.asarray(draws, float), np.asarray(truth, float)
    if draws.ndim != 2 or truth.shape != draws.shape[:1]:
        raise ValueError(f"draws must be (U, L) and truth (U,); got {draws.shape}, {truth.shape}")
    below = np.sum(draws < truth[:, None], axis=1)
    ties = np.sum(draws == truth[:, None], axis=1)
    rng = np.random.default_rng(0)
    r = below + np.floor(rng.uniform(size=ties.shape) * (ties + 1)).astype(int)
    complete = np.isfinite(truth) & np.all(np.isfinite(draws), axis=1)
    return np.where(complete, r, -1)


def central_interval(draws: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    """The central ``level`` interval of each universe's draws (NaN draws dropped)."""
    tail = 0.5 * (1.0 - level)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN
        lo, hi = np.nanquantile(np.asarray(draws, float), [tail, 1.0 - tail], axis=1)
    return lo, hi


def binomial_interval(k: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of a binomial proportion k / n."""
    if n <= 0:
        return float("nan"), float("nan")
    a = 0.5 * (1.0 - level)
    lo = 0.0 if k == 0 else float(stats.beta.ppf(a, k, n - k + 1))
    hi = 1.0 if k == n else float(stats.beta.ppf(1.0 - a, k + 1, n - k))
    return lo, hi


def expected_interval(nominal: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Where a calibrated band's empirical coverage falls with probability ``level``: the
    central interval of Binomial(n, nominal) / n."""
    a = 0.5 * (1.0 - level)
    dist = stats.binom(n, nominal)
    return float(dist.ppf(a)) / n, float(dist.ppf(1.0 - a)) / n


class CoverageRow(NamedTuple):
    quantity: str
    nominal: float
    empirical: float
    n_universes: int
    """Universes where the truth and the interval are both defined."""
    expected_lo: float
    """Central 95 % range of the empirical coverage of a calibrated band."""
    expected_hi: float
    ci_lo: float
    """Clopper-Pearson 95 % interval of the measured coverage."""
    ci_hi: float

    @property
    def consistent(self) -> bool:
        """The measured coverage lies where a calibrated band's would (95 %)."""
        return self.expected_lo <= self.empirical <= self.expected_hi


def coverage(
    draws: np.ndarray, truth: np.ndarray, quantity: str, levels: Sequence[float] = NOMINAL_LEVELS
) -> list[CoverageRow]:
    """Empirical coverage of the central intervals at each nominal level."""
    draws, truth = np.asarray(draws, float), np.asarray(truth, float)
    rows = []
    for level in levels:
        lo, hi = central_interval(draws, level)
        ok = np.isfinite(truth) & np.isfinite(lo) & np.isfinite(hi)
        n = int(ok.sum())
        k = int(np.sum(ok & (truth >= lo) & (truth <= hi)))
        e_lo, e_hi = expected_interval(level, n) if n else (np.nan, np.nan)
        c_lo, c_hi = binomial_interval(k, n)
        rows.append(CoverageRow(quantity, level, k / n if n else np.nan, n, e_lo, e_hi, c_lo, c_hi))
    return rows


def coverage_curve(
    draws: np.ndarray, truth: np.ndarray, levels: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Empirical coverage of central intervals against nominal, over a grid of levels."""
    levels = np.linspace(0.05, 0.95, 19) if levels is None else np.asarray(levels)
    emp = [coverage(draws, truth, "", [float(p)])[0].empirical for p in levels]
    return levels, np.array(emp)


def ecdf_difference(
    rank_values: np.ndarray, n_draws: int, *, n_sim: int = 2000, level: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ECDF of the fractional ranks minus the uniform CDF, and its simultaneous envelope.

    Returns (z, difference, envelope) on z = 0, 1/(L+1), ..., 1: ``envelope`` is the
    half-width within which the whole difference curve of calibrated ranks stays with
    probability ``level`` (the maximum over z, calibrated by simulating uniform ranks;
    Säilynoja et al. 2022 use the same idea with an exact adjustment).
    """
    r = np.asarray(rank_values)
    r = r[r >= 0]
    z = np.arange(n_draws + 2) / (n_draws + 1)
    if r.size == 0:
        return z, np.full_like(z, np.nan), np.full_like(z, np.nan)

    def diff(sample):
        return np.searchsorted(np.sort(sample), z * (n_draws + 1), side="left") / sample.size - z

    d = diff(r)
    rng = np.random.default_rng(seed)
    sims = rng.integers(0, n_draws + 1, size=(n_sim, r.size))
    # Standardise by the pointwise binomial sd, take the max over z, then scale back.
    sd = np.sqrt(np.maximum(z * (1 - z), 1e-12) / r.size)
    worst = np.array([np.max(np.abs(diff(s)) / sd) for s in sims])
    return z, d, np.quantile(worst, level) * sd

"""Recalibration of the NN band, coverage tables, SBC figures and the calibration report."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..compare._tables import Table
from ._stats import NOMINAL_LEVELS, CoverageRow, central_interval, coverage, ecdf_difference
from ._universes import Universes

if TYPE_CHECKING:
    from ..replica import BandScale

SCALE_GRID = np.geomspace(0.5, 200.0, 600)
"""Stretch factors tried when recalibrating the NN band."""


def _coverage_of(truth, lo, hi) -> np.ndarray:
    """Coverage of intervals (U, G) -> (G,)."""
    return np.mean((truth[:, None] >= lo) & (truth[:, None] <= hi), axis=0)


def _fit_pairs(
    x: np.ndarray,
    t: np.ndarray,
    levels: Sequence[float],
    grid: np.ndarray,
    min_universes: int,
    bounds: tuple[float, float] = (-np.inf, np.inf),
) -> np.ndarray:
    """(inner, outer) stretch factors per column of draws ``x`` (U, L, G) against truths
    ``t`` (U, G), shaped (G, 2), for draws clipped to ``bounds`` after the stretch.
    Universes with an undefined truth or interval are left out of a column; a column with
    fewer than ``min_universes`` left takes its nearest fitted neighbour's factors (the top
    of the R(M) grid, above most M_max).

    Each candidate's coverage is that of the stretched, clipped draws' own central intervals
    (:func:`nseos.replica._band.stretched_quantiles`, exact). The inner factor is fitted at
    the first level: the stretch changes factor at a draw beyond that interval's ends, so
    the outer factor cannot move them. The outer one is then fitted at the last level."""
    from ..replica._band import stretched_quantiles

    inner_level, outer_level = sorted(levels)[:1] + sorted(levels)[-1:]
    lo_out, hi_out = central_interval(x, outer_level)
    out = np.full((x.shape[-1], 2), np.nan)
    cand = grid[:, None]
    for g in range(x.shape[-1]):
        ok = np.isfinite(t[:, g]) & np.isfinite(lo_out[:, g]) & np.isfinite(hi_out[:, g])
        if ok.sum() < min_universes:
            continue
        xg, tg = x[ok, :, g].T, t[ok, g]  # (L, U)

        def cov(level, inner, outer, xg=xg, tg=tg):
            tail = 0.5 * (1.0 - level)
            lo, hi = stretched_quantiles(xg, (tail, 1.0 - tail), inner, outer, *bounds)
            return np.mean((tg >= lo) & (tg <= hi), axis=-1)

        s_in = float(grid[np.argmin(np.abs(cov(inner_level, cand, cand) - inner_level))])
        c_out = cov(outer_level, s_in, cand)
        out[g] = s_in, float(grid[np.argmin(np.abs(c_out - outer_level))])
    fitted = np.flatnonzero(np.isfinite(out[:, 0]))
    if fitted.size == 0:
        raise ValueError(f"too few universes to fit a band scale (need {min_universes})")
    nearest = fitted[np.argmin(np.abs(np.arange(len(out))[:, None] - fitted[None]), axis=1)]
    return out[nearest]


def fit_band_scale(
    universes: Universes,
    levels: Sequence[float] = NOMINAL_LEVELS,
    grid: np.ndarray = SCALE_GRID,
    *,
    cs2_range: tuple[float, float] = (-np.inf, np.inf),
    min_universes: int = 10,
) -> BandScale:
    """Stretch factors (inner, outer) fitted so that the stretched ensemble band covers the
    truth as often as nominal on these (held-out) universes: the inner factor at the first
    level (68 %), the outer one at the second (95 %). One pair per c_s^2 segment and, when
    the universes carry the full derived quantities (``Universes.draws_derived``), one pair
    per derived quantity and grid point.

    The stretch (:func:`nseos.replica.stretch_band`) multiplies a member's distance from the
    median by the inner factor up to the first member beyond that universe's 68 % interval
    (on its side), and by the outer factor beyond; each candidate's coverage is that of the
    stretched draws' own central intervals. A single factor cannot fix both levels when the
    members' spread has the wrong shape (their tails too light), which the measured NN
    ensembles show. This is a split-conformal style fit of each marginal band.
    ``cs2_range``: the bounds the stretched c_s^2 draws are clipped to (the estimator's
    ``cs2_range``); the fit accounts for the clipping.
    """
    from ..replica import BandScale
    from ..replica._band import DERIVED_BOUNDS

    cs2 = _fit_pairs(
        universes.draws_params, universes.truth_params, levels, grid, min_universes, cs2_range
    )
    derived = {}
    for k, x in (universes.draws_derived or {}).items():
        t = universes.truth_derived[k]
        u, n_draws = x.shape[:2]
        pairs = _fit_pairs(
            x.reshape(u, n_draws, -1), t.reshape(u, -1), levels, grid, min_universes, DERIVED_BOUNDS
        )
        derived[k] = pairs.reshape(*x.shape[2:], 2)
    return BandScale.from_arrays(cs2, derived)


def coverage_rows(universes: Universes) -> list[CoverageRow]:
    rows = []
    for q in universes.quantities:
        rows += coverage(universes.draws[q], universes.truth[q], q)
    return rows


def coverage_table(variants: Mapping[str, Universes]) -> Table:
    """Nominal vs empirical coverage per quantity and variant, with the binomial ranges."""
    body = []
    for name, u in variants.items():
        for r in coverage_rows(u):
            body.append(
                (
                    name,
                    r.quantity,
                    r.nominal,
                    r.empirical,
                    f"[{r.ci_lo:.3f}, {r.ci_hi:.3f}]",
                    f"[{r.expected_lo:.3f}, {r.expected_hi:.3f}]",
                    r.n_universes,
                    "yes" if r.consistent else "NO",
                )
            )
    return Table(
        "Coverage of the central intervals",
        (
            "band",
            "quantity",
            "nominal [fraction]",
            "empirical [fraction]",
            "Clopper-Pearson 95 % [fraction]",
            "calibrated range 95 % [fraction]",
            "universes [count]",
            "consistent",
        ),
        tuple(body),
        note="'calibrated range': where a calibrated band's empirical coverage falls with 95 % "
        "probability (Binomial(n, nominal) / n). Quantities: c_s^2 per segment "
        "[dimensionless, units of c^2], R [km], M_max [M_sun], p [MeV/fm^3].",
    )


def _grid(n: int):
    from ..plots import _pyplot

    plt = _pyplot()
    cols = min(4, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def rank_ecdf_figure(variants: Mapping[str, Universes], n_draws_label: str = ""):
    """ECDF of the truth's fractional rank minus uniform, per quantity, with the 95 %
    simultaneous envelope of calibrated ranks (grey)."""
    from ._stats import ranks

    first = next(iter(variants.values()))
    fig, axes = _grid(len(first.quantities))
    for ax, q in zip(axes, first.quantities, strict=False):
        for i, (name, u) in enumerate(variants.items()):
            r = ranks(u.draws[q], u.truth[q])
            z, d, env = ecdf_difference(r, u.draws[q].shape[1])
            if i == 0:
                ax.fill_between(z, -env, env, color="0.85", label="95 % envelope")
            ax.plot(z, d, label=name)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(q, fontsize=9)
        ax.set_xlabel("fractional rank of the truth [dimensionless]", fontsize=8)
        ax.set_ylabel("ECDF - uniform [dimensionless]", fontsize=8)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"SBC rank ECDF differences {n_draws_label}".strip(), fontsize=10)
    fig.tight_layout()
    return fig


def coverage_curve_figure(variants: Mapping[str, Universes]):
    """Empirical against nominal coverage of central intervals, per quantity."""
    from ._stats import coverage_curve

    first = next(iter(variants.values()))
    fig, axes = _grid(len(first.quantities))
    for ax, q in zip(axes, first.quantities, strict=False):
        ax.plot([0, 1], [0, 1], "k:", lw=0.8, label="calibrated")
        for name, u in variants.items():
            lv, emp = coverage_curve(u.draws[q], u.truth[q])
            ax.plot(lv, emp, "-o", ms=2.5, label=name)
        ax.set_title(q, fontsize=9)
        ax.set_xlabel("nominal coverage [fraction]", fontsize=8)
        ax.set_ylabel("empirical coverage [fraction]", fontsize=8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def verdict(variants: Mapping[str, Universes]) -> list[str]:
    """One plain sentence per variant: consistent with calibration on every quantity, or
    the largest miss."""
    lines = []
    for name, u in variants.items():
        rows = coverage_rows(u)
        bad = [r for r in rows if not r.consistent]
        worst = max(rows, key=lambda r: abs(r.empirical - r.nominal))
        if not bad:
            lines.append(
                f"{name}: coverage consistent with calibration on all {len(rows)} "
                f"(quantity, level) pairs over {u.n_universes} universes; largest deviation "
                f"{100 * (worst.empirical - worst.nominal):+.1f} points ({worst.quantity}, "
                f"{worst.nominal:.0%})."
            )
        else:
            lines.append(
                f"{name}: NOT calibrated on {len(bad)} of {len(rows)} (quantity, level) pairs "
                f"over {u.n_universes} universes; worst {worst.quantity} at {worst.nominal:.0%}: "
                f"{worst.empirical:.1%} ({100 * (worst.empirical - worst.nominal):+.1f} points)."
            )
    return lines


def write_calibration(
    out: str | os.PathLike,
    title: str,
    variants: Mapping[str, Universes],
    *,
    notes: Sequence[str] = (),
    extra: dict | None = None,
) -> Path:
    """``report.md`` + ``report.html``, the coverage table (Markdown, CSV), the rank-ECDF and
    coverage-curve figures (PNG, PDF) and ``calibration.json`` into ``out``."""
    from .._io import json_text, write_text_atomic
    from ..compare._report import Report

    out = Path(out)
    report = Report(out, title)
    report.heading("Verdict")
    for line in verdict(variants):
        report.text(line)
    for note in notes:
        report.text(note)
    table = coverage_table(variants)
    report.heading("Coverage")
    report.table(table, "coverage")
    report.heading("Figures")
    report.figure(
        coverage_curve_figure(variants),
        "coverage_curve",
        "Empirical vs nominal coverage of central intervals (dotted: calibrated).",
    )
    report.figure(
        rank_ecdf_figure(variants),
        "sbc_rank_ecdf",
        "SBC: ECDF of the truth's fractional rank minus the uniform CDF; outside the grey "
        "95 % envelope means miscalibrated (falling curve: bands too narrow; rising: too "
        "wide; one-signed hump: biased).",
    )
    rows = {name: [r._asdict() for r in coverage_rows(u)] for name, u in variants.items()}
    doc = {"format": "nseos-calibration", "version": 1, "coverage": rows, **(extra or {})}
    write_text_atomic(out / "calibration.json", json_text(doc))
    return report.write()

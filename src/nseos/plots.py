"""Figures (matplotlib, Agg-safe). Every axis carries its unit."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np

from ._io import atomic_path
from .tov import MassRadiusCurve

DPI = 150


def _pyplot():
    import matplotlib

    if os.environ.get("MPLBACKEND") is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 11})
    return plt


def mass_radius_figure(curves: Sequence[tuple[str, MassRadiusCurve]], *, tidal: bool = True):
    """M-R curves (stable branch solid, unstable dashed) and, optionally, Lambda(M)."""
    plt = _pyplot()
    ncols = 2 if tidal else 1
    fig, axes = plt.subplots(1, ncols, figsize=(5.5 * ncols, 4.5), squeeze=False)
    ax_mr = axes[0, 0]
    for label, c in curves:
        stable = np.asarray(c.stable)
        r, m = np.asarray(c.radius_km), np.asarray(c.mass_msun)
        (line,) = ax_mr.plot(r[stable], m[stable], label=label)
        ax_mr.plot(r[~stable], m[~stable], ls="--", color=line.get_color(), alpha=0.5)
        if tidal:
            lam = np.asarray(c.tidal_deformability)
            axes[0, 1].semilogy(m[stable], lam[stable], color=line.get_color(), label=label)
    ax_mr.set_xlabel("radius R [km]")
    ax_mr.set_ylabel(r"gravitational mass M [$M_\odot$]")
    ax_mr.set_xlim(8, 16)
    ax_mr.set_ylim(0, None)
    ax_mr.axhline(1.4, color="0.7", lw=0.8)
    ax_mr.legend(fontsize=9)
    ax_mr.set_title("mass-radius (dashed: unstable)")
    if tidal:
        ax = axes[0, 1]
        ax.set_xlabel(r"gravitational mass M [$M_\odot$]")
        ax.set_ylabel(r"tidal deformability $\Lambda$ [dimensionless]")
        ax.set_xlim(0.8, None)
        ax.set_ylim(1, 1e5)
        ax.legend(fontsize=9)
        ax.set_title("tidal deformability")
    fig.tight_layout()
    return fig


def save_figure(fig, path_without_suffix: str | os.PathLike, formats=("png", "pdf")) -> list[str]:
    """Save ``fig`` at 150 dpi in each format, atomically; return the paths written."""
    plt = _pyplot()
    written = []
    for fmt in formats:
        target = f"{path_without_suffix}.{fmt}"
        with atomic_path(target) as tmp:
            fig.savefig(tmp, dpi=DPI, format=fmt)
        written.append(target)
    plt.close(fig)
    return written

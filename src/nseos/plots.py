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


CAUSALITY_COMPACTNESS = 1.0 / 2.9
"""Causality bounds a star's compactness by G M / (R c^2) < 1/2.9 (Lattimer & Prakash 2007)."""


def _hpd_levels(log_density, probabilities):
    """Levels of a log-density on a regular grid that enclose each probability (highest-
    density regions), computed from the grid itself."""
    z = np.asarray(log_density).ravel()
    order = np.argsort(z)[::-1]
    mass = np.exp(z[order] - z.max())
    cumulative = np.cumsum(mass) / mass.sum()
    return [float(z[order][np.searchsorted(cumulative, p)]) for p in probabilities]


def _mass_radius_panel(ax, plt, observations, curves):
    """Contours of the single-star observations on the M-R plane (see observations_figure)."""
    import jax.numpy as jnp

    from . import units
    from .observations import (
        MassRadiusGaussian,
        MassRadiusSamples,
        PulsarMass,
        TidalDeformability,
    )

    n_mr = sum(not isinstance(o, TidalDeformability) for o in observations)
    colors = (
        plt.rcParams["axes.prop_cycle"].by_key()["color"]
        if n_mr <= 10
        else [plt.get_cmap("tab20")(i) for i in range(20)]
    )
    # The density grid reaches beyond the axes so that the probability in the tails (X-ray
    # bursters reach R ~ 2 km) counts towards the enclosed fractions.
    radius_grid = np.linspace(2.0, 20.0, 300)
    mass_grid = np.linspace(0.3, 3.0, 220)
    rr, mm = np.meshgrid(radius_grid, mass_grid)
    for i, obs in enumerate(o for o in observations if not isinstance(o, TidalDeformability)):
        color = colors[i % len(colors)]
        if isinstance(obs, MassRadiusGaussian):
            for p, ls in ((0.68, "-"), (0.95, "--")):
                m, r = obs.confidence_ellipse(p)
                ax.plot(r, m, color=color, ls=ls, label=obs.name if p == 0.68 else None)
        elif isinstance(obs, MassRadiusSamples):
            z = np.asarray(obs.kde(jnp.asarray(np.stack([mm, rr], -1))))
            levels = _hpd_levels(z, (0.95, 0.68))
            ax.contour(rr, mm, z, levels=levels, colors=[color], linestyles=["--", "-"])
            ax.plot([], [], color=color, label=obs.name)
        elif isinstance(obs, PulsarMass):
            ax.axhspan(
                obs.mass_msun - obs.minus_sigma_msun,
                obs.mass_msun + obs.plus_sigma_msun,
                color=color,
                alpha=0.25,
                label=f"{obs.name} (radio mass)",
            )
    for i, (label, c) in enumerate(curves):
        stable = np.asarray(c.stable)
        ax.plot(
            np.asarray(c.radius_km)[stable],
            np.asarray(c.mass_msun)[stable],
            color="k",
            ls=("-", "--", "-.", ":")[i % 4],
            lw=1.2,
            alpha=0.7,
            label=label,
        )
    causal_r = mass_grid * units.SOLAR_MASS_KM / CAUSALITY_COMPACTNESS
    ax.fill_betweenx(
        mass_grid, 0, causal_r, color="0.85", zorder=0, label="acausal (R < 2.9 GM/c²)"
    )
    ax.set_xlim(5.0, 18.0)
    ax.set_ylim(mass_grid[0], mass_grid[-1])
    ax.set_xlabel("radius R [km]")
    ax.set_ylabel(r"gravitational mass M [$M_\odot$]")
    ax.set_title("68 % (solid) and 95 % (dashed) regions")
    ax.legend(fontsize=7, loc="upper right", ncol=2)


def observations_figure(observations, curves: Sequence[tuple[str, MassRadiusCurve]] = ()):
    """68 % (solid) and 95 % (dashed) regions of every observation on the M-R plane.

    Gaussian M-R observations are ellipses; sample sets are highest-density contours of
    their KDE likelihood; radio masses are horizontal bands (68 %). A binary's tidal
    likelihood gets its own panel (Lambda-tilde against q, at the median chirp mass).
    Optional M-R curves are overlaid.
    """
    import jax.numpy as jnp

    from .observations import (
        TidalDeformability,
        lambda_tilde,
    )

    plt = _pyplot()
    binaries = [o for o in observations if isinstance(o, TidalDeformability)]
    has_mr = len(binaries) < len(observations)
    ncols = int(has_mr) + len(binaries)
    fig, axes = plt.subplots(1, ncols, figsize=(1.5 + 4.5 * ncols, 5.2), squeeze=False)
    if has_mr:
        _mass_radius_panel(axes[0, 0], plt, observations, curves)
    for ax_b, obs in zip(axes[0, int(has_mr) :], binaries, strict=True):
        mc = float(np.median(obs.coordinates()[:, 0]))
        q = np.linspace(0.4, 1.0, 160)
        lt = np.linspace(0.0, 2500.0, 200)
        qq, ll = np.meshgrid(q, lt)
        m1 = mc * (1 + qq) ** 0.2 * qq**-0.6
        unit = lambda_tilde(m1, qq * m1, 1.0, 1.0)
        z = np.asarray(
            obs.log_likelihood(mc, jnp.asarray(qq), jnp.asarray(ll / unit), jnp.asarray(ll / unit))
        )
        levels = _hpd_levels(z, (0.95, 0.68))
        ax_b.contourf(
            qq,
            ll,
            z,
            levels=[levels[0], levels[1], float(z.max()) + 1],
            colors=["#9ecae1", "#3182bd"],
            alpha=0.8,
        )
        ax_b.set_xlabel("mass ratio q = m2/m1")
        ax_b.set_ylabel(r"binary tidal deformability $\tilde\Lambda$")
        ax_b.set_title(f"{obs.name}: likelihood at Mc = {mc:.4f} " + r"$M_\odot$", fontsize=10)
    fig.tight_layout()
    return fig

"""Figures of EoS posteriors: p(eps) and M-R bands, corner plots, width against density.

Every function returns a matplotlib figure; save it with :func:`nseos.plots.save_figure`
(150 dpi, PNG and PDF). Bands are the central 68 % (dark) and 95 % (light) intervals per grid
point.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import numpy as np

from ..plots import _mass_radius_panel, _pyplot
from ..posterior import ENERGY_DENSITY_GRID_MEV_FM3, MASS_GRID_MSUN, EoSPosterior
from ._metrics import density_in_rho0, pressure_band_width, width_ratio_vs_density

REFERENCE_OVERLAY = ("SLy4", "WFF1", "APR4", "MPA1")
"""Reference EoS drawn over the bands: SLy4 and WFF1 as in Fujimoto, Fukushima and Murase's
figure, plus APR4 and MPA1."""
_PRIOR_COLOR = "0.6"


RUN_COLORS = ("#5e3c99", "#e66101", "#1b9e77", "#d01c8b", "#4d4d4d")
"""Colours of the runs' bands: apart from matplotlib's cycle, which the observations use."""


def _colors(plt, n: int) -> list:
    return [RUN_COLORS[i % len(RUN_COLORS)] for i in range(n)]


def _prior_source(posteriors: Mapping[str, EoSPosterior]) -> tuple[str, EoSPosterior] | None:
    for name, post in posteriors.items():
        if "prior" in post.datatree.children:
            return name, post
    return None


@functools.cache
def _solve_reference():
    """The reference curves' solver, compiled once per table shape and reused by every
    figure (a new jit wrapper per call would compile the four curves again each time)."""
    import equinox as eqx

    from ..tov import mass_radius_curve

    return eqx.filter_jit(mass_radius_curve)


def _reference_tables(names: Sequence[str]):
    """The named tables, acausal ones (WFF1 at high density) kept and marked in the label."""
    import warnings

    from ..eos import AcausalEOSWarning, reference_eos

    out = []
    for name in names:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", AcausalEOSWarning)
            table = reference_eos(name, allow_acausal=True)
        acausal = any(issubclass(w.category, AcausalEOSWarning) for w in caught)
        out.append((f"{name} (acausal at high ε)" if acausal else name, table))
    return out


def eos_band_figure(
    posteriors: Mapping[str, EoSPosterior],
    *,
    reference_eos: Sequence[str] = REFERENCE_OVERLAY,
    chieft: bool = True,
    show_prior: bool = True,
):
    """68 % and 95 % bands of p(eps) for each run on log axes, over the prior band (grey,
    from the first run that stores prior draws), the reference EoS and the chiral-EFT band
    of Koehn et al. 2025."""
    import jax.numpy as jnp

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.8, 5.4))
    eps = ENERGY_DENSITY_GRID_MEV_FM3
    source = _prior_source(posteriors) if show_prior else None
    if source is not None:
        lo, hi = source[1].band("pressure_mev_fm3", 0.95, "prior")
        ax.fill_between(eps, lo, hi, color=_PRIOR_COLOR, alpha=0.25, lw=0, label="prior 95 %")
    if chieft:
        from ..bayes import ChiEFTBand

        band = ChiEFTBand.koehn2025(min_energy_density_mev_fm3=0.0)
        ax.fill_between(
            np.exp(np.asarray(band.log_energy_density)),
            np.exp(np.asarray(band.log_pressure_low)),
            np.exp(np.asarray(band.log_pressure_high)),
            color="tab:olive",
            alpha=0.5,
            lw=0,
            label=r"$\chi$EFT (Koehn et al. 2025)",
        )
    for color, (name, post) in zip(_colors(plt, len(posteriors)), posteriors.items(), strict=True):
        for prob, alpha in ((0.95, 0.25), (0.68, 0.5)):
            lo, hi = post.band("pressure_mev_fm3", prob)
            ax.fill_between(eps, lo, hi, color=color, alpha=alpha, lw=0, label=f"{name} {prob:.0%}")
    styles = ("-", "--", "-.", ":")
    eps_ref = np.geomspace(0.5 * eps[0], eps[-1], 200)
    for i, (name, table) in enumerate(_reference_tables(reference_eos)):
        ax.plot(
            eps_ref,
            np.asarray(table.pressure_of_energy_density(jnp.asarray(eps_ref))),
            color="k",
            ls=styles[i % len(styles)],
            lw=1.0,
            label=name,
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(eps[0] * 0.5, eps[-1])
    ax.set_ylim(0.5, 2000)
    ax.set_xlabel(r"energy density $\varepsilon$ [MeV fm$^{-3}$]")
    ax.set_ylabel(r"pressure $p$ [MeV fm$^{-3}$]")
    top = ax.secondary_xaxis("top", functions=(lambda e: density_in_rho0(e), lambda r: r * eps[0]))
    from matplotlib.ticker import FixedLocator, NullLocator, ScalarFormatter

    top.xaxis.set_major_locator(FixedLocator([0.5, 1, 2, 3, 4, 6, 8]))
    top.xaxis.set_minor_locator(NullLocator())
    top.xaxis.set_major_formatter(ScalarFormatter())
    top.set_xlabel(r"$\varepsilon / \rho_0 c^2$ [1]")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return fig


def mass_radius_band_figure(
    posteriors: Mapping[str, EoSPosterior],
    observations=(),
    *,
    reference_eos: Sequence[str] = REFERENCE_OVERLAY,
):
    """68 % and 95 % bands of R(M) for each run, with each observation's 68 % / 95 % regions
    (ellipses, KDE contours, radio-mass bands) and the reference EoS M-R curves."""
    from ..tov import RK4

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9.6, 6.0))
    for color, (name, post) in zip(_colors(plt, len(posteriors)), posteriors.items(), strict=True):
        # Only masses that at least half the draws reach carry a band; bands sit above the
        # observations' contours (zorder 3).
        reached = post.fraction_defined("radius_km") >= 0.5
        for prob, alpha in ((0.95, 0.2), (0.68, 0.45)):
            lo, hi = post.band("radius_km", prob)
            ax.fill_betweenx(
                MASS_GRID_MSUN[reached],
                lo[reached],
                hi[reached],
                color=color,
                alpha=alpha,
                lw=0,
                zorder=3,
                label=f"{name} {prob:.0%}",
            )
    curves = [
        (name, _solve_reference()(table, 100, RK4()))
        for name, table in _reference_tables(reference_eos)
    ]
    from ..observations import ObservationSet

    obs = observations if isinstance(observations, ObservationSet) else list(observations)
    _mass_radius_panel(ax, plt, obs, curves)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    ax.set_title("M-R bands; observations: 68 % (solid) and 95 % (dashed)", fontsize=10)
    fig.tight_layout()
    return fig


def width_vs_density_figure(posteriors: Mapping[str, EoSPosterior]):
    """Width of the 68 % and 95 % ln p bands against density, per run (and the prior's)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    x = density_in_rho0()
    for color, (name, post) in zip(_colors(plt, len(posteriors)), posteriors.items(), strict=True):
        ax.plot(x, pressure_band_width(post, 0.68), color=color, label=f"{name} 68 %")
        ax.plot(x, pressure_band_width(post, 0.95), color=color, ls="--", label=f"{name} 95 %")
    source = _prior_source(posteriors)
    if source is not None:
        ax.plot(
            x,
            pressure_band_width(source[1], 0.68, "prior"),
            color=_PRIOR_COLOR,
            label="prior 68 %",
        )
    ax.set_xlabel(r"energy density $\varepsilon / \rho_0 c^2$ [1]")
    ax.set_ylabel(r"band width in $\ln p$ [1] (0.69 = factor 2)")
    ax.set_ylim(0, None)
    ax.legend(fontsize=8)
    ax.set_title("p(ε) band width against density")
    fig.tight_layout()
    return fig


def prior_dependence_figure(posteriors: Mapping[str, EoSPosterior]):
    """Posterior/prior ratio of the 68 % ln p band width against density, per run: near 1
    the prior sets the band, well below 1 the data do."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    x = density_in_rho0()
    for color, (name, post) in zip(_colors(plt, len(posteriors)), posteriors.items(), strict=True):
        ratio = width_ratio_vs_density(post)
        if np.isfinite(ratio).any():
            ax.plot(x, ratio, color=color, label=name)
    ax.axhline(1.0, color="0.5", lw=0.8, ls=":")
    ax.set_xlabel(r"energy density $\varepsilon / \rho_0 c^2$ [1]")
    ax.set_ylabel("posterior / prior 68 % width of ln p [ratio]")
    # A ratio above 1 is possible: data that favour soft matter spread ln p more than the
    # (stiff) uniform prior does.
    top = max([1.3, *(np.nanmax(line.get_ydata()) * 1.05 for line in ax.get_lines()[:-1])])
    ax.set_ylim(0, min(top, 4.0))
    ax.legend(fontsize=8)
    ax.set_title("where the data, not the prior, set the EoS")
    fig.tight_layout()
    return fig


CORNER_QUANTITIES = ("radius_km_at_1p4", "max_mass_msun", "pressure_mev_fm3_at_3rho0")
"""Derived quantities that the corner plots add to the c_s^2 parameters."""


def _corner_matrix(post: EoSPosterior, quantities: Sequence[str]) -> tuple[np.ndarray, list]:
    from ..posterior import summary_quantity

    cs2 = post.posterior["cs2"].stack(sample=("chain", "draw")).transpose("sample", ...).values
    cols = [cs2[:, i] for i in range(cs2.shape[1])]
    labels = [rf"$c_{{s,{i + 1}}}^2$ [$c^2$]" for i in range(cs2.shape[1])]
    for key in quantities:
        cols.append(post.draws(key))
        labels.append(summary_quantity(key).label.replace("M_sun", r"$M_\odot$"))
    data = np.stack(cols, -1)
    return data[np.all(np.isfinite(data), axis=-1)], labels


def corner_figure(
    posteriors: Mapping[str, EoSPosterior], quantities: Sequence[str] = CORNER_QUANTITIES
):
    """Corner plot of c_s^2 and derived quantities; several runs are overlaid in colour
    (68 % and 95 % contours) on shared axis ranges."""
    import corner

    plt = _pyplot()
    mats = {name: _corner_matrix(post, quantities) for name, post in posteriors.items()}
    labels = next(iter(mats.values()))[1]
    # A corner plot needs more draws than dimensions (a tiny ensemble has too few).
    few = [name for name, (data, _) in mats.items() if data.shape[0] <= data.shape[1]]
    mats = {name: m for name, m in mats.items() if name not in few}
    if not mats:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, f"too few draws for a corner plot: {', '.join(few)}", ha="center")
        return fig
    stacked = np.concatenate([m for m, _ in mats.values()])
    ranges = [tuple(np.quantile(stacked[:, j], [0.002, 0.998])) for j in range(stacked.shape[1])]
    ranges = [(lo, hi) if hi > lo else (lo - 0.5, hi + 0.5) for lo, hi in ranges]
    fig = None
    colors = _colors(plt, len(mats))
    for color, (data, _) in zip(colors, mats.values(), strict=True):
        weights = np.full(data.shape[0], 1.0 / max(data.shape[0], 1))
        fig = corner.corner(
            data,
            fig=fig,
            labels=labels,
            range=ranges,
            weights=weights,
            color=color,
            levels=(0.68, 0.95),
            plot_datapoints=False,
            plot_density=False,
            fill_contours=False,
            smooth=1.0,
            hist_kwargs={"density": True},
            label_kwargs={"fontsize": 9},
        )
    handles = [plt.Line2D([], [], color=c, label=n) for c, n in zip(colors, mats, strict=True)]
    handles += [plt.Line2D([], [], color="none", label=f"{n}: too few draws") for n in few]
    fig.legend(handles=handles, loc="upper right", fontsize=10, frameon=False)
    return fig

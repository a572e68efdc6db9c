"""Method comparison: band widths, prior dependence, agreement, sampler health, figures.

>>> comparison = compare({"bayes": bayes_posterior, "replica": replica_posterior})
>>> print(comparison.widths.to_markdown())
>>> write_comparison(comparison, posteriors, "out/", observations=catalogs.modern())
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from ..posterior import EoSPosterior
from ._figures import CORNER_QUANTITIES as CORNER_QUANTITIES
from ._figures import REFERENCE_OVERLAY as REFERENCE_OVERLAY
from ._figures import corner_figure as corner_figure
from ._figures import eos_band_figure as eos_band_figure
from ._figures import mass_radius_band_figure as mass_radius_band_figure
from ._figures import prior_dependence_figure as prior_dependence_figure
from ._figures import width_vs_density_figure as width_vs_density_figure
from ._metrics import agreement_table as agreement_table
from ._metrics import health_table as health_table
from ._metrics import kl_divergence as kl_divergence
from ._metrics import pressure_band_width as pressure_band_width
from ._metrics import prior_dependence_table as prior_dependence_table
from ._metrics import wasserstein_distance as wasserstein_distance
from ._metrics import width_ratio_vs_density as width_ratio_vs_density
from ._metrics import widths_table as widths_table
from ._report import Report as Report
from ._tables import Table as Table


class Comparison(NamedTuple):
    """The tables of :func:`compare`."""

    widths: Table
    prior_dependence: tuple[Table, ...]
    agreement: Table | None
    health: Table

    def tables(self) -> list[tuple[str, Table]]:
        """(file stem, table) pairs, in report order."""
        out = [("widths", self.widths)]
        out += [(f"prior_dependence_{i + 1}", t) for i, t in enumerate(self.prior_dependence)]
        if self.agreement is not None:
            out.append(("agreement", self.agreement))
        if self.health.rows:
            out.append(("sampler_health", self.health))
        return out


def _method(post: EoSPosterior) -> str:
    return str(post.datatree.attrs.get("method", "?"))


def compare(
    posteriors: Mapping[str, EoSPosterior],
    *,
    prior_groups: Sequence[Sequence[str]] | None = None,
) -> Comparison:
    """Compare EoS posteriors run by run.

    Parameters
    ----------
    posteriors : mapping of run label to EoSPosterior
        For instance the Bayesian estimator under two priors and the NN-replica estimator.
    prior_groups : sequence of sequences of run labels, optional
        Runs of one method under different priors (or training distributions); the first of
        each group is the reference of its prior-dependence table. By default the runs are
        grouped by their ``method`` attribute, the first run of each method being the
        reference.

    Returns
    -------
    Comparison
        Widths (68 % and 95 %, every headline quantity), prior dependence (median shift in
        posterior sigma, Wasserstein distance, posterior/prior width ratio), agreement
        between every pair of runs (Wasserstein-1 and KL divergence), and sampler health.
    """
    if not posteriors:
        raise ValueError("compare needs at least one posterior")
    if prior_groups is None:
        groups: dict[str, list[str]] = {}
        for name, post in posteriors.items():
            groups.setdefault(_method(post), []).append(name)
        prior_groups = list(groups.values())
    dependence = []
    for group in prior_groups:
        missing = [g for g in group if g not in posteriors]
        if missing:
            raise KeyError(f"prior group names unknown runs: {', '.join(missing)}")
        dependence.append(prior_dependence_table({g: posteriors[g] for g in group}, group[0]))
    return Comparison(
        widths=widths_table(posteriors),
        prior_dependence=tuple(dependence),
        agreement=agreement_table(posteriors) if len(posteriors) > 1 else None,
        health=health_table(posteriors),
    )


def add_comparison(
    report: Report,
    comparison: Comparison,
    posteriors: Mapping[str, EoSPosterior],
    *,
    observations=(),
    prefix: str = "",
) -> None:
    """Append the comparison's figures and tables to a report (file stems start with
    ``prefix``)."""
    report.heading("Equation of state")
    report.figure(
        eos_band_figure(posteriors),
        f"{prefix}eos_band",
        "p(ε): 68 % and 95 % bands per run, prior band (grey), χEFT band, reference EoS.",
    )
    report.figure(
        width_vs_density_figure(posteriors),
        f"{prefix}width_vs_density",
        "Width of the ln p band against density (68 % solid, 95 % dashed).",
    )
    report.heading("Mass and radius")
    report.figure(
        mass_radius_band_figure(posteriors, observations),
        f"{prefix}mass_radius_band",
        "R(M): 68 % and 95 % bands per run, with the observations and reference EoS.",
    )
    report.heading("Uncertainty widths")
    report.table(comparison.widths, f"{prefix}widths")
    report.heading("Prior dependence")
    report.figure(
        prior_dependence_figure(posteriors),
        f"{prefix}prior_dependence",
        "Posterior/prior width of the ln p band: the data constrain the EoS where it is < 1.",
    )
    for i, table in enumerate(comparison.prior_dependence):
        report.table(table, f"{prefix}prior_dependence_{i + 1}")
    if comparison.agreement is not None:
        report.heading("Agreement between methods")
        report.table(comparison.agreement, f"{prefix}agreement")
    report.heading("Posteriors")
    report.figure(
        corner_figure(posteriors),
        f"{prefix}corner_all",
        "c_s² per segment and derived quantities, all runs overlaid (68 % and 95 % contours).",
    )
    for i, (name, post) in enumerate(posteriors.items()):
        report.figure(
            corner_figure({name: post}), f"{prefix}corner_{i + 1}", f"Corner plot: {name}."
        )
    if comparison.health.rows:
        report.heading("Sampler health")
        report.table(comparison.health, f"{prefix}sampler_health")


def write_comparison(
    comparison: Comparison,
    posteriors: Mapping[str, EoSPosterior],
    out_dir: str | os.PathLike,
    *,
    observations=(),
    title: str = "nseos comparison",
) -> Path:
    """Write ``report.md``/``report.html`` with every figure and table into ``out_dir``."""
    report = Report(out_dir, title)
    add_comparison(report, comparison, posteriors, observations=observations)
    return report.write()

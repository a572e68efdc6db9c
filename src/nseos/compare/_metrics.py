"""Numbers that compare EoS posteriors: band widths, prior dependence, agreement, health.

Every function takes posteriors keyed by a run label (``"bayes (uniform c_s^2)"``,
``"replica"``) and returns a :class:`~nseos.compare.Table` whose headers carry the units.
The distances between distributions are ArviZ 1.x's (``arviz_stats.wasserstein`` and
``arviz_stats.kl_divergence``) on the one-dimensional marginals of the headline quantities
(:data:`nseos.posterior.SUMMARY_QUANTITIES`).
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Mapping

import numpy as np
import xarray as xr

from ..posterior import (
    ENERGY_DENSITY_GRID_MEV_FM3,
    ESS_BULK_MIN,
    R_HAT_MAX,
    RHO0_MEV_FM3,
    SUMMARY_QUANTITIES,
    EoSPosterior,
)
from ._tables import Table

PROBABILITIES = (0.68, 0.95)
"""The central intervals every width refers to."""
_DISTANCE_SAMPLES = 2000
"""Draws per distribution fed to the ArviZ distance estimators (they subsample to this)."""


def _defined(x: np.ndarray) -> np.ndarray:
    return x[np.isfinite(x)]


def _width(x: np.ndarray, prob: float) -> float:
    x = _defined(x)
    if x.size < 2:
        return float("nan")
    lo, hi = np.quantile(x, [(1 - prob) / 2, (1 + prob) / 2])
    return float(hi - lo)


def _has_group(posterior: EoSPosterior, group: str) -> bool:
    return group in posterior.datatree.children


def widths_table(posteriors: Mapping[str, EoSPosterior]) -> Table:
    """Median and 68 % / 95 % interval widths of every headline quantity, run by run."""
    columns = ["quantity [unit]"]
    for name in posteriors:
        columns += [f"{name}: median", f"{name}: 68% width", f"{name}: 95% width"]
    rows = []
    for q in SUMMARY_QUANTITIES:
        row: list = [q.label]
        for post in posteriors.values():
            x = post.draws(q.key)
            row.append(float(np.median(_defined(x))) if np.isfinite(x).any() else None)
            row += [_width(x, p) for p in PROBABILITIES]
        rows.append(tuple(row))
    return Table(
        "Uncertainty widths",
        tuple(columns),
        tuple(rows),
        "Widths of the central 68 % and 95 % intervals, in the unit of each row. R at a mass "
        "uses only the draws whose M_max exceeds that mass.",
    )


def pressure_band_width(
    posterior: EoSPosterior, prob: float = 0.68, group: str = "posterior"
) -> np.ndarray:
    """Width of the central ``prob`` band of ln p on the energy-density grid (a width of
    0.69 means the band spans a factor of 2 in pressure)."""
    lo, hi = posterior.band("pressure_mev_fm3", prob, group)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(hi) - np.log(lo)


def width_ratio_vs_density(posterior: EoSPosterior, prob: float = 0.68) -> np.ndarray:
    """Posterior over prior width of the ln p band, on the energy-density grid: near 1 where
    the prior alone sets the band, small where the data constrain the EoS. NaN without a
    stored prior group."""
    if not _has_group(posterior, "prior"):
        return np.full(ENERGY_DENSITY_GRID_MEV_FM3.shape, np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        return pressure_band_width(posterior, prob) / pressure_band_width(posterior, prob, "prior")


def _as_draws(x: np.ndarray) -> xr.DataArray:
    return xr.DataArray(_defined(x)[None, :], dims=("chain", "draw"))


def _n_samples(x: np.ndarray, y: np.ndarray) -> int:
    """ArviZ subsamples both sets without replacement: no more than the smaller holds."""
    return int(min(_DISTANCE_SAMPLES, np.isfinite(x).sum(), np.isfinite(y).sum()))


def wasserstein_distance(x: np.ndarray, y: np.ndarray, *, seed: int = 0) -> float:
    """Wasserstein-1 distance between two sets of scalar draws (NaN draws left out), via
    ``arviz_stats.wasserstein``; in the unit of the draws."""
    import arviz_stats

    if np.isfinite(x).sum() < 2 or np.isfinite(y).sum() < 2:
        return float("nan")
    return float(
        arviz_stats.wasserstein(
            _as_draws(x),
            _as_draws(y),
            joint=False,  # one variable: scipy's 1-D distance, not the O(n^3) transport LP
            num_samples=_n_samples(x, y),
            round_to="none",
            random_seed=seed,
        )
    )


def kl_divergence(x: np.ndarray, y: np.ndarray, *, seed: int = 0) -> float:
    """KL(x || y) in nats between two sets of scalar draws (nearest-neighbour estimate of
    ``arviz_stats.kl_divergence``; NaN draws left out)."""
    import arviz_stats

    if np.isfinite(x).sum() < 4 or np.isfinite(y).sum() < 4:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(
            arviz_stats.kl_divergence(
                _as_draws(x),
                _as_draws(y),
                num_samples=_n_samples(x, y),
                round_to="none",
                random_seed=seed,
            )
        )


def prior_dependence_table(posteriors: Mapping[str, EoSPosterior], reference: str) -> Table:
    """How much the headline numbers move when the prior (or, for the NN-replica estimator,
    the training distribution) changes.

    For every run other than ``reference`` and every quantity: the shift of the median in
    units of the reference posterior's sigma (half its 68 % width), and the Wasserstein-1
    distance between the two posteriors. For every run: the posterior/prior ratio of the
    68 % width (from the run's stored prior draws), which says whether the data or the prior
    set that number.
    """
    if reference not in posteriors:
        raise KeyError(f"reference run {reference!r} not among {', '.join(posteriors)}")
    ref = posteriors[reference]
    rows = []
    for q in SUMMARY_QUANTITIES:
        x_ref = ref.draws(q.key)
        sigma = _width(x_ref, 0.68) / 2
        med_ref = np.median(_defined(x_ref)) if np.isfinite(x_ref).any() else np.nan
        for name, post in posteriors.items():
            x = post.draws(q.key)
            ratio = (
                _width(x, 0.68) / _width(post.draws(q.key, "prior"), 0.68)
                if _has_group(post, "prior")
                else None
            )
            if name == reference:
                shift, w1 = 0.0, 0.0
            else:
                med = np.median(_defined(x)) if np.isfinite(x).any() else np.nan
                shift = float((med - med_ref) / sigma) if sigma > 0 else float("nan")
                w1 = wasserstein_distance(x, x_ref)
            rows.append((q.label, name, shift, w1, ratio))
    return Table(
        f"Prior dependence (reference: {reference})",
        (
            "quantity [unit]",
            "run",
            "median shift [reference sigma]",
            "Wasserstein-1 to reference [unit of the row]",
            "posterior/prior 68% width [ratio]",
        ),
        tuple(rows),
        "sigma is half the reference posterior's 68 % width. A width ratio near 1 means the "
        "prior, not the data, sets that number.",
    )


def agreement_table(posteriors: Mapping[str, EoSPosterior]) -> Table:
    """Wasserstein-1 distance and KL divergence between every pair of runs, per quantity."""
    rows = []
    for (a, pa), (b, pb) in itertools.combinations(posteriors.items(), 2):
        for q in SUMMARY_QUANTITIES:
            x, y = pa.draws(q.key), pb.draws(q.key)
            rows.append(
                (
                    q.label,
                    a,
                    b,
                    wasserstein_distance(x, y),
                    kl_divergence(x, y),
                    kl_divergence(y, x),
                )
            )
    return Table(
        "Agreement between runs",
        (
            "quantity [unit]",
            "run A",
            "run B",
            "Wasserstein-1 [unit of the row]",
            "KL(A||B) [nats]",
            "KL(B||A) [nats]",
        ),
        tuple(rows),
        "ArviZ's estimators (arviz_stats.wasserstein, arviz_stats.kl_divergence) on the "
        "one-dimensional marginals; the nearest-neighbour KL estimate can be slightly negative "
        "for near-identical distributions.",
    )


def health_table(posteriors: Mapping[str, EoSPosterior]) -> Table:
    """R-hat, ESS and divergences of every sampled (multi-chain) run."""
    rows = []
    for name, post in posteriors.items():
        if not _has_group(post, "sample_stats"):
            continue
        diag = post.diagnostics()
        params = [r for r in diag if "r_hat" in r]
        extra = {r["parameter"]: r["value"] for r in diag if "value" in r}
        sizes = post.datatree["posterior"].sizes
        problems = post.convergence_problems()
        attrs = post.datatree.attrs
        rows.append(
            (
                name,
                "converged" if not problems else "NOT CONVERGED: " + "; ".join(problems),
                int(sizes["chain"]),
                int(sizes["draw"]),
                max(float(r["r_hat"]) for r in params),
                min(float(r["ess_bulk"]) for r in params),
                min(float(r["ess_tail"]) for r in params),
                extra.get("divergences"),
                extra.get("min E-BFMI"),
                attrs.get("compile_wall_time_s"),
                attrs.get("sampling_wall_time_s"),
                attrs.get("n_gradient_evaluations"),
            )
        )
    return Table(
        "Sampler health",
        (
            "run",
            "verdict",
            "chains",
            "draws per chain",
            "max R-hat [1]",
            "min ESS bulk [draws]",
            "min ESS tail [draws]",
            "divergences [count]",
            "min E-BFMI [1]",
            "compile time [s]",
            "sampling wall time incl. compilation [s]",
            "gradient evaluations [count]",
        ),
        tuple(rows),
        f"Converged means R-hat <= {R_HAT_MAX}, ESS_bulk >= {ESS_BULK_MIN} for every c_s² and "
        "no divergent transition; a run that misses any of these is marked NOT CONVERGED and "
        "its numbers are not to be quoted. E-BFMI should exceed 0.3.",
    )


def density_in_rho0(energy_density_mev_fm3=ENERGY_DENSITY_GRID_MEV_FM3) -> np.ndarray:
    """Energy density in units of rho0 c^2."""
    return np.asarray(energy_density_mev_fm3) / RHO0_MEV_FM3

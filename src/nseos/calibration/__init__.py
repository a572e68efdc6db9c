"""Are the bands honest? Coverage and simulation-based calibration (SBC) of both estimators.

* :func:`calibrate_replica`: the NN-replica ensemble over many mock universes from its
  training distribution (amortised: one network call per universe). Reports the coverage of
  the bootstrap band as it is, with the input-noise Monte Carlo spread added
  (``input_draws``), and after recalibration: a stretch of each reported quantity's band
  (per c_s^2 segment, per derived quantity and grid point), one factor inside its 68 %
  interval and one beyond (:func:`fit_band_scale`), fitted on *other* held-out universes,
  which ``ReplicaEstimator(band_scale=...)`` then applies to every fit.
* :func:`calibrate_bayes`: SBC of the Bayesian estimator, truths drawn from its own prior,
  all universes through one compiled NUTS program, resumable.

Both write a report (coverage table with binomial intervals, rank-ECDF and coverage-curve
figures, a plain verdict) with :func:`write_calibration`.

**Reference:** Talts, Betancourt, Simpson, Vehtari and Gelman 2018, arXiv:1804.06788.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from pathlib import Path

import jax

from ._report import coverage_table as coverage_table
from ._report import fit_band_scale as fit_band_scale
from ._report import verdict as verdict
from ._report import write_calibration as write_calibration
from ._stats import NOMINAL_LEVELS as NOMINAL_LEVELS
from ._stats import CoverageRow as CoverageRow
from ._stats import binomial_interval as binomial_interval
from ._stats import central_interval as central_interval
from ._stats import coverage as coverage
from ._stats import ecdf_difference as ecdf_difference
from ._stats import ranks as ranks
from ._truths import candidate_truths as candidate_truths
from ._truths import misspecified_truths as misspecified_truths
from ._universes import AbstractTruths as AbstractTruths
from ._universes import Misspecified as Misspecified
from ._universes import TruthCatalogues as TruthCatalogues
from ._universes import Universes as Universes
from ._universes import WellSpecified as WellSpecified
from ._universes import bayes_config as bayes_config
from ._universes import bayes_universes as bayes_universes
from ._universes import replica_universes as replica_universes


def _cached(path: Path | None, make) -> Universes:
    """Universes from ``path`` if a previous (interrupted) run left them there."""
    if path is not None and path.exists():
        return Universes.load(path)
    u = make()
    if path is not None:
        u.save(path)
    return u


def calibrate_replica(
    estimator,
    key: jax.Array,
    *,
    n_universes: int = 300,
    n_calibration: int = 300,
    input_draws: int = 10,
    truths: AbstractTruths = WellSpecified(),
    out: str | os.PathLike | None = None,
    progress: bool = False,
):
    """Coverage of the NN band before and after recalibration.

    Returns (variants, band_scale): the :class:`Universes` of each band variant on the same
    ``n_universes`` test universes, and the fitted :class:`~nseos.replica.BandScale`.
    ``n_calibration`` other universes (another key) fit the stretch; ``input_draws`` > 0
    adds the variant with the input-noise Monte Carlo spread. With ``out``, each stage is stored
    under ``out/universes/`` and reused when the run is repeated (resume after an interruption).
    """
    if estimator.ensemble is None:
        raise ValueError("calibrate_replica needs a trained ReplicaEstimator")
    if n_universes < 1 or n_calibration < 1:
        raise ValueError("n_universes and n_calibration must be at least 1")
    store = None if out is None else Path(out) / "universes"
    k_test, k_cal = jax.random.split(key)
    plain = dataclasses.replace(estimator, input_draws=0, band_scale=None)

    def stage(name, est, k, n, source=truths):
        prefix = "" if isinstance(source, WellSpecified) else f"{source.tag}-"
        path = None if store is None else store / f"{prefix}{name}-{n}.npz"
        return _cached(path, lambda: replica_universes(est, k, n, truths=source, progress=progress))

    variants = {"ensemble band": stage("ensemble", plain, k_test, n_universes)}
    if input_draws > 0:
        noisy = dataclasses.replace(plain, input_draws=input_draws)
        variants[f"+ input noise ({input_draws} draws)"] = stage(
            f"input{input_draws}", noisy, k_test, n_universes
        )
    held_out = stage("calibration", plain, k_cal, n_calibration, WellSpecified())
    scale = fit_band_scale(held_out, cs2_range=estimator.cs2_range)
    scaled = dataclasses.replace(plain, band_scale=scale)
    digest = hashlib.sha256(json.dumps(scale.to_json()).encode()).hexdigest()[:12]
    variants["recalibrated"] = stage(f"recalibrated-{digest}", scaled, k_test, n_universes)
    return variants, scale


def calibrate_bayes(
    estimator,
    key: jax.Array,
    *,
    n_universes: int = 50,
    n_draws: int = 100,
    chunk_size: int = 4,
    truths: AbstractTruths = WellSpecified(),
    out: str | os.PathLike | None = None,
    progress: bool = False,
):
    """SBC of the Bayesian estimator (or, with ``truths=Misspecified()``, the coverage of
    its derived quantities when the truth is outside the family). Returns
    ({"posterior": universes}, divergences)."""
    if n_universes < 1:
        raise ValueError("n_universes must be at least 1")
    sub = "bayes" if isinstance(truths, WellSpecified) else f"bayes-{truths.tag}"
    store = None if out is None else Path(out) / "universes" / sub
    u, divergences = bayes_universes(
        estimator,
        key,
        n_universes,
        n_draws=n_draws,
        chunk_size=chunk_size,
        truths=truths,
        store=store,
        progress=progress,
    )
    return {"posterior": u}, divergences

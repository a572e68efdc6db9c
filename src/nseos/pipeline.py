"""The jobs behind the CLI: fit and save, summarise, and the demo report.

``fit_and_save`` runs either estimator and writes ``posterior.nc`` (ArviZ DataTree, netCDF)
and ``summary.json`` (schema below); ``run_demo`` is ``nseos demo``: both estimators on the
bundled catalogs, the comparison, and a report.

``summary.json`` (``"format": "nseos-summary"``, version 1) holds, for every headline quantity
(:data:`nseos.posterior.SUMMARY_QUANTITIES`: ``radius_km_at_1p0`` ... ``radius_km_at_2p0``,
``max_mass_msun``, ``lambda_at_1p4``, ``pressure_mev_fm3_at_2rho0`` / ``3rho0`` / ``5rho0``),
an object with ``unit``, ``median``, ``q2.5``, ``q16``, ``q84``, ``q97.5`` and
``fraction_defined`` (the share of draws where it exists; R(2.0) needs M_max > 2 M_sun), all
under ``"quantities"``; ``"run"`` records the method, prior, observations, draws and
diagnostics.
"""

from __future__ import annotations

import dataclasses
import os
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import jax

from ._config import cache_root
from ._io import json_text, write_text_atomic
from .bayes import NumPyroNUTS
from .observations import ObservationSet
from .posterior import EoSPosterior

SUMMARY_FORMAT = "nseos-summary"
SUMMARY_VERSION = 1


_PRIOR_CLASSES = {
    "uniform": "UniformSoundSpeed",
    "log-uniform": "LogUniformSoundSpeed",
    "chieft": "ChiEFTConstrained",
}
PRIOR_NAMES = tuple(_PRIOR_CLASSES)
"""Bundled priors by CLI name: U[0.01, 0.99] on each c_s^2 (the original study's), uniform
in log c_s^2, and the uniform prior inside the chiral-EFT band of Koehn et al. 2025."""


def make_prior(name: str):
    """The bundled prior called ``name`` (one of :data:`PRIOR_NAMES`)."""
    from . import bayes

    if name not in _PRIOR_CLASSES:
        raise ValueError(f"unknown prior {name!r}; choose from {', '.join(PRIOR_NAMES)}")
    return getattr(bayes, _PRIOR_CLASSES[name])()


def summary_document(posterior: EoSPosterior, observations: ObservationSet | None = None) -> dict:
    """The ``summary.json`` document of a posterior (schema in the module docstring)."""
    attrs = dict(posterior.datatree.attrs)
    post = posterior.datatree["posterior"]
    run = {
        "method": attrs.get("method"),
        "prior": attrs.get("prior"),
        "chains": int(post.sizes["chain"]),
        "draws_per_chain": int(post.sizes["draw"]),
        "observations": list(observations.names) if observations is not None else None,
        "attrs": {k: (v.item() if hasattr(v, "item") else v) for k, v in attrs.items()},
    }
    if "sample_stats" in posterior.datatree.children:
        run["diagnostics"] = posterior.diagnostics()
    return {
        "format": SUMMARY_FORMAT,
        "version": SUMMARY_VERSION,
        "quantities": posterior.summary(),
        "run": run,
    }


def write_fit(
    posterior: EoSPosterior, out_dir: str | os.PathLike, observations: ObservationSet | None
) -> list[Path]:
    """Write ``posterior.nc`` and ``summary.json`` into ``out_dir`` (atomically)."""
    out = Path(out_dir)
    nc = posterior.save(out / "posterior.nc")
    summary = out / "summary.json"
    write_text_atomic(summary, json_text(summary_document(posterior, observations)))
    return [nc, summary]


def summary_table_markdown(posterior: EoSPosterior) -> str:
    """The summary as a Markdown table (median and 68 % / 95 % intervals, with units)."""
    from .posterior import SUMMARY_QUANTITIES

    s = posterior.summary()
    lines = [
        "| quantity [unit] | median | 68 % interval | 95 % interval | draws defined |",
        "|---|---|---|---|---|",
    ]
    for q in SUMMARY_QUANTITIES:
        e = s[q.key]
        if e["median"] is None:
            lines.append(f"| {q.label} | n/a | n/a | n/a | 0 % |")
            continue
        fmt = "{:.3g}" if abs(e["median"]) >= 100 else "{:.3f}"
        lines.append(
            f"| {q.label} | {fmt.format(e['median'])} | "
            f"[{fmt.format(e['q16'])}, {fmt.format(e['q84'])}] | "
            f"[{fmt.format(e['q2.5'])}, {fmt.format(e['q97.5'])}] | "
            f"{100 * e['fraction_defined']:.0f} % |"
        )
    return "\n".join(lines) + "\n"


# --- the demo -------------------------------------------------------------------------------
_DEFAULT_NUTS = NumPyroNUTS(progress=False)


class DemoScale(NamedTuple):
    """How much work ``nseos demo`` does.

    Attributes
    ----------
    warmup, draws, chains : int
        NUTS settings of every Bayesian run: the library's defaults (those of ``nseos fit``),
        enough for R-hat <= 1.01, ESS_bulk >= 400 and no divergence on the demo's data
        (docs/comparison.md).
    n_prior_draws : int
        Prior draws stored with each posterior.
    n_eos, n_sets, n_s, epochs, n_models : int
        The NN-replica ensemble: training EoS, catalogues per EoS, noise replicas, epochs and
        members.
    """

    warmup: int = _DEFAULT_NUTS.warmup
    draws: int = _DEFAULT_NUTS.draws
    chains: int = _DEFAULT_NUTS.chains
    n_prior_draws: int = 200
    n_eos: int = 200
    n_sets: int = 20
    n_s: int = 10
    epochs: int = 30
    n_models: int = 10

    @classmethod
    def tiny(cls) -> DemoScale:
        """For tests: seconds of sampling and training (numbers are not meaningful)."""
        return cls(30, 30, 2, 64, 40, 4, 2, 2, 2)


def demo_keys(key: jax.Array) -> tuple[jax.Array, ...]:
    """The demo's keys from its seed: (modern uniform, modern chiEFT, X-ray, ensemble
    training, ensemble fit). ``demo_keys(jax.random.key(0))[3]`` finds the ensemble that
    ``nseos demo`` trained and cached."""
    return tuple(jax.random.split(key, 5))


def demo_replica(scale: DemoScale, key: jax.Array, *, cache_dir: Path, progress: bool):
    """The demo's NN-replica ensemble (N = 14, the X-ray catalog's size): loaded from
    ``cache_dir`` if it was trained before with the same scale and key, else trained and
    saved there."""
    from .replica import (
        DataReplicas,
        ReplicaEstimator,
        TrainingConfig,
        TrainSettings,
    )

    tag = f"replica-demo-{scale.n_eos}-{scale.n_sets}-{scale.n_s}-{scale.epochs}-{scale.n_models}"
    tag += f"-{int(jax.random.key_data(key).sum())}"
    model_dir = cache_dir / tag
    est = ReplicaEstimator(
        training=TrainingConfig(n_eos=scale.n_eos, n_sets=scale.n_sets, n_stars=14),
        regularisation=DataReplicas(scale.n_s),
        settings=TrainSettings(epochs=scale.epochs, batch_size=1000, patience=10),
        n_models=scale.n_models,
    )
    if (model_dir / "model.json").is_file():
        try:
            return ReplicaEstimator.load(model_dir), True
        except (OSError, ValueError) as err:  # stale or damaged: retrain and overwrite it
            warnings.warn(f"retraining the demo's cached ensemble: {err}", stacklevel=2)
    trained = est.train(key, cache_dir=cache_dir, progress=progress)
    trained.save(model_dir)
    return trained, False


def run_demo(
    out_dir: str | os.PathLike,
    *,
    key: jax.Array,
    scale: DemoScale | None = None,
    cache_dir: str | os.PathLike | None = None,
    quiet: bool = False,
) -> Path:
    """``nseos demo``: both estimators on the bundled data, compared, in one report.

    1. The Bayesian estimator on ``catalogs.modern()`` (NICER, radio masses, GW170817) under
       the original uniform c_s^2 prior and under the chiral-EFT-constrained prior.
    2. The Bayesian and the NN-replica estimator on the original X-ray catalog
       (``catalogs.xray_2016()``, 14 stars), the ensemble trained at a demo scale and cached
       under ``cache_dir`` (default ``~/.cache/nseos``).
    3. The comparison (:func:`nseos.compare.compare`) of each pair, figures, tables, every
       posterior as netCDF with its ``summary.json``, and ``report.md`` / ``report.html``.

    Returns the path of ``report.md``.
    """
    from . import catalogs
    from ._config import enable_compilation_cache
    from .bayes import BayesianEstimator
    from .compare import Report, add_comparison, compare
    from .posterior import ConvergenceWarning

    scale = DemoScale() if scale is None else scale
    out = Path(out_dir)
    cache = Path(cache_dir) if cache_dir is not None else cache_root()
    # Compiled programs are kept under the cache too: a second demo skips compilation.
    enable_compilation_cache(cache / "jax")
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    started = time.perf_counter()
    k_modern, k_chieft, k_xray, k_train, k_replica = demo_keys(key)
    sampler = NumPyroNUTS(scale.warmup, scale.draws, scale.chains, progress=not quiet)
    timings: list[tuple[str, float, float | None]] = []  # (step, wall, of which compiling)
    notes: list[str] = []

    def bayes(label, observations, prior, k):
        say(f"[demo] {label}: NUTS {scale.chains} x ({scale.warmup} + {scale.draws})")
        t = time.perf_counter()
        est = BayesianEstimator(
            prior=make_prior(prior), sampler=sampler, n_prior_draws=scale.n_prior_draws
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            post = est.fit(observations, key=k)
        for w in caught:
            if issubclass(w.category, ConvergenceWarning):
                notes.append(f"{label}: {w.message}")
                say(f"[demo] NOT CONVERGED: {label}: {w.message}")
        compile_s = post.datatree.attrs.get("compile_wall_time_s")
        timings.append((f"Bayes, {label}", time.perf_counter() - t, compile_s))
        return post

    modern, xray = catalogs.modern(), catalogs.xray_2016()
    runs_modern = {
        "Bayes, uniform c_s²": bayes("modern data, uniform prior", modern, "uniform", k_modern),
        "Bayes, χEFT prior": bayes("modern data, chiEFT prior", modern, "chieft", k_chieft),
    }
    say("[demo] X-ray catalog: Bayesian estimator and NN-replica ensemble")
    bayes_xray = bayes("X-ray catalog, uniform prior", xray, "uniform", k_xray)
    t = time.perf_counter()
    replica, cached = demo_replica(scale, k_train, cache_dir=cache, progress=not quiet)
    replica = dataclasses.replace(replica, n_prior_draws=scale.n_prior_draws)
    replica_post = replica.fit(xray, key=k_replica)
    timings.append(
        (
            f"NN-replica ensemble ({'loaded from cache' if cached else 'trained'}) and fit",
            time.perf_counter() - t,
            None,
        )
    )
    runs_xray = {"Bayes, uniform c_s²": bayes_xray, "NN replicas": replica_post}

    report = Report(out, "nseos demo: the dense-matter EoS from neutron-star data")
    report.text(
        "Two estimators of the EoS (c_s² in five density segments above ρ0 on the SLy4 crust) "
        "on bundled data: NUTS over the full posterior (Bayes), and an ensemble of networks "
        "trained on mock catalogues with noise replicas (Fujimoto, Fukushima and Murase). "
        "Bands are central 68 % and 95 % intervals; ρ0 c² = 151.5 MeV fm⁻³."
    )
    for title, runs, observations, stem in (
        (
            "Modern data (NICER, radio masses, GW170817): prior dependence",
            runs_modern,
            modern,
            "modern",
        ),
        ("Original X-ray catalog: Bayes against NN replicas", runs_xray, xray, "xray"),
    ):
        say(f"[demo] comparing: {title}")
        report.heading(title, 1)
        comparison = compare(runs)
        add_comparison(report, comparison, runs, observations=observations, prefix=f"{stem}_")
        for i, (name, post) in enumerate(runs.items()):
            write_fit(post, out / stem / f"run{i + 1}", observations)
            report.text(f"{name}: posterior and summary in {stem}/run{i + 1}/")
    if notes:
        report.heading("Runs that did NOT converge", 1)
        report.text(
            "These Bayesian runs missed the convergence criteria (R-hat <= 1.01, ESS_bulk >= "
            "400, no divergence): their bands are not to be quoted. Rerun them longer with "
            "`nseos fit --warmup ... --draws ...`. The sampler's words:"
        )
        report.code("\n".join(notes))
    total = time.perf_counter() - started
    report.heading("Timings", 1)
    lines = [
        f"{label}: {s:.0f} s" + (f" (of which compiling the sampler: {c:.0f} s)" if c else "")
        for label, s, c in timings
    ]
    report.code("\n".join(lines) + f"\ntotal: {total:.0f} s")
    path = report.write()
    say(f"[demo] finished in {total:.0f} s; wrote {path.name} and report.html")
    return path

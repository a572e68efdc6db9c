"""The ``nseos`` command line.

``nseos tov`` solves the TOV equations for one EoS; ``nseos observations`` shows data sets
(table, contours, an EoS's likelihood); ``nseos validate`` trains (or loads) NN-replica
ensembles and reports the original RMS radius table; ``nseos toy`` runs the 1-D
noise-injection study; ``nseos fit`` fits an estimator and writes ``posterior.nc`` and
``summary.json``; ``nseos compare`` compares saved posteriors; ``nseos demo`` is the main job
(both estimators on the bundled data, compared, in one report).

Exit codes: 0 success, 1 bad input or a failed solve (one-line message on stderr, no
traceback), 2 command-line usage error (including a number out of range), 130 interrupted
(Ctrl-C; nothing half-written is left behind).

Every command that writes a run directory (``--out DIR``) checks it before any work, writes
the run into a temporary folder beside it and renames that into place at the end, so DIR
holds the previous run or the new one, never a mix; a DIR that already holds files is
refused unless ``--overwrite`` is given. Compiled programs are kept in JAX's persistent
compilation cache (``nseos.enable_compilation_cache``; ``--no-compile-cache`` or
``NSEOS_NO_COMPILE_CACHE=1`` turns it off), so a repeated command skips compilation.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import math
import os
import shutil
import sys
import time
from pathlib import Path

EXIT_OK = 0
EXIT_INPUT = 1


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 1."""


EXIT_INTERRUPTED = 130
MIN_STARS = 25
"""Fewest stars ``nseos tov`` accepts on a sequence: at 25 (the default is 100) R(1.4) is
interpolated to 0.55 m and M_max located to 1e-4 M_sun (docs/performance.md); at 4 stars
Lambda(1.4) came out 15 % off and the maximum was not bracketed."""


def _int_at_least(low: int):
    """An argparse type: an integer >= ``low`` (a usage error, exit 2, otherwise)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    parse.__name__ = "integer"
    return parse


def _float_in(low: float | None, high: float | None, *, low_open: bool = True):
    """An argparse type: a finite float in (low, high) (``[low, high)`` if not
    ``low_open``); None leaves that side open."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        below = low is not None and (value <= low if low_open else value < low)
        above = high is not None and value >= high
        if not math.isfinite(value) or below or above:
            left = "(" if low_open else "["
            span = f"{left}{'-inf' if low is None else low}, {'inf' if high is None else high})"
            raise argparse.ArgumentTypeError(f"must lie in {span}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


_SHOWN: dict[Path, Path] = {}
"""The temporary run directory of this command -> the --out the user named (for messages)."""


def _shown(path) -> Path:
    """``path`` as the user will find it: inside --out, not the temporary run directory."""
    path = Path(path)
    for tmp, final in _SHOWN.items():
        if path == tmp or tmp in path.parents:
            return final / path.relative_to(tmp)
    return path


def _enable_x64() -> None:
    import jax

    jax.config.update("jax_enable_x64", True)


def _load_eos(args):
    from . import eos as eos_mod

    try:
        if args.eos_file is not None and args.eos is not None:
            raise CLIError("give either an EoS file or --eos NAME, not both")
        if args.eos_file is not None:
            return eos_mod.Tabulated.from_csv(
                args.eos_file,
                allow_acausal=args.allow_acausal,
                truncate_acausal=args.truncate_acausal,
            )
        if args.eos is None:
            raise CLIError("give an EoS file or --eos NAME (see --help)")
        name = args.eos
        if name.lower().startswith("read2009:"):
            return eos_mod.read2009_named(name.split(":", 1)[1])
        return eos_mod.reference_eos(name, allow_acausal=args.allow_acausal)
    except FileNotFoundError as err:
        raise CLIError(str(err)) from None
    except (eos_mod.EOSValidationError, KeyError) as err:
        raise CLIError(str(err).strip("'\"")) from None


def _save_plot(fig, path: Path) -> list[str]:
    """Save a figure to the file a --plot option names (format from its suffix, PNG if none)."""
    from .plots import save_figure

    return save_figure(fig, path.with_suffix(""), formats=(path.suffix.lstrip(".") or "png",))


def _curve_summary(curve) -> dict:
    import numpy as np

    r14, lam14 = (float(v) for v in curve.radius_and_lambda_at(1.4))
    return {
        "max_mass_msun": float(curve.max_mass_msun),
        "radius_at_max_mass_km": float(curve.radius_at_max_mass_km),
        "radius_1p4_km": r14 if np.isfinite(r14) else None,
        "lambda_1p4": lam14 if np.isfinite(r14) else None,
        "max_mass_reached": bool(curve.max_mass_reached),
    }


def _solve_curve(eos, n_stars: int, steps: int | None):
    import equinox as eqx

    from .tov import RK4, TOVSolveError, check_curve, mass_radius_curve

    method = RK4() if steps is None else RK4.scaled(steps)
    curve = eqx.filter_jit(mass_radius_curve)(eos, n_stars, method)
    try:
        return check_curve(curve)
    except TOVSolveError as err:
        raise CLIError(str(err)) from None


def cmd_tov(args) -> int:
    import numpy as np

    from ._io import json_text, write_text_atomic

    _enable_x64()
    eos = _load_eos(args)
    curve = _solve_curve(eos, args.n_stars, args.steps)
    summary = _curve_summary(curve)
    if summary["radius_1p4_km"] is None:
        raise CLIError(
            f"{eos.name if hasattr(eos, 'name') else 'EoS'}: the stable branch never reaches "
            f"1.4 M_sun (it spans {float(curve.min_mass_msun):.3f} to "
            f"{summary['max_mass_msun']:.3f} M_sun)"
        )
    if args.out:
        stable = np.asarray(curve.stable)
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(["central_pressure_mev_fm3", "mass_msun", "radius_km", "lambda"])
        for row in zip(
            np.asarray(curve.central_pressure_mev_fm3)[stable],
            np.asarray(curve.mass_msun)[stable],
            np.asarray(curve.radius_km)[stable],
            np.asarray(curve.tidal_deformability)[stable],
            strict=True,
        ):
            writer.writerow([f"{v:.10g}" for v in row])
        write_text_atomic(args.out, buf.getvalue())
    if args.plot:
        from .plots import mass_radius_figure

        label = getattr(eos, "name", args.eos or "EoS")
        path = Path(args.plot)
        fig = mass_radius_figure([(label, curve)])
        _save_plot(fig, path)
    if args.json:
        print(json_text(summary, indent=None))
    else:
        reached = ""
        if not summary["max_mass_reached"]:
            top = float(np.asarray(curve.central_pressure_mev_fm3)[-1])
            reached = (
                f" (the heaviest star is the last of the sequence, at the top of the central-"
                f"pressure range, p_c = {top:.4g} MeV/fm^3: the maximum lies there or beyond "
                f"it, or inside the last of the {args.n_stars - 1} grid intervals; a larger "
                "--n-stars tells which)"
            )
        print(f"M_max      = {summary['max_mass_msun']:.4f} M_sun{reached}")
        print(f"R(M_max)   = {summary['radius_at_max_mass_km']:.3f} km")
        print(f"R(1.4)     = {summary['radius_1p4_km']:.3f} km")
        print(f"Lambda(1.4) = {summary['lambda_1p4']:.1f}")
    return EXIT_OK


def _load_observations(source: str):
    from . import catalogs
    from .observations import ObservationError, load

    if source in catalogs.CATALOGS:
        return catalogs.CATALOGS[source]()
    path = Path(source)
    if not path.exists():
        raise CLIError(
            f"{source!r} is neither an observation file nor a catalog "
            f"({', '.join(catalogs.CATALOGS)})"
        )
    try:
        return load(path)
    except (ObservationError, FileNotFoundError) as err:
        raise CLIError(str(err)) from None


def cmd_observations(args) -> int:
    """Print a table of observations; optionally plot their contours or score an EoS."""
    import warnings

    _enable_x64()
    from ._io import write_text_atomic

    obs = _load_observations(args.source)
    print(obs.table())
    for row in obs.gaussian_reduction_report():
        if row["poor"]:
            print(
                f"note: {row['name']}: a Gaussian summary is poor "
                f"({100 * row['inside_68']:.0f}% of samples inside its 68% ellipse, R skewness "
                f"{row['radius_skewness']:+.2f}); the likelihood uses the samples"
            )
    curves = []
    if args.eos is not None:
        import equinox as eqx

        from .observations import Likelihood, LikelihoodStatus

        eos = _load_eos(
            argparse.Namespace(
                eos_file=None, eos=args.eos, allow_acausal=False, truncate_acausal=False
            )
        )
        curve = _solve_curve(eos, 100, None)
        result = eqx.filter_jit(Likelihood(obs).from_curve)(curve, eos)
        curves.append((args.eos, curve))
        print(
            f"\nln L({args.eos}) = {float(result.total):.3f} "
            f"(status {LikelihoodStatus(int(result.status)).name}; M_max = "
            f"{float(result.max_mass_msun):.3f} M_sun)"
        )
        for name, value in zip(obs.names, result.per_observation, strict=True):
            print(f"  {name:<22} {float(value):9.3f}")
    if args.plot or args.out:
        from .plots import observations_figure, save_figure

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            fig = observations_figure(obs, curves)
        if args.out:
            out = Path(args.out)
            written = save_figure(fig, out / "observations")
            write_text_atomic(out / "observations.txt", obs.table() + "\n")
            shown = [str(_shown(w)) for w in (*written, out / "observations.txt")]
            print(f"wrote {', '.join(shown)}")
        else:
            print(f"wrote {', '.join(_save_plot(fig, Path(args.plot)))}")
    return EXIT_OK


def cmd_demo(args) -> int:
    """The main job: both estimators on the bundled data, compared, in one report."""
    _enable_x64()
    import jax

    from .pipeline import DemoScale, run_demo

    scale = DemoScale.tiny() if args.tiny else DemoScale()
    path = run_demo(
        args.out, key=jax.random.key(args.seed), scale=scale, cache_dir=args.cache, quiet=args.quiet
    )
    if not args.quiet:
        print(f"[demo] report: {_shown(path)} (and {_shown(path.with_suffix('.html'))})")
    return EXIT_OK


def _make_estimator(args):
    from .pipeline import make_prior

    try:
        prior = make_prior(args.prior)
    except ValueError as err:
        raise CLIError(str(err)) from None
    if args.method == "bayes":
        from .bayes import BayesianEstimator, NumPyroNUTS

        # Unset options keep the library's defaults (one source of truth).
        chosen = {
            name: getattr(args, name)
            for name in ("warmup", "draws", "chains", "target_accept")
            if getattr(args, name) is not None
        }
        sampler = NumPyroNUTS(**chosen, progress=not args.quiet)
        return BayesianEstimator(prior=prior, sampler=sampler, n_prior_draws=args.prior_draws)
    from .replica import ReplicaEstimator

    if args.model is None:
        raise CLIError(
            "--method replica needs --model DIR, a saved ensemble (train one with "
            "`nseos validate --method replica --out DIR` or `nseos demo`)"
        )
    try:
        est = ReplicaEstimator.load(args.model)
    except (OSError, ValueError) as err:
        raise CLIError(str(err)) from None
    est = dataclasses.replace(est, n_prior_draws=args.prior_draws)
    if est.training.prior.name != prior.name:
        raise CLIError(
            f"the ensemble in {args.model} was trained on the {est.training.prior.name!r} "
            f"distribution, not {prior.name!r}; pass the matching --prior or retrain"
        )
    return est


def cmd_fit(args) -> int:
    """Fit one estimator to observations; write posterior.nc and summary.json."""
    _enable_x64()
    import warnings

    import jax

    from .pipeline import summary_table_markdown, write_fit
    from .posterior import ConvergenceWarning

    observations = _load_observations(args.observations)
    est = _make_estimator(args)
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        try:
            posterior = est.fit(observations, key=jax.random.key(args.seed))
        except ValueError as err:
            raise CLIError(str(err)) from None
    for w in caught:
        print(f"nseos: warning: {w.message}", file=sys.stderr)
    written = write_fit(posterior, args.out, observations)
    if not args.quiet:
        print(summary_table_markdown(posterior))
        print(
            f"{posterior!r} in {time.perf_counter() - t:.0f} s; "
            f"wrote {', '.join(str(_shown(w)) for w in written)}"
        )
    return EXIT_OK


def cmd_compare(args) -> int:
    """Compare saved posteriors (directories written by `nseos fit` or posterior files)."""
    _enable_x64()  # the M-R figure solves the reference EoS
    from .compare import compare, write_comparison
    from .posterior import EoSPosterior

    posteriors = {}
    for item in args.runs:
        path = Path(item)
        file = path / "posterior.nc" if path.is_dir() else path
        try:
            post = EoSPosterior.load(file)
        except (FileNotFoundError, ValueError) as err:
            raise CLIError(str(err)) from None
        label = path.name if path.is_dir() else path.stem
        method = post.datatree.attrs.get("method", "?")
        prior = post.datatree.attrs.get("prior")
        name = f"{label} ({method}{', ' + prior if prior else ''})"
        if name in posteriors:
            name = f"{name} [{len(posteriors) + 1}]"
        posteriors[name] = post
    observations = _load_observations(args.observations) if args.observations else ()
    try:
        comparison = compare(posteriors)
    except KeyError as err:
        raise CLIError(str(err).strip("'\"")) from None
    report = write_comparison(comparison, posteriors, args.out, observations=observations)
    if not args.quiet:
        print(comparison.widths.to_markdown())
        print(f"wrote {_shown(report)} and {_shown(Path(args.out) / 'report.html')}")
    return EXIT_OK


_REGULARISATIONS = ("replicas", "none", "parameter-noise", "dropout")


def _regularisation(name: str, n_s: int):
    from .replica import DataReplicas, Dropout, NoRegularisation, ParameterNoise

    return {
        "replicas": lambda: DataReplicas(n_s),
        "none": NoRegularisation,
        "parameter-noise": lambda: ParameterNoise(0.05, "first"),
        "dropout": lambda: Dropout(0.1),
    }[name]()


def cmd_validate(args) -> int:
    """Train (or load) replica ensembles and run the original validation protocol."""
    _enable_x64()
    import jax

    from .replica import (
        MLP,
        PUBLISHED_RMS_KM,
        DeepSets,
        ReplicaEstimator,
        TrainingConfig,
        TrainSettings,
        generate_training_data,
        validate,
    )

    out = Path(args.out)
    key = jax.random.key(args.seed)
    if args.method == "bayes":
        return _validate_bayes(args, out, key)
    n_val = 200 if args.n_val is None else args.n_val
    k_data, k_train, k_val = jax.random.split(key, 3)
    modes = _REGULARISATIONS if args.regularisation == "all" else (args.regularisation,)
    results = {}
    if args.model:
        try:
            est = ReplicaEstimator.load(args.model)
        except (OSError, ValueError) as err:
            raise CLIError(str(err)) from None
        results[est.regularisation.name] = (est, None)
    else:
        config = TrainingConfig(n_eos=args.n_eos, n_sets=args.n_sets)
        data = generate_training_data(config, k_data, cache_dir=args.cache, progress=True)
        print(f"training data: {data.n_eos} EoS accepted, {data.n_rejected} rejected")
        for mode in modes:
            reg = _regularisation(mode, args.n_s)
            # Equal budgets: an epoch of a mode without replicas is n_s times shorter, so it
            # gets n_s times more epochs (and patience), i.e. the same number of steps.
            scale = max(1, args.n_s // reg.copies)
            settings = TrainSettings(
                epochs=args.epochs * scale,
                batch_size=args.batch_size,
                patience=args.patience * scale,
            )
            est = ReplicaEstimator(
                training=config,
                architecture=MLP() if args.architecture == "mlp" else DeepSets(),
                regularisation=reg,
                settings=settings,
                n_models=args.models,
            )
            t = time.perf_counter()
            est = est.train(k_train, data=data, progress=True)
            elapsed = time.perf_counter() - t
            est.save(out / f"model-{mode}-{args.architecture}")
            results[mode] = (est, elapsed)
    rows, text = [], []
    for mode, (est, elapsed) in results.items():
        res = validate(est, k_val, n_eos=n_val, progress=not args.quiet)
        clean = validate(est, k_val, n_eos=n_val, noise=False)
        timing = "" if elapsed is None else f" (trained in {elapsed:.0f} s)"
        block = (
            f"noisy catalogues (the protocol):\n{res.table()}\n\n"
            f"noise-free catalogues (regression error only):\n{clean.table()}"
        )
        text.append(f"## {mode}{timing}\n\n```\n{block}\n```\n")
        if not args.quiet:
            print(f"{mode}{timing}\n{block}")
        rows.append(
            {
                "regularisation": mode,
                "train_seconds": elapsed,
                "masses_msun": res.masses_msun.tolist(),
                "rms_km": res.rms_km.tolist(),
                "rms_noise_free_km": clean.rms_km.tolist(),
                "n_defined": res.n_defined.tolist(),
                "published_rms_km": PUBLISHED_RMS_KM.tolist(),
                "n_validation_eos": res.n_eos,
                "epochs_run": int(est.history.train_loss.shape[0]) if est.history else None,
            }
        )
    return _write_validation(out, text, rows, quiet=args.quiet)


def _write_validation(out: Path, text: list[str], rows: list[dict], *, quiet: bool) -> int:
    import numpy as np

    from ._io import json_text, write_text_atomic

    write_text_atomic(out / "validation.md", "\n".join(text))
    write_text_atomic(out / "validation.json", json_text(rows))
    written = _save_plot(_validation_figure(rows), out / "validation.png")
    if not quiet:
        shown = [_shown(p) for p in (out / "validation.md", out / "validation.json", *written)]
        print(f"wrote {', '.join(map(str, shown))}")
    if not all(np.all(np.isfinite(r["rms_km"])) for r in rows):
        # The files are complete and kept (they show which masses are undefined).
        print(
            f"nseos: error: validation produced undefined RMS values (see "
            f"{_shown(out / 'validation.json')})",
            file=sys.stderr,
        )
        return EXIT_INPUT
    return EXIT_OK


def _validate_bayes(args, out: Path, key) -> int:
    """The validation protocol for the Bayesian estimator: every held-out case is a NUTS run
    (all cases share one compiled sampler), so the set is small."""
    from .bayes import BayesianEstimator, NumPyroNUTS
    from .pipeline import make_prior
    from .validation import PUBLISHED_RMS_KM, validate_bayes

    if args.model:
        raise CLIError(
            "--model is a saved NN-replica ensemble; it does not apply to --method bayes"
        )
    try:
        prior = make_prior(args.prior)
        sampler = NumPyroNUTS(args.warmup, args.draws, args.chains, progress=False)
    except ValueError as err:
        raise CLIError(str(err)) from None
    n_val = 16 if args.n_val is None else args.n_val
    est = BayesianEstimator(prior=prior, sampler=sampler)
    t = time.perf_counter()
    try:
        res = validate_bayes(
            est, key, n_eos=n_val, chunk_size=args.chunk_size, progress=not args.quiet
        )
    except ValueError as err:
        raise CLIError(str(err)) from None
    elapsed = time.perf_counter() - t
    label = f"bayes ({prior.name} prior)"
    settings = f"{args.chains} chains x ({args.warmup} warm-up + {args.draws} draws) per case"
    block = res.table()
    if not args.quiet:
        print(f"{label}, {settings}, {elapsed:.0f} s\n{block}")
    row = {
        "regularisation": label,
        "method": "bayes",
        "prior": prior.name,
        "sampler_settings": settings,
        "seconds": round(elapsed, 1),
        "masses_msun": res.masses_msun.tolist(),
        "rms_km": res.rms_km.tolist(),
        "coverage_68": res.coverage_68.tolist(),
        "coverage_95": res.coverage_95.tolist(),
        "n_defined": res.n_defined.tolist(),
        "published_rms_km": PUBLISHED_RMS_KM.tolist(),
        "n_validation_eos": res.n_eos,
        "divergences": res.divergences,
    }
    text = [f"## {label}, {settings} ({elapsed:.0f} s)\n\n```\n{block}\n```\n"]
    return _write_validation(out, text, [row], quiet=args.quiet)


def cmd_calibrate(args) -> int:
    """Coverage and SBC of an estimator over mock universes; a report in --out."""
    _enable_x64()
    import jax
    import numpy as np

    from .calibration import (
        Misspecified,
        WellSpecified,
        bayes_config,
        calibrate_bayes,
        calibrate_replica,
        verdict,
        write_calibration,
    )
    from .pipeline import make_prior

    truths = WellSpecified() if args.case == "well-specified" else Misspecified()
    out = Path(args.out)
    state = _calibration_state(args)  # the work done so far, kept outside the run directory
    key = jax.random.key(args.seed)
    t = time.perf_counter()
    try:
        prior = make_prior(args.prior)
        if args.method == "bayes":
            from .bayes import BayesianEstimator, NumPyroNUTS

            sampler = NumPyroNUTS(args.warmup, args.draws, args.chains, progress=False)
            est = BayesianEstimator(prior=prior, sampler=sampler)
            n = 50 if args.universes is None else args.universes
            variants, divergences = calibrate_bayes(
                est,
                key,
                n_universes=n,
                chunk_size=args.chunk_size,
                truths=truths,
                out=state,
                progress=not args.quiet,
            )
            config = bayes_config(est)
            settings = (
                f"{n} universes ({truths.tag}), {prior.name} prior, NUTS {args.chains} chains x "
                f"({args.warmup} + {args.draws}) each (BlackJAX, all universes in one compiled "
                f"program), 100 draws kept per universe; {divergences} divergent transitions"
            )
            extra = {"divergences": divergences}
        else:
            from .replica import ReplicaEstimator

            if args.model:
                est = ReplicaEstimator.load(args.model)
                origin = f"the ensemble in {args.model}"
            else:
                from ._config import cache_root
                from .pipeline import DemoScale, demo_keys, demo_replica

                k_train = demo_keys(jax.random.key(0))[3]  # the ensemble of `nseos demo`
                est, _ = demo_replica(
                    DemoScale(), k_train, cache_dir=cache_root(), progress=not args.quiet
                )
                origin = "the demo's ensemble (`nseos demo`, trained once and cached)"
            n = 1000 if args.universes is None else args.universes
            variants, scale = calibrate_replica(
                est,
                key,
                n_universes=n,
                n_calibration=args.calibration_universes,
                input_draws=args.input_draws,
                truths=truths,
                out=state,
                progress=not args.quiet,
            )
            config = est.training
            settings = (
                f"{n} test universes ({truths.tag}) and {args.calibration_universes} held-out "
                "calibration universes from the training distribution; "
                f"{origin}, {est.n_models} members; "
                "fitted band_scale (inner, outer) of c_s^2: "
                f"{np.round(scale.cs2_array(), 2).tolist()}; derived quantities: one pair per "
                "quantity and grid point (calibration.json)"
            )
            extra = {"band_scale": scale.to_json()}
    except (OSError, ValueError) as err:
        raise CLIError(str(err)) from None
    elapsed = time.perf_counter() - t
    notes = [f"Settings: {settings}.", *truths.describe(config), f"Wall time: {elapsed:.0f} s."]
    report = write_calibration(
        out,
        f"Calibration of the {args.method} estimator ({truths.tag})",
        variants,
        notes=notes,
        extra={
            "method": args.method,
            "case": truths.tag,
            "settings": settings,
            "seconds": elapsed,
            **extra,
        },
    )
    shutil.rmtree(state, ignore_errors=True)  # complete: the report holds the results
    if not args.quiet:
        print("\n".join(verdict(variants)))
        print(f"{settings}; {elapsed:.0f} s; wrote {_shown(report)}")
    return EXIT_OK


def _calibration_state(args) -> Path:
    """Where ``nseos calibrate`` keeps the universes fitted so far: a hidden folder beside
    --out, named by a hash of every setting, so that an interrupted run resumes when the same
    command is repeated, and a run with other settings never reuses its work. Removed when
    the run completes."""
    from ._io import json_digest

    final = _shown(Path(args.out))
    ignore = {"out", "quiet", "overwrite", "no_compile_cache", "func", "writes_run_directory"}
    digest = json_digest({k: str(v) for k, v in vars(args).items() if k not in ignore})[:12]
    return final.parent / f".{final.name}.calibration-state-{digest}"


def _validation_figure(rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .replica import PUBLISHED_RMS_KM, VALIDATION_MASSES_MSUN

    fig, ax = plt.subplots(figsize=(8.5, 4))
    ax.plot(VALIDATION_MASSES_MSUN, PUBLISHED_RMS_KM, "k--o", label="published (1711.06748)")
    for r in rows:
        (line,) = ax.plot(r["masses_msun"], r["rms_km"], "-o", label=r["regularisation"])
        if "rms_noise_free_km" in r:
            ax.plot(
                r["masses_msun"],
                r["rms_noise_free_km"],
                ":",
                color=line.get_color(),
                label=f"{r['regularisation']}, noise-free catalogues",
            )
    ax.set_xlabel("M [M$_\\odot$]")
    ax.set_ylabel("RMS of R$_{inferred}$ - R$_{true}$ [km]")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    return fig


QUICK_TOY = {"steps": 1_000, "seeds": 3, "checkpoints": 10}
"""``nseos toy --quick``: every configuration, a tiny budget (a smoke run, < 1 minute)."""


def cmd_toy(args) -> int:
    import jax

    from ._io import write_text_atomic
    from .toy import StudySettings, ToyProblem, run_study, talk_modes, write_report

    steps = QUICK_TOY["steps"] if args.quick and args.steps is None else (args.steps or 100_000)
    seeds = QUICK_TOY["seeds"] if args.quick and args.seeds is None else (args.seeds or 10)
    checkpoints = QUICK_TOY["checkpoints"] if args.quick else 50
    try:
        if steps % checkpoints:
            raise ValueError(f"--steps must be a multiple of {checkpoints}")
        problem = ToyProblem(input_sigma=args.input_sigma)
        settings = StudySettings(
            steps=steps,
            n_seeds=seeds,
            learning_rate=args.learning_rate,
            n_checkpoints=checkpoints,
        )
        modes = talk_modes(problem, dropout_rate=args.dropout_rate)
    except ValueError as err:
        raise CLIError(str(err)) from None
    out = Path(args.out)
    t0 = time.perf_counter()
    study = run_study(
        problem, settings, jax.random.key(args.seed), modes=modes, progress=not args.quiet
    )
    t_study = time.perf_counter() - t0
    if args.quick:  # a smoke run: PNG only, per-activation figures for ReLU only
        written = write_report(study, out, formats=("png",), figure_activations=("relu",))
    else:
        written = write_report(study, out)
    took = time.perf_counter() - t0
    write_text_atomic(
        out / "timing.json",
        json.dumps(
            {"study_seconds": t_study, "total_seconds": took, "steps": steps, "seeds": seeds}
        ),
    )
    if not args.quiet:
        print((out / "claims.md").read_text())
    print(
        f"toy study: {len(study.runs)} configurations x {seeds} seeds x {steps} steps in "
        f"{took:.0f} s; wrote {len(written) + 1} files to {_shown(out)}/ (start with table.md, "
        "claims.md, summary.png)"
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nseos", description="Neutron-star equation-of-state toolkit (JAX)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--seed", type=int, default=0, help="PRNG seed (default 0)")
    common.add_argument("--quiet", action="store_true", help="no progress output")
    common.add_argument(
        "--no-compile-cache",
        action="store_true",
        help="do not keep compiled programs on disk (default: kept in "
        "$NSEOS_CACHE_DIR or ~/.cache/nseos/jax, so a repeated command skips compilation)",
    )
    run_dir = argparse.ArgumentParser(add_help=False)
    run_dir.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an --out directory that already holds files (default: refuse); the "
        "run is written beside it and swapped in only when complete",
    )
    run_dir.set_defaults(writes_run_directory=True)

    tov = sub.add_parser(
        "tov",
        parents=[common],
        help="solve the TOV equations for one EoS",
        description="Solve the TOV + tidal equations along a mass-radius sequence.",
    )
    tov.add_argument(
        "eos_file",
        nargs="?",
        help="CSV with columns pressure_mev_fm3 and energy_density_mev_fm3 "
        "(number_density_fm3 optional), any order",
    )
    tov.add_argument(
        "--eos",
        help="a bundled EoS: SLy4, SLy4-LAL, APR4, MPA1, H4, WFF1, MS1, MS1b, "
        "or read2009:NAME for a Read et al. 2009 piecewise polytrope",
    )
    tov.add_argument("--json", action="store_true", help="print a JSON object")
    tov.add_argument("--out", metavar="CSV", help="write the stable-branch curve to CSV")
    tov.add_argument("--plot", metavar="PNG", help="draw the M-R curve")
    tov.add_argument(
        "--n-stars",
        type=_int_at_least(MIN_STARS),
        default=100,
        help=f"stars on the sequence (default 100, at least {MIN_STARS}: with fewer the "
        "maximum mass and R(1.4) cannot be located accurately)",
    )
    tov.add_argument(
        "--steps",
        type=_int_at_least(1),
        default=None,
        help="RK4 steps per enthalpy interval (default: the solver's, 10; 2.4x that in the "
        "central region)",
    )
    tov.add_argument(
        "--allow-acausal", action="store_true", help="accept tables with c_s^2 > 1 (warns)"
    )
    tov.add_argument(
        "--truncate-acausal",
        action="store_true",
        help="cut a table where c_s^2 first exceeds 1 (an EoS file only)",
    )
    tov.set_defaults(func=cmd_tov)

    obs = sub.add_parser(
        "observations",
        parents=[common, run_dir],
        help="show observations: a table, contours, and optionally an EoS's likelihood",
        description="Print the observations of a file (CSV or TOML, see "
        "nseos.observations.load) or of a bundled catalog, draw their 68%/95% contours "
        "on the M-R plane, and optionally evaluate the mass-marginalised log-likelihood of "
        "a bundled EoS.",
    )
    obs.add_argument(
        "source",
        help="an observation file (.csv or .toml) or a catalog name: xray_2016, nicer, "
        "pulsar_masses, gw170817, gw190425, modern",
    )
    obs.add_argument("--plot", metavar="PNG", help="draw the contours to this file")
    obs.add_argument("--out", metavar="DIR", help="write observations.png/.pdf and a table to DIR")
    obs.add_argument("--eos", help="a bundled EoS whose likelihood to evaluate (e.g. SLy4)")
    obs.set_defaults(func=cmd_observations)

    val = sub.add_parser(
        "validate",
        parents=[common, run_dir],
        help="run an estimator's validation protocol on mock data",
        description="Report the RMS radius error at M = 0.6 ... 1.8 M_sun over held-out mock "
        "EoS, next to the published values of arXiv:1711.06748. --method replica trains "
        "NN-replica ensembles (or loads one); --method bayes runs NUTS on each held-out "
        "catalogue (all cases share one compiled sampler) and also reports how often the "
        "68/95 % intervals of R(M) contain the truth. Writes validation.md, validation.json, "
        "validation.png (and the trained models) to --out.",
    )
    val.add_argument("--method", choices=["replica", "bayes"], default="replica")
    val.add_argument("--model", metavar="DIR", help="a saved ensemble to validate (no training)")
    val.add_argument("--prior", default="uniform", help="bayes: the prior (as for `nseos fit`)")
    val.add_argument(
        "--warmup", type=_int_at_least(1), default=300, help="bayes: NUTS warm-up per case"
    )
    val.add_argument(
        "--draws", type=_int_at_least(1), default=300, help="bayes: NUTS draws per case"
    )
    val.add_argument("--chains", type=_int_at_least(1), default=2, help="bayes: chains per case")
    val.add_argument(
        "--chunk-size",
        type=_int_at_least(1),
        default=4,
        help="bayes: cases per compiled sampler call",
    )
    val.add_argument("--regularisation", choices=[*_REGULARISATIONS, "all"], default="replicas")
    val.add_argument(
        "--architecture",
        choices=["mlp", "deepsets"],
        default="mlp",
        help="the original 60-40-40 MLP or the permutation-invariant DeepSets network",
    )
    val.add_argument("--n-eos", type=_int_at_least(2), default=500, help="training EoS")
    val.add_argument(
        "--n-sets", type=_int_at_least(1), default=100, help="catalogues per training EoS"
    )
    val.add_argument(
        "--n-s", type=_int_at_least(1), default=100, help="noise replicas per catalogue"
    )
    val.add_argument("--models", type=_int_at_least(1), default=10, help="ensemble members")
    val.add_argument(
        "--epochs",
        type=_int_at_least(1),
        default=10,
        help="epochs of n_s replicas each (modes without replicas get n_s times more)",
    )
    val.add_argument("--batch-size", type=_int_at_least(1), default=2000)
    val.add_argument("--patience", type=_int_at_least(1), default=3)
    val.add_argument(
        "--n-val",
        type=_int_at_least(2),
        default=None,
        help="held-out validation EoS (default 200 for replica, 16 for bayes)",
    )
    val.add_argument("--cache", metavar="DIR", default=None, help="training-data cache")
    val.add_argument("--out", default="results/validation", help="output directory")
    val.set_defaults(func=cmd_validate)

    cal = sub.add_parser(
        "calibrate",
        parents=[common, run_dir],
        help="coverage and SBC of an estimator over mock universes",
        description="Draw mock universes (a true EoS from the estimator's prior or training "
        "distribution, and a 14-star catalogue), fit each, and report how often the 68 % and "
        "95 % bands contain the truth (with binomial intervals), SBC rank-ECDF plots and "
        "coverage curves. For the NN-replica ensemble also: the band with input-noise draws, "
        "and recalibrated on held-out universes. --case misspecified draws the truths from "
        "outside the family instead (Read et al. 2009 piecewise polytropes and the bundled "
        "tables with M_max >= 2 M_sun) and reports the derived quantities. The universes fitted "
        "so far are kept beside --out (.NAME.calibration-state-HASH) until the run completes: "
        "repeating an interrupted command resumes it.",
    )
    cal.add_argument("--method", choices=["replica", "bayes"], required=True)
    cal.add_argument(
        "--case",
        choices=["well-specified", "misspecified"],
        default="well-specified",
        help="where the true EoS come from (default: the estimator's prior)",
    )
    cal.add_argument(
        "--universes",
        type=_int_at_least(2),
        default=None,
        help="test universes (default 1000 / 50 bayes)",
    )
    cal.add_argument("--out", required=True, help="output directory")
    cal.add_argument("--prior", default="uniform", help="bayes: the prior (truths drawn from it)")
    cal.add_argument("--model", metavar="DIR", help="replica: a saved ensemble (default: demo's)")
    cal.add_argument(
        "--calibration-universes",
        type=_int_at_least(2),
        default=1000,
        help="replica: held-out universes that fit the recalibration",
    )
    cal.add_argument(
        "--input-draws",
        type=_int_at_least(1),
        default=10,
        help="replica: noisy copies per catalogue",
    )
    cal.add_argument(
        "--warmup", type=_int_at_least(1), default=300, help="bayes: NUTS warm-up per universe"
    )
    cal.add_argument(
        "--draws", type=_int_at_least(1), default=300, help="bayes: NUTS draws per chain"
    )
    cal.add_argument(
        "--chains", type=_int_at_least(1), default=2, help="bayes: chains per universe"
    )
    cal.add_argument(
        "--chunk-size", type=_int_at_least(1), default=4, help="bayes: universes per call"
    )
    cal.set_defaults(func=cmd_calibrate)

    toy = sub.add_parser(
        "toy",
        parents=[common, run_dir],
        help="run the 1-D noise-injection study (replicas vs parameter noise vs dropout)",
        description="Train 1-2-2-1, 1-4-4-1 and 1-9-9-1 networks with ReLU, leaky ReLU and "
        "sigmoid on 20 points of a peaked 1-D function, plain and with data replicas "
        "(n_s = 1, 10, 100), first-layer and all-layer parameter noise and dropout, over "
        "many seeds; write loss curves, fits, a table and the talk's claims' numbers.",
    )
    toy.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_TOY['steps']} steps, {QUICK_TOY['seeds']} seeds (< 1 min)",
    )
    toy.add_argument(
        "--steps", type=_int_at_least(1), default=None, help="optimiser steps (default 100000)"
    )
    toy.add_argument(
        "--seeds", type=_int_at_least(1), default=None, help="seeds per configuration (10)"
    )
    toy.add_argument(
        "--learning-rate", type=_float_in(0.0, None), default=3e-3, help="Adam step size"
    )
    toy.add_argument(
        "--input-sigma",
        type=_float_in(0.0, None, low_open=False),
        default=0.05,
        help="std of the noise dx on x",
    )
    toy.add_argument("--dropout-rate", type=_float_in(0.0, 1.0, low_open=False), default=0.1)
    toy.add_argument("--out", default="results/toy", help="output directory")
    toy.set_defaults(func=cmd_toy)

    demo = sub.add_parser(
        "demo",
        parents=[common, run_dir],
        help="the main job: both estimators on the bundled data, compared, in one report",
        description="Run the Bayesian estimator on catalogs.modern() under the uniform and "
        "the chiEFT prior, and the Bayesian and the NN-replica estimator (trained at a demo "
        "scale, cached) on the original X-ray catalog; compare them and write report.md and "
        "report.html with every figure and table, and the posteriors as netCDF, to --out. "
        "Offline; about 10 minutes on 2 cores.",
    )
    demo.add_argument("--out", default="nseos-demo", help="output directory")
    demo.add_argument(
        "--cache",
        metavar="DIR",
        default=None,
        help="where the trained ensemble is cached (default ~/.cache/nseos)",
    )
    demo.add_argument("--tiny", action="store_true", help="seconds-scale settings (for tests)")
    demo.set_defaults(func=cmd_demo)

    fit = sub.add_parser(
        "fit",
        parents=[common, run_dir],
        help="fit an estimator to observations; write posterior.nc and summary.json",
        description="Fit the Bayesian (NUTS) or the NN-replica estimator and write "
        "posterior.nc (ArviZ DataTree, netCDF) and summary.json (median and 2.5/16/84/97.5 % "
        "quantiles of R(1.0/1.4/1.8/2.0 M_sun) [km], M_max [M_sun], Lambda(1.4), p(2/3/5 "
        "rho0) [MeV/fm^3]) to --out.",
    )
    fit.add_argument("--method", choices=["bayes", "replica"], default="bayes")
    fit.add_argument(
        "--observations",
        required=True,
        help="an observation file (.csv/.toml) or a catalog "
        "name: xray_2016, nicer, pulsar_masses, gw170817, gw190425, modern",
    )
    fit.add_argument(
        "--prior",
        default="uniform",
        help="uniform (default), log-uniform or chieft; for "
        "--method replica, the training distribution the model must have",
    )
    fit.add_argument("--model", metavar="DIR", help="saved NN-replica ensemble (--method replica)")
    fit.add_argument(
        "--warmup",
        type=_int_at_least(1),
        help="NUTS warm-up steps per chain (default: NumPyroNUTS's)",
    )
    fit.add_argument(
        "--draws", type=_int_at_least(1), help="NUTS draws per chain (default: NumPyroNUTS's)"
    )
    fit.add_argument("--chains", type=_int_at_least(1), help="NUTS chains (default: NumPyroNUTS's)")
    fit.add_argument(
        "--target-accept",
        type=_float_in(0.0, 1.0),
        help="NUTS target acceptance probability (default: NumPyroNUTS's)",
    )
    fit.add_argument(
        "--prior-draws",
        type=_int_at_least(0),
        default=500,
        help="prior draws stored with the posterior",
    )
    fit.add_argument("--out", required=True, metavar="DIR", help="output directory")
    fit.set_defaults(func=cmd_fit)

    cmp_ = sub.add_parser(
        "compare",
        parents=[common, run_dir],
        help="compare saved posteriors: widths, prior dependence, agreement, figures",
        description="Compare posteriors written by `nseos fit` (directories) or posterior "
        ".nc files; write report.md, report.html, figures and CSV tables to --out.",
    )
    cmp_.add_argument("runs", nargs="+", help="fit directories or posterior .nc files")
    cmp_.add_argument("--observations", help="overlay these observations on the M-R figure")
    cmp_.add_argument("--out", required=True, metavar="DIR", help="output directory")
    cmp_.set_defaults(func=cmd_compare)
    return parser


def _expose_cpu_cores() -> None:
    """Make every CPU core a JAX device, so that NUTS chains run in parallel (one per core).
    Must run before JAX starts its backend; a no-op when the user set the flag already."""
    import os

    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" not in flags:
        count = f"--xla_force_host_platform_device_count={os.cpu_count() or 1}"
        os.environ["XLA_FLAGS"] = f"{flags} {count}".strip()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _expose_cpu_cores()
    if argv is None:  # the command line (not a call from Python, which keeps its own Ctrl-C)
        _exit_on_interrupt()
    try:
        _check_output_files(args)
        if not args.no_compile_cache and not os.environ.get("NSEOS_NO_COMPILE_CACHE"):
            from ._config import enable_compilation_cache

            enable_compilation_cache()
        out = getattr(args, "out", None)
        if not getattr(args, "writes_run_directory", False) or out is None:
            return args.func(args)
        from ._io import run_directory

        _check_inputs_outside(args, Path(out))
        with run_directory(out, overwrite=args.overwrite) as tmp:
            _SHOWN[tmp] = Path(out)
            args.out = str(tmp)
            return args.func(args)
    except KeyboardInterrupt:
        print("nseos: interrupted; nothing was written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CLIError, *_user_errors()) as err:
        print(f"nseos: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_INPUT
    finally:
        _SHOWN.clear()


def _check_inputs_outside(args, out: Path) -> None:
    """Refuse an input (a model, a run, a data file) inside the --out that this run replaces:
    ``--overwrite`` would delete it."""
    out = out.resolve()
    inputs = [getattr(args, name, None) for name in ("model", "observations", "source")]
    for item in [*inputs, *(getattr(args, "runs", None) or ())]:
        if item is None or not Path(item).exists():
            continue
        path = Path(item).resolve()
        if path == out or out in path.parents:
            raise CLIError(
                f"the input {item} lies inside --out {out}, which this run replaces; "
                "write the run to another directory"
            )


def _exit_on_interrupt() -> None:
    """Make Ctrl-C end the command within a moment, even inside XLA's compiler (a native call
    during which Python's own handler cannot run, for up to a minute): the signal is written
    to a pipe that a watcher thread reads; it removes the unfinished run directory, prints
    one line and exits with status 130. Only in the main thread."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
    signal.signal(signal.SIGINT, lambda *_: None)  # the watcher acts; no KeyboardInterrupt

    def watch() -> None:
        while True:
            received = os.read(read_fd, 1)
            if received and received[0] == signal.SIGINT:
                for tmp in list(_SHOWN):
                    shutil.rmtree(tmp, ignore_errors=True)
                sys.stderr.write("nseos: interrupted; nothing was written\n")
                sys.stderr.flush()
                os._exit(EXIT_INTERRUPTED)

    threading.Thread(target=watch, name="nseos-interrupt", daemon=True).start()


def _user_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean bad input (a file, a value), reported in one line. Anything else
    is a bug in nseos and keeps its traceback."""
    from ._config import PrecisionError
    from ._io import IntegrityError, OutputError
    from .eos import EOSValidationError
    from .observations import ObservationError

    return (
        OutputError,
        IntegrityError,
        EOSValidationError,
        ObservationError,
        PrecisionError,
        OSError,
    )


def _one_line(err: BaseException) -> str:
    text = str(err).strip()
    if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":  # a KeyError's repr
        text = text[1:-1]
    if isinstance(err, OSError) and err.filename is not None:
        text = f"{err.filename}: {err.strerror or text}"
    return " ".join(text.split())


_PLOT_FORMATS = ("png", "pdf", "svg", "eps", "ps", "jpg", "jpeg", "tif", "tiff", "webp")


def _check_output_files(args) -> None:
    """Before any work: every file option can be written (its folder exists or can be
    created, it is not a directory) and a --plot names a format matplotlib writes."""
    from ._io import check_output_file

    for option in ("out", "plot"):
        value = getattr(args, option, None)
        if value is None or (option == "out" and getattr(args, "writes_run_directory", False)):
            continue
        path = check_output_file(value, what=f"--{option}")
        if option == "plot" and path.suffix.lstrip(".").lower() not in ("", *_PLOT_FORMATS):
            raise CLIError(
                f"--plot {value}: unknown figure format {path.suffix!r}; use one of "
                f"{', '.join('.' + f for f in _PLOT_FORMATS)}"
            )


if __name__ == "__main__":
    sys.exit(main())

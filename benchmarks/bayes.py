"""Bayesian estimator benchmark: the cost of one converged posterior, against a baseline commit.

Measures, on ``catalogs.modern()`` (NICER x4, J0348+0432, J1614-2230, GW170817), in a fresh
Python process each (so every compilation is cold; no persistent cache):

1. **compile**: the sampling wall time of a 1-chain fit of 1 warm-up + 1 draw, i.e. the cold
   compilation of the one NUTS program (its two iterations are negligible);
2. **gradient**: one evaluation of the log-posterior and its gradient, as the sampler asks
   for it (best of ``--repeats``);
3. **clean run**: ``BayesianEstimator().fit`` with the library's defaults (those of
   ``nseos fit``): wall time including every compilation, R-hat, ESS_bulk, divergences,
   gradient evaluations (leapfrog steps, warm-up included) and ESS_bulk per 1000 of them,
   and the posterior's R(1.4), M_max and Lambda(1.4) (median, 95 % interval).

With ``--baseline REF`` the same measurements run on the nseos sources of git revision REF
(checked out in a temporary worktree) in the same invocation, and a table of both with
their ratios is printed: the figures compare like with like on one machine at one time. A
baseline without a warm-up step count gets an estimate (draw steps x (warm-up + draws) /
draws), marked as such.

The CPU cores are exposed as JAX devices, so the chains run in parallel (one compiled
program; each core runs its share of the chains one after the other).

Usage::

    python benchmarks/bayes.py                          # this tree only
    python benchmarks/bayes.py --baseline e0771c2       # and the code before issue 20
    python benchmarks/bayes.py --baseline e0771c2 --skip-clean-run   # compile, gradient
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUANTITIES = ("radius_km_at_1p4", "max_mass_msun", "lambda_at_1p4")


def measure(args) -> dict:
    """Every figure for the nseos importable in this process."""
    import numpyro

    numpyro.set_host_device_count(os.cpu_count() or 1)
    import jax

    jax.config.update("jax_enable_x64", True)
    import equinox as eqx

    import nseos
    from nseos import catalogs
    from nseos.bayes import BayesianEstimator, NumPyroNUTS
    from nseos.bayes._samplers import _Potential

    out = {"nseos": str(Path(nseos.__file__).parent), "jax": jax.__version__}
    observations = catalogs.modern()
    warnings.simplefilter("ignore")

    tiny = BayesianEstimator(sampler=NumPyroNUTS(1, 1, 1, progress=False), n_prior_draws=64)
    post = tiny.fit(observations, key=jax.random.key(0))
    # The sampler's own compile time where the code times it; before issue 20 it did not,
    # and the sampling wall time of this 1 + 1 run (compilation, two iterations, starting
    # points) stands in for it.
    attrs = post.datatree.attrs
    out["compile_s"] = float(attrs.get("compile_wall_time_s", attrs["sampling_wall_time_s"]))
    out["sampling_1_1_s"] = float(attrs["sampling_wall_time_s"])

    est = BayesianEstimator()  # the library's defaults, those of `nseos fit`
    est = eqx.tree_at(
        lambda e: e.sampler,
        est,
        type(est.sampler)(
            **{f: getattr(est.sampler, f) for f in ("warmup", "draws", "chains", "target_accept")},
            progress=False,
        ),
    )
    potential = _Potential(est.model(observations))
    z = est.initial_points(jax.random.key(1))
    z = {k: v[0] for k, v in z.items()}
    value_and_grad = jax.jit(jax.value_and_grad(potential.energy))
    jax.block_until_ready(value_and_grad(z))
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        jax.block_until_ready(value_and_grad(z))
        times.append(time.perf_counter() - t)
    out["gradient_ms"] = 1e3 * min(times)

    if args.skip_clean_run:
        return out
    sampler = est.sampler
    out["settings"] = f"{sampler.chains} x ({sampler.warmup} + {sampler.draws})"
    out["target_accept"] = float(sampler.target_accept)
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        post = est.fit(observations, key=jax.random.key(args.seed))
    out["clean_wall_s"] = time.perf_counter() - t
    out["warnings"] = [str(w.message) for w in caught]
    rows = post.diagnostics()
    out["ess_bulk_min"] = min(r["ess_bulk"] for r in rows if "ess_bulk" in r)
    out["r_hat_max"] = max(r["r_hat"] for r in rows if "r_hat" in r)
    stats = post.to_datatree()["sample_stats"]
    out["divergences"] = int(stats["diverging"].values.sum())
    out["steps_per_draw"] = float(stats["n_steps"].values.mean())
    gradients = post.datatree.attrs.get("n_gradient_evaluations")
    out["gradients_estimated"] = gradients is None
    if gradients is None:
        gradients = stats["n_steps"].values.sum() * (sampler.warmup + sampler.draws) / sampler.draws
    out["gradients"] = int(gradients)
    out["ess_per_1000_gradients"] = 1e3 * out["ess_bulk_min"] / out["gradients"]
    summary = post.summary()
    out["quantities"] = {
        q: {k: summary[q][k] for k in ("q2.5", "median", "q97.5")} for q in QUANTITIES
    }
    return out


def run_in_subprocess(src: Path, args) -> dict:
    """This script's measurements with ``src`` first on the import path, in a new process."""
    with tempfile.TemporaryDirectory() as tmp:
        result = Path(tmp) / "result.json"
        cmd = [sys.executable, __file__, "--child", str(result), "--repeats", str(args.repeats)]
        cmd += ["--seed", str(args.seed)] + (["--skip-clean-run"] if args.skip_clean_run else [])
        env = {**os.environ, "PYTHONPATH": str(src)}
        subprocess.run(cmd, check=True, env=env, cwd=tmp)
        return json.loads(result.read_text())


def baseline_sources(ref: str) -> Path:
    """The ``src`` folder of revision ``ref``, checked out once under .bench-baseline/."""
    sha = subprocess.run(
        ["git", "rev-parse", "--short", ref], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    tree = ROOT / ".bench-baseline" / sha
    if not tree.exists():
        subprocess.run(["git", "worktree", "add", "--detach", str(tree), sha], cwd=ROOT, check=True)
    return tree / "src"


def fmt(value, spec="") -> str:
    if value is None:
        return "–"
    return format(value, spec)


def report(rows: dict[str, dict]) -> None:
    names = list(rows)
    lines = [
        ("cold compilation of one NUTS program [s]", "compile_s", ".1f", True),
        ("a 1 + 1 run's sampler, starting points included [s]", "sampling_1_1_s", ".1f", True),
        ("log-posterior + gradient [ms]", "gradient_ms", ".2f", True),
        ("clean run, wall incl. compilation [s]", "clean_wall_s", ".0f", True),
        ("ESS_bulk per 1000 gradient evaluations", "ess_per_1000_gradients", ".2f", False),
        ("gradient evaluations (warm-up included)", "gradients", "d", True),
        ("leapfrog steps per draw", "steps_per_draw", ".1f", True),
        ("ESS_bulk min", "ess_bulk_min", ".0f", False),
        ("R-hat max", "r_hat_max", ".4f", None),
        ("divergences", "divergences", "d", None),
    ]
    head = "| figure | " + " | ".join(names) + (" | ratio |" if len(names) == 2 else " |")
    print(head)
    print("|" + "---|" * (len(names) + 1 + (len(names) == 2)))
    for label, key, spec, lower_is_better in lines:
        values = [rows[n].get(key) for n in names]
        cells = [fmt(v, spec) for v in values]
        if key == "gradients" and any(rows[n].get("gradients_estimated") for n in names):
            cells = [
                c + (" (est.)" if rows[n].get("gradients_estimated") else "")
                for c, n in zip(cells, names, strict=True)
            ]
        ratio = ""
        if len(names) == 2 and lower_is_better is not None and None not in values:
            ratio = (
                f"{values[0] / values[1]:.2f}x"
                if lower_is_better
                else f"{values[1] / values[0]:.2f}x"
            )
            ratio = f" {ratio} |"
        elif len(names) == 2:
            ratio = " |"
        print(f"| {label} | " + " | ".join(cells) + " |" + ratio)
    for n in names:
        if "settings" in rows[n]:
            print(f"{n}: {rows[n]['settings']}, target accept {rows[n]['target_accept']}")
        for q, v in rows[n].get("quantities", {}).items():
            print(f"  {n} {q}: median {v['median']:.3f}, 95 % [{v['q2.5']:.3f}, {v['q97.5']:.3f}]")
        for w in rows[n].get("warnings", []):
            print(f"  {n} warning: {w}")
    print("Ratios: baseline / now for costs, now / baseline for ESS per gradient (> 1 is better).")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=None, help="git revision to compare with")
    parser.add_argument("--repeats", type=int, default=20, help="gradient timing repeats")
    parser.add_argument("--seed", type=int, default=1, help="PRNG seed of the clean run")
    parser.add_argument("--skip-clean-run", action="store_true", help="compile and gradient only")
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        Path(args.child).write_text(json.dumps(measure(args)))
        return
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; load {os.getloadavg()}")
    rows = {}
    if args.baseline:
        print(f"measuring the baseline {args.baseline} ...", flush=True)
        rows[f"baseline {args.baseline}"] = run_in_subprocess(baseline_sources(args.baseline), args)
    print("measuring this tree ...", flush=True)
    rows["now"] = run_in_subprocess(ROOT / "src", args)
    report(rows)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

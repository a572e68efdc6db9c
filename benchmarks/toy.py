"""1-D noise-injection study benchmark (issue 7).

Targets, each printed as a ratio in the same run:

* the study of ``nseos toy --quick`` (every configuration, 1000 steps, 3 seeds): < 1 min
  (the command adds ~15 s for imports and its figures);
* the full study (3 architectures x 3 activations x 7 modes x 10 seeds x 1e5 steps):
  < 15 min on a 2-core CPU (``--full``);
* per-step cost of each training mode (all its configurations and seeds at once), so that
  "replicas need no extra random draws per unit" can be checked against dropout.

Usage::

    python benchmarks/toy.py            # the quick study only
    python benchmarks/toy.py --full     # and the full study (about 12 minutes)
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax

from nseos.toy import StudySettings, ToyProblem, run_study

QUICK_TARGET_S = 60.0
FULL_TARGET_S = 900.0


def timed_study(steps: int, seeds: int, checkpoints: int):
    t0 = time.perf_counter()
    study = run_study(
        ToyProblem(),
        StudySettings(steps=steps, n_seeds=seeds, n_checkpoints=checkpoints),
        jax.random.key(0),
        progress=False,
    )
    return study, time.perf_counter() - t0


def report(name: str, study, seconds: float, target: float) -> None:
    n_cfg = len(study.runs)
    print(
        f"{name}: {n_cfg} configurations x {study.settings.n_seeds} seeds x "
        f"{study.settings.steps} steps in {seconds:.1f} s (target {target:.0f} s): "
        f"ratio {seconds / target:.2f}"
    )
    modes = dict.fromkeys(r.mode for r in study.runs)
    for m in modes:
        r = study.select(mode=m)[0]
        print(
            f"  {m:28s} compile {r.mode_compile_seconds:5.1f} s, "
            f"{1e6 * r.mode_seconds_per_step:7.0f} us/step for {n_cfg // len(modes)} "
            f"configurations x {study.settings.n_seeds} seeds"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="also time the full study")
    args = parser.parse_args()
    cpu = platform.processor() or platform.machine()
    print(f"{cpu}, {os.cpu_count()} CPUs, jax {jax.__version__}")
    study, seconds = timed_study(1_000, 3, 10)
    report("quick study", study, seconds, QUICK_TARGET_S)
    if args.full:
        study, seconds = timed_study(100_000, 10, 50)
        report("full study", study, seconds, FULL_TARGET_S)


if __name__ == "__main__":
    main()

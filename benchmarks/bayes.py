"""Bayesian estimator benchmark: gradient cost of the posterior, and a short NUTS run.

Reference point (issue 4): jestertov's gradient of one observable costs about 0.06 s on this
class of machine. The report prints the ratio of the whole log-posterior gradient
(``catalogs.modern()``: 7 observations, the TOV sequence included) to that figure, then runs
NumPyro NUTS for a few iterations and prints wall time, gradient evaluations per second and
ESS per second, and the projected cost of the issue's clean run (4 chains x (1000 warm-up +
1000 draws)).

Usage::

    python benchmarks/bayes.py                       # 1 chain, 40 warm-up + 40 draws
    python benchmarks/bayes.py --warmup 200 --draws 200 --chains 2
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax

jax.config.update("jax_enable_x64", True)

import arviz as az  # noqa: E402
import numpy as np  # noqa: E402
from numpyro.infer.util import initialize_model  # noqa: E402

from nseos import catalogs  # noqa: E402
from nseos.bayes import BayesianEstimator, NumPyroNUTS  # noqa: E402

JESTER_GRADIENT_S = 0.06


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--draws", type=int, default=40)
    parser.add_argument("--chains", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}")

    observations = catalogs.modern()
    est = BayesianEstimator(
        sampler=NumPyroNUTS(args.warmup, args.draws, args.chains, progress=False)
    )
    model = est.model(observations)
    info = initialize_model(jax.random.key(0), model, dynamic_args=False)
    value_and_grad = jax.jit(jax.value_and_grad(info.potential_fn))
    z = info.param_info.z
    t = time.perf_counter()
    jax.block_until_ready(value_and_grad(z))
    compile_s = time.perf_counter() - t
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        jax.block_until_ready(value_and_grad(z))
        times.append(time.perf_counter() - t)
    grad_s = min(times)
    print(
        f"log-posterior + gradient (modern(), TOV included): {1e3 * grad_s:.1f} ms "
        f"(first call {compile_s:.1f} s); jestertov reference {1e3 * JESTER_GRADIENT_S:.0f} "
        f"ms for one observable: ratio {JESTER_GRADIENT_S / grad_s:.1f}x"
    )

    t = time.perf_counter()
    result = est.sampler.run(model, jax.random.key(1))
    wall = time.perf_counter() - t
    n_steps = result.stats["n_steps"]
    ess = np.asarray(az.ess(result.samples["cs2"].astype(float)))
    total_steps = int(n_steps.sum()) * (args.warmup + args.draws) / args.draws
    print(
        f"NUTS {args.chains} chain(s) x ({args.warmup} + {args.draws}): {wall:.0f} s wall "
        f"(incl. compilation); mean leapfrog steps per draw {n_steps.mean():.1f}; "
        f"~{total_steps / wall:.0f} gradient evaluations/s; "
        f"ESS_bulk min {ess.min():.0f} -> {ess.min() / wall:.2f} ESS/s; "
        f"divergences {int(result.stats['diverging'].sum())}"
    )
    projected = 4 * 2000 * n_steps.mean() * grad_s
    print(
        f"projected clean run (4 chains x 2000 iterations, sequential gradients): "
        f"{projected / 60:.0f} min (target <= 5 min)"
    )


if __name__ == "__main__":
    main()

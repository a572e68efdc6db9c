"""Bayesian estimator benchmark: gradient cost of the posterior, and a short NUTS run.

Reference point (issue 4): jestertov's gradient of one observable costs about 0.06 s on this
class of machine. The report prints the ratio of the whole log-posterior gradient
(``catalogs.modern()``: 7 observations, the TOV sequence included) to that figure, then runs
NumPyro NUTS and prints wall time, gradient evaluations per second, ESS per second, and the
wall time's ratio to the issue's limit (5 min) and goal (2 min) for the clean run (4 chains x
(1000 warm-up + 1000 draws)).

The CPU cores are exposed as JAX devices, so the chains run in parallel (one compiled
program; each core runs its share of the chains one after the other).

Usage::

    python benchmarks/bayes.py                       # 2 chains, 40 warm-up + 40 draws
    python benchmarks/bayes.py --warmup 1000 --draws 1000 --chains 4   # the clean run
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpyro

numpyro.set_host_device_count(os.cpu_count() or 1)

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
from numpyro.infer.util import initialize_model  # noqa: E402

from nseos import catalogs, enable_compilation_cache  # noqa: E402
from nseos.bayes import BayesianEstimator, NumPyroNUTS  # noqa: E402

JESTER_GRADIENT_S = 0.06


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--draws", type=int, default=40)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--n-stars", type=int, default=None, help="stars per M-R sequence")
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument(
        "--diagonal", action="store_true", help="adapt a diagonal mass matrix (default: dense)"
    )
    parser.add_argument(
        "--target-accept", type=float, default=None, help="default: the sampler's (0.93)"
    )
    parser.add_argument("--seed", type=int, default=1, help="PRNG seed of the fit")
    parser.add_argument("--save", default=None, help="write the posterior (netCDF) here")
    parser.add_argument(
        "--cache", default=None, help="JAX compilation cache directory (warm-start timings)"
    )
    args = parser.parse_args()
    if args.cache:
        print(f"compilation cache: {enable_compilation_cache(args.cache)}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}")

    observations = catalogs.modern()
    tuning = {} if args.target_accept is None else {"target_accept": args.target_accept}
    sampler = NumPyroNUTS(
        args.warmup,
        args.draws,
        args.chains,
        progress=False,
        dense_mass=not args.diagonal,
        **tuning,
    )
    stars = {} if args.n_stars is None else {"n_stars": args.n_stars}
    est = BayesianEstimator(sampler=sampler, **stars)
    print(f"{est.n_stars} stars per sequence; {jax.local_device_count()} JAX devices")
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
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        posterior = est.fit(observations, key=jax.random.key(args.seed))
    wall = time.perf_counter() - t
    if args.save:
        posterior.save(args.save)
    stats = posterior.to_datatree()["sample_stats"]
    n_steps = stats["n_steps"].values
    rows = posterior.diagnostics()
    ess = np.array([r["ess_bulk"] for r in rows if "ess_bulk" in r])
    rhat = np.array([r["r_hat"] for r in rows if "r_hat" in r])
    total_steps = int(n_steps.sum()) * (args.warmup + args.draws) / args.draws
    print(
        f"fit: NUTS {args.chains} chain(s) x ({args.warmup} + {args.draws}): {wall:.0f} s wall "
        f"(incl. compilation, reachability check and derived quantities); mean leapfrog "
        f"steps per draw {n_steps.mean():.1f}; ~{total_steps / wall:.0f} gradient "
        f"evaluations/s; ESS_bulk min {ess.min():.0f} -> {ess.min() / wall:.2f} ESS/s; "
        f"R-hat max {rhat.max():.3f}; divergences {int(stats['diverging'].values.sum())}; "
        f"of the wall time, sampling (with its compilation) "
        f"{posterior.datatree.attrs['sampling_wall_time_s']:.0f} s"
    )
    print(
        f"wall time / 5-minute limit: {wall / 300:.2f}; / 2-minute target: {wall / 120:.2f} "
        "(meaningful for the clean run: --warmup 1000 --draws 1000 --chains 4)"
    )
    for w in caught:
        print(f"warning: {w.message}")


if __name__ == "__main__":
    main()

"""Likelihood benchmark: ln L(catalogs.modern() | EoS) and its gradient, TOV curve included.

Target (issue 3): value + gradient with respect to the five c_s^2 of
:class:`nseos.eos.SpeedOfSoundSegments`, including the M-R-Lambda curve, under 3 ms on a
2-core CPU. The report prints each timing's ratio to that target, and the parts that make up
the cost (the curve alone, the observation blocks alone), in the same run.

It also times mock catalogues (target: 10^4 mock universes in seconds) and shows what cheaper
TOV settings cost in likelihood accuracy.

Timings: best of ``--repeats`` calls after a warm-up (median also shown), with
``jax.block_until_ready`` and ``time.perf_counter``.

Usage::

    python benchmarks/likelihood.py            # full run (~2 minutes on 2 CPU cores)
    python benchmarks/likelihood.py --quick    # fewer repeats
    python benchmarks/likelihood.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from nseos import catalogs  # noqa: E402
from nseos.eos import SpeedOfSoundSegments  # noqa: E402
from nseos.observations import Likelihood, mock_observations  # noqa: E402
from nseos.tov import RK4, mass_radius_curve  # noqa: E402

TARGET_MS = 3.0
CS2 = jnp.array([0.3, 0.5, 0.5, 0.4, 0.3])


def timed(fn, *args, repeats):
    """(best, median) wall time in ms of fn(*args) after one warm-up call."""
    jax.block_until_ready(fn(*args))
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn(*args))
        times.append(1e3 * (time.perf_counter() - t))
    return min(times), statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    repeats = args.repeats or (5 if args.quick else 21)

    t0 = time.perf_counter()
    observations = catalogs.modern()
    load_s = time.perf_counter() - t0
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}")
    print(f"catalogs.modern(): {len(observations)} observations, built in {load_s:.2f} s")

    rows = []

    def report(label, best, median, note=""):
        ratio = best / TARGET_MS
        rows.append({"case": label, "best_ms": best, "median_ms": median, "ratio": ratio})
        print(f"{label:58s} {best:8.2f} ms (median {median:7.2f})  {ratio:5.2f}x target {note}")

    for n_stars, method, tag in (
        (100, RK4(), "default: 100 stars, RK4()"),
        (50, RK4.scaled(5), "cheap: 50 stars, RK4.scaled(5)"),
    ):
        like = Likelihood(observations, n_stars=n_stars, method=method)

        def total(cs2, like=like):
            return like(SpeedOfSoundSegments(cs2)).total

        curve_fn = eqx.filter_jit(
            lambda cs2, n=n_stars, m=method: mass_radius_curve(SpeedOfSoundSegments(cs2), n, m)
        )
        from_curve = eqx.filter_jit(lambda c, like=like: like.from_curve(c).total)
        value = jax.jit(total)
        rev = jax.jit(jax.value_and_grad(total))
        fwd = jax.jit(lambda c, f=total: (f(c), jax.jacfwd(f)(c)))
        print(f"\n[{tag}]  ln L = {float(value(CS2)):.5f}")
        report("  M-R-Lambda curve alone", *timed(curve_fn, CS2, repeats=repeats))
        report(
            "  observation blocks alone (from a solved curve)",
            *timed(from_curve, curve_fn(CS2), repeats=repeats),
        )
        report("  ln L (curve + observations)", *timed(value, CS2, repeats=repeats))
        report("  ln L + gradient, reverse mode", *timed(rev, CS2, repeats=repeats))
        report("  ln L + gradient, forward mode (5 tangents)", *timed(fwd, CS2, repeats=repeats))

    # Accuracy of the cheap setting against a reference (400 stars, RK4.scaled(20)).
    ref = Likelihood(observations, n_stars=400, method=RK4.scaled(20))
    cheap = Likelihood(observations, n_stars=50, method=RK4.scaled(5))
    default = Likelihood(observations)
    keys = jax.random.split(jax.random.key(0), 8)
    cs2s = jax.random.uniform(keys[0], (8, 5), minval=0.2, maxval=0.7)
    errs = {"default": [], "cheap": []}
    for c in cs2s:
        r = float(ref(SpeedOfSoundSegments(c)).total)
        errs["default"].append(abs(float(default(SpeedOfSoundSegments(c)).total) - r))
        errs["cheap"].append(abs(float(cheap(SpeedOfSoundSegments(c)).total) - r))
    print(
        "\nmax |ln L - reference| over 8 EoS (c_s^2 ~ U[0.2, 0.7]): "
        f"default {max(errs['default']):.1e}, cheap {max(errs['cheap']):.1e}"
    )

    # Mock universes: 10^4 catalogues of 14 stars from one curve.
    curve = mass_radius_curve(SpeedOfSoundSegments(CS2))
    mock = jax.jit(jax.vmap(lambda k: mock_observations(curve, k)))
    keys = jax.random.split(jax.random.key(1), 10_000)
    t = time.perf_counter()
    jax.block_until_ready(mock(keys))
    first = time.perf_counter() - t
    best, med = timed(mock, keys, repeats=max(3, repeats // 4))
    print(
        f"\n10^4 mock universes (14 stars): {best:.1f} ms after compilation "
        f"(first call incl. compile {first:.2f} s)"
    )
    rows.append({"case": "1e4 mock universes", "best_ms": best, "median_ms": med})

    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"rows": rows, "errors": errs}, fh, indent=2)


if __name__ == "__main__":
    main()

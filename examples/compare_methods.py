"""Bayes against NN replicas on the original X-ray catalog: bands, widths, agreement.

Trains an NN-replica ensemble (the original MLP with noise replicas, at a reduced scale) and
runs NUTS on the same 14 X-ray stars (``catalogs.xray_2016()``), then compares the two:
the 68 %/95 % widths side by side, the Wasserstein distance and KL divergence of every
headline quantity, and the p(eps), M-R and corner figures.

    python examples/compare_methods.py --out results/compare_methods   # ~6 min on 2 cores
    python examples/compare_methods.py --tiny --out /tmp/x               # a smoke run
"""

import argparse
import dataclasses
import os
from pathlib import Path

import numpyro

numpyro.set_host_device_count(os.cpu_count() or 1)

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

from nseos import catalogs  # noqa: E402
from nseos.bayes import BayesianEstimator, NumPyroNUTS  # noqa: E402
from nseos.compare import compare, eos_band_figure, write_comparison  # noqa: E402
from nseos.pipeline import DemoScale, demo_replica  # noqa: E402
from nseos.plots import save_figure  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/compare_methods", help="output directory")
    parser.add_argument("--tiny", action="store_true", help="seconds-scale settings")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    scale = DemoScale.tiny() if args.tiny else DemoScale()
    k_bayes, k_train, k_fit = jax.random.split(jax.random.key(args.seed), 3)

    observations = catalogs.xray_2016()
    bayes = BayesianEstimator(
        sampler=NumPyroNUTS(scale.warmup, scale.draws, scale.chains),
        n_prior_draws=scale.n_prior_draws,
    ).fit(observations, key=k_bayes)
    replica, _ = demo_replica(scale, k_train, cache_dir=out / "cache", progress=True)
    runs = {
        "Bayes (NUTS)": bayes,
        "NN replicas": dataclasses.replace(replica, n_prior_draws=scale.n_prior_draws).fit(
            observations, key=k_fit
        ),
    }
    comparison = compare(runs)
    print(comparison.widths.to_markdown())
    print(comparison.agreement.to_markdown())
    report = write_comparison(comparison, runs, out, observations=observations)
    written = save_figure(eos_band_figure(runs), out / "eos_band")
    print("wrote", report, "and", ", ".join(written))


if __name__ == "__main__":
    main()

"""How much of the EoS band is prior? The Bayesian estimator under each bundled prior.

Runs NUTS on ``catalogs.modern()`` under the uniform c_s^2 prior (the original study's), the
log-uniform one and the chiral-EFT-constrained one, and reports, quantity by quantity, the
shift of the median in posterior sigma, the Wasserstein distance to the uniform-prior run,
and the posterior/prior width ratio, plus that ratio against density (the figure).

    python examples/prior_dependence.py --out results/prior_dependence   # ~15 min, 2 cores
    python examples/prior_dependence.py --warmup 30 --draws 30 --priors uniform,log-uniform
"""

import argparse
import os
from pathlib import Path

import numpyro

numpyro.set_host_device_count(os.cpu_count() or 1)

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

from nseos import catalogs  # noqa: E402
from nseos.bayes import BayesianEstimator, NumPyroNUTS  # noqa: E402
from nseos.compare import (  # noqa: E402
    compare,
    prior_dependence_figure,
    write_comparison,
)
from nseos.pipeline import PRIOR_NAMES, make_prior  # noqa: E402
from nseos.plots import save_figure  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/prior_dependence", help="output directory")
    parser.add_argument("--priors", default=",".join(PRIOR_NAMES), help="comma-separated")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)

    observations = catalogs.modern()
    sampler = NumPyroNUTS(args.warmup, args.draws, args.chains)
    runs = {}
    for i, name in enumerate(args.priors.split(",")):
        prior = make_prior(name)
        est = BayesianEstimator(prior=prior, sampler=sampler, n_prior_draws=300)
        runs[prior.name] = est.fit(observations, key=jax.random.key(args.seed + i))
    comparison = compare(runs, prior_groups=[list(runs)])
    print(comparison.prior_dependence[0].to_markdown())
    report = write_comparison(comparison, runs, out, observations=observations)
    written = save_figure(prior_dependence_figure(runs), out / "prior_dependence")
    print("wrote", report, "and", ", ".join(written))


if __name__ == "__main__":
    main()

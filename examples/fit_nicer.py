"""Fit the EoS to NICER radii and radio masses with NUTS; plot the p(eps) and M-R bands.

The Bayesian estimator (uniform c_s^2 prior, five segments above rho0 on the SLy4 crust) on
``catalogs.nicer()`` plus the heavy radio pulsars not already among them; prints the
headline numbers and sampler diagnostics, and writes the posterior (netCDF),
``summary.json`` and two figures.

    python examples/fit_nicer.py --out results/fit_nicer            # ~5 min on 2 cores
    python examples/fit_nicer.py --warmup 30 --draws 30 --out /tmp/x  # a smoke run
"""

import argparse
import os
from pathlib import Path

import numpyro

numpyro.set_host_device_count(os.cpu_count() or 1)  # one chain per core

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

from nseos import catalogs  # noqa: E402
from nseos.bayes import BayesianEstimator, NumPyroNUTS  # noqa: E402
from nseos.compare import eos_band_figure, mass_radius_band_figure  # noqa: E402
from nseos.observations import ObservationSet  # noqa: E402
from nseos.pipeline import summary_table_markdown, write_fit  # noqa: E402
from nseos.plots import save_figure  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/fit_nicer", help="output directory")
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--draws", type=int, default=500)
    parser.add_argument("--chains", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)

    nicer = catalogs.nicer()
    # J0740+6620 is in both: its NICER M-R posterior already carries the radio mass.
    radio = [o for o in catalogs.pulsar_masses() if o.name not in nicer.names]
    observations = ObservationSet([*nicer, *radio])
    print(observations.table(), "\n")
    estimator = BayesianEstimator(
        sampler=NumPyroNUTS(args.warmup, args.draws, args.chains), n_prior_draws=200
    )
    posterior = estimator.fit(observations, key=jax.random.key(args.seed))
    print(summary_table_markdown(posterior))
    for row in posterior.diagnostics():
        print(row)
    runs = {"NICER + radio masses": posterior}
    written = write_fit(posterior, out, observations)
    written += save_figure(eos_band_figure(runs), out / "eos_band")
    written += save_figure(mass_radius_band_figure(runs, observations), out / "mass_radius_band")
    print("wrote", ", ".join(map(str, written)))


if __name__ == "__main__":
    main()

"""Reproduce Fujimoto, Fukushima and Murase (2019): NN replicas on the X-ray catalog.

The original analysis (arXiv:1711.06748, 1903.03400): an ensemble of 60-40-40 ReLU
networks trained on mock catalogues of 14 stars, each copied n_s times with Gaussian noise,
applied to the 14 X-ray sources (``catalogs.xray_2016()``, stand-in Gaussians; see the
catalog's docstring), and validated by the RMS radius error at M = 0.6 ... 1.8 M_sun over
held-out mock EoS, next to the published 0.16, 0.12, 0.10, 0.099, 0.11, 0.11, 0.12 km.

    python examples/reproduce_ffm2019.py --out results/ffm2019     # reduced scale, ~10 min
    python examples/reproduce_ffm2019.py --n-eos 500 --n-sets 100 --n-s 100 --epochs 200 \
        --out results/ffm2019-full                                   # the original scale
    python examples/reproduce_ffm2019.py --n-eos 40 --n-sets 4 --n-s 2 --epochs 2 \
        --models 2 --n-val 8 --out /tmp/x                            # a smoke run
"""

import argparse
import json
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

from nseos import catalogs  # noqa: E402
from nseos._io import write_text_atomic  # noqa: E402
from nseos.compare import eos_band_figure, mass_radius_band_figure  # noqa: E402
from nseos.pipeline import summary_table_markdown, write_fit  # noqa: E402
from nseos.plots import save_figure  # noqa: E402
from nseos.replica import (  # noqa: E402
    DataReplicas,
    ReplicaEstimator,
    TrainingConfig,
    TrainSettings,
    validate,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/ffm2019", help="output directory")
    parser.add_argument("--n-eos", type=int, default=300, help="training EoS (original 500)")
    parser.add_argument("--n-sets", type=int, default=40, help="catalogues per EoS (100)")
    parser.add_argument("--n-s", type=int, default=20, help="noise replicas (100)")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--models", type=int, default=10, help="ensemble members")
    parser.add_argument("--n-val", type=int, default=200, help="held-out validation EoS")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = Path(args.out)
    k_train, k_fit, k_val = jax.random.split(jax.random.key(args.seed), 3)

    estimator = ReplicaEstimator(
        training=TrainingConfig(n_eos=args.n_eos, n_sets=args.n_sets, n_stars=14),
        regularisation=DataReplicas(args.n_s),
        settings=TrainSettings(epochs=args.epochs, batch_size=1000, patience=10),
        n_models=args.models,
    ).train(k_train, cache_dir=out / "cache")
    estimator.save(out / "model")

    observations = catalogs.xray_2016()
    posterior = estimator.fit(observations, key=k_fit)
    print(summary_table_markdown(posterior))
    write_fit(posterior, out, observations)
    runs = {"NN replicas (X-ray catalog)": posterior}
    save_figure(eos_band_figure(runs), out / "eos_band")
    save_figure(mass_radius_band_figure(runs, observations), out / "mass_radius_band")

    result = validate(estimator, k_val, n_eos=args.n_val, progress=True)
    table = result.table()
    print(table)
    write_text_atomic(out / "validation.md", table + "\n")
    write_text_atomic(
        out / "validation.json",
        json.dumps({"rms_km": [float(x) for x in result.rms_km]}, indent=1),
    )
    print(f"wrote {out}/eos_band.png, mass_radius_band.png, validation.md, posterior.nc")


if __name__ == "__main__":
    main()

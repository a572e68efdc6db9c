"""NN-replica estimator benchmark: training data, ensemble training, and fit.

Targets (issue 5), each printed as a ratio in the same run:

* training data at the original scale (500 EoS x 100 catalogues of 14 stars): < 2 min;
* an ensemble of 10 networks at the original scale (500 x 100 x 100 noise copies =
  5e6 samples per member and epoch): < 30 min on 2 CPU cores, throughput in samples/s;
* ``fit`` on a trained ensemble, including the TOV re-solve for the bands: < 1 s.

Usage::

    python benchmarks/replica.py                 # original scale, 1 epoch
    python benchmarks/replica.py --n-eos 100 --n-sets 20 --epochs 1   # quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402

from nseos.observations import mock_observations  # noqa: E402
from nseos.replica import (  # noqa: E402
    DataReplicas,
    ReplicaEstimator,
    TrainingConfig,
    TrainSettings,
    generate_training_data,
)
from nseos.tov import mass_radius_curve  # noqa: E402

DATA_TARGET_S = 120.0
TRAIN_TARGET_S = 1800.0
FIT_TARGET_S = 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-eos", type=int, default=500)
    parser.add_argument("--n-sets", type=int, default=100)
    parser.add_argument("--n-s", type=int, default=100)
    parser.add_argument("--models", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=1000)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}")

    config = TrainingConfig(n_eos=args.n_eos, n_sets=args.n_sets)
    t = time.perf_counter()
    data = generate_training_data(config, jax.random.key(0), progress=False)
    data_s = time.perf_counter() - t
    print(
        f"training data, {args.n_eos} EoS x {args.n_sets} catalogues x 14 stars: "
        f"{data_s:.1f} s incl. compilation ({data.n_rejected} EoS rejected, M_max < 2); "
        f"target {DATA_TARGET_S:.0f} s: ratio {data_s / DATA_TARGET_S:.2f}"
    )

    est = ReplicaEstimator(
        training=config,
        regularisation=DataReplicas(args.n_s),
        settings=TrainSettings(epochs=args.epochs, batch_size=args.batch_size),
        n_models=args.models,
    )
    t = time.perf_counter()
    trained = est.train(jax.random.key(1), data=data, progress=False)
    train_s = time.perf_counter() - t
    n_train = round(0.9 * args.n_eos) * args.n_sets
    samples = n_train * args.n_s * args.epochs * args.models
    rate = samples / train_s
    per_epoch = n_train * args.n_s * args.models / rate
    print(
        f"training {args.models} networks, {args.epochs} epoch(s) of {n_train * args.n_s:.2e} "
        f"samples each: {train_s:.0f} s incl. compilation -> {rate:.3g} samples/s; one epoch "
        f"of the ensemble at this scale: {per_epoch / 60:.1f} min; target "
        f"{TRAIN_TARGET_S / 60:.0f} min per ensemble: ratio {train_s / TRAIN_TARGET_S:.2f}"
    )

    curve = mass_radius_curve(config.make_eos(np.array([0.06, 0.13, 0.26, 0.45, 0.68])))
    obs = mock_observations(curve, jax.random.key(7), 14).to_observation_set()
    trained.fit(obs, key=jax.random.key(0))  # compile
    times = []
    for _ in range(5):
        t = time.perf_counter()
        trained.fit(obs, key=jax.random.key(0))
        times.append(time.perf_counter() - t)
    fit_s = min(times)
    print(
        f"fit (10 members + TOV re-solve + bands): {1e3 * fit_s:.0f} ms; target "
        f"{FIT_TARGET_S:.0f} s: ratio {fit_s / FIT_TARGET_S:.2f}"
    )


if __name__ == "__main__":
    main()

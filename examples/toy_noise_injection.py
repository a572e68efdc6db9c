"""The 1-D noise-injection study: data replicas vs parameter noise vs dropout.

Trains 1-2-2-1, 1-4-4-1 and 1-9-9-1 networks (ReLU, leaky ReLU, sigmoid) on 20 points of a
peaked function, plain and with each regularisation of the NN-replica estimator, over many
seeds, then writes the loss curves, the fits, a table and the numbers behind the talk's four
claims (Fujimoto, Fukushima and Murase, arXiv:1903.03400).

    python examples/toy_noise_injection.py --out results/toy            # the full study
    python examples/toy_noise_injection.py --steps 2000 --seeds 3       # a quick look
"""

import argparse

import jax

from nseos.toy import StudySettings, ToyProblem, run_study, talk_modes, write_report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/toy", help="output directory")
    parser.add_argument("--steps", type=int, default=100_000, help="optimiser steps per run")
    parser.add_argument("--seeds", type=int, default=10, help="seeds per configuration")
    parser.add_argument("--checkpoints", type=int, default=50, help="loss-curve points")
    parser.add_argument("--input-sigma", type=float, default=0.05, help="std of dx")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    problem = ToyProblem(input_sigma=args.input_sigma)
    settings = StudySettings(steps=args.steps, n_seeds=args.seeds, n_checkpoints=args.checkpoints)
    study = run_study(problem, settings, jax.random.key(args.seed), modes=talk_modes(problem))
    write_report(study, args.out)
    with open(f"{args.out}/claims.md") as fh:
        print(fh.read())
    print(f"figures and tables in {args.out}/")


if __name__ == "__main__":
    main()

"""Which reference EoS do the observations prefer? Mass-marginalised likelihoods of real data.

Loads a bundled catalog (default: ``catalogs.modern()``: four NICER pulsars, two heavy radio
pulsars and GW170817), evaluates ln L for a few bundled EoS, prints the per-observation
table, and draws the observations' 68 %/95 % contours with the EoS curves.

    python examples/observations_likelihood.py --out results/example
"""

import argparse
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402

from nseos import catalogs, eos  # noqa: E402
from nseos.observations import Likelihood, LikelihoodStatus  # noqa: E402
from nseos.plots import observations_figure, save_figure  # noqa: E402
from nseos.tov import check_curve, mass_radius_curve  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/example", help="output directory")
    parser.add_argument("--catalog", default="modern", choices=sorted(catalogs.CATALOGS))
    parser.add_argument(
        "--eos", default="SLy4,MPA1,H4,MS1", help="comma-separated bundled EoS names"
    )
    args = parser.parse_args(argv)

    observations = catalogs.CATALOGS[args.catalog]()
    print(observations.table(), "\n")
    like = Likelihood(observations)
    from_curve = eqx.filter_jit(like.from_curve)
    curves, results = [], {}
    for name in args.eos.split(","):
        model = eos.reference_eos(name)
        curve = check_curve(eqx.filter_jit(mass_radius_curve)(model))
        result = from_curve(curve, model)
        curves.append((name, curve))
        results[name] = result
        print(
            f"{name:6s} ln L = {float(result.total):9.3f}  "
            f"({LikelihoodStatus(int(result.status)).name}, M_max = "
            f"{float(curve.max_mass_msun):.3f} M_sun)"
        )
    print("\nper observation:")
    print(f"{'':22s}" + "".join(f"{n:>10s}" for n in results))
    for i, obs_name in enumerate(observations.names):
        row = "".join(f"{float(r.per_observation[i]):10.3f}" for r in results.values())
        print(f"{obs_name:22s}{row}")
    fig = observations_figure(observations, curves)
    written = save_figure(fig, Path(args.out) / "observations_likelihood", formats=("png",))
    print(f"\nwrote {written[0]}")


if __name__ == "__main__":
    main()

"""Mass-radius and tidal-deformability curves of reference equations of state.

Solves the TOV + tidal equations for a few bundled EoS (tables, a Read et al. 2009 piecewise
polytrope and a Fujimoto-Fukushima-Murase speed-of-sound EoS), prints M_max, R(1.4) and
Lambda(1.4), and saves the M-R / Lambda-M figure.

    python examples/tov_mass_radius.py --out results/example
"""

import argparse
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import equinox as eqx  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from nseos import eos  # noqa: E402
from nseos.plots import mass_radius_figure, save_figure  # noqa: E402
from nseos.tov import RK4, check_curve, mass_radius_curve  # noqa: E402


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="results/example", help="output directory")
    parser.add_argument("--n-stars", type=int, default=100, help="stars per sequence")
    args = parser.parse_args(argv)

    models = {
        "SLy4 (table)": eos.sly4(),
        "MPA1 (table)": eos.reference_eos("MPA1"),
        "SLy (Read+2009 PP)": eos.read2009_named("SLy"),
        "c_s^2 segments": eos.SpeedOfSoundSegments(jnp.array([0.3, 0.5, 0.5, 0.4, 0.3])),
    }
    solve = eqx.filter_jit(mass_radius_curve)
    curves = []
    for label, model in models.items():
        curve = check_curve(solve(model, args.n_stars, RK4()))
        curves.append((label, curve))
        print(
            f"{label:22s} M_max = {float(curve.max_mass_msun):.3f} M_sun  "
            f"R(1.4) = {float(curve.radius_at(1.4)):.2f} km  "
            f"Lambda(1.4) = {float(curve.lambda_at(1.4)):.0f}"
        )
    written = save_figure(mass_radius_figure(curves), Path(args.out) / "mass_radius")
    print("wrote", ", ".join(written))


if __name__ == "__main__":
    main()

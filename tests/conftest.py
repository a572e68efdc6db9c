"""Test configuration: float64 on (explicitly, as nseos requires), shared compiled solvers."""

import equinox as eqx
import jax
import pytest

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")

from nseos.tov import mass_radius_curve, solve_star  # noqa: E402

curve_jit = eqx.filter_jit(mass_radius_curve)
"""One compiled sequence solver per (EoS structure, n_stars, method), shared by all tests."""
star_vmap_jit = eqx.filter_jit(jax.vmap(solve_star, in_axes=(None, 0, None)))
"""Stars of one EoS at a batch of central enthalpies."""


def write_csv(path, header, rows):
    """Write a CSV file with one header line (test helper)."""
    import csv

    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.fixture(scope="session")
def sly4_table():
    from nseos.eos import sly4

    return sly4()

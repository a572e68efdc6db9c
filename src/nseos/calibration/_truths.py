"""Misspecified truths: equations of state from outside the estimators' c_s^2 family.

The well-specified calibration draws the truth from the estimator's own prior; a real star
is under no such obligation. Here the truths are the Read et al. (2009) piecewise
polytropes (34 named fits to nuclear models, with their SLy crust) and the bundled
tabulated EoS (SLy4 and the LALSimulation tables, each with its own crust). Kept are those
that can host every observed pulsar (M_max >= 2.0 M_sun by default: PSR J0740+6620) and
stay causal (to 1 %) up to their heaviest stable star; the rest are listed with the reason. Each
universe is one mock catalogue of one truth (cycling through them), drawn with the same
protocol as the well-specified case (:func:`nseos.observations.mock_observations`).

Only the derived quantities are compared: c_s^2 per segment has no true value here.
"""

from __future__ import annotations

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..eos import (
    REFERENCE_EOS_NAMES,
    AbstractEOS,
    EOSValidationError,
    read2009_named,
    read2009_parameters,
    reference_eos,
)
from ..observations import mock_observations
from ..posterior import derived_from_curve
from ..tov import RK4, mass_radius_curve

MISSPECIFIED_MIN_MAX_MASS_MSUN = 2.0
"""Truths must reach this maximum mass (PSR J0740+6620, 2.08 +/- 0.07 M_sun)."""


CAUSALITY_TOLERANCE = 1.01
"""Largest c_s^2 (units of c^2) accepted below M_max: the MPA1 table exceeds 1 by a
fraction of a percent near its heaviest stars (interpolation of a causal model; Read et
al.'s MPA1 fit exceeds it by ~9 % and is left out)."""


class Truth(NamedTuple):
    """A named true EoS from outside the family."""

    name: str
    eos: AbstractEOS
    source: str


@eqx.filter_jit
def _solved(eos: AbstractEOS, n_stars: int, method: RK4):
    """The M-R curve, the derived quantities and the largest c_s^2 up to the heaviest star."""
    curve = mass_radius_curve(eos, n_stars, method)
    p = jnp.geomspace(1e-3, 1.0, 256) * curve.central_pressure_at_max_mass_mev_fm3
    state = eos.state(eos.enthalpy(p))
    cs2 = (state.energy_density_mev_fm3 + state.pressure_mev_fm3) / state.denergy_dh_mev_fm3
    return curve, derived_from_curve(eos, curve), jnp.max(cs2)  # one TOV solve


def candidate_truths() -> list[Truth]:
    """Every Read et al. (2009) EoS and every bundled table (those that load)."""
    out = [
        Truth(f"{name} (PP)", read2009_named(name), "Read et al. 2009 piecewise polytrope")
        for name in read2009_parameters()
    ]
    for name in REFERENCE_EOS_NAMES:
        try:
            out.append(Truth(f"{name} (table)", reference_eos(name), "tabulated"))
        except EOSValidationError:
            continue  # acausal inside its heaviest star: refused by reference_eos
    return out


def misspecified_truths(
    *,
    min_max_mass_msun: float = MISSPECIFIED_MIN_MAX_MASS_MSUN,
    curve_stars: int = 100,
    method: RK4 = RK4(),
) -> tuple[list[tuple[Truth, dict[str, np.ndarray], object]], dict[str, str]]:
    """The truths kept, each with its derived quantities and M-R curve, and the reasons the
    others were left out (name -> reason). Solved once per process and settings."""
    cache_key = (float(min_max_mass_msun), int(curve_stars), repr(method))
    if cache_key not in _SOLVED:
        _SOLVED[cache_key] = _select(min_max_mass_msun, curve_stars, method)
    return _SOLVED[cache_key]


_SOLVED: dict = {}


def _select(min_max_mass_msun, curve_stars, method):
    kept, left_out = [], {}
    candidates = candidate_truths()
    names = {t.name for t in candidates}
    for name in REFERENCE_EOS_NAMES:
        if f"{name} (table)" not in names:
            left_out[f"{name} (table)"] = "acausal inside its heaviest star (refused by the loader)"
    for truth in candidates:
        curve, derived, max_cs2 = _solved(truth.eos, curve_stars, method)
        m_max = float(curve.max_mass_msun)
        if bool(curve.failed) or not bool(curve.max_mass_reached):
            left_out[truth.name] = "its M-R sequence could not be solved to the maximum mass"
        elif m_max < min_max_mass_msun:
            left_out[truth.name] = f"M_max = {m_max:.2f} M_sun < {min_max_mass_msun} M_sun"
        elif float(max_cs2) > CAUSALITY_TOLERANCE:
            left_out[truth.name] = f"acausal below M_max (c_s^2 up to {float(max_cs2):.2f})"
        else:
            kept.append((truth, jax.device_get(derived), curve))
    return kept, left_out


def misspecified_catalogues(
    truths, key: jax.Array, n_universes: int, n_stars: int
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Universe i: a catalogue of truth ``i mod len(truths)`` with key ``fold_in(key, i)``.

    Returns the truths' derived quantities (variable -> (U, ...)), the catalogues
    (U, N, 4) = (M, R, sigma_M, sigma_R) with noise, and each universe's truth index (U,).
    """
    if not truths:
        raise ValueError("no misspecified truth is left to calibrate against")
    which = np.arange(n_universes) % len(truths)
    draw = eqx.filter_jit(mock_observations)
    catalogues = []
    for i, t in enumerate(which):
        mock = draw(truths[t][2], jax.random.fold_in(key, i), n_stars)
        if not bool(mock.valid):
            raise ValueError(f"{truths[t][0].name} cannot host the mock star masses")
        catalogues.append(np.asarray(mock.features(), float))
    derived = {k: np.stack([truths[t][1][k] for t in which]) for k in truths[0][1]}
    return derived, np.stack(catalogues), which

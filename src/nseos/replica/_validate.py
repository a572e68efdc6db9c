"""The original validation protocol: RMS radius error at fixed masses on held-out EoS.

For held-out EoS drawn from the training distribution (a key the training never used), draw
one mock catalogue each, infer c_s^2 with the ensemble (the members' median), solve the TOV
sequence of the inferred EoS, and compare R_inferred(M) with R_true(M) at
M = 0.6, 0.8, ..., 1.8 M_sun. Where the inferred EoS cannot support a mass (M_max below it)
the radius is undefined; such cases are counted and left out of that mass's RMS.

**Reference:** Fujimoto, Fukushima and Murase, arXiv:1711.06748 (Table II); the published
RMS values are :data:`PUBLISHED_RMS_KM`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ..validation import (
    PUBLISHED_RMS_KM,
    VALIDATION_MASSES_MSUN,
    ValidationResult,
    _rms,
    radii_at_masses,
)
from ._data import TrainingConfig, generate_training_data
from ._estimator import ReplicaEstimator, _predict_members
from ._train import catalogue_features


def validate(
    estimator: ReplicaEstimator,
    key: jax.Array,
    *,
    n_eos: int = 200,
    masses_msun=VALIDATION_MASSES_MSUN,
    noise: bool = True,
    progress: bool = False,
) -> ValidationResult:
    """Run the validation protocol on ``n_eos`` held-out EoS.

    ``noise=False`` feeds the catalogues' true (M, R) (with their sigmas) instead of noisy
    observations: the network's regression error alone, without the catalogue's own
    statistical error."""
    if estimator.ensemble is None:
        raise ValueError("validate needs a trained estimator")
    config: TrainingConfig = estimator.training
    held_out = TrainingConfig(
        n_eos=n_eos,
        n_sets=1,
        n_stars=config.n_stars,
        min_max_mass_msun=config.min_max_mass_msun,
        prior=config.prior,
        eos_family=config.eos_family,
        curve_stars=config.curve_stars,
        method=config.method,
    )
    k_data, k_noise = jax.random.split(key)
    data = generate_training_data(held_out, k_data, progress=progress)
    truth = np.stack([data.true_mass_msun[:, 0], data.true_radius_km[:, 0]], -1)
    sigma = np.stack([data.mass_sigma_msun[:, 0], data.radius_sigma_km[:, 0]], -1)
    eps = jax.random.normal(k_noise, truth.shape, jnp.float32) * (1.0 if noise else 0.0)
    x = catalogue_features(jnp.asarray(truth, jnp.float32), jnp.asarray(sigma, jnp.float32), eps)
    members = np.asarray(_predict_members(estimator.ensemble, x))  # (n_models, n_eos, K)
    inferred = np.median(members, axis=0)
    masses = jnp.asarray(masses_msun, float)
    args = (config.curve_stars, config.method)
    r_true = np.asarray(radii_at_masses(config.make_eos, jnp.asarray(data.cs2), masses, *args))
    r_inf = np.asarray(
        radii_at_masses(config.make_eos, jnp.asarray(inferred, float), masses, *args)
    )
    err = r_inf - r_true
    rms, n_defined = _rms(err)
    return ValidationResult(np.asarray(masses_msun), rms, n_defined, n_eos, err)


__all__ = ["PUBLISHED_RMS_KM", "VALIDATION_MASSES_MSUN", "ValidationResult", "validate"]

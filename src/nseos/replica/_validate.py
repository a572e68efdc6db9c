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

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..tov import mass_radius_curve
from ._data import TrainingConfig, generate_training_data
from ._estimator import ReplicaEstimator, _predict_members
from ._train import catalogue_features

VALIDATION_MASSES_MSUN = np.array([0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8])
PUBLISHED_RMS_KM = np.array([0.16, 0.12, 0.10, 0.099, 0.11, 0.11, 0.12])
"""RMS of R_inferred - R_true [km] at :data:`VALIDATION_MASSES_MSUN` reached by the
original network (arXiv:1711.06748)."""


class ValidationResult(NamedTuple):
    masses_msun: np.ndarray
    rms_km: np.ndarray
    n_defined: np.ndarray
    """Validation EoS whose inferred and true curves both reach each mass."""
    n_eos: int
    errors_km: np.ndarray
    """R_inferred - R_true, shaped (n_eos, n_masses); NaN where undefined."""

    def table(self) -> str:
        """The RMS table next to the published one."""
        head = f"RMS radius error over {self.n_eos} held-out EoS (one catalogue each)"
        if not np.array_equal(self.masses_msun, VALIDATION_MASSES_MSUN):
            rows = zip(self.masses_msun, self.rms_km, self.n_defined, strict=True)
            body = [f"  {m:9.2f}   {r:10.3f}   {n}" for m, r, n in rows]
            return "\n".join([head, "  M [M_sun]   nseos [km]   n", *body])
        lines = [head, "  M [M_sun]   nseos [km]   published [km]   ratio   n"]
        for m, r, p, n in zip(
            self.masses_msun, self.rms_km, PUBLISHED_RMS_KM, self.n_defined, strict=True
        ):
            lines.append(f"  {m:9.1f}   {r:10.3f}   {p:14.3f}   {r / p:5.2f}   {n}")
        return "\n".join(lines)


@eqx.filter_jit
def _radii(make_eos, cs2, masses, curve_stars, method):
    def one(p):
        curve = mass_radius_curve(make_eos(p), curve_stars, method)
        ok = curve.max_mass_reached & ~curve.failed
        return jnp.where(ok, curve.radius_at(masses), jnp.nan)

    return jax.vmap(one)(cs2)


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
    r_true = np.asarray(_radii(config.make_eos, jnp.asarray(data.cs2), masses, *args))
    r_inf = np.asarray(_radii(config.make_eos, jnp.asarray(inferred, float), masses, *args))
    err = r_inf - r_true
    defined = np.isfinite(err)
    rms = np.sqrt(np.nanmean(np.where(defined, err, np.nan) ** 2, axis=0))
    return ValidationResult(np.asarray(masses_msun), rms, defined.sum(0), n_eos, err)

"""The mock-validation protocol shared by both estimators.

Held-out EoS are drawn from the training distribution of the NN-replica estimator (c_s^2
uniform, M_max >= 2 M_sun), one mock catalogue each (14 stars with X-ray-like errors, true
masses uniform on [1 M_sun, M_max]); the estimator infers the EoS from the noisy catalogue,
and R_inferred(M) is compared with R_true(M) at M = 0.6, 0.8, ..., 1.8 M_sun. Where the
inferred or the true curve does not reach a mass, the radius is undefined; such cases are
counted and left out of that mass's RMS.

* :func:`nseos.replica.validate`: the ensemble's median c_s^2 gives R_inferred.
* :func:`validate_bayes`: the posterior median of R(M) over the NUTS draws gives
  R_inferred, and the draws' 68 % and 95 % intervals give the coverage of the truth. Each
  held-out case is a full NUTS run, so the set is smaller; all cases share one compiled
  sampler (:func:`nseos.bayes.sample_universes`).

**Reference:** Fujimoto, Fukushima and Murase, arXiv:1711.06748 (Table II); the published
RMS values are :data:`PUBLISHED_RMS_KM`.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .tov import mass_radius_curve

VALIDATION_MASSES_MSUN = np.array([0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8])
PUBLISHED_RMS_KM = np.array([0.16, 0.12, 0.10, 0.099, 0.11, 0.11, 0.12])
"""RMS of R_inferred - R_true [km] at :data:`VALIDATION_MASSES_MSUN` reached by the
original network (arXiv:1711.06748)."""
_MAX_DRAWS_PER_CASE = 400
"""Posterior draws (thinned evenly) whose M-R curves are solved per held-out case."""


class ValidationResult(NamedTuple):
    masses_msun: np.ndarray
    rms_km: np.ndarray
    n_defined: np.ndarray
    """Validation EoS whose inferred and true curves both reach each mass."""
    n_eos: int
    errors_km: np.ndarray
    """R_inferred - R_true, shaped (n_eos, n_masses); NaN where undefined."""
    coverage_68: np.ndarray | None = None
    """Fraction of cases whose true R(M) lies inside the 68 % central interval (Bayes)."""
    coverage_95: np.ndarray | None = None
    """... inside the 95 % interval."""
    divergences: int | None = None
    """Divergent transitions summed over all cases (Bayes)."""

    def table(self) -> str:
        """The RMS table next to the published one (and the coverage, where measured)."""
        head = f"RMS radius error over {self.n_eos} held-out EoS (one catalogue each)"
        published = np.array_equal(self.masses_msun, VALIDATION_MASSES_MSUN)
        cols = "  M [M_sun]   nseos [km]"
        cols += "   published [km]   ratio" if published else ""
        cols += "   68% cov.   95% cov." if self.coverage_68 is not None else ""
        lines = [head, cols + "   n"]
        for i, m in enumerate(self.masses_msun):
            row = f"  {m:9.2f}   {self.rms_km[i]:10.3f}"
            if published:
                row += (
                    f"   {PUBLISHED_RMS_KM[i]:14.3f}   {self.rms_km[i] / PUBLISHED_RMS_KM[i]:5.2f}"
                )
            if self.coverage_68 is not None:
                row += f"   {self.coverage_68[i]:8.2f}   {self.coverage_95[i]:8.2f}"
            lines.append(row + f"   {self.n_defined[i]}")
        if self.divergences is not None:
            lines.append(f"divergent transitions over all cases: {self.divergences}")
        return "\n".join(lines)


@eqx.filter_jit
def radii_at_masses(make_eos, cs2, masses, curve_stars, method):
    """R(M) [km] of each EoS in the batch ``cs2`` (n, K) at ``masses``; NaN where the curve
    fails or does not reach the mass."""

    def one(p):
        curve = mass_radius_curve(make_eos(p), curve_stars, method)
        ok = curve.max_mass_reached & ~curve.failed
        return jnp.where(ok, curve.radius_at(masses), jnp.nan)

    return jax.vmap(one)(cs2)


def _rms(errors_km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    defined = np.isfinite(errors_km)
    with np.errstate(invalid="ignore"):
        rms = np.sqrt(np.nanmean(np.where(defined, errors_km, np.nan) ** 2, axis=0))
    return rms, defined.sum(0)


def validate_bayes(
    estimator,
    key: jax.Array,
    *,
    n_eos: int = 16,
    n_stars: int = 14,
    masses_msun=VALIDATION_MASSES_MSUN,
    chunk_size: int = 4,
    progress: bool = False,
) -> ValidationResult:
    """The validation protocol for a :class:`~nseos.bayes.BayesianEstimator`.

    Parameters
    ----------
    estimator : BayesianEstimator
        Its prior, mass prior and likelihood settings, and its sampler's warm-up, draws,
        chains, target accept and tree depth (sampled with BlackJAX, vectorised over cases).
    key : jax.Array
    n_eos : int
        Held-out EoS (one catalogue each).
    n_stars : int
        Stars per catalogue (14, the X-ray catalogue's size, by default).
    chunk_size : int
        Cases per compiled sampler call.
    """
    from .bayes import sample_universes
    from .observations import MassRadiusGaussian, ObservationSet
    from .replica import TrainingConfig, generate_training_data

    if n_eos < 1:
        raise ValueError("n_eos must be at least 1")
    config = TrainingConfig(n_eos=n_eos, n_sets=1, n_stars=n_stars)
    k_data, k_noise, k_fit, k_thin = jax.random.split(key, 4)
    data = generate_training_data(config, k_data, progress=progress)
    eps = np.asarray(jax.random.normal(k_noise, (n_eos, n_stars, 2)))
    mass = data.true_mass_msun[:, 0] + data.mass_sigma_msun[:, 0] * eps[..., 0]
    radius = data.true_radius_km[:, 0] + data.radius_sigma_km[:, 0] * eps[..., 1]
    sets = [
        ObservationSet(
            [
                MassRadiusGaussian(
                    f"star-{j:02d}",
                    float(mass[i, j]),
                    float(data.mass_sigma_msun[i, 0, j]),
                    float(radius[i, j]),
                    float(data.radius_sigma_km[i, 0, j]),
                    check_buchdahl=False,  # noise may carry a centroid past the limit
                )
                for j in range(n_stars)
            ]
        )
        for i in range(n_eos)
    ]
    draws = sample_universes(estimator, sets, k_fit, chunk_size=chunk_size, progress=progress)
    masses = jnp.asarray(masses_msun, float)
    args = (config.curve_stars, config.method)
    r_true = np.asarray(radii_at_masses(config.make_eos, jnp.asarray(data.cs2), masses, *args))
    flat = draws.params.reshape(n_eos, -1, draws.params.shape[-1])
    n_keep = min(flat.shape[1], _MAX_DRAWS_PER_CASE)
    pick = np.sort(np.asarray(jax.random.choice(k_thin, flat.shape[1], (n_keep,), replace=False)))
    radii = np.asarray(
        radii_at_masses(
            config.make_eos, jnp.asarray(flat[:, pick].reshape(-1, flat.shape[-1])), masses, *args
        )
    ).reshape(n_eos, n_keep, -1)
    # A radius is inferred at M when most draws reach M; the intervals use those draws.
    reached = np.mean(np.isfinite(radii), axis=1) > 0.5
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows give NaN
        q = np.nanquantile(radii, [0.025, 0.16, 0.5, 0.84, 0.975], axis=1)
    q = np.where(reached[None], q, np.nan)
    errors = q[2] - r_true
    rms, n_defined = _rms(errors)
    ok = np.isfinite(errors)
    inside_68 = (r_true >= q[1]) & (r_true <= q[3])
    inside_95 = (r_true >= q[0]) & (r_true <= q[4])
    n_ok = np.maximum(ok.sum(0), 1)
    return ValidationResult(
        np.asarray(masses_msun),
        rms,
        n_defined,
        n_eos,
        errors,
        coverage_68=np.where(ok, inside_68, False).sum(0) / n_ok,
        coverage_95=np.where(ok, inside_95, False).sum(0) / n_ok,
        divergences=int(draws.divergences().sum()),
    )

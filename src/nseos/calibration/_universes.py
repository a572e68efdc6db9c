"""Mock universes for calibration: truths, and each estimator's draws of the same quantities.

A universe is a true EoS (drawn from the estimator's own prior, or the NN's training
distribution: the well-specified case) and one mock catalogue of it (14 stars with X-ray-like
errors, true masses uniform on [1 M_sun, M_max], Gaussian noise), as in
:func:`nseos.replica.generate_training_data`. The estimator turns the catalogue into draws of
c_s^2, and both the truth and the draws are mapped to the reported quantities.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import numpy as np

from ..posterior import MASS_GRID_MSUN, derived_quantities, summary_quantity
from ._truths import MISSPECIFIED_MIN_MAX_MASS_MSUN

DERIVED_KEYS = (
    "radius_km_at_1p0",
    "radius_km_at_1p4",
    "radius_km_at_1p8",
    "max_mass_msun",
    "pressure_mev_fm3_at_2rho0",
    "pressure_mev_fm3_at_3rho0",
)
"""The derived quantities whose calibration is reported (besides each c_s^2)."""


class Universes(NamedTuple):
    """Truths and draws of every reported quantity over U universes."""

    truth: dict[str, np.ndarray]
    """quantity -> (U,)."""
    draws: dict[str, np.ndarray]
    """quantity -> (U, L); NaN where undefined."""
    truth_params: np.ndarray
    """(U, K) true c_s^2."""
    draws_params: np.ndarray
    """(U, L, K)."""
    truth_derived: dict[str, np.ndarray] | None = None
    """Every derived quantity of the truths on its grid (variable -> (U, ...)), if kept."""
    draws_derived: dict[str, np.ndarray] | None = None
    """The same for the draws (variable -> (U, L, ...))."""
    labels: np.ndarray | None = None
    """(U,) the name of each universe's true EoS, where it is a named one (misspecified)."""

    @property
    def n_universes(self) -> int:
        return self.truth_params.shape[0]

    @property
    def quantities(self) -> tuple[str, ...]:
        return tuple(self.truth)

    def subset(self, index) -> Universes:
        return Universes(
            *(
                None
                if v is None
                else {k: a[index] for k, a in v.items()}
                if isinstance(v, dict)
                else v[index]
                for v in self
            )
        )

    def save(self, path) -> None:
        """An ``.npz`` file (no pickle) with the hash of its content, written atomically."""
        from .._io import save_npz

        arrays = {}
        for name, v in self._asdict().items():
            if isinstance(v, dict):
                arrays |= {f"{name}:{k}": a for k, a in v.items()}
            elif v is not None:
                arrays[name] = v
        save_npz(path, arrays)

    @classmethod
    def load(cls, path) -> Universes:
        """Read a file written by :meth:`save`; its content hash must match
        (:class:`nseos._io.IntegrityError` otherwise)."""
        from .._io import load_npz

        z = load_npz(path, what="calibration-state")
        fields = {}
        for name in cls._fields:
            if name in z:
                fields[name] = z[name]
                continue
            keys = [k for k in z if k.startswith(f"{name}:")]
            fields[name] = {k.split(":", 1)[1]: z[k] for k in keys} if keys else None
        return cls(**fields)

    @classmethod
    def concatenate(cls, parts: list[Universes]) -> Universes:
        def join(vs):
            if vs[0] is None:
                return None
            if isinstance(vs[0], dict):
                return {k: np.concatenate([v[k] for v in vs]) for k in vs[0]}
            return np.concatenate(vs)

        return cls(*(join(vs) for vs in zip(*parts, strict=True)))


def quantity_values(params: np.ndarray, derived: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every reported quantity from parameters (..., K) and their derived quantities."""
    out = {f"cs2_{i + 1}": params[..., i] for i in range(params.shape[-1])}
    for key in DERIVED_KEYS:
        q = summary_quantity(key)
        v = derived[q.variable]
        if q.mass_msun is not None:
            v = v[..., int(np.flatnonzero(np.isclose(MASS_GRID_MSUN, q.mass_msun))[0])]
        out[key] = np.asarray(v, float)
    return out


class TruthCatalogues(NamedTuple):
    """The truths of U universes and one mock catalogue of each."""

    truth_params: np.ndarray
    """(U, K) true c_s^2; NaN where the truth is outside the family."""
    truth_derived: dict[str, np.ndarray]
    """Every derived quantity of the truths (variable -> (U, ...))."""
    catalogues: np.ndarray
    """(U, N, 4) = (M, R, sigma_M, sigma_R), noise included."""
    labels: np.ndarray | None = None
    """(U,) the true EoS's name, for named truths."""


class AbstractTruths(eqx.Module):
    """Where the calibration's true EoS come from."""

    tag: eqx.AbstractClassVar[str]

    @abc.abstractmethod
    def catalogues(self, config, key: jax.Array, n_universes: int, *, progress: bool = False):
        """:class:`TruthCatalogues` of ``n_universes`` universes; ``config`` (a
        :class:`~nseos.replica.TrainingConfig`) gives the prior, stars per catalogue and
        solver."""

    def describe(self, config) -> list[str]:
        """Sentences for the report."""
        return []


class WellSpecified(AbstractTruths):
    """Truths drawn from the estimator's own prior (the NN: its training distribution)."""

    tag: ClassVar[str] = "well-specified"

    def catalogues(self, config, key, n_universes, *, progress=False):
        truth, catalogues = mock_catalogues(config, key, n_universes, progress=progress)
        derived = derived_quantities(
            config.make_eos, truth, n_stars=config.curve_stars, method=config.method
        )
        return TruthCatalogues(truth, derived, catalogues)

    def describe(self, config) -> list[str]:
        return [
            "Well-specified case: each truth is drawn from the estimator's prior (the NN: its "
            f"training distribution), restricted to M_max >= {config.min_max_mass_msun} M_sun."
        ]


class Misspecified(AbstractTruths):
    """Truths from outside the family: the Read et al. (2009) piecewise polytropes and the
    bundled tables that reach ``min_max_mass_msun`` and stay causal
    (:func:`~nseos.calibration.misspecified_truths`), one catalogue per universe, cycling."""

    min_max_mass_msun: float = MISSPECIFIED_MIN_MAX_MASS_MSUN
    tag: ClassVar[str] = "misspecified"

    def _truths(self, config):
        from ._truths import misspecified_truths

        return misspecified_truths(
            min_max_mass_msun=self.min_max_mass_msun,
            curve_stars=config.curve_stars,
            method=config.method,
        )

    def catalogues(self, config, key, n_universes, *, progress=False):
        from ._truths import misspecified_catalogues

        kept, _ = self._truths(config)
        derived, catalogues, which = misspecified_catalogues(kept, key, n_universes, config.n_stars)
        params = np.full((n_universes, config.n_segments), np.nan)
        labels = np.array([kept[i][0].name for i in which])
        return TruthCatalogues(params, derived, catalogues, labels)

    def describe(self, config) -> list[str]:
        kept, left_out = self._truths(config)
        names = ", ".join(t.name for t, _, _ in kept)
        out = ", ".join(f"{k} ({v})" for k, v in left_out.items())
        return [
            f"Misspecified case: the truths cycle through {len(kept)} EoS from outside the "
            f"family: {names}. PP: Read et al. 2009 piecewise polytrope with its SLy crust; "
            "table: the tabulated EoS with its own crust. Only derived quantities have a "
            "true value. Left out: " + out + "."
        ]


def _universes(config, truths: TruthCatalogues, draws_params, *, progress, calibrate=None):
    """Universes from truths and draws (U, L, K), the derived quantities solved with
    ``config``'s family and solver (a :class:`~nseos.replica.TrainingConfig`).
    ``calibrate(raw, derived_of)`` -> (params, derived) recalibrates the draws (a replica
    estimator's ``calibrated_draws``). Quantities without a true value (c_s^2 of a truth
    outside the family) are left out."""

    def derived_of(p):
        return derived_quantities(
            config.make_eos,
            p,
            n_stars=config.curve_stars,
            method=config.method,
            progress=progress,
        )

    if calibrate is None:
        draws_d = derived_of(draws_params)
    else:
        draws_params, draws_d = calibrate(draws_params, derived_of)
    truth = quantity_values(truths.truth_params, truths.truth_derived)
    draws = quantity_values(draws_params, draws_d)
    known = [k for k, v in truth.items() if np.any(np.isfinite(v))]
    return Universes(
        {k: truth[k] for k in known},
        {k: draws[k] for k in known},
        np.asarray(truths.truth_params),
        np.asarray(draws_params),
        truths.truth_derived,
        draws_d,
        truths.labels,
    )


def mock_catalogues(config, key: jax.Array, n_universes: int, *, progress: bool = False):
    """True c_s^2 (U, K) and the observed catalogues (U, N, 4) = (M, R, sigma_M, sigma_R),
    noise included, from ``config`` (a :class:`~nseos.replica.TrainingConfig`: its prior,
    M_max threshold, stars per catalogue and solver)."""
    from ..replica import generate_training_data

    k_data, k_noise = jax.random.split(key)
    config = dataclasses.replace(config, n_eos=n_universes, n_sets=1)
    data = generate_training_data(config, k_data, progress=progress)
    truth = np.stack([data.true_mass_msun[:, 0], data.true_radius_km[:, 0]], -1)
    sigma = np.stack([data.mass_sigma_msun[:, 0], data.radius_sigma_km[:, 0]], -1)
    eps = np.asarray(jax.random.normal(k_noise, truth.shape))
    catalogues = np.concatenate([truth + sigma * eps, sigma], axis=-1)
    return np.asarray(data.cs2, float), catalogues


def replica_universes(
    estimator,
    key: jax.Array,
    n_universes: int,
    *,
    truths: AbstractTruths = WellSpecified(),
    progress: bool = False,
):
    """Universes from ``truths`` (default: the ensemble's training distribution), and the
    ensemble's draws for each (the members, or members x input draws, recalibrated by its
    ``band_scale`` if set)."""
    k_mock, k_pred = jax.random.split(key)
    t = estimator.training
    tc = truths.catalogues(t, k_mock, n_universes, progress=progress)
    keys = jax.random.split(k_pred, n_universes)
    raw = np.stack(
        [estimator.members(c, k).astype(float) for c, k in zip(tc.catalogues, keys, strict=True)]
    )
    return _universes(
        t,
        tc,
        raw,
        progress=progress,
        calibrate=lambda p, derived_of: estimator.calibrated_draws(p, derived_of, axis=1),
    )


def bayes_config(estimator):
    """The mock protocol of the Bayesian estimator's universes, as a
    :class:`~nseos.replica.TrainingConfig`: its prior and EoS family, truths that can host a
    1 M_sun star (the mass prior's lower end: the likelihood gives zero to the rest)."""
    from ..replica import TrainingConfig

    return TrainingConfig(
        prior=estimator.prior, eos_family=estimator.eos_family, min_max_mass_msun=1.05
    )


def bayes_universes(
    estimator,
    key: jax.Array,
    n_universes: int,
    *,
    n_draws: int = 100,
    chunk_size: int = 4,
    truths: AbstractTruths = WellSpecified(),
    store=None,
    progress: bool = False,
) -> tuple[Universes, int]:
    """Universes whose truths are drawn from the Bayesian estimator's own prior (those that
    can host a 1 M_sun star, the mass prior's lower end: the likelihood gives zero to the
    rest), or from ``truths``, fitted with NUTS (:func:`nseos.bayes.sample_universes`);
    each universe keeps ``n_draws`` draws, thinned evenly. Returns the universes and the
    total number of divergent transitions.

    ``store`` (a directory): each universe's draws are saved there as soon as its chunk is
    done (``universe-NNNN.npz``), and universes already there are reused as they are, so an
    interrupted run resumes where it stopped.
    """
    from pathlib import Path

    from .._io import load_npz, save_npz
    from ..bayes import sample_universes
    from ..observations import MassRadiusGaussian, ObservationSet

    k_mock, k_fit = jax.random.split(key)
    config = bayes_config(estimator)
    tc = truths.catalogues(config, k_mock, n_universes, progress=progress)
    store = None if store is None else Path(store)

    def path(i):
        return store / f"universe-{i:04d}.npz"

    done: dict[int, tuple[np.ndarray, int]] = {}
    if store is not None:
        for i in range(n_universes):
            if path(i).exists():
                z = load_npz(path(i), what="calibration-state")
                done[i] = (z["draws"], int(z["divergences"]))
    todo = [i for i in range(n_universes) if i not in done]

    def save(ids, chunk):
        flat = chunk.params.reshape(len(ids), -1, chunk.params.shape[-1])
        pick = np.linspace(0, flat.shape[1] - 1, min(n_draws, flat.shape[1]))
        pick = pick.round().astype(int)
        for j, i in enumerate(ids):
            done[int(i)] = (flat[j, pick], int(chunk.divergences()[j]))
            if store is not None:
                save_npz(
                    path(int(i)), {"draws": flat[j, pick], "divergences": chunk.divergences()[j]}
                )

    if todo:
        sets = [
            ObservationSet(
                [
                    MassRadiusGaussian(
                        f"star-{j:02d}",
                        *map(float, (m, sm, r, sr)),
                        check_buchdahl=False,  # noise may carry a centroid past the limit
                    )
                    for j, (m, r, sm, sr) in enumerate(tc.catalogues[i])
                ]
            )
            for i in todo
        ]
        sample_universes(
            estimator,
            sets,
            k_fit,
            chunk_size=chunk_size,
            progress=progress,
            on_chunk=save,
            universe_ids=todo,
        )
    draws = np.stack([done[i][0] for i in range(n_universes)])
    divergences = sum(done[i][1] for i in range(n_universes))
    universes = _universes(config, tc, draws, progress=progress)
    return universes, divergences

"""The NN-replica estimator (Fujimoto, Fukushima and Murase, arXiv:1711.06748, 1903.03400).

Training happens once, ahead of time (:meth:`ReplicaEstimator.train`); afterwards
:meth:`ReplicaEstimator.fit` maps a catalogue of N stars to c_s^2 with each ensemble member
and returns the members' predictions as the draws of one chain of an :class:`EoSPosterior`.

What the band means: the spread of networks trained on bootstrap resamples of the training
set, from different initialisations. It measures how much the *regression* depends on the
finite training set and on the optimisation; it is not a Bayesian credible band and does
not by itself include the observational uncertainty of the input catalogue (the network
sees one catalogue, and its output is a point estimate of c_s^2 given it). Set
``input_draws`` to also propagate the catalogue's errors by Monte Carlo (each member sees
``input_draws`` copies of the data displaced by Gaussian noise of the quoted sigmas, which
mimics the training replicas). The original authors caution that the bootstrap band may
underestimate systematic errors; compare with :class:`nseos.bayes.BayesianEstimator`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import __version__
from .._io import (
    DIGEST_KEY,
    atomic_path,
    check_digest,
    did_you_mean,
    file_sha256,
    json_digest,
    write_text_atomic,
)
from ..estimator import AbstractEstimator
from ..observations import ObservationSet
from ..posterior import EoSPosterior, derived_quantities
from ._band import BandScale, stretch_band
from ._data import TrainingConfig, TrainingData, eos_family_description, generate_training_data
from ._network import MLP, AbstractArchitecture, AbstractNetwork, architecture_from_description
from ._regularisation import (
    AbstractRegularisation,
    DataReplicas,
    regularisation_from_description,
)
from ._train import (
    LOSSES,
    AbstractLoss,
    Catalogues,
    History,
    MeanSquaredLogError,
    TrainSettings,
    catalogue_features,
    split_by_eos,
    train_ensemble,
)

FILE_FORMAT = "nseos-replica-ensemble"
_TRAINING_DATA_TAG = 0x7D0
_PRIOR_DRAWS_TAG = 0x7D1
FILE_FORMAT_VERSION = 2
"""2: model.json carries the SHA-256 of the weights file and of its own content."""
HEADER_KEYS = (
    "format",
    "format_version",
    "training",
    "training_data_hash",
    "architecture",
    "regularisation",
    "loss",
    "settings",
    "n_models",
    "input_draws",
    "band_scale",
    "cs2_range",
    "history",
    "versions",
    "weights_sha256",
    DIGEST_KEY,
)
"""Every key of model.json; all are required, and no other is accepted."""
_HEADER = "model.json"
_WEIGHTS = "weights.eqx"


class ReplicaEstimator(AbstractEstimator):
    """An ensemble of networks trained on mock catalogues with noise regularisation.

    Parameters
    ----------
    training : TrainingConfig
        Training data: EoS family, training prior, N stars per catalogue, scale.
    architecture : AbstractArchitecture
        :class:`MLP` (the original 60-40-40 ReLU network, default) or :class:`DeepSets`.
    regularisation : AbstractRegularisation
        :class:`DataReplicas` (default, n_s = 100, fresh noise per mini-batch),
        :class:`ParameterNoise`, :class:`Dropout` or :class:`NoRegularisation`.
    loss : AbstractLoss
        :class:`MeanSquaredLogError` (default, as in the original) or
        :class:`MeanSquaredError`.
    settings : TrainSettings
    n_models : int
        Ensemble members (each with its own bootstrap resample and initialisation).
    input_draws : int
        0 (default): each member predicts once from the observed catalogue. > 0: each member
        also sees this many noisy copies of it (observational errors propagated by Monte
        Carlo), and the draws are members x copies.
    band_scale : BandScale, (inner, outer) pairs, or None
        Recalibration: the draws are stretched about their median (:func:`stretch_band`) so
        that the band covers the truth as often as nominal at 68 % and 95 % on held-out mock
        universes (:func:`nseos.calibration.calibrate_replica` fits it; docs/calibration.md
        says what the calibrated band means). With derived factors (a full
        :class:`BandScale`), every derived quantity is recalibrated on its own; with pairs
        for c_s^2 alone, the derived quantities follow from the stretched c_s^2. None: the
        raw band.
    n_prior_draws : int
        :meth:`fit` also stores this many draws of the training distribution (the
        estimator's implicit prior: ``training.prior`` restricted to M_max >=
        ``training.min_max_mass_msun``, as the training data are) as the posterior's
        ``prior`` group, for prior-dependence comparisons. They cost a TOV solve each, so
        none by default. A fit setting, not part of the saved model.
    ensemble : AbstractNetwork or None
        The trained members, stacked (set by :meth:`train` or :meth:`load`).
    history : History or None
    data_hash : str
        Hash of the training-data configuration the ensemble was trained on.
    """

    training: TrainingConfig = eqx.field(default_factory=TrainingConfig)
    architecture: AbstractArchitecture = MLP()
    regularisation: AbstractRegularisation = DataReplicas()
    loss: AbstractLoss = MeanSquaredLogError()
    settings: TrainSettings = TrainSettings()
    n_models: int = eqx.field(static=True, default=10)
    input_draws: int = eqx.field(static=True, default=0)
    band_scale: BandScale | None = eqx.field(static=True, default=None, converter=BandScale.coerce)
    ensemble: AbstractNetwork | None = None
    history: History | None = None
    data_hash: str = eqx.field(static=True, default="")
    n_prior_draws: int = eqx.field(static=True, default=0)

    supported_kinds = ("mass_radius",)
    unsupported_hint = (
        "Reduce sample sets with ObservationSet.to_gaussian() and leave out mass-only and "
        "tidal data, or use BayesianEstimator, which takes every kind."
    )

    def __check_init__(self):
        if self.n_models < 1:
            raise ValueError("n_models must be at least 1")
        if self.n_prior_draws < 0:
            raise ValueError("n_prior_draws must be >= 0")
        if self.input_draws < 0:
            raise ValueError("input_draws must be >= 0")
        if self.band_scale is not None:
            self.band_scale.check(self.training.n_segments)

    @property
    def n_stars(self) -> int:
        return self.training.n_stars

    @property
    def cs2_range(self) -> tuple[float, float]:
        """Output range of the networks: the training prior's support."""
        support = self.training.prior.base_distribution(self.training.n_segments).support
        support = getattr(support, "base_constraint", support)  # .to_event(1) wraps it
        return float(np.min(support.lower_bound)), float(np.max(support.upper_bound))

    # --- training ---------------------------------------------------------------------------
    def train(
        self,
        key: jax.Array,
        *,
        data: TrainingData | None = None,
        cache_dir: str | os.PathLike | None = None,
        progress: bool = True,
    ) -> ReplicaEstimator:
        """Generate (or reuse) the training data and train the ensemble; returns a trained
        copy of this estimator."""
        _, k_split, k_train = jax.random.split(key, 3)
        # Tagged, so that validate(trained, key) with the same key never regenerates the
        # training EoS.
        k_data = jax.random.fold_in(key, _TRAINING_DATA_TAG)
        if data is None:
            data = generate_training_data(
                self.training, k_data, cache_dir=cache_dir, progress=progress
            )
        made_by = json.loads(data.config_description)
        expected = json.loads(json.dumps(self.training.describe(), sort_keys=True))
        if made_by != expected:
            differ = sorted(k for k in expected if made_by.get(k) != expected[k])
            raise ValueError(
                f"the training data were made with another configuration ({', '.join(differ)} "
                "differ); pass data generated from this estimator's TrainingConfig"
            )
        train_eos, val_eos = split_by_eos(data.n_eos, self.settings.validation_fraction, k_split)
        ensemble, history = train_ensemble(
            self.architecture,
            _catalogues(data, train_eos),
            _catalogues(data, val_eos),
            k_train,
            n_models=self.n_models,
            regularisation=self.regularisation,
            loss=self.loss,
            settings=self.settings,
            cs2_range=self.cs2_range,
            progress=progress,
        )
        return dataclasses.replace(
            self, ensemble=ensemble, history=history, data_hash=data.config_hash
        )

    # --- inference --------------------------------------------------------------------------
    def features(self, observations: ObservationSet) -> np.ndarray:
        """(M, R, sigma_M, sigma_R) per star, checked."""
        self.check_observations(observations)
        stars = []
        for o in observations:
            row = (o.mass_msun, o.radius_km, o.mass_sigma_msun, o.radius_sigma_km)
            if not all(math.isfinite(v) for v in row):
                raise ValueError(f"{o.name}: non-finite value in (M, R, sigma_M, sigma_R)")
            if not (o.mass_sigma_msun > 0 and o.radius_sigma_km > 0):
                raise ValueError(f"{o.name}: sigma_M and sigma_R are needed (> 0)")
            stars.append(row)
        if len(stars) != self.n_stars and not self.architecture.permutation_invariant:
            raise ValueError(
                f"this network was trained for N = {self.n_stars} stars, got {len(stars)}: "
                "retrain with TrainingConfig(n_stars=...) or use the DeepSets architecture, "
                "which accepts any number of stars"
            )
        return np.array(stars, np.float32)  # predict() sorts by mass

    def predict(self, features, key: jax.Array | None = None) -> np.ndarray:
        """c_s^2 of every member, shaped (n_models, K), or (n_models * input_draws, K) with
        Monte Carlo input draws (which need ``key``); stretched by ``band_scale`` if set."""
        out = self.members(features, key)
        if self.band_scale is None:
            return out
        return stretch_band(out, self.band_scale.cs2_array(), *self.cs2_range)

    def members(self, features, key: jax.Array | None = None) -> np.ndarray:
        """The members' raw c_s^2 (no ``band_scale``), shaped as :meth:`predict`'s."""
        if self.ensemble is None:
            raise ValueError("this ReplicaEstimator is not trained: call train() or load()")
        x = np.asarray(features, np.float32)
        if x.ndim != 2 or x.shape[1] != 4:
            raise ValueError(
                f"features must be (n_stars, 4) = (M, R, sigma_M, sigma_R), got {x.shape}"
            )
        if not np.all(np.isfinite(x)):
            raise ValueError("features contain non-finite values")
        x = jnp.asarray(x[np.argsort(x[:, 0], kind="stable")])
        if self.input_draws == 0:
            out = np.asarray(_predict_members(self.ensemble, x[None]))[:, 0]
        else:
            if key is None:
                raise ValueError("input_draws > 0 needs a key")
            noise = jax.random.normal(key, (self.input_draws, x.shape[0], 2), jnp.float32)
            sigma = jnp.broadcast_to(x[None, :, 2:], noise.shape)
            xs = catalogue_features(x[None, :, :2], sigma, noise)
            out = np.asarray(_predict_members(self.ensemble, xs))
            out = out.reshape(-1, out.shape[-1])
        return out

    def calibrated_draws(self, raw: np.ndarray, derived_of, axis: int = 0):
        """(c_s^2 draws, derived quantities) from the members' raw draws (along ``axis``,
        segments last), recalibrated by ``band_scale`` if set. ``derived_of(params)`` maps
        parameter draws to their derived quantities (e.g. :func:`derived_quantities`)."""
        if self.band_scale is None:
            return raw, derived_of(raw)
        return self.band_scale.apply(raw, derived_of, self.cs2_range, axis=axis)

    def fit(self, observations: ObservationSet, *, key: jax.Array) -> EoSPosterior:
        """The ensemble's c_s^2 for this catalogue, with EoS and M-R derived quantities (and
        ``n_prior_draws`` draws of the training distribution as the ``prior`` group)."""
        t = self.training
        raw = self.members(self.features(observations), key)[None].astype(np.float64)
        params, derived = self.calibrated_draws(
            raw,
            lambda p: derived_quantities(t.make_eos, p, n_stars=t.curve_stars, method=t.method),
            axis=1,
        )
        prior_params, prior_derived = self._training_distribution_draws(
            jax.random.fold_in(key, _PRIOR_DRAWS_TAG), self.n_prior_draws
        )
        return EoSPosterior.from_draws(
            params,
            derived,
            prior_params=prior_params,
            prior_derived=prior_derived,
            observed_data={
                "observation_name": np.array(observations.names),
                "observation_kind": np.array([o.kind for o in observations]),
            },
            attrs={
                "method": "replica",
                "architecture": json.dumps(self.architecture.describe()),
                "regularisation": json.dumps(self.regularisation.describe()),
                "n_models": self.n_models,
                "input_draws": self.input_draws,
                "band_scale": "none"
                if self.band_scale is None
                else json.dumps(self.band_scale.to_json()),
                "training_data_hash": self.data_hash,
                "band": "spread of bootstrap ensemble members (see docs/replica.md)"
                if self.band_scale is None
                else "ensemble spread recalibrated on held-out mock universes, each quantity "
                "on its own (see docs/calibration.md)",
            },
        )

    def _training_distribution_draws(self, key: jax.Array, n: int):
        """``n`` draws of the training distribution with their derived quantities, shaped
        (1, n, ...); (None, None) for n = 0."""
        if n == 0:
            return None, None
        t = self.training
        # Draw extra: the training data reject EoS with M_max below the threshold.
        pool = np.asarray(t.prior.sample(key, 2 * n, t.n_segments, t.make_eos))
        derived = derived_quantities(t.make_eos, pool, n_stars=t.curve_stars, method=t.method)
        keep = np.flatnonzero(derived["max_mass_msun"] >= t.min_max_mass_msun)[:n]
        return pool[None, keep], {k: v[None, keep] for k, v in derived.items()}

    # --- files ------------------------------------------------------------------------------
    def header(self) -> dict:
        import equinox
        import jax as jax_mod
        import optax

        return {
            "format": FILE_FORMAT,
            "format_version": FILE_FORMAT_VERSION,
            "training": self.training.describe(),
            "training_data_hash": self.data_hash,
            "architecture": self.architecture.describe(),
            "regularisation": self.regularisation.describe(),
            "loss": self.loss.name,
            "settings": {
                k: getattr(self.settings, k)
                for k in (
                    "epochs",
                    "batch_size",
                    "learning_rate",
                    "validation_fraction",
                    "patience",
                    "bootstrap",
                )
            },
            "n_models": self.n_models,
            "input_draws": self.input_draws,
            "band_scale": None if self.band_scale is None else self.band_scale.to_json(),
            "cs2_range": list(self.cs2_range),
            "history": None
            if self.history is None
            else {k: np.asarray(v).tolist() for k, v in self.history._asdict().items()},
            "versions": {
                "nseos": __version__,
                "jax": jax_mod.__version__,
                "equinox": equinox.__version__,
                "optax": optax.__version__,
                "python": platform.python_version(),
            },
        }

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``model.json`` (configuration, training-data hash, versions, history) and
        ``weights.eqx`` (:func:`eqx.tree_serialise_leaves`) into ``directory``, atomically."""
        if self.ensemble is None:
            raise ValueError("nothing to save: the estimator is not trained")
        header = self.header()
        json.dumps(header)  # fails before anything is written
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        with atomic_path(directory / _WEIGHTS) as tmp:
            eqx.tree_serialise_leaves(tmp, self.ensemble)
            header["weights_sha256"] = file_sha256(tmp)
        header[DIGEST_KEY] = json_digest(header)
        write_text_atomic(directory / _HEADER, json.dumps(header, indent=1))
        return directory

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike,
        *,
        training: TrainingConfig | None = None,
        n_stars: int | None = None,
    ) -> ReplicaEstimator:
        """Read a saved ensemble. ``training`` rebuilds non-default training configurations
        (prior, EoS family, solver); it must describe the same configuration as the file.
        ``n_stars``, if given, must match the N the ensemble was trained for."""
        directory = Path(directory)
        try:
            header = json.loads((directory / _HEADER).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise FileNotFoundError(f"{directory}: no {_HEADER}; not a saved ensemble") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ValueError(f"{directory / _HEADER}: corrupted header ({err})") from None
        if not isinstance(header, dict) or header.get("format") != FILE_FORMAT:
            raise ValueError(f"{directory}: not an nseos replica ensemble (foreign file)")
        if header.get("format_version") != FILE_FORMAT_VERSION:
            raise ValueError(
                f"{directory}: format version {header.get('format_version')}, this nseos "
                f"reads {FILE_FORMAT_VERSION}; retrain the ensemble"
            )
        # Integrity first: an edited header (cs2_range, activation, band_scale) or damaged
        # weights would otherwise load and change every answer.
        content = {k: v for k, v in header.items() if k != DIGEST_KEY}
        check_digest(directory / _HEADER, header.get(DIGEST_KEY), json_digest(content))
        unknown = [k for k in header if k not in HEADER_KEYS]
        missing = [k for k in HEADER_KEYS if k not in header]
        if unknown or missing:
            detail = [f"unknown key {k!r}{did_you_mean(k, HEADER_KEYS)}" for k in unknown]
            detail += [f"missing key {k!r}" for k in missing]
            raise ValueError(f"{directory / _HEADER}: {'; '.join(detail)}")
        weights = directory / _WEIGHTS
        if not weights.is_file():
            raise FileNotFoundError(f"{directory}: weights file {_WEIGHTS} missing")
        check_digest(weights, header["weights_sha256"], file_sha256(weights))
        t = header["training"]
        if n_stars is not None and t["n_stars"] != n_stars:
            raise ValueError(
                f"{directory}: trained for N = {t['n_stars']} stars, not {n_stars}; retrain "
                "or use a DeepSets ensemble"
            )
        if training is None:
            training = TrainingConfig(
                n_eos=t["n_eos"],
                n_sets=t["n_sets"],
                n_stars=t["n_stars"],
                min_max_mass_msun=t["min_max_mass_msun"],
                curve_stars=t["curve_stars"],
            )
        if training.describe() != t:
            mismatch = [k for k in t if training.describe().get(k) != t[k]]
            raise ValueError(
                f"{directory}: trained with a different configuration ({', '.join(mismatch)}: "
                f"file {[t[k] for k in mismatch]}); pass the matching TrainingConfig"
            )
        if t["eos_family"] != eos_family_description(training.eos_family):
            raise ValueError(f"{directory}: trained for another EoS family {t['eos_family']}")
        settings = TrainSettings(**header["settings"])
        est = cls(
            training=training,
            architecture=architecture_from_description(header["architecture"]),
            regularisation=regularisation_from_description(header["regularisation"]),
            loss=LOSSES[header["loss"]](),
            settings=settings,
            n_models=header["n_models"],
            input_draws=header["input_draws"],
            band_scale=header.get("band_scale"),
        )
        skeleton = eqx.filter_vmap(
            lambda k: est.architecture.build(
                t["n_stars"], training.n_segments, tuple(header["cs2_range"]), k
            )
        )(jax.random.split(jax.random.key(0), est.n_models))
        try:
            ensemble = eqx.tree_deserialise_leaves(directory / _WEIGHTS, skeleton)
        except FileNotFoundError:
            raise FileNotFoundError(f"{directory}: weights file {_WEIGHTS} missing") from None
        except Exception as err:  # equinox raises various errors on corrupted files
            raise ValueError(f"{directory / _WEIGHTS}: corrupted weights ({err})") from None
        history = None
        if header.get("history"):
            history = History(**{k: np.asarray(v) for k, v in header["history"].items()})
        return dataclasses.replace(
            est, ensemble=ensemble, history=history, data_hash=header["training_data_hash"]
        )


@eqx.filter_jit
def _predict_members(ensemble, xs):
    """(n_models, n_copies, K) predictions for a batch of feature arrays (n_copies, N, 4)."""
    return eqx.filter_vmap(lambda net: jax.vmap(net)(xs))(ensemble)


def _catalogues(data: TrainingData, eos_index) -> Catalogues:
    """Flatten the chosen EoS's catalogues into (n, N, 2) float32 arrays."""
    pick = np.asarray(eos_index)
    n_sets = data.true_mass_msun.shape[1]

    def flat(a):
        a = np.asarray(a)[pick]
        return a.reshape((-1, *a.shape[2:]))

    truth = np.stack([flat(data.true_mass_msun), flat(data.true_radius_km)], -1)
    sigma = np.stack([flat(data.mass_sigma_msun), flat(data.radius_sigma_km)], -1)
    target = np.repeat(np.asarray(data.cs2)[pick], n_sets, axis=0)
    return Catalogues(
        jnp.asarray(truth, jnp.float32),
        jnp.asarray(sigma, jnp.float32),
        jnp.asarray(target, jnp.float32),
    )

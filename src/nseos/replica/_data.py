"""Training data of the NN-replica estimator: random EoS -> TOV -> mock catalogues.

The protocol of Fujimoto, Fukushima and Murase (arXiv:1711.06748, 1903.03400): draw EoS from
the training distribution (this estimator's implicit prior), solve each M-R curve, reject EoS
whose maximum mass is below a bound, and draw ``n_sets`` catalogues of N stars from each
curve with :func:`nseos.observations.mock_observations`. What is stored are the *true*
masses and radii and each star's sigma_M and sigma_R; the observational noise is added at
training time by the regularisation object (:class:`DataReplicas` copies every catalogue
n_s times with fresh noise), so one stored dataset serves every regularisation mode.

Generation is vectorised over EoS and catalogues, and cached on disk as ``.npz`` under a
hash of the configuration (never pickle).
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._io import load_npz, save_npz
from .._typing import Array, Float
from ..bayes import AbstractEoSPrior, UniformSoundSpeed
from ..eos import SpeedOfSoundSegments
from ..observations import mock_observations
from ..tov import RK4, mass_radius_curve

DATA_FORMAT_VERSION = 2
"""Bumped whenever the stored layout or the generation protocol changes (part of the hash)."""
_CURVE_BATCH = 256
"""EoS solved per compiled batch."""
_MAX_DRAWS_PER_EOS = 50
"""Give up (with an error) after this many prior draws per requested EoS."""


class TrainingConfig(eqx.Module):
    """What training data to generate.

    Parameters
    ----------
    n_eos : int
        Accepted EoS (the original study: 500).
    n_sets : int
        Mock catalogues per EoS (original: 100).
    n_stars : int
        Stars per catalogue, N (original: 14, the X-ray catalogue's size).
    min_max_mass_msun : float
        EoS with a lower maximum mass are rejected (and counted).
    prior : AbstractEoSPrior
        The training distribution of c_s^2: this estimator's implicit prior.
    eos_family : SpeedOfSoundSegments
        The EoS family (its segment boundaries; its ``cs2`` value is ignored).
    curve_stars : int
        Stars per M-R curve when solving the training EoS.
    method : RK4
        TOV solver settings.
    """

    n_eos: int = eqx.field(static=True, default=500)
    n_sets: int = eqx.field(static=True, default=100)
    n_stars: int = eqx.field(static=True, default=14)
    min_max_mass_msun: float = eqx.field(static=True, default=2.0)
    prior: AbstractEoSPrior = UniformSoundSpeed()
    eos_family: SpeedOfSoundSegments = eqx.field(default_factory=SpeedOfSoundSegments)
    curve_stars: int = eqx.field(static=True, default=100)
    method: RK4 = RK4()

    def __check_init__(self):
        for name in ("n_eos", "n_sets", "n_stars", "curve_stars"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainingConfig.{name} must be at least 1")

    @property
    def n_segments(self) -> int:
        return self.eos_family.cs2.shape[0]

    def make_eos(self, cs2) -> SpeedOfSoundSegments:
        """The family member with these c_s^2."""
        return eqx.tree_at(lambda e: e.cs2, self.eos_family, jnp.asarray(cs2))

    def describe(self) -> dict:
        """A JSON-able description (the cache key and the saved model's header use it)."""
        return {
            "format": DATA_FORMAT_VERSION,
            "n_eos": self.n_eos,
            "n_sets": self.n_sets,
            "n_stars": self.n_stars,
            "min_max_mass_msun": self.min_max_mass_msun,
            "prior": repr(self.prior),
            "prior_arrays_sha256": _arrays_digest(self.prior),
            "eos_family": eos_family_description(self.eos_family),
            "curve_stars": self.curve_stars,
            "method": repr(self.method),
        }


def _arrays_digest(tree) -> str:
    """SHA-256 of a pytree's array leaves (``repr`` abbreviates arrays to their shapes)."""
    h = hashlib.sha256()
    for leaf in jax.tree.leaves(tree):
        if eqx.is_array_like(leaf):
            h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return h.hexdigest()


def eos_family_description(family: SpeedOfSoundSegments) -> dict:
    """What identifies the family: its type and segment boundaries."""
    return {
        "kind": type(family).__name__,
        "boundaries_rho0": list(family.boundaries_rho0),
        "max_central_energy_density_rho0": family.max_central_energy_density_rho0,
    }


class TrainingData(NamedTuple):
    """Stored training catalogues; star arrays are (n_eos, n_sets, n_stars)."""

    cs2: Float[Array, "n_eos K"]
    true_mass_msun: Float[Array, "n_eos n_sets n_stars"]
    true_radius_km: Float[Array, "n_eos n_sets n_stars"]
    mass_sigma_msun: Float[Array, "n_eos n_sets n_stars"]
    radius_sigma_km: Float[Array, "n_eos n_sets n_stars"]
    n_rejected: int
    """EoS drawn but rejected (M_max below the bound, or a failed solve)."""
    config_hash: str
    config_description: str
    """JSON of :meth:`TrainingConfig.describe` for the configuration that made the data."""

    @property
    def n_eos(self) -> int:
        return self.cs2.shape[0]

    def save(self, path: str | os.PathLike) -> Path:
        """Write ``.npz`` atomically (no pickle), with the hash of its content."""
        return save_npz(path, {k: np.asarray(v) for k, v in self._asdict().items()})

    @classmethod
    def load(cls, path: str | os.PathLike) -> TrainingData:
        """Read a file written by :meth:`save`; its content hash must match
        (:class:`nseos._io.IntegrityError` otherwise)."""
        arrays = load_npz(path, what="training-data")
        missing = [k for k in cls._fields if k not in arrays]
        if missing:
            raise ValueError(f"{path}: not an nseos training-data file (no {', '.join(missing)})")
        fields = {k: arrays[k] for k in cls._fields}
        fields["n_rejected"] = int(fields["n_rejected"])
        fields["config_hash"] = str(fields["config_hash"])
        fields["config_description"] = str(fields["config_description"])
        return cls(**fields)


def config_hash(config: TrainingConfig, key: jax.Array) -> str:
    """SHA-256 of the configuration and the key: the cache key."""
    text = json.dumps(
        {**config.describe(), "key": np.asarray(jax.random.key_data(key)).tolist()},
        sort_keys=True,
    )
    return hashlib.sha256(text.encode()).hexdigest()


@eqx.filter_jit
def _solve_batch(config: TrainingConfig, cs2, keys):
    """Curves of a batch of EoS and ``n_sets`` mock catalogues from each."""

    def one(p, k):
        curve = mass_radius_curve(config.make_eos(p), config.curve_stars, config.method)
        mocks = jax.vmap(lambda kk: mock_observations(curve, kk, config.n_stars))(
            jax.random.split(k, config.n_sets)
        )
        ok = curve.max_mass_reached & ~curve.failed
        ok = ok & (curve.max_mass_msun >= config.min_max_mass_msun) & jnp.all(mocks.valid)
        return ok, mocks

    return jax.vmap(one)(cs2, keys)


def generate_training_data(
    config: TrainingConfig,
    key: jax.Array,
    *,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> TrainingData:
    """Draw EoS from ``config.prior`` until ``config.n_eos`` are accepted, and mock
    catalogues from each; cached as ``cache_dir/training-<hash>.npz`` when ``cache_dir`` is
    given (a cached file is reused only if its hash matches)."""
    digest = config_hash(config, key)
    path = None if cache_dir is None else Path(cache_dir) / f"training-{digest[:20]}.npz"
    if path is not None and path.exists():
        try:
            data = TrainingData.load(path)
        except ValueError as err:  # damaged, edited, or written by an older nseos
            warnings.warn(f"rebuilding the training-data cache entry: {err}", stacklevel=2)
        else:
            if data.config_hash == digest:
                return data
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=config.n_eos, desc="mock EoS", unit="EoS")
    accepted: list[dict] = []
    n_accepted = n_rejected = 0
    round_key = key
    while n_accepted < config.n_eos:
        if n_accepted + n_rejected >= _MAX_DRAWS_PER_EOS * config.n_eos:
            raise ValueError(
                f"only {n_accepted} of {n_accepted + n_rejected} EoS drawn from the prior pass "
                f"(M_max >= {config.min_max_mass_msun} M_sun, solvable): lower "
                "min_max_mass_msun or change the prior"
            )
        round_key, k_prior, k_mock = jax.random.split(round_key, 3)
        cs2 = config.prior.sample(k_prior, _CURVE_BATCH, config.n_segments, config.make_eos)
        ok, mocks = jax.device_get(
            _solve_batch(config, cs2, jax.random.split(k_mock, _CURVE_BATCH))
        )
        ok = np.asarray(ok)
        take = np.flatnonzero(ok)[: config.n_eos - n_accepted]
        # Rejections count only among the draws examined before the quota filled up.
        filled = n_accepted + take.size == config.n_eos and take.size > 0
        examined = take[-1] + 1 if filled else _CURVE_BATCH
        n_rejected += int(examined - np.sum(ok[:examined]))
        accepted.append(
            {
                "cs2": np.asarray(cs2)[take],
                "true_mass_msun": mocks.true_mass_msun[take],
                "true_radius_km": mocks.true_radius_km[take],
                "mass_sigma_msun": mocks.mass_sigma_msun[take],
                "radius_sigma_km": mocks.radius_sigma_km[take],
            }
        )
        n_accepted += take.size
        if bar is not None:
            bar.update(take.size)
            bar.set_postfix(rejected=n_rejected)
    if bar is not None:
        bar.close()
    data = TrainingData(
        **{k: np.concatenate([a[k] for a in accepted]) for k in accepted[0]},
        n_rejected=n_rejected,
        config_hash=digest,
        config_description=json.dumps(config.describe(), sort_keys=True),
    )
    if path is not None:
        data.save(path)
    return data

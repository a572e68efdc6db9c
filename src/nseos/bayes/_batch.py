"""NUTS over many mock universes at once: one compiled program for a whole validation set.

Fitting each universe with :meth:`BayesianEstimator.fit` would compile the sampler once per
universe, because the observations are constants of the model. Here the observations are a
*batched argument* of the log-density instead: every universe must have the same structure
(the same number and kinds of observations, e.g. N Gaussian stars), their arrays are
stacked, and BlackJAX's window adaptation and NUTS run for every (universe, chain) pair,
spread over the JAX devices with ``pmap`` (:func:`nseos.bayes.run_chains`). Universes are
processed in chunks of fixed size (one compilation), with a progress bar over the chunks.

On each device the (universe, chain) rows run one after the other (``lax.map``), not in
lockstep under ``vmap``: in lockstep every NUTS step lasts as long as the longest
trajectory of the batch, and every branch of the solver's conditionals is evaluated for
every row. A chunk of 4 universes x 2 chains x 600 iterations took 13.5 min in lockstep
on 2 CPU cores; see ``docs/bayes.md`` for the sequential figures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..observations import ObservationSet
from ._priors import PARAMETER_SITE
from ._samplers import _Potential, blackjax_chain, run_chains


class UniverseDraws(NamedTuple):
    """Posterior draws of many universes (constrained c_s^2)."""

    params: np.ndarray
    """Shape (n_universes, chains, draws, K)."""
    diverging: np.ndarray
    """Shape (n_universes, chains, draws)."""
    n_steps: np.ndarray
    """Leapfrog steps per draw, shape (n_universes, chains, draws)."""

    def divergences(self) -> np.ndarray:
        """Divergent transitions per universe."""
        return self.diverging.sum(axis=(1, 2))


def _is_number(x) -> bool:
    """Array and float leaves are data (observations store their numbers as floats)."""
    return eqx.is_array(x) or isinstance(x, float | np.floating)


def _stack_likelihoods(estimator, observation_sets: Sequence[ObservationSet]):
    likes = [estimator.likelihood(obs) for obs in observation_sets]
    parts = [eqx.partition(like, _is_number) for like in likes]
    static = parts[0][1]
    for i, (_, s) in enumerate(parts[1:], start=1):
        if jax.tree.structure(parts[i][0]) != jax.tree.structure(parts[0][0]) or not (
            eqx.tree_equal(s, static)
        ):
            raise ValueError(
                "every universe needs observations of the same structure (same number, kinds "
                f"and names); universe {i} differs from universe 0"
            )
    dynamic = jax.tree.map(lambda *a: jnp.stack(a), *[p[0] for p in parts])
    return dynamic, static


def sample_universes(
    estimator,
    observation_sets: Sequence[ObservationSet],
    key: jax.Array,
    *,
    chunk_size: int = 8,
    progress: bool = True,
    on_chunk: Callable[[np.ndarray, UniverseDraws], None] | None = None,
    universe_ids: Sequence[int] | None = None,
) -> UniverseDraws:
    """Sample the posterior of every universe with the estimator's prior and likelihood.

    Parameters
    ----------
    estimator : BayesianEstimator
        Prior, likelihood settings, and the sampler's warmup, draws, chains, target accept
        and tree depth (its backend is not used: this always runs BlackJAX's NUTS).
    observation_sets : sequence of ObservationSet
        One per universe, all of the same structure.
    key : jax.Array
        Universe ``i`` uses ``fold_in(key, universe_ids[i])``: its random numbers do not
        depend on the chunking (a resampled universe may still differ in the last bits,
        which a chaotic sampler amplifies).
    chunk_size : int
        Universes per compiled call (a short last chunk is padded; the (universe, chain) rows
        are also padded to a multiple of the device count).
    on_chunk : callable, optional
        Called as ``on_chunk(ids_of_the_chunk, draws_of_the_chunk)`` after each chunk (e.g.
        to save progress).
    universe_ids : sequence of int, optional
        The universes' identities (default 0, 1, ...).
    """
    from numpyro.distributions.transforms import biject_to

    if len(observation_sets) == 0:
        raise ValueError("sample_universes needs at least one universe")
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    sampler = estimator.sampler
    chains = sampler.chains
    dynamic, static = _stack_likelihoods(estimator, observation_sets)
    n_universes = len(observation_sets)
    # Always chunk_size universes per call (padded): one compiled program serves every call,
    # a resumed run's included.
    per_call = chunk_size
    to_constrained = biject_to(estimator.prior.base_distribution(estimator.n_params).support)

    def one_chain(row, tick):
        k, z, dyn = row
        pot = _Potential(estimator.model_of(eqx.combine(dyn, static)))

        def logdensity(x):
            return -pot.energy({PARAMETER_SITE: x})

        pos, div, _, n_steps, _, _, _ = blackjax_chain(sampler, logdensity, k, z)
        return to_constrained(pos), div, n_steps

    ids = np.arange(len(observation_sets)) if universe_ids is None else np.asarray(universe_ids)
    if ids.shape != (len(observation_sets),):
        raise ValueError("universe_ids needs one id per observation set")

    def universe_inputs(i):
        k = jax.random.fold_in(key, int(ids[i]))
        k_init, k_run = jax.random.split(k)
        z = estimator.initial_points(k_init)[PARAMETER_SITE]  # (chains, K)
        return jax.random.split(k_run, chains), z

    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n_universes, desc="NUTS universes", unit="universe")
    outs = []
    for first in range(0, n_universes, per_call):
        idx = np.arange(first, min(first + per_call, n_universes))
        keys, zs = zip(*(universe_inputs(int(i)) for i in idx), strict=True)
        rows = (
            jnp.concatenate(keys),
            jnp.concatenate(zs),
            jax.tree.map(lambda a, idx=idx: jnp.repeat(a[idx], chains, axis=0), dynamic),
        )
        n_real = idx.size * chains
        # Pad to the compiled shape (a short last chunk) by repeating the first row.
        rows = jax.tree.map(
            lambda a, n=n_real: jnp.concatenate([a, jnp.repeat(a[:1], per_call * chains - n, 0)]),
            rows,
        )
        params, div, n_steps = (
            a[:n_real].reshape(idx.size, chains, *a.shape[1:]) for a in run_chains(one_chain, rows)
        )
        chunk = UniverseDraws(params, div, n_steps)
        if on_chunk is not None:
            on_chunk(ids[idx], chunk)
        outs.append(chunk)
        if bar is not None:
            bar.update(idx.size)
    if bar is not None:
        bar.close()
    return UniverseDraws(*(np.concatenate(parts) for parts in zip(*outs, strict=True)))

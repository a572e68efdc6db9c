"""NUTS samplers: NumPyro (default) and BlackJAX, both on the same NumPyro model.

Both return draws of the model's constrained sites and the per-draw sampler statistics
(divergences, energy, tree depth, acceptance) as arrays shaped (chain, draw, ...).
"""

from __future__ import annotations

import abc
from typing import NamedTuple

import equinox as eqx
import jax
import numpy as np


class SamplerResult(NamedTuple):
    samples: dict[str, np.ndarray]
    """Model sites (constrained) and deterministics, shaped (chain, draw, ...)."""
    stats: dict[str, np.ndarray]
    """diverging, energy, tree_depth, n_steps, acceptance_rate; shaped (chain, draw)."""


class AbstractSampler(eqx.Module):
    """A Markov-chain sampler for a NumPyro model without arguments."""

    warmup: eqx.AbstractVar[int]
    draws: eqx.AbstractVar[int]
    chains: eqx.AbstractVar[int]

    @abc.abstractmethod
    def run(self, model, key: jax.Array) -> SamplerResult:
        """Sample ``model`` (a NumPyro model with no arguments)."""


class NumPyroNUTS(AbstractSampler):
    """NumPyro's NUTS with window adaptation of step size and a diagonal mass matrix.

    Parameters
    ----------
    warmup, draws, chains : int
    target_accept : float
        Target acceptance probability of the step-size adaptation.
    max_tree_depth : int
        At most 2^max_tree_depth leapfrog steps per draw.
    chain_method : {"vectorized", "parallel", "sequential"}
        "vectorized" runs the chains in lockstep under vmap (one device); "parallel" maps
        them over devices (set ``numpyro.set_host_device_count`` before importing JAX).
    progress : bool
        Show progress bars.
    """

    warmup: int = 1000
    draws: int = 1000
    chains: int = 4
    target_accept: float = 0.8
    max_tree_depth: int = 10
    chain_method: str = eqx.field(static=True, default="vectorized")
    progress: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        _check_counts(self)
        if self.chain_method not in ("vectorized", "parallel", "sequential"):
            raise ValueError(f"unknown chain_method {self.chain_method!r}")

    def run(self, model, key):
        from numpyro.infer import MCMC, NUTS

        kernel = NUTS(
            model,
            target_accept_prob=self.target_accept,
            max_tree_depth=self.max_tree_depth,
        )
        mcmc = MCMC(
            kernel,
            num_warmup=self.warmup,
            num_samples=self.draws,
            num_chains=self.chains,
            chain_method=self.chain_method,
            progress_bar=self.progress,
        )
        mcmc.run(key, extra_fields=("diverging", "energy", "num_steps", "accept_prob"))
        samples = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
        extra = mcmc.get_extra_fields(group_by_chain=True)
        n_steps = np.asarray(extra["num_steps"])
        stats = {
            "diverging": np.asarray(extra["diverging"]),
            "energy": np.asarray(extra["energy"]),
            "n_steps": n_steps,
            "tree_depth": np.floor(np.log2(np.maximum(n_steps, 1))).astype(int),
            "acceptance_rate": np.asarray(extra["accept_prob"]),
        }
        return SamplerResult(samples, stats)


class BlackJAXNUTS(AbstractSampler):
    """BlackJAX's NUTS on the same model: NumPyro's ``initialize_model`` gives the potential
    on the unconstrained space, BlackJAX's window adaptation tunes each chain, and the draws
    are mapped back to the constrained space with NumPyro's ``postprocess_fn``.

    Parameters are those of :class:`NumPyroNUTS`; chains are vectorised.
    """

    warmup: int = 1000
    draws: int = 1000
    chains: int = 4
    target_accept: float = 0.8
    max_tree_depth: int = 10
    progress: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        _check_counts(self)

    def run(self, model, key):
        import blackjax
        from numpyro.infer.util import initialize_model

        k_init, k_warm, k_draw = jax.random.split(key, 3)
        init_keys = jax.random.split(k_init, self.chains)
        info = initialize_model(init_keys, model, dynamic_args=False)
        potential_fn, postprocess_fn = info.potential_fn, info.postprocess_fn
        positions = info.param_info.z

        def logdensity(z):
            return -potential_fn(z)

        adaptation = blackjax.window_adaptation(
            blackjax.nuts,
            logdensity,
            target_acceptance_rate=self.target_accept,
            max_num_doublings=self.max_tree_depth,
        )

        def warm(k, z):
            (state, params), _ = adaptation.run(k, z, num_steps=self.warmup)
            return state, params

        if self.progress:
            print(f"BlackJAX NUTS: warm-up of {self.chains} chains x {self.warmup} steps ...")
        states, params = jax.jit(jax.vmap(warm))(jax.random.split(k_warm, self.chains), positions)

        def one_chain(k, state, p):
            step = blackjax.nuts(
                logdensity,
                step_size=p["step_size"],
                inverse_mass_matrix=p["inverse_mass_matrix"],
                max_num_doublings=self.max_tree_depth,
            ).step

            def body(s, kk):
                s, inf = step(kk, s)
                return s, (
                    s.position,
                    inf.is_divergent,
                    inf.energy,
                    inf.num_integration_steps,
                    inf.acceptance_rate,
                    inf.num_trajectory_expansions,
                )

            _, out = jax.lax.scan(body, state, jax.random.split(k, self.draws))
            return out

        if self.progress:
            print(f"BlackJAX NUTS: sampling {self.chains} chains x {self.draws} draws ...")
        pos, div, energy, n_steps, acc, depth = jax.jit(jax.vmap(one_chain))(
            jax.random.split(k_draw, self.chains), states, params
        )
        constrained = jax.jit(jax.vmap(jax.vmap(postprocess_fn)))(pos)
        samples = {k: np.asarray(v) for k, v in constrained.items()}
        stats = {
            "diverging": np.asarray(div),
            "energy": np.asarray(energy),
            "n_steps": np.asarray(n_steps),
            "tree_depth": np.asarray(depth),
            "acceptance_rate": np.asarray(acc),
        }
        return SamplerResult(samples, stats)


def _check_counts(s) -> None:
    for field in ("warmup", "draws", "chains", "max_tree_depth"):
        if int(getattr(s, field)) < 1:
            raise ValueError(f"{field} must be at least 1")
    if not 0 < s.target_accept < 1:
        raise ValueError("target_accept must lie in (0, 1)")

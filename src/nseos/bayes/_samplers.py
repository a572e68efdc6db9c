"""NUTS samplers: NumPyro (default) and BlackJAX, both on the same NumPyro model.

Both return draws of the model's constrained sites and the per-draw sampler statistics
(divergences, energy, tree depth, acceptance) as arrays shaped (chain, draw, ...).
"""

from __future__ import annotations

import abc
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
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
    def run(self, model, key: jax.Array, init_params: dict | None = None) -> SamplerResult:
        """Sample ``model`` (a NumPyro model with no arguments). ``init_params``: starting
        points in the unconstrained space, ``{site: array (chains, ...)}``; by default
        NumPyro's ``init_to_uniform``."""


class NumPyroNUTS(AbstractSampler):
    """NumPyro's NUTS with window adaptation of the step size and the mass matrix.

    Parameters
    ----------
    warmup, draws, chains : int
    target_accept : float
        Target acceptance probability of the step-size adaptation. The default, 0.9, is
        above NumPyro's and Stan's 0.8: on ``catalogs.modern()`` the clean run (4 x (1000 +
        1000), dense mass matrix) had no divergent transition in 4000 at 0.9 and 4 at 0.8,
        for 10 % more wall time (docs/bayes.md).
    max_tree_depth : int
        At most 2^max_tree_depth leapfrog steps per draw.
    dense_mass : bool
        Adapt a dense mass matrix (default) instead of a diagonal one. The c_s^2 of
        neighbouring segments are correlated (up to -0.6 in the unconstrained space on
        ``catalogs.modern()``); there the dense matrix cuts the leapfrog steps per draw from
        21 to 13 at the same target acceptance.
    chain_method : {"parallel", "sequential", "vectorized"}
        "parallel" (default) spreads the chains over the available JAX devices, in rounds
        when there are more chains than devices, reusing one compiled sampler. On a CPU, make
        its cores visible as devices before JAX starts (``nseos`` CLI and benchmarks do this;
        in a script call ``numpyro.set_host_device_count(os.cpu_count())`` first).
        "vectorized" runs all chains in lockstep under vmap on one device: on CPUs it is
        slower than sequential chains, because a TOV solve is compute-bound.
    progress : bool
        Show progress bars.
    """

    warmup: int = 1000
    draws: int = 1000
    chains: int = 4
    target_accept: float = 0.9
    max_tree_depth: int = 10
    dense_mass: bool = eqx.field(static=True, default=True)
    chain_method: str = eqx.field(static=True, default="parallel")
    progress: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        _check_counts(self)
        if self.chain_method not in ("vectorized", "parallel", "sequential"):
            raise ValueError(f"unknown chain_method {self.chain_method!r}")

    def run(self, model, key, init_params=None):
        from numpyro.infer import MCMC, NUTS

        # With starting points given, NUTS samples the model's potential directly: NumPyro's
        # model mode would also search for valid starting points and evaluate the model's
        # deterministic sites inside the sampler, two more copies of the likelihood for XLA
        # to compile. The draws are mapped back to the model's sites afterwards.
        potential = None if init_params is None else _Potential(model)
        kernel = NUTS(
            model if potential is None else None,
            potential_fn=None if potential is None else potential.energy,
            target_accept_prob=self.target_accept,
            max_tree_depth=self.max_tree_depth,
            dense_mass=self.dense_mass,
        )
        per_round = self.chains
        if self.chain_method == "parallel":
            per_round = max(1, min(self.chains, jax.local_device_count()))
        rounds = -(-self.chains // per_round)
        mcmc = MCMC(
            kernel,
            num_warmup=self.warmup,
            num_samples=self.draws,
            num_chains=per_round,
            chain_method=self.chain_method if per_round > 1 else "sequential",
            progress_bar=self.progress,
        )
        samples, extra = [], []
        for i, k in enumerate(jax.random.split(key, rounds)):
            init = None
            if init_params is not None:
                chunk = slice(i * per_round, (i + 1) * per_round)
                init = {
                    name: _pad_chains(jnp.asarray(v)[chunk], per_round)
                    for name, v in init_params.items()
                }
                if per_round == 1:
                    init = {name: v[0] for name, v in init.items()}
            mcmc.run(
                k,
                extra_fields=("diverging", "energy", "num_steps", "accept_prob"),
                init_params=init,
            )
            samples.append(mcmc.get_samples(group_by_chain=True))
            extra.append(mcmc.get_extra_fields(group_by_chain=True))

        def gather(parts):
            return {
                name: np.concatenate([np.asarray(p[name]) for p in parts])[: self.chains]
                for name in parts[0]
            }

        samples, extra = gather(samples), gather(extra)
        if potential is not None:
            samples = potential.constrain(samples)
        n_steps = extra["num_steps"]
        stats = {
            "diverging": extra["diverging"],
            "energy": extra["energy"],
            "n_steps": n_steps,
            "tree_depth": np.floor(np.log2(np.maximum(n_steps, 1))).astype(int),
            "acceptance_rate": extra["accept_prob"],
        }
        return SamplerResult(samples, stats)


class BlackJAXNUTS(AbstractSampler):
    """BlackJAX's NUTS on the same model: NumPyro's ``initialize_model`` gives the potential
    on the unconstrained space, BlackJAX's window adaptation tunes each chain, and the draws
    are mapped back to the constrained space with NumPyro's ``postprocess_fn``.

    Parameters are those of :class:`NumPyroNUTS`. Chains are spread over the available JAX
    devices with ``pmap`` (in rounds when there are more chains than devices).
    """

    warmup: int = 1000
    draws: int = 1000
    chains: int = 4
    target_accept: float = 0.9
    max_tree_depth: int = 10
    dense_mass: bool = eqx.field(static=True, default=True)
    progress: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        _check_counts(self)

    def run(self, model, key, init_params=None):
        from numpyro.infer.util import initialize_model

        k_init, k_chains = jax.random.split(key)
        if init_params is None:
            init_keys = jax.random.split(k_init, self.chains)
            info = initialize_model(init_keys, model, dynamic_args=False)
            potential_fn, postprocess_fn = info.potential_fn, info.postprocess_fn
            positions = info.param_info.z
        else:
            potential_fn, postprocess_fn = _Potential(model).energy, None
            positions = init_params

        def logdensity(z):
            return -potential_fn(z)

        def one_chain(k, z):
            return blackjax_chain(self, logdensity, k, z)

        per_round = max(1, min(self.chains, jax.local_device_count()))
        run_round = jax.pmap(one_chain) if per_round > 1 else jax.jit(jax.vmap(one_chain))
        keys = jax.random.split(k_chains, self.chains)
        outs = []
        for start in range(0, self.chains, per_round):
            stop = min(start + per_round, self.chains)
            if self.progress:
                print(
                    f"BlackJAX NUTS: chains {start + 1}-{stop} of {self.chains}, "
                    f"{self.warmup} warm-up + {self.draws} draws ...",
                    flush=True,
                )
            z = jax.tree.map(lambda a, start=start, stop=stop: a[start:stop], positions)
            if stop - start < per_round:  # a short last round: pad, then drop the padding
                pad = per_round - (stop - start)
                z = jax.tree.map(lambda a, pad=pad: jnp.concatenate([a, a[:pad]]), z)
                ks = jnp.concatenate([keys[start:stop], keys[:pad]])
            else:
                ks = keys[start:stop]
            out = run_round(ks, z)
            outs.append(jax.tree.map(lambda a, n=stop - start: np.asarray(a)[:n], out))
        pos, div, energy, n_steps, acc, depth = jax.tree.map(lambda *a: np.concatenate(a), *outs)
        if postprocess_fn is None:
            samples = _Potential(model).constrain(pos)
        else:
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


def blackjax_chain(settings, logdensity, key, z):
    """One chain of BlackJAX NUTS: window adaptation (step size and mass matrix), then
    ``settings.draws`` draws. ``settings`` has the sampler fields (warmup, draws,
    target_accept, max_tree_depth, dense_mass). Returns the positions and, per draw,
    divergence, energy, leapfrog steps, acceptance rate and trajectory doublings."""
    import blackjax

    k_warm, k_draw = jax.random.split(key)
    adaptation = blackjax.window_adaptation(
        blackjax.nuts,
        logdensity,
        is_mass_matrix_diagonal=not getattr(settings, "dense_mass", False),
        target_acceptance_rate=settings.target_accept,
        max_num_doublings=settings.max_tree_depth,
    )
    (state, p), _ = adaptation.run(k_warm, z, num_steps=settings.warmup)
    step = blackjax.nuts(
        logdensity,
        step_size=p["step_size"],
        inverse_mass_matrix=p["inverse_mass_matrix"],
        max_num_doublings=settings.max_tree_depth,
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

    _, out = jax.lax.scan(body, state, jax.random.split(k_draw, settings.draws))
    return out


class _Potential:
    """A NumPyro model's potential energy on the unconstrained space, and the map of draws
    back to its sites (constrained values and deterministics)."""

    def __init__(self, model):
        self.model = model

    def energy(self, z):
        from numpyro.infer.util import potential_energy

        return potential_energy(self.model, (), {}, z)

    def constrain(self, z: dict) -> dict[str, np.ndarray]:
        """Unconstrained draws shaped (chain, draw, ...) -> every site, same leading axes."""
        from numpyro.infer.util import constrain_fn

        def one(zi):
            return constrain_fn(self.model, (), {}, zi, return_deterministic=True)

        out = jax.jit(jax.vmap(jax.vmap(one)))(jax.tree.map(jnp.asarray, z))
        return {k: np.asarray(v) for k, v in out.items()}


def _pad_chains(x: jax.Array, n: int) -> jax.Array:
    """Repeat leading rows so that ``x`` has ``n`` (a short last round of chains)."""
    return x if x.shape[0] == n else jnp.concatenate([x, x[: n - x.shape[0]]])


def _check_counts(s) -> None:
    for field in ("warmup", "draws", "chains", "max_tree_depth"):
        if int(getattr(s, field)) < 1:
            raise ValueError(f"{field} must be at least 1")
    if not 0 < s.target_accept < 1:
        raise ValueError("target_accept must lie in (0, 1)")

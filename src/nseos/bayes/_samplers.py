"""NUTS samplers: NumPyro (default) and BlackJAX, both on the same NumPyro model.

Both return draws of the model's constrained sites and the per-draw sampler statistics
(divergences, energy, tree depth, acceptance) as arrays shaped (chain, draw, ...).
"""

from __future__ import annotations

import abc
import functools
import threading
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

    The kernel is NumPyro's own (:class:`numpyro.infer.NUTS`: its tree building, its
    window adaptation, its initialisation). The chains are driven by
    :func:`run_chains` instead of ``numpyro.infer.MCMC``: every chain runs in one compiled
    program. ``MCMC.run`` compiles the whole sampler again at each call, so chains run in
    rounds (more chains than devices) paid a compilation per round, 40-50 s each for this
    likelihood on a 2-core CPU.

    Parameters
    ----------
    warmup, draws, chains : int
    target_accept : float
        Target acceptance probability of the step-size adaptation. The default, 0.93, is
        above NumPyro's and Stan's 0.8. On ``catalogs.modern()`` the heavy pulsars' masses
        (J1614-2230: 1.908 +- 0.016 M_sun) put a steep, smooth cliff in ln L where M_max
        falls below them (ln L drops by ~1000 within one posterior width): a leapfrog step
        that overshoots into it is a divergent transition. The clean run (4 x (1000 + 1000),
        dense mass matrix) had 3 divergent transitions in 4000 draws at 0.9 and none at 0.93
        (two seeds) or 0.95, for 26 % (0.93) and 44 % (0.95) more leapfrog steps than at 0.9
        (docs/bayes.md).
    max_tree_depth : int
        At most 2^max_tree_depth leapfrog steps per draw.
    dense_mass : bool
        Adapt a dense mass matrix (default) instead of a diagonal one. The c_s^2 of
        neighbouring segments are correlated (up to -0.6 in the unconstrained space on
        ``catalogs.modern()``); there the dense matrix cuts the leapfrog steps per draw from
        21 to 13 at the same target acceptance.
    chain_method : {"parallel", "sequential", "vectorized"}
        "parallel" (default) spreads the chains over the available JAX devices (``pmap``);
        the chains given to one device run one after the other. On a CPU, make its cores
        visible as devices before JAX starts (``nseos`` CLI and benchmarks do this; in a
        script call ``numpyro.set_host_device_count(os.cpu_count())`` first).
        "sequential" runs every chain, one after the other, on one device. "vectorized"
        runs all chains in lockstep under ``vmap`` on one device: on CPUs it is slower
        than sequential chains, because every step lasts as long as the longest trajectory.
    progress : bool
        Show a progress bar (iterations of all chains together).
    """

    warmup: int = 1000
    draws: int = 1000
    chains: int = 4
    target_accept: float = 0.93
    max_tree_depth: int = 10
    dense_mass: bool = eqx.field(static=True, default=True)
    chain_method: str = eqx.field(static=True, default="parallel")
    progress: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        _check_counts(self)
        if self.chain_method not in CHAIN_METHODS:
            raise ValueError(f"unknown chain_method {self.chain_method!r}")

    def run(self, model, key, init_params=None):
        from numpyro.infer import NUTS

        k_init, k_chains = jax.random.split(key)
        potential = _Potential(model)
        positions = potential.starting_points(k_init, self.chains, init_params)
        kernel = NUTS(
            potential_fn=potential.energy,
            target_accept_prob=self.target_accept,
            max_tree_depth=self.max_tree_depth,
            dense_mass=self.dense_mass,
        )

        def chain(k, z, tick):
            return numpyro_chain(self, kernel, k, z, tick)

        return _run_nuts(self, "NumPyro NUTS", chain, potential, k_chains, positions)


def numpyro_chain(settings, kernel, key, z, tick=None):
    """One chain of NumPyro's NUTS ``kernel`` (built on a potential function): its own
    initialisation, ``settings.warmup`` adapting iterations, then ``settings.draws`` draws.
    Returns, per draw, the position, divergence, energy, leapfrog steps, acceptance
    probability and trajectory doublings (from the steps). ``tick``, if given, is called
    once per iteration."""
    state = kernel.init(key, settings.warmup, z, model_args=(), model_kwargs={})

    def step(s):
        s = kernel.sample(s, (), {})
        if tick is not None:
            tick()
        return s

    state = jax.lax.fori_loop(0, settings.warmup, lambda _, s: step(s), state)

    def draw(s, _):
        s = step(s)
        depth = jnp.floor(jnp.log2(jnp.maximum(s.num_steps, 1))).astype(jnp.int32)
        return s, (s.z, s.diverging, s.energy, s.num_steps, s.accept_prob, depth)

    _, out = jax.lax.scan(draw, state, None, length=settings.draws)
    return out


class BlackJAXNUTS(AbstractSampler):
    """BlackJAX's NUTS on the same model: NumPyro's potential on the unconstrained space,
    BlackJAX's window adaptation tunes each chain, and the draws are mapped back to the
    constrained space (and the model's deterministic sites) through the model.

    Parameters are those of :class:`NumPyroNUTS`; the chains are spread over the available
    JAX devices as there with ``chain_method="parallel"``.
    """

    warmup: int = 1000
    draws: int = 1000
    chains: int = 4
    target_accept: float = 0.93
    max_tree_depth: int = 10
    dense_mass: bool = eqx.field(static=True, default=True)
    progress: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        _check_counts(self)

    def run(self, model, key, init_params=None):
        k_init, k_chains = jax.random.split(key)
        potential = _Potential(model)
        positions = potential.starting_points(k_init, self.chains, init_params)

        def logdensity(z):
            return -potential.energy(z)

        def chain(k, z, tick):
            return blackjax_chain(self, logdensity, k, z, tick)

        return _run_nuts(self, "BlackJAX NUTS", chain, potential, k_chains, positions)


def blackjax_chain(settings, logdensity, key, z, tick=None):
    """One chain of BlackJAX NUTS: window adaptation (step size and mass matrix), then
    ``settings.draws`` draws. ``settings`` has the sampler fields (warmup, draws,
    target_accept, max_tree_depth, dense_mass). Returns the positions and, per draw,
    divergence, energy, leapfrog steps, acceptance rate and trajectory doublings. ``tick``,
    if given, is called once per iteration."""
    import blackjax

    def info_fn(state, info, adaptation_state):  # keep no per-step warm-up record
        if tick is not None:
            tick()
        return ()

    k_warm, k_draw = jax.random.split(key)
    adaptation = blackjax.window_adaptation(
        blackjax.nuts,
        logdensity,
        is_mass_matrix_diagonal=not getattr(settings, "dense_mass", False),
        target_acceptance_rate=settings.target_accept,
        max_num_doublings=settings.max_tree_depth,
        adaptation_info_fn=info_fn,
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
        if tick is not None:
            tick()
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


def _run_nuts(sampler, label, chain, potential, key, positions) -> SamplerResult:
    """Both backends: ``chain(key, z, tick)`` runs one chain and returns (positions,
    divergence, energy, leapfrog steps, acceptance, doublings) per draw; every chain runs
    through :func:`run_chains`, with the draws mapped to the model's sites in the same
    program."""

    def one_chain(row, tick):
        pos, *stats = chain(*row, tick)
        return jax.lax.map(potential.sites, pos), *stats

    with _Progress(label, sampler, enabled=sampler.progress) as progress:
        samples, div, energy, n_steps, acc, depth = run_chains(
            one_chain,
            (jax.random.split(key, sampler.chains), positions),
            chain_method=getattr(sampler, "chain_method", "parallel"),
            tick=progress.tick,
        )
    stats = {
        "diverging": div,
        "energy": energy,
        "n_steps": n_steps,
        "tree_depth": depth,
        "acceptance_rate": acc,
    }
    return SamplerResult(samples, stats)


CHAIN_METHODS = ("parallel", "sequential", "vectorized")
"""How :func:`run_chains` spreads chains: over the devices, one after the other on one
device, or in lockstep (``vmap``) on one device."""


def run_chains(one_chain, rows, *, chain_method="parallel", tick=None):
    """Run every chain in one compiled program and return its outputs as numpy arrays with a
    leading chain axis.

    ``rows`` is a pytree of arrays with one row per chain (e.g. ``(keys, positions)``);
    ``one_chain(row, tick)`` runs one chain and returns a pytree of arrays. With
    ``chain_method="parallel"`` and several JAX devices the chains are spread over the
    devices with ``pmap``, each device running its share one after the other
    (``lax.map``); a share that does not divide evenly is padded with copies of the first
    row, dropped afterwards. "sequential" runs them one after the other on one device,
    "vectorized" in lockstep under ``vmap``. ``tick(n)`` (a host function, optional) is told
    of every iteration of the chains: ``one_chain`` gets a function to call once per
    iteration (None without ``tick``).
    """
    if chain_method not in CHAIN_METHODS:
        raise ValueError(f"unknown chain_method {chain_method!r}")
    rows = jax.tree.map(jnp.asarray, rows)
    n = jax.tree.leaves(rows)[0].shape[0]
    rows = (rows, jnp.ones(n, bool))  # the flag marks padding rows
    n_dev = jax.local_device_count()
    if chain_method == "parallel" and n_dev > 1 and n > 1:
        per_device = -(-n // n_dev)
        n_dev = -(-n // per_device)  # no device gets only padding
        pad = n_dev * per_device - n
        rows = jax.tree.map(lambda a: jnp.concatenate([a, jnp.repeat(a[:1], pad, axis=0)]), rows)
        rows = (rows[0], rows[1].at[n:].set(False))
        rows = jax.tree.map(lambda a: a.reshape(n_dev, per_device, *a.shape[1:]), rows)
        out = _mapped_chains(one_chain, "parallel", tick)(rows)
        out = jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:])[:n], out)
    else:
        method = "vectorized" if chain_method == "vectorized" else "sequential"
        out = _mapped_chains(one_chain, method, tick)(rows)
    out = jax.tree.map(np.asarray, out)
    jax.effects_barrier()  # every progress callback has run
    return out


@functools.lru_cache(maxsize=4)
def _mapped_chains(one_chain, chain_method, tick):
    """The compiled program of :func:`run_chains`, kept for repeated calls with the same
    ``one_chain`` (``sample_universes`` runs one chunk after the other through it). The four
    most recent programs stay in memory, with the likelihoods they close over."""

    def count(real):  # padding chains do not count (under vmap: one call for the batch)
        tick(int(np.sum(real)))

    def chain(row_real):
        row, real = row_real
        if tick is None:
            return one_chain(row, None)
        return one_chain(row, lambda: jax.debug.callback(count, real))

    if chain_method == "vectorized":
        return jax.jit(jax.vmap(chain))
    if chain_method == "sequential":
        return jax.jit(lambda r: jax.lax.map(chain, r))
    return jax.pmap(lambda r: jax.lax.map(chain, r))


class _Progress:
    """A progress bar over the iterations of all chains, advanced from inside the compiled
    sampler through host callbacks (which may arrive from several device threads)."""

    def __init__(self, label: str, settings, *, enabled: bool):
        self.total = settings.chains * (settings.warmup + settings.draws)
        self.label = (
            f"{label}: {settings.chains} chains x "
            f"({settings.warmup} warm-up + {settings.draws} draws)"
        )
        self.enabled = enabled
        self.bar = None
        self.lock = threading.Lock()

    def __enter__(self):
        if self.enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=self.total, desc=self.label, unit="it", mininterval=0.5)
        return self

    @property
    def tick(self):
        return self._tick if self.enabled else None

    def _tick(self, n: int = 1):
        with self.lock:
            self.bar.update(n)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False


class _Potential:
    """A NumPyro model's potential energy on the unconstrained space, and the map of draws
    back to its sites (constrained values and deterministics)."""

    def __init__(self, model):
        self.model = model

    def energy(self, z):
        from numpyro.infer.util import potential_energy

        return potential_energy(self.model, (), {}, z)

    def starting_points(self, key: jax.Array, chains: int, init_params: dict | None) -> dict:
        """``init_params`` (one row per chain) if given, else NumPyro's ``init_to_uniform``
        points of the model, one per chain."""
        if init_params is not None:
            return {name: jnp.asarray(v) for name, v in init_params.items()}
        from numpyro.infer.util import initialize_model

        info = initialize_model(jax.random.split(key, chains), self.model, dynamic_args=False)
        return info.param_info.z

    def sites(self, z: dict) -> dict[str, jax.Array]:
        """One unconstrained point -> every site of the model (constrained values and
        deterministics). The samplers map their draws with it inside the compiled sampler:
        a separate program would compile the likelihood once more (15 s on a 2-core CPU)."""
        from numpyro.infer.util import constrain_fn

        return constrain_fn(self.model, (), {}, z, return_deterministic=True)


def _check_counts(s) -> None:
    for field in ("warmup", "draws", "chains", "max_tree_depth"):
        if int(getattr(s, field)) < 1:
            raise ValueError(f"{field} must be at least 1")
    if not 0 < s.target_accept < 1:
        raise ValueError("target_accept must lie in (0, 1)")

"""NUTS samplers: NumPyro (default) and BlackJAX, both on the same NumPyro model.

Both return draws of the model's constrained sites and the per-draw sampler statistics
(divergences, energy, tree depth, acceptance) as arrays shaped (chain, draw, ...).
"""

from __future__ import annotations

import abc
import functools
import math
import threading
import time
from typing import NamedTuple

import equinox as eqx
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np


class SamplerResult(NamedTuple):
    samples: dict[str, np.ndarray]
    """Model sites (constrained) and deterministics, shaped (chain, draw, ...)."""
    stats: dict[str, np.ndarray]
    """diverging, energy, tree_depth, n_steps, acceptance_rate, shaped (chain, draw); and
    warmup_n_steps, the leapfrog steps (gradient evaluations) of each chain's warm-up, shaped
    (chain,)."""
    compile_s: float = 0.0
    """Wall time spent compiling the sampler's program (0 when it was compiled before)."""


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
        The defaults, 4 x (500 + 500), give a converged posterior on ``catalogs.modern()``
        (R-hat 1.004, ESS_bulk 821 >= 400, no divergence; docs/performance.md): the probit
        coordinates of the priors and the dense mass matrix make 2000 draws enough.
    target_accept : float
        Target acceptance probability of the step-size adaptation. The default, 0.95, is
        above NumPyro's and Stan's 0.8. On ``catalogs.modern()`` the heavy pulsars' masses
        (J1614-2230: 1.937 +- 0.014 M_sun) put a steep, smooth cliff in ln L where M_max
        falls below them (ln L drops by ~1000 within one posterior width): a leapfrog step
        that overshoots into it is a divergent transition. With 4 x (500 + 500) draws, 0.93
        gave 2 divergent transitions and 0.95 none, for 21 % more leapfrog steps (21.7 per
        draw against 17.9; docs/performance.md).
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

    warmup: int = 500
    draws: int = 500
    chains: int = 4
    target_accept: float = 0.95
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
        potential = potential_of(model)
        positions = potential.starting_points(k_init, self.chains, init_params)
        # The starting energies and gradients come from the point program (finite
        # differences), so the chain program holds the gradient once: in the tree builder.
        energy, gradient = potential.energy_and_difference_gradient(positions)
        kernel = NUTS(
            potential_fn=potential.energy,
            target_accept_prob=self.target_accept,
            max_tree_depth=self.max_tree_depth,
            dense_mass=self.dense_mass,
        )

        def chain(k, start, tick):
            return numpyro_chain(self, kernel, k, start, tick)

        starts = (positions, energy, gradient)
        return _run_nuts(self, "NumPyro NUTS", chain, potential, k_chains, starts)


def numpyro_chain(settings, kernel, key, start, tick=None):
    """One chain of NumPyro's NUTS ``kernel`` (built on a potential function): its own
    initialisation, ``settings.warmup`` adapting iterations, then ``settings.draws`` draws.
    ``start`` is the starting point (unconstrained) or ``(point, potential energy,
    gradient)``; given the energy and gradient, the kernel does not evaluate the potential
    at the start, and the compiled chain holds the potential's gradient once. Returns, per
    draw, the position, divergence, energy, leapfrog steps, acceptance probability and
    trajectory doublings (from the steps), then the warm-up's leapfrog steps in total.
    ``tick``, if given, is called once per iteration."""
    from numpyro.infer.util import ParamInfo

    if isinstance(start, tuple):
        start = ParamInfo(*start)
    state = kernel.init(key, settings.warmup, start, model_args=(), model_kwargs={})

    # Warm-up and draws are one loop, so the kernel's step (and with it the potential and
    # its gradient) is traced and compiled once: NumPyro's kernel switches its adaptation
    # off by itself after ``settings.warmup`` iterations. Two loops compiled it twice.
    def iterate(s, _):
        s = kernel.sample(s, (), {})
        if tick is not None:
            tick()
        depth = jnp.floor(jnp.log2(jnp.maximum(s.num_steps, 1))).astype(jnp.int32)
        return s, (s.z, s.diverging, s.energy, s.num_steps, s.accept_prob, depth)

    _, out = jax.lax.scan(iterate, state, None, length=settings.warmup + settings.draws)
    warmup_steps = jnp.sum(out[3][: settings.warmup])
    return (*jax.tree.map(lambda a: a[settings.warmup :], out), warmup_steps)


class BlackJAXNUTS(AbstractSampler):
    """BlackJAX's NUTS on the same model: NumPyro's potential on the unconstrained space,
    BlackJAX's window adaptation tunes each chain, and the draws are mapped back to the
    constrained space (and the model's deterministic sites) through the model.

    Parameters are those of :class:`NumPyroNUTS`; the chains are spread over the available
    JAX devices as there with ``chain_method="parallel"``.
    """

    warmup: int = 500
    draws: int = 500
    chains: int = 4
    target_accept: float = 0.95
    max_tree_depth: int = 10
    dense_mass: bool = eqx.field(static=True, default=True)
    progress: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        _check_counts(self)

    def run(self, model, key, init_params=None):
        k_init, k_chains = jax.random.split(key)
        potential = potential_of(model)
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
    divergence, energy, leapfrog steps, acceptance rate and trajectory doublings, then the
    warm-up's leapfrog steps in total. ``tick``, if given, is called once per iteration."""
    import blackjax

    def info_fn(state, info, adaptation_state):  # keep only the leapfrog steps of warm-up
        if tick is not None:
            tick()
        return info.num_integration_steps

    k_warm, k_draw = jax.random.split(key)
    adaptation = blackjax.window_adaptation(
        blackjax.nuts,
        logdensity,
        is_mass_matrix_diagonal=not getattr(settings, "dense_mass", False),
        target_acceptance_rate=settings.target_accept,
        max_num_doublings=settings.max_tree_depth,
        adaptation_info_fn=info_fn,
    )
    (state, p), warmup_steps = adaptation.run(k_warm, z, num_steps=settings.warmup)
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
    return (*out, jnp.sum(warmup_steps))


def _run_nuts(sampler, label, chain, potential, key, starts) -> SamplerResult:
    """Both backends: ``chain(key, start, tick)`` runs one chain from its row of ``starts``
    and returns (positions, divergence, energy, leapfrog steps, acceptance, doublings) per
    draw and the warm-up's leapfrog steps; every chain runs through :func:`run_chains`, and
    the draws are mapped to the model's sites by the potential's point program afterwards
    (the chain program would otherwise hold one more copy of the likelihood)."""

    timing = {}
    with _Progress(label, sampler, enabled=sampler.progress) as progress:
        positions, div, energy, n_steps, acc, depth, warmup_steps = run_chains(
            lambda row, tick: chain(*row, tick),
            (jax.random.split(key, sampler.chains), starts),
            chain_method=getattr(sampler, "chain_method", "parallel"),
            tick=progress.tick,
            timing=timing,
        )
    _, samples = potential.evaluate(positions, batch_ndim=2)
    stats = {
        "diverging": div,
        "energy": energy,
        "n_steps": n_steps,
        "tree_depth": depth,
        "acceptance_rate": acc,
        "warmup_n_steps": warmup_steps,
    }
    return SamplerResult(samples, stats, timing.get("compile_s", 0.0))


CHAIN_METHODS = ("parallel", "sequential", "vectorized")
"""How :func:`run_chains` spreads chains: over the devices, one after the other on one
device, or in lockstep (``vmap``) on one device."""


def run_chains(one_chain, rows, *, chain_method="parallel", tick=None, timing=None):
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
    iteration (None without ``tick``). ``timing`` (a dict, optional) receives
    ``compile_s``, the wall time of compiling the program (0 when an earlier call with the
    same shapes compiled it).
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
        out = _mapped_chains(one_chain, "parallel", tick)(rows, timing)
        out = jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:])[:n], out)
    else:
        method = "vectorized" if chain_method == "vectorized" else "sequential"
        out = _mapped_chains(one_chain, method, tick)(rows, timing)
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
        return _Compiled(jax.jit(jax.vmap(chain)))
    if chain_method == "sequential":
        return _Compiled(jax.jit(lambda r: jax.lax.map(chain, r)))
    return _Compiled(jax.pmap(lambda r: jax.lax.map(chain, r)))


class _Compiled:
    """A jitted or pmapped function, compiled ahead of time once per input signature, so
    that the compilation is timed on its own (reported as the sampler's compile time)."""

    def __init__(self, fn):
        self.fn = fn
        self.executables = {}

    def __call__(self, rows, timing=None):
        signature = jax.tree.map(lambda a: (a.shape, a.dtype), rows)
        signature = (jax.tree.structure(rows), tuple(jax.tree.leaves(signature)))
        started = time.perf_counter()
        if signature not in self.executables:
            self.executables[signature] = self.fn.lower(rows).compile()
        if timing is not None:
            timing["compile_s"] = time.perf_counter() - started
        return self.executables[signature](rows)


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


def forward_mode_gradient(f):
    """``f`` (a scalar function of a pytree of arrays) whose gradient, wherever it is asked
    for (``jax.grad`` inside NumPyro's or BlackJAX's integrator), is computed in forward mode:
    one Jacobian-vector product per parameter, vmapped, in the same pass as the value.

    With few parameters and a long sequential computation (5 c_s^2 through ~1000 RK4 steps
    per sequence) this is cheaper than reverse mode on both counts that matter here: it
    stores no per-step residuals and has no transposed loops to compile. On
    ``catalogs.modern()`` (2-core CPU, nothing else running) the value and gradient compiled
    in 11.4 s against 14.4 s, and ran in 1.47 ms against 2.91 ms (``benchmarks/bayes.py``
    measures it). The values are identical; the gradients agree to 1e-8 (tested).
    """

    @jax.custom_vjp
    def g(z):
        return f(z)

    def value_and_gradient(z):
        flat, unravel = jax.flatten_util.ravel_pytree(z)
        basis = jnp.eye(flat.shape[0], dtype=flat.dtype)
        value, slopes = jax.vmap(lambda v: jax.jvp(lambda y: f(unravel(y)), (flat,), (v,)))(basis)
        return value[0], unravel(slopes)

    def bwd(gradient, cotangent):
        return (jax.tree.map(lambda a: cotangent * a, gradient),)

    g.defvjp(value_and_gradient, bwd)
    return g


POINT_CHUNK = 128
"""Points per call of :meth:`_Potential.evaluate`'s compiled program (a fixed shape, so
one compilation serves the starting-point pool, the starting gradients and the draws)."""
DIFFERENCE_STEP = 1e-4
"""Step of the central differences of :meth:`_Potential.energy_and_difference_gradient`,
in the sampler's unconstrained (probit) coordinates, whose prior scale is 1."""


@functools.lru_cache(maxsize=4)
def potential_of(model) -> _Potential:
    """The :class:`_Potential` of a model, shared by everything that evaluates that model
    (the estimator's starting-point pool and the sampler), so its programs compile once."""
    return _Potential(model)


class _Potential:
    """A NumPyro model's potential energy on the unconstrained space (its gradient in forward
    mode, see :func:`forward_mode_gradient`), and one compiled program that evaluates the
    potential and every site of the model (constrained values and deterministics) at a
    batch of points: for the starting points, their gradients, and the draws."""

    def __init__(self, model):
        from numpyro.infer.util import potential_energy

        self.model = model
        self.energy = forward_mode_gradient(lambda z: potential_energy(model, (), {}, z))
        self._points = jax.jit(lambda zs: jax.lax.map(self._energy_and_sites, zs))

    def _energy_and_sites(self, z: dict):
        # NumPyro's potential_energy and constrain_fn in one trace of the model (calling
        # both would trace the likelihood twice).
        from numpyro.handlers import substitute
        from numpyro.infer.util import _unconstrain_reparam, log_density

        model = substitute(self.model, substitute_fn=functools.partial(_unconstrain_reparam, z))
        log_joint, trace = log_density(model, (), {}, {})
        sites = {k: v["value"] for k, v in trace.items() if k in z or v["type"] == "deterministic"}
        return -log_joint, sites

    def evaluate(self, z: dict, batch_ndim: int = 1) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Potential energy and sites at the points ``z`` (``{site: array}``, whose first
        ``batch_ndim`` axes index the points), one after the other in chunks of
        :data:`POINT_CHUNK` through one compiled program; numpy arrays with those leading
        axes."""
        z = {name: np.asarray(v) for name, v in z.items()}
        lead = next(iter(z.values())).shape[:batch_ndim]
        flat = {name: v.reshape(-1, *v.shape[batch_ndim:]) for name, v in z.items()}
        n = math.prod(lead)
        padded = -(-n // POINT_CHUNK) * POINT_CHUNK
        flat = {k: np.concatenate([v, np.repeat(v[:1], padded - n, 0)]) for k, v in flat.items()}
        parts = []
        for i in range(0, padded, POINT_CHUNK):
            chunk = {k: v[i : i + POINT_CHUNK] for k, v in flat.items()}
            parts.append(jax.tree.map(np.asarray, self._points(chunk)))
        out = jax.tree.map(lambda *a: np.concatenate(a)[:n], *parts)
        return jax.tree.map(lambda a: a.reshape(*lead, *a.shape[1:]), out)

    def energy_and_difference_gradient(self, z: dict) -> tuple[np.ndarray, dict]:
        """Potential energy at each row of ``z`` (``{site: (chains, ...)}``) and its gradient
        by central differences (step :data:`DIFFERENCE_STEP`), from the point program.

        NUTS needs both at its starting point; computing them here keeps a second copy of
        the (forward-mode) gradient out of the chain program, which halves its compilation.
        They start the first warm-up transition only: every later state's gradient comes
        from the integrator, and warm-up draws are discarded. The differences agree with
        the exact gradient to ~1e-3 of its largest component (they also see the placed
        sequence move with the EoS; tests/test_bayes.py).
        """
        z = {name: jnp.asarray(v) for name, v in z.items()}
        _, unravel = jax.flatten_util.ravel_pytree({k: v[0] for k, v in z.items()})
        rows = np.asarray(jax.vmap(lambda p: jax.flatten_util.ravel_pytree(p)[0])(z))
        k = rows.shape[1]
        steps = DIFFERENCE_STEP * np.concatenate([np.eye(k), -np.eye(k)])  # (2k, k)
        points = np.concatenate([rows[:, None, :], rows[:, None, :] + steps[None]], axis=1)
        as_sites = jax.vmap(jax.vmap(unravel))(jnp.asarray(points))
        energy, _ = self.evaluate(as_sites, batch_ndim=2)  # (chains, 1 + 2k)
        centre, up, down = energy[:, :1], energy[:, 1 : 1 + k], energy[:, 1 + k :]
        if not np.all(np.isfinite(centre)):
            bad = np.flatnonzero(~np.isfinite(centre[:, 0])).tolist()
            raise ValueError(
                f"the potential energy is not finite at the starting point of chain(s) {bad} "
                "(a masked likelihood: see LikelihoodStatus); start inside the posterior's "
                "support (BayesianEstimator.initial_points)"
            )
        # Central differences; one-sided next to a wall of the potential (a masked
        # likelihood on one side of the start).
        slopes = np.where(
            np.isfinite(up) & np.isfinite(down),
            (up - down) / (2.0 * DIFFERENCE_STEP),
            np.where(np.isfinite(up), up - centre, centre - down) / DIFFERENCE_STEP,
        )
        if not np.all(np.isfinite(slopes)):
            bad = np.flatnonzero(~np.all(np.isfinite(slopes), axis=1)).tolist()
            raise ValueError(
                f"the potential energy is not finite on either side of the starting point of "
                f"chain(s) {bad} (step {DIFFERENCE_STEP}): start further inside the support"
            )
        gradient = jax.vmap(unravel)(jnp.asarray(slopes))
        return jnp.asarray(energy[:, 0]), gradient

    def starting_points(self, key: jax.Array, chains: int, init_params: dict | None) -> dict:
        """``init_params`` (one row per chain) if given, else NumPyro's ``init_to_uniform``
        points of the model, one per chain."""
        if init_params is not None:
            return {name: jnp.asarray(v) for name, v in init_params.items()}
        from numpyro.infer.util import initialize_model

        info = initialize_model(jax.random.split(key, chains), self.model, dynamic_args=False)
        return info.param_info.z


def _check_counts(s) -> None:
    for field in ("warmup", "draws", "chains", "max_tree_depth"):
        if int(getattr(s, field)) < 1:
            raise ValueError(f"{field} must be at least 1")
    if not 0 < s.target_accept < 1:
        raise ValueError("target_accept must lie in (0, 1)")

"""The study: every (architecture, activation, training mode) trained over many seeds.

Each configuration compiles once: its seeds run together under :func:`jax.vmap`, and the
whole training (``steps`` optimiser steps, losses recorded at ``n_checkpoints`` points) is
one ``lax.scan``. The training step is the estimator's own
(:func:`nseos.replica._train.regularised_step`), with the estimator's regularisation
objects, so the toy tests exactly the mechanism the estimator uses.

Pairing: for a given seed, every configuration sees the same 20 training points, and every
mode of one architecture starts from the same initial weights, so differences between modes
are differences between the modes, not between draws.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..replica._regularisation import (
    AbstractRegularisation,
    DataReplicas,
    Dropout,
    NoRegularisation,
    ParameterNoise,
)
from ..replica._train import MeanSquaredError, predict_batch, regularised_step, replica_noise
from ._network import TOY_ACTIVATIONS, Dense1D, ToyNetwork, build_padded
from ._problem import ToyProblem


class StudySettings(eqx.Module):
    """Optimisation settings shared by every configuration (equal step budgets).

    Parameters
    ----------
    steps : int
        Optimiser steps per run (the talk: 10^6).
    batch_size : int
        Mini-batch size; batches are drawn with replacement from the n_train * copies
        inputs of the (possibly replicated) training set.
    learning_rate : float
        Adam's step size.
    n_seeds : int
        Independent runs per configuration (data, initialisation and noise).
    n_checkpoints : int
        Points at which the training and validation losses are recorded.
    """

    steps: int = eqx.field(static=True, default=100_000)
    batch_size: int = eqx.field(static=True, default=20)
    learning_rate: float = eqx.field(static=True, default=3e-3)
    n_seeds: int = eqx.field(static=True, default=10)
    n_checkpoints: int = eqx.field(static=True, default=50)

    def __check_init__(self):
        if min(self.steps, self.batch_size, self.n_seeds, self.n_checkpoints) < 1:
            raise ValueError("steps, batch_size, n_seeds and n_checkpoints must be >= 1")
        if self.steps % self.n_checkpoints:
            raise ValueError(
                f"steps ({self.steps}) must be a multiple of n_checkpoints ({self.n_checkpoints})"
            )
        if not self.learning_rate > 0:
            raise ValueError("learning_rate must be positive")


class Mode(NamedTuple):
    """A training mode: a label and the regularisation object that implements it."""

    label: str
    regularisation: AbstractRegularisation


def talk_modes(problem: ToyProblem, dropout_rate: float = 0.1) -> tuple[Mode, ...]:
    """The talk's modes. Replicas are fixed copies (``materialised``), as in the talk's
    inflated training set. First-layer parameter noise uses the scale implied by dx (bias
    noise W dx, dx ~ N(0, input_sigma^2)); all-layer noise puts independent noise of the
    same std on every weight and bias."""
    s = problem.input_sigma
    return (
        Mode("plain", NoRegularisation()),
        Mode("replicas n_s=1", DataReplicas(1, materialised=True)),
        Mode("replicas n_s=10", DataReplicas(10, materialised=True)),
        Mode("replicas n_s=100", DataReplicas(100, materialised=True)),
        Mode("param. noise, first layer", ParameterNoise(s, "first", through_weights=True)),
        Mode("param. noise, all layers", ParameterNoise(s, "all")),
        Mode(f"dropout {dropout_rate:g}", Dropout(dropout_rate)),
    )


class RunResult(NamedTuple):
    """One configuration (architecture, activation, mode) over all seeds. Losses are mean
    squared errors of f."""

    architecture: str
    activation: str
    mode: str
    n_parameters: int
    steps: np.ndarray
    """(n_checkpoints + 1,) step counts at which the losses were recorded (0: untrained)."""
    train_loss: np.ndarray
    """(n_seeds, n_checkpoints + 1) loss on the exact training points."""
    validation_loss: np.ndarray
    """(n_seeds, n_checkpoints + 1) loss against the noise-free f on the dense grid."""
    fitted: np.ndarray
    """(n_seeds, n_grid) the trained network on the grid."""
    train_x: np.ndarray
    train_y: np.ndarray
    dead_fraction: np.ndarray
    """(n_seeds,) share of hidden units that are dead at the end (see
    :meth:`ToyNetwork.dead_units`)."""
    dead_layer: np.ndarray
    """(n_seeds,) some hidden layer is entirely dead: the network is a constant."""
    mode_compile_seconds: float
    """Compilation time of the mode's training step (shared by all its configurations)."""
    mode_seconds_per_step: float
    """Wall time of one optimiser step of the mode, all its configurations and seeds
    together (compilation excluded)."""


class _State(NamedTuple):
    net: ToyNetwork
    opt_state: optax.OptState
    x: jax.Array
    y: jax.Array
    fixed_noise: jax.Array


def _mse(a, b):
    return jnp.mean((a - b) ** 2)


class _ModeRunner(NamedTuple):
    init: Callable
    advance: Callable
    finish: Callable


def _losses(problem: ToyProblem, state: _State, net: ToyNetwork):
    """MSE on the exact training points and on the noise-free validation grid."""
    x_grid, y_grid = (jnp.asarray(a) for a in problem.grid())
    return _mse(predict_batch(net, state.x), state.y), _mse(predict_batch(net, x_grid), y_grid)


@functools.cache
def _setup(problem: ToyProblem, width):
    """Compiled once per study: each run's training points and initial network, from the
    user's key (so every mode and every network sees the same points, and every mode of a
    network starts from the same weights)."""

    def one(seed_key, code):
        x, y = problem.training_points(jax.random.fold_in(seed_key, 0))
        return x, y, build_padded(code, width, jax.random.fold_in(seed_key, 1))

    return jax.jit(jax.vmap(one))


@functools.cache
def _init_and_finish(problem: ToyProblem, width, learning_rate: float, copies: int, fresh: bool):
    """The compiled set-up and wrap-up of a mode. They depend on the mode only through its
    number of copies and whether their noise is fixed, so modes share them (compiled once)."""
    opt = optax.adam(learning_rate)
    reg = DataReplicas(copies, materialised=not fresh)
    n_train = problem.n_train
    x_grid = jnp.asarray(problem.grid()[0])

    def init(noise_key, x, y, net):
        # Fixed copies are a table of copies x n_train draws (n_s = 100: 2000 numbers),
        # made once; fresh noise is drawn per checkpoint for all its steps at once.
        copy_ids, sample_ids = jnp.divmod(jnp.arange(n_train * copies), n_train)
        fixed = replica_noise(reg, noise_key, noise_key, sample_ids, copy_ids, ())
        state = _State(net, opt.init(eqx.filter(net, eqx.is_inexact_array)), x, y, fixed)
        return state, _losses(problem, state, net)

    def finish(state):
        dead = state.net.dead_units(x_grid)
        masks = state.net.unit_masks
        n_dead = sum(jnp.sum(d) for d in dead)
        n_units = sum(jnp.sum(m) for m in masks)
        whole = [jnp.sum(d) == jnp.sum(m) for d, m in zip(dead, masks, strict=True)]
        layer_dead = jnp.any(jnp.stack(whole))
        return predict_batch(state.net, x_grid), n_dead / n_units, layer_dead

    return jax.jit(jax.vmap(init)), jax.jit(jax.vmap(finish))


def _mode_runner(problem: ToyProblem, reg: AbstractRegularisation, settings, width, per_call):
    loss = MeanSquaredError()
    opt = optax.adam(settings.learning_rate)
    n_train, batch = problem.n_train, settings.batch_size
    n_pool = n_train * reg.copies
    sigma = problem.input_sigma if reg.noisy_copies else 0.0
    per_checkpoint = settings.steps // settings.n_checkpoints

    def step(state, xs):
        idx, noise, k = xs
        xb = state.x[idx % n_train] + sigma * noise
        net, opt_state, _ = regularised_step(
            reg, loss, opt, state.net, state.opt_state, xb, state.y[idx % n_train], k
        )
        return state._replace(net=net, opt_state=opt_state), None

    def checkpoint(state, k):
        k_idx, k_noise, k_steps = jax.random.split(k, 3)
        idx = jax.random.randint(k_idx, (per_checkpoint, batch), 0, n_pool)
        if reg.fresh_noise:
            noise = jax.random.normal(k_noise, idx.shape, jnp.float32)
        else:
            noise = state.fixed_noise[idx]
        state, _ = jax.lax.scan(
            step, state, (idx, noise, jax.random.split(k_steps, per_checkpoint))
        )
        return state, _losses(problem, state, state.net)

    def advance(state, seed_key, first):
        base = jax.random.fold_in(seed_key, 3)
        keys = jax.vmap(lambda i: jax.random.fold_in(base, first + i))(jnp.arange(per_call))
        return jax.lax.scan(checkpoint, state, keys)

    init, finish = _init_and_finish(
        problem, tuple(width), settings.learning_rate, reg.copies, reg.fresh_noise
    )
    return _ModeRunner(init, jax.jit(jax.vmap(advance, in_axes=(0, 0, None))), finish)


PRNG_IMPL = "unsafe_rbg"
"""Random-number generator of the training runs. XLA's RngBitGenerator compiles several
times faster on CPU than the default threefry (each threefry call inside the training step
adds about a second of compilation, and the step has several), and its streams are
deterministic for a given key on a given backend. The user's key (any implementation) only
seeds it, through :func:`_seed_keys`."""


def _seed_keys(key: jax.Array, n_seeds: int) -> jax.Array:
    """Seed i: ``fold_in(key, i)``, re-keyed for :data:`PRNG_IMPL`."""

    def one(i):
        bits = jax.random.bits(jax.random.fold_in(key, i), (4,), jnp.uint32)
        return jax.random.wrap_key_data(bits, impl=PRNG_IMPL)

    return jnp.stack([one(i) for i in range(n_seeds)])


class _Prepared(NamedTuple):
    """A mode ready to run: its compiled step, initial state and untrained losses."""

    mode: Mode
    runner: _ModeRunner
    advance: Callable
    state: _State
    seed_keys: jax.Array
    initial_losses: tuple[jax.Array, jax.Array]
    compile_seconds: float
    per_call: int


def _prepare(problem, architectures, mode, settings, key, per_call) -> _Prepared:
    if settings.n_checkpoints % per_call:
        raise ValueError("checkpoints_per_call must divide n_checkpoints")
    n_seeds = settings.n_seeds
    width = tuple(int(max(a.hidden[i] for a in architectures)) for i in range(2))
    codes = jnp.asarray(np.repeat(np.stack([a.encode() for a in architectures]), n_seeds, axis=0))
    user_keys = jax.vmap(lambda i: jax.random.fold_in(key, i))(jnp.arange(n_seeds))
    x, y, net = _setup(problem, width)(jnp.tile(user_keys, len(architectures)), codes)
    seed_keys = jnp.tile(_seed_keys(key, n_seeds), len(architectures))
    runner = _mode_runner(problem, mode.regularisation, settings, width, per_call)
    state, losses = runner.init(jax.vmap(lambda k: jax.random.fold_in(k, 2))(seed_keys), x, y, net)
    tic = time.perf_counter()
    advance = runner.advance.lower(state, seed_keys, jnp.int32(0)).compile()
    compile_seconds = time.perf_counter() - tic
    return _Prepared(mode, runner, advance, state, seed_keys, losses, compile_seconds, per_call)


def _execute(p: _Prepared, architectures, settings, progress=None) -> list[RunResult]:
    n_seeds, n_ck = settings.n_seeds, settings.n_checkpoints
    state, (t0, v0) = p.state, p.initial_losses
    train, val = [t0[:, None]], [v0[:, None]]
    run_seconds = 0.0
    for first in range(0, n_ck, p.per_call):
        tic = time.perf_counter()
        state, (tl, vl) = jax.block_until_ready(p.advance(state, p.seed_keys, jnp.int32(first)))
        run_seconds += time.perf_counter() - tic
        train.append(tl)
        val.append(vl)
        if progress is not None:
            progress.update(p.per_call)
    fitted, dead_fraction, dead_layer = (np.asarray(a) for a in p.runner.finish(state))
    train, val = np.concatenate(train, 1), np.concatenate(val, 1)
    if not (np.all(np.isfinite(train)) and np.all(np.isfinite(val))):
        raise FloatingPointError(f"non-finite loss in mode {p.mode.label}; lower the learning rate")
    steps = np.arange(n_ck + 1) * (settings.steps // n_ck)
    x, y = np.asarray(state.x), np.asarray(state.y)
    out = []
    for j, arch in enumerate(architectures):
        sl = slice(j * n_seeds, (j + 1) * n_seeds)
        out.append(
            RunResult(
                architecture=arch.label,
                activation=arch.activation,
                mode=p.mode.label,
                n_parameters=arch.n_parameters,
                steps=steps,
                train_loss=train[sl],
                validation_loss=val[sl],
                fitted=fitted[sl],
                train_x=x[sl],
                train_y=y[sl],
                dead_fraction=dead_fraction[sl],
                dead_layer=dead_layer[sl],
                mode_compile_seconds=p.compile_seconds,
                mode_seconds_per_step=run_seconds / settings.steps,
            )
        )
    return out


def train_mode(
    problem: ToyProblem,
    architectures: Sequence[Dense1D],
    mode: Mode,
    settings: StudySettings,
    key: jax.Array,
    *,
    checkpoints_per_call: int | None = None,
    progress=None,
) -> list[RunResult]:
    """Train every architecture (with its activation) in ``mode`` over ``settings.n_seeds``
    seeds: one compiled step, vmapped over all configurations and seeds.

    Seed i uses ``fold_in(key, i)`` in every configuration, so configurations are paired;
    the same ``key`` gives the same numbers. ``progress``: a tqdm bar to advance by one
    per checkpoint."""
    per_call = checkpoints_per_call or settings.n_checkpoints
    prepared = _prepare(problem, architectures, mode, settings, key, per_call)
    return _execute(prepared, architectures, settings, progress)


class StudyResult(NamedTuple):
    problem: ToyProblem
    settings: StudySettings
    runs: list[RunResult]

    def select(self, *, architecture=None, activation=None, mode=None) -> list[RunResult]:
        return [
            r
            for r in self.runs
            if architecture in (None, r.architecture)
            and activation in (None, r.activation)
            and mode in (None, r.mode)
        ]

    def one(self, architecture, activation, mode) -> RunResult:
        (r,) = self.select(architecture=architecture, activation=activation, mode=mode)
        return r


TALK_ARCHITECTURES: tuple[tuple[int, int], ...] = ((2, 2), (4, 4), (9, 9))
"""1-2-2-1 (13 parameters), 1-4-4-1 (33) and 1-9-9-1 (118)."""


def run_study(
    problem: ToyProblem,
    settings: StudySettings,
    key: jax.Array,
    *,
    hidden: Sequence[tuple[int, int]] = TALK_ARCHITECTURES,
    activations: Sequence[str] = TOY_ACTIVATIONS,
    modes: Sequence[Mode] | None = None,
    progress: bool = True,
    compile_workers: int = 2,
) -> StudyResult:
    """Every architecture x activation x mode, each over ``settings.n_seeds`` seeds; one
    compilation per mode (``compile_workers`` modes compile at once)."""
    modes = tuple(modes) if modes is not None else talk_modes(problem)
    architectures = [Dense1D(tuple(h), a) for h in hidden for a in activations]
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(modes) * settings.n_checkpoints, desc="toy study", unit="checkpoint")
    # Compile every mode first, two at a time (compilation is single-threaded), then run
    # the modes one after the other, so that each mode's time per step is its own.
    per_call = math.gcd(settings.n_checkpoints, 10)
    if bar is not None:
        bar.set_postfix_str(f"compiling {len(modes)} modes")
    with ThreadPoolExecutor(max_workers=compile_workers) as pool:
        prepared = list(
            pool.map(lambda m: _prepare(problem, architectures, m, settings, key, per_call), modes)
        )
    runs = []
    for p in prepared:
        if bar is not None:
            bar.set_postfix_str(p.mode.label)
        runs += _execute(p, architectures, settings, progress=bar)
    if bar is not None:
        bar.close()
    return StudyResult(problem, settings, runs)

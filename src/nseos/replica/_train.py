"""Training an ensemble of networks: bootstrap resamples, mini-batches, early stopping.

The functional core is :func:`train_ensemble`. Members are stacked along a leading axis and
trained together under :func:`eqx.filter_vmap`; each member has its own initialisation, its
own bootstrap resample of the training catalogues and its own mini-batch order and noise.
One epoch is one compiled ``lax.scan`` over mini-batches.
"""

from __future__ import annotations

import abc
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._typing import Array, Float, Int
from ._network import AbstractArchitecture, AbstractNetwork
from ._regularisation import AbstractRegularisation


class AbstractLoss(eqx.Module):
    name: eqx.AbstractClassVar[str]

    @abc.abstractmethod
    def __call__(self, predicted, target) -> Float[Array, ""]: ...


class MeanSquaredLogError(AbstractLoss):
    """mean (ln(1 + c_pred) - ln(1 + c_true))^2, Keras' ``msle``, as in the original study."""

    name: ClassVar[str] = "msle"

    def __call__(self, predicted, target):
        return jnp.mean((jnp.log1p(predicted) - jnp.log1p(target)) ** 2)


class MeanSquaredError(AbstractLoss):
    name: ClassVar[str] = "mse"

    def __call__(self, predicted, target):
        return jnp.mean((predicted - target) ** 2)


LOSSES = {c.name: c for c in (MeanSquaredLogError, MeanSquaredError)}


class TrainSettings(eqx.Module):
    """Optimisation settings.

    Parameters
    ----------
    epochs : int
        At most this many epochs; one epoch shows each training catalogue ``copies`` times
        (see the regularisation).
    batch_size : int
    learning_rate : float
        Adam's step size.
    validation_fraction : float
        Share of the *EoS* held out for validation (all catalogues of an EoS go to the same
        side, so the validation loss measures generalisation to new EoS).
    patience : int
        Stop when no member has improved its validation loss for this many epochs; each
        member keeps its best parameters.
    bootstrap : bool
        Give each member a bootstrap resample of the training catalogues.
    """

    epochs: int = eqx.field(static=True, default=200)
    batch_size: int = eqx.field(static=True, default=1000)
    learning_rate: float = eqx.field(static=True, default=1e-3)
    validation_fraction: float = eqx.field(static=True, default=0.1)
    patience: int = eqx.field(static=True, default=20)
    bootstrap: bool = eqx.field(static=True, default=True)

    def __check_init__(self):
        if self.epochs < 1 or self.batch_size < 1 or self.patience < 1:
            raise ValueError("epochs, batch_size and patience must be at least 1")
        if not 0.0 < self.validation_fraction < 1.0:
            raise ValueError("validation_fraction must lie in (0, 1)")
        if not self.learning_rate > 0.0:
            raise ValueError("learning_rate must be positive")


class History(NamedTuple):
    """Per-epoch losses, shaped (epochs_run, n_models)."""

    train_loss: np.ndarray
    validation_loss: np.ndarray
    best_epoch: np.ndarray
    """Epoch (0-based) whose parameters each member kept."""
    initial_validation_loss: np.ndarray
    """Each member's validation loss before training (the untrained baseline)."""


class Catalogues(NamedTuple):
    """Training inputs before noise: (n, N, 2) truths (M, R) and sigmas, (n, K) targets."""

    truth: Float[Array, "n N 2"]
    sigma: Float[Array, "n N 2"]
    target: Float[Array, "n K"]

    def __len__(self) -> int:
        return self.truth.shape[0]


def catalogue_features(truth, sigma, noise) -> Float[Array, "... N 4"]:
    """Observed (M, R) = truth + sigma * noise, with the sigmas, stars sorted by observed
    mass: the network's input layout."""
    obs = truth + sigma * noise
    feats = jnp.concatenate([obs, sigma], axis=-1)
    order = jnp.argsort(obs[..., 0], axis=-1)
    return jnp.take_along_axis(feats, order[..., None], axis=-2)


def replica_noise(
    reg: AbstractRegularisation, step_key, noise_key, sample, copy, shape: tuple[int, ...]
) -> Float[Array, "batch ..."]:
    """Standard-normal noise, of ``shape`` per input, for a mini-batch of (training input,
    copy) pairs.

    Fresh noise comes from the mini-batch's own key; fixed ("materialised") noise from
    ``noise_key`` folded with the input's index and the copy number, so copy c of input s
    is the same array in every epoch and for every ensemble member. Catalogues use
    ``shape = (n_stars, 2)``, the 1-D toy study ``shape = ()``.
    """
    shape = tuple(shape)
    if reg.fresh_noise:
        return jax.random.normal(step_key, (sample.shape[0], *shape), jnp.float32)

    def one(s, c):
        k = jax.random.fold_in(jax.random.fold_in(noise_key, s), c)
        return jax.random.normal(k, shape, jnp.float32)

    return jax.vmap(one)(sample, copy)


def predict_batch(net: AbstractNetwork, x, dropout_rate=0.0, key=None):
    """``net`` over the leading axis of ``x``; inverted dropout with per-input masks when
    keyed."""
    if key is None:
        return jax.vmap(lambda xi: net(xi))(x)
    keys = jax.random.split(key, x.shape[0])
    return jax.vmap(lambda xi, k: net(xi, dropout_rate=dropout_rate, key=k))(x, keys)


def regularised_step(
    reg: AbstractRegularisation, loss: AbstractLoss, opt, net, opt_state, x, y, key
):
    """One optimiser step on the mini-batch ``(x, y)``: the regularisation perturbs the
    parameters (gradient taken at the perturbed point) and sets the dropout rate; the
    inputs' noise is the caller's (see :func:`replica_noise`). The one training step of
    both the estimator and the 1-D toy study."""
    rate = reg.dropout_rate
    k_par, k_drop = jax.random.split(key)

    def objective(net):
        perturbed = reg.perturb(net, k_par)
        return loss(predict_batch(perturbed, x, rate, k_drop if rate > 0 else None), y)

    value, grads = eqx.filter_value_and_grad(objective)(net)
    updates, opt_state = opt.update(grads, opt_state, eqx.filter(net, eqx.is_inexact_array))
    return eqx.apply_updates(net, updates), opt_state, value


def _make_epoch(reg: AbstractRegularisation, loss: AbstractLoss, opt, steps: int, batch: int):
    copies = reg.copies

    def member_epoch(net, opt_state, key, sample_index, data: Catalogues, noise_key):
        n_train = sample_index.shape[0]
        k_perm, k_steps = jax.random.split(key)
        order = jax.random.permutation(k_perm, n_train * copies)[: steps * batch]
        order = order.reshape(steps, batch)
        n_star = data.truth.shape[1]

        def step(carry, xs):
            net, opt_state = carry
            idx, k = xs
            sample = sample_index[idx % n_train]
            copy = idx // n_train
            k_noise, k_step = jax.random.split(k)
            noise = replica_noise(reg, k_noise, noise_key, sample, copy, (n_star, 2))
            x = catalogue_features(data.truth[sample], data.sigma[sample], noise)
            net, opt_state, value = regularised_step(
                reg, loss, opt, net, opt_state, x, data.target[sample], k_step
            )
            return (net, opt_state), value

        (net, opt_state), values = jax.lax.scan(
            step, (net, opt_state), (order, jax.random.split(k_steps, steps))
        )
        return net, opt_state, jnp.mean(values)

    return member_epoch


def train_ensemble(
    architecture: AbstractArchitecture,
    data: Catalogues,
    validation: Catalogues,
    key: jax.Array,
    *,
    n_models: int,
    regularisation: AbstractRegularisation,
    loss: AbstractLoss,
    settings: TrainSettings,
    cs2_range: tuple[float, float],
    progress: bool = True,
) -> tuple[AbstractNetwork, History]:
    """Train ``n_models`` networks; returns the stacked ensemble (best validation epoch of
    each member) and the loss history."""
    n_train, n_star, _ = data.truth.shape
    n_out = data.target.shape[-1]
    if n_train < 1 or len(validation) < 1:
        raise ValueError("training and validation sets must not be empty")
    k_init, k_boot, k_noise, k_val, k_epochs = jax.random.split(key, 5)
    nets = eqx.filter_vmap(lambda k: architecture.build(n_star, n_out, cs2_range, k))(
        jax.random.split(k_init, n_models)
    )
    opt = optax.adam(settings.learning_rate)
    opt_states = jax.vmap(opt.init)(eqx.filter(nets, eqx.is_array))
    if settings.bootstrap:
        sample_index = jax.random.randint(k_boot, (n_models, n_train), 0, n_train)
    else:
        sample_index = jnp.broadcast_to(jnp.arange(n_train), (n_models, n_train))
    batch = min(settings.batch_size, n_train * regularisation.copies)
    steps = max(1, (n_train * regularisation.copies) // batch)
    member_epoch = _make_epoch(regularisation, loss, opt, steps, batch)
    epoch = eqx.filter_jit(
        eqx.filter_vmap(member_epoch, in_axes=(eqx.if_array(0), eqx.if_array(0), 0, 0, None, None))
    )
    # One fixed noisy realisation of the validation catalogues, as for real data.
    val_x = catalogue_features(
        validation.truth,
        validation.sigma,
        jax.random.normal(k_val, validation.truth.shape, jnp.float32),
    )

    @eqx.filter_jit
    def val_loss(nets):
        return eqx.filter_vmap(lambda n: loss(predict_batch(n, val_x), validation.target))(nets)

    initial_loss = np.asarray(val_loss(nets))
    best_nets, best_loss = nets, np.full(n_models, np.inf)
    best_epoch = np.zeros(n_models, int)
    train_hist, val_hist = [], []
    epochs = range(settings.epochs)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = epochs = tqdm(epochs, desc=f"training {n_models} networks", unit="epoch")
    for e in epochs:
        nets, opt_states, train_l = epoch(
            nets,
            opt_states,
            jax.random.split(jax.random.fold_in(k_epochs, e), n_models),
            sample_index,
            data,
            k_noise,
        )
        v = np.asarray(val_loss(nets))
        improved = v < best_loss
        best_loss = np.where(improved, v, best_loss)
        best_epoch = np.where(improved, e, best_epoch)
        best_nets = _select(jnp.asarray(improved), nets, best_nets)
        train_hist.append(np.asarray(train_l))
        val_hist.append(v)
        if bar is not None:
            bar.set_postfix(train=f"{np.mean(train_l):.2e}", val=f"{np.mean(v):.2e}")
        if np.all(e - best_epoch >= settings.patience):
            break
    if bar is not None:
        bar.close()
    if not np.all(np.isfinite(best_loss)):
        bad = np.flatnonzero(~np.isfinite(best_loss)).tolist()
        raise FloatingPointError(
            f"ensemble members {bad} never reached a finite validation loss; lower the "
            "learning rate or check the training data"
        )
    return best_nets, History(np.array(train_hist), np.array(val_hist), best_epoch, initial_loss)


def _select(mask, new, old):
    """Per member (leading axis): ``new`` where ``mask``, else ``old``."""

    def pick(a, b):
        if not eqx.is_array(a):
            return a
        return jnp.where(mask.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)

    return jax.tree.map(pick, new, old)


def split_by_eos(n_eos: int, fraction: float, key) -> tuple[Int[Array, " a"], Int[Array, " b"]]:
    """Indices of training and validation EoS (at least one of each)."""
    perm = np.asarray(jax.random.permutation(key, n_eos))
    n_val = min(max(1, round(fraction * n_eos)), n_eos - 1)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])

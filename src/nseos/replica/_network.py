"""Networks of the NN-replica estimator: catalogue of N stars -> c_s^2 of the K segments.

Architectures are objects (:class:`MLP`, the original; :class:`DeepSets`, permutation
invariant) that build an equinox network. Inputs are (M, R, sigma_M, sigma_R) per star, put
on O(1) scales by :data:`FEATURE_CENTRE` / :data:`FEATURE_SCALE`; outputs are squashed by
tanh onto the c_s^2 range [low, high] of the training prior.
"""

from __future__ import annotations

import abc
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._typing import Array, Float

FEATURE_CENTRE = np.array([1.5, 12.0, 0.2, 1.5], np.float32)
FEATURE_SCALE = np.array([0.5, 2.0, 0.1, 0.5], np.float32)
"""Standardisation of (M [M_sun], R [km], sigma_M [M_sun], sigma_R [km]): fixed physical
scales (the centre and half-width of the mock protocol's ranges), not fitted to the data, so
a saved network needs no extra state."""

ACTIVATIONS: dict[str, Callable] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "silu": jax.nn.silu,
    "softplus": jax.nn.softplus,
    "leaky_relu": jax.nn.leaky_relu,
    "sigmoid": jax.nn.sigmoid,
}
"""Activations a saved network can name (its JSON header stores the name)."""


def activation_name(fn: Callable) -> str:
    for name, f in ACTIVATIONS.items():
        if f is fn:
            return name
    raise ValueError(f"activation {fn!r} is not one of {sorted(ACTIVATIONS)}")


def _dense_stack(sizes, key) -> list[eqx.nn.Linear]:
    keys = jax.random.split(key, len(sizes) - 1)
    return [
        eqx.nn.Linear(a, b, key=k, dtype=jnp.float32)
        for a, b, k in zip(sizes[:-1], sizes[1:], keys, strict=True)
    ]


def _hidden(layers, x, activation, dropout_rate, key, dropout_after=None):
    """Apply all but the last layer with activation, and inverted dropout when keyed after
    the hidden layers listed in ``dropout_after`` (None: all of them)."""
    for i, layer in enumerate(layers[:-1]):
        x = activation(layer(x))
        if dropout_after is None or i in dropout_after:
            x = dropout(x, dropout_rate, key, i)
    return x


def dropout(x, rate: float, key, layer: int):
    """Inverted dropout of hidden layer ``layer`` (identity when unkeyed or rate 0)."""
    if key is None or rate <= 0.0:
        return x
    keep = jax.random.bernoulli(jax.random.fold_in(key, layer), 1.0 - rate, x.shape)
    return jnp.where(keep, x / (1.0 - rate), 0.0)


class AbstractNetwork(eqx.Module):
    """A network: standardised features (n_stars, 4) -> c_s^2 (K,)."""

    cs2_low: eqx.AbstractVar[float]
    cs2_high: eqx.AbstractVar[float]

    @abc.abstractmethod
    def raw(self, x, *, dropout_rate: float = 0.0, key=None) -> Float[Array, " K"]:
        """Unsquashed outputs from standardised features."""

    @abc.abstractmethod
    def first_layer_path(self) -> Callable:
        """``where`` for :func:`eqx.tree_at`: the first linear layer, the one whose bias
        noise is the analogue of input noise."""

    def __call__(
        self, features: Float[Array, "n_stars 4"], *, dropout_rate: float = 0.0, key=None
    ) -> Float[Array, " K"]:
        x = (jnp.asarray(features, jnp.float32) - FEATURE_CENTRE[None]) / FEATURE_SCALE[None]
        y = jnp.tanh(self.raw(x, dropout_rate=dropout_rate, key=key))
        return self.cs2_low + (self.cs2_high - self.cs2_low) * 0.5 * (y + 1.0)


class MLPNetwork(AbstractNetwork):
    layers: list[eqx.nn.Linear]
    activation: Callable = eqx.field(static=True)
    cs2_low: float = eqx.field(static=True)
    cs2_high: float = eqx.field(static=True)

    def raw(self, x, *, dropout_rate=0.0, key=None):
        h = _hidden(self.layers, x.reshape(-1), self.activation, dropout_rate, key)
        return self.layers[-1](h)

    def first_layer_path(self):
        return lambda net: net.layers[0]


class DeepSetsNetwork(AbstractNetwork):
    phi: list[eqx.nn.Linear]
    rho: list[eqx.nn.Linear]
    activation: Callable = eqx.field(static=True)
    cs2_low: float = eqx.field(static=True)
    cs2_high: float = eqx.field(static=True)

    def raw(self, x, *, dropout_rate=0.0, key=None):
        k_phi = k_rho = None
        if key is not None:
            k_phi, k_rho = jax.random.split(key)
        per_star = jax.vmap(
            lambda s: self.activation(
                self.phi[-1](_hidden(self.phi, s, self.activation, dropout_rate, k_phi))
            )
        )(x)
        pooled = jnp.mean(per_star, axis=0)
        return self.rho[-1](_hidden(self.rho, pooled, self.activation, dropout_rate, k_rho))

    def first_layer_path(self):
        return lambda net: net.phi[0]


class AbstractArchitecture(eqx.Module):
    """A recipe for a network; :meth:`build` makes a freshly initialised one."""

    activation: eqx.AbstractVar[Callable]

    @abc.abstractmethod
    def build(
        self, n_stars: int, n_outputs: int, cs2_range: tuple[float, float], key
    ) -> AbstractNetwork: ...

    @abc.abstractmethod
    def describe(self) -> dict:
        """A JSON-able description from which :func:`architecture_from_description` rebuilds
        the recipe."""

    @property
    def permutation_invariant(self) -> bool:
        return False


class MLP(AbstractArchitecture):
    """The original network: 4N inputs (stars sorted by mass), hidden layers 60-40-40 with
    ReLU, K tanh outputs mapped onto the c_s^2 range (arXiv:1711.06748, Table I)."""

    hidden: tuple[int, ...] = eqx.field(static=True, default=(60, 40, 40))
    activation: Callable = eqx.field(static=True, default=jax.nn.relu)

    def build(self, n_stars, n_outputs, cs2_range, key):
        sizes = (4 * n_stars, *self.hidden, n_outputs)
        lo, hi = map(float, cs2_range)
        return MLPNetwork(
            layers=_dense_stack(sizes, key), activation=self.activation, cs2_low=lo, cs2_high=hi
        )

    def describe(self):
        return {
            "kind": "MLP",
            "hidden": list(self.hidden),
            "activation": activation_name(self.activation),
        }


class DeepSets(AbstractArchitecture):
    """Permutation-invariant variant (Zaheer et al. 2017, arXiv:1703.06114): a per-star
    network phi, a mean over the stars, and a network rho on the pooled features. It needs
    no sorting and accepts any number of stars."""

    phi_hidden: tuple[int, ...] = eqx.field(static=True, default=(64, 64))
    rho_hidden: tuple[int, ...] = eqx.field(static=True, default=(64, 40))
    activation: Callable = eqx.field(static=True, default=jax.nn.relu)

    def build(self, n_stars, n_outputs, cs2_range, key):
        k_phi, k_rho = jax.random.split(key)
        phi = _dense_stack((4, *self.phi_hidden), k_phi)
        rho = _dense_stack((self.phi_hidden[-1], *self.rho_hidden, n_outputs), k_rho)
        lo, hi = map(float, cs2_range)
        return DeepSetsNetwork(
            phi=phi, rho=rho, activation=self.activation, cs2_low=lo, cs2_high=hi
        )

    def describe(self):
        return {
            "kind": "DeepSets",
            "phi_hidden": list(self.phi_hidden),
            "rho_hidden": list(self.rho_hidden),
            "activation": activation_name(self.activation),
        }

    @property
    def permutation_invariant(self) -> bool:
        return True


def architecture_from_description(d: dict) -> AbstractArchitecture:
    """Inverse of :meth:`AbstractArchitecture.describe`."""
    act = ACTIVATIONS[d["activation"]]
    if d["kind"] == "MLP":
        return MLP(hidden=tuple(d["hidden"]), activation=act)
    if d["kind"] == "DeepSets":
        return DeepSets(
            phi_hidden=tuple(d["phi_hidden"]), rho_hidden=tuple(d["rho_hidden"]), activation=act
        )
    raise ValueError(f"unknown architecture {d['kind']!r}")

"""Small fully connected networks 1-H1-H2-1 for the 1-D study, padded to one shape.

Every architecture and activation of the study is the same padded network: hidden layers
of the largest width, a 0/1 mask that switches off the units a smaller architecture does
not have, and an activation chosen by index. So one compiled training step serves all
(architecture, activation) configurations, vmapped together with the seeds. A masked unit
outputs zero, passes no gradient and keeps its (irrelevant) weights; the masks and the
activation index are integer arrays, so optimisers and parameter noise leave them alone.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._typing import Array, Bool, Float, Int
from ..replica._network import ACTIVATIONS, _dense_stack, dropout

TOY_ACTIVATIONS: tuple[str, ...] = ("relu", "leaky_relu", "sigmoid")
"""The talk's activations, in the order :attr:`ToyNetwork.activation_index` counts them."""


class ToyNetwork(eqx.Module):
    """f(x) for a scalar x; the call signature of the estimator's networks, so the same
    regularisation objects and training step apply."""

    layers: list[eqx.nn.Linear]
    unit_masks: list[Int[Array, " width"]]
    activation_index: Int[Array, ""]
    activations: tuple[str, ...] = eqx.field(static=True)
    dropout_after: tuple[int, ...] = eqx.field(static=True)

    def activation(self, z):
        fns = [ACTIVATIONS[name] for name in self.activations]
        return jax.lax.switch(self.activation_index, fns, z)

    def __call__(self, x: Float[Array, ""], *, dropout_rate: float = 0.0, key=None):
        h = x[None]
        for i, (layer, mask) in enumerate(zip(self.layers[:-1], self.unit_masks, strict=True)):
            h = self.activation(layer(h)) * mask
            if i in self.dropout_after:
                h = dropout(h, dropout_rate, key, i)
        return self.layers[-1](h)[0]

    def first_layer_path(self) -> Callable:
        return lambda net: net.layers[0]

    def preactivations(self, x: Float[Array, " n"]) -> list[Float[Array, "n width"]]:
        """Each hidden layer's pre-activations at the points ``x`` (no dropout)."""

        def one(xi):
            out, h = [], xi[None]
            for layer, mask in zip(self.layers[:-1], self.unit_masks, strict=True):
                z = layer(h)
                out.append(z)
                h = self.activation(z) * mask
            return out

        return jax.vmap(one)(x)

    def dead_units(
        self, x: Float[Array, " n"], threshold: float = 1e-3
    ) -> list[Bool[Array, " width"]]:
        """Per hidden layer, whether each (unmasked) unit is dead on the points ``x``: its
        activation's slope stays below ``threshold`` times the activation's steepest slope
        at every point. A dead unit passes no gradient, so training cannot revive it. ReLU
        units die when their pre-activation is negative everywhere; leaky ReLU units never
        die (slope 0.01 of the maximum); sigmoid units only when saturated, |z| > 8.3."""
        slope = jax.vmap(jax.grad(self.activation))
        probe = jnp.linspace(-10.0, 10.0, 2001, dtype=jnp.float32)
        steepest = jnp.max(slope(probe))
        out = []
        for z, mask in zip(self.preactivations(x), self.unit_masks, strict=True):
            s = slope(z.reshape(-1)).reshape(z.shape)
            out.append(jnp.all(s < threshold * steepest, axis=0) & (mask > 0))
        return out


class Dense1D(eqx.Module):
    """Recipe for a 1-H1-H2-1 network with a named activation.

    Parameters
    ----------
    hidden : tuple[int, int]
        Hidden-layer widths; (9, 9) is the talk's over-parameterised 1-9-9-1.
    activation : str
        One of :data:`TOY_ACTIVATIONS`.
    """

    hidden: tuple[int, int] = eqx.field(static=True, default=(9, 9))
    activation: str = eqx.field(static=True, default="relu")

    def __check_init__(self):
        if len(self.hidden) != 2 or min(self.hidden) < 1:
            raise ValueError(f"hidden must be two widths >= 1, not {self.hidden}")
        if self.activation not in TOY_ACTIVATIONS:
            raise ValueError(
                f"activation must be one of {TOY_ACTIVATIONS}, not {self.activation!r}"
            )

    @property
    def label(self) -> str:
        return "-".join(map(str, (1, *self.hidden, 1)))

    @property
    def n_parameters(self) -> int:
        sizes = (1, *self.hidden, 1)
        return sum((a + 1) * b for a, b in itertools.pairwise(sizes))

    def encode(self) -> np.ndarray:
        """(h1, h2, activation index): the numbers :func:`build_padded` takes."""
        return np.array([*self.hidden, TOY_ACTIVATIONS.index(self.activation)], np.int32)


def build_padded(
    code: Int[Array, " 3"],
    width: tuple[int, int],
    key,
    dropout_after: tuple[int, ...] = (0,),
) -> ToyNetwork:
    """A freshly initialised network for the encoded recipe (see :meth:`Dense1D.encode`),
    padded to ``width``; traceable, so it vmaps over recipes.

    Initialisation is equinox's default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and
    biases, with the architecture's own fan-in (not the padded one). ``dropout_after``
    lists the hidden layers followed by dropout when training asks for it; the default
    (0,) is the talk's 1-9-(dropout)-9-1.
    """
    sizes = (1, *width, 1)
    layers = _dense_stack(sizes, key)
    true_in = (1, code[0], code[1])
    padded_in = sizes[:-1]
    masks = [(jnp.arange(w) < code[i]).astype(jnp.int32) for i, w in enumerate(width)]
    scaled = []
    for layer, n_true, n_pad in zip(layers, true_in, padded_in, strict=True):
        factor = jnp.sqrt(n_pad / jnp.asarray(n_true, jnp.float32))
        scaled.append(
            eqx.tree_at(
                lambda lin: (lin.weight, lin.bias),
                layer,
                (layer.weight * factor, layer.bias * factor),
            )
        )
    index = jnp.asarray(code[2], jnp.int32)
    return ToyNetwork(scaled, masks, index, TOY_ACTIVATIONS, dropout_after)

"""Noise regularisation: one mechanism for the NN-replica estimator and the 1-D toy study.

Every object answers three questions that the training loop asks once per mini-batch:

* how many noisy copies of each training input make up an epoch (:attr:`copies`), and
  whether a copy's noise is fixed in advance ("materialised", the original study's copies)
  or drawn afresh for every mini-batch (:attr:`fresh_noise`); the noise itself is always
  Gaussian with each input's own sigma, drawn from keys, so nothing is stored;
* how to perturb the network's parameters for this mini-batch (:meth:`perturb`);
* which dropout rate to apply (:attr:`dropout_rate`).

Without :class:`DataReplicas`, each input gets one noisy copy, fixed for the whole training:
the data the network sees are one noisy realisation, as for a real catalogue.

**References:** Fujimoto, Fukushima and Murase, arXiv:1711.06748 (replicas, n_s = 100) and
arXiv:1903.03400 (noise injection vs. dropout); Bishop 1995 (training with noise is
Tikhonov regularisation).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar, Literal

import equinox as eqx
import jax


class AbstractRegularisation(eqx.Module):
    """What the training loop does to the data and the network for each mini-batch."""

    name: eqx.AbstractClassVar[str]

    @property
    def copies(self) -> int:
        """Noisy copies of every training input per epoch."""
        return 1

    @property
    def fresh_noise(self) -> bool:
        """Draw the inputs' noise afresh for each mini-batch (else: fixed per copy)."""
        return False

    @property
    def dropout_rate(self) -> float:
        return 0.0

    def perturb(self, network, key):
        """The network to use for this mini-batch (unchanged unless overridden)."""
        return network

    def describe(self) -> dict:
        return {"kind": type(self).__name__, **{k: getattr(self, k) for k in self._fields()}}

    @classmethod
    def _fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))


class NoRegularisation(AbstractRegularisation):
    """One fixed noisy copy of each input, nothing else."""

    name: ClassVar[str] = "none"


class DataReplicas(AbstractRegularisation):
    """Each observation copied ``n_s`` times with Gaussian noise of its own sigma.

    Parameters
    ----------
    n_s : int
        Copies per observation and epoch (the original: 100).
    materialised : bool
        False (default): fresh noise for every mini-batch, i.e. an unlimited supply of
        copies, n_s of them per epoch, with nothing stored. True: n_s fixed copies, the same
        in every epoch, exactly as the original study's enlarged training set (the copies
        are drawn from per-(input, copy) keys, so they are not stored either).
    """

    name: ClassVar[str] = "data replicas"
    n_s: int = eqx.field(static=True, default=100)
    materialised: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if self.n_s < 1:
            raise ValueError("DataReplicas needs n_s >= 1")

    @property
    def copies(self):
        return self.n_s

    @property
    def fresh_noise(self):
        return not self.materialised


class ParameterNoise(AbstractRegularisation):
    """Gaussian noise of standard deviation ``scale`` added to the network's parameters,
    drawn once per mini-batch (the gradient is taken at the perturbed point).

    ``layers="first"`` perturbs only the first layer's biases: for a linear first layer,
    noise on the inputs is noise on those biases (W(x + e) + b = Wx + (b + We)), which is
    why the original talk equates input noise with first-layer bias noise. ``"all"``
    perturbs every weight and bias.
    """

    name: ClassVar[str] = "parameter noise"
    scale: float = eqx.field(static=True, default=0.1)
    layers: Literal["first", "all"] = eqx.field(static=True, default="first")

    def __check_init__(self):
        if not self.scale >= 0.0:
            raise ValueError("ParameterNoise needs scale >= 0")
        if self.layers not in ("first", "all"):
            raise ValueError(f"layers must be 'first' or 'all', not {self.layers!r}")

    def perturb(self, network, key):
        if self.layers == "first":
            where = network.first_layer_bias_path()
            bias = where(network)
            noise = self.scale * jax.random.normal(key, bias.shape, bias.dtype)
            return eqx.tree_at(where, network, bias + noise)
        params, static = eqx.partition(network, eqx.is_inexact_array)
        leaves, tree = jax.tree.flatten(params)
        keys = jax.random.split(key, len(leaves))
        noisy = [
            x + self.scale * jax.random.normal(k, x.shape, x.dtype)
            for x, k in zip(leaves, keys, strict=True)
        ]
        return eqx.combine(jax.tree.unflatten(tree, noisy), static)


class Dropout(AbstractRegularisation):
    """Inverted dropout on every hidden layer during training (Srivastava et al. 2014)."""

    name: ClassVar[str] = "dropout"
    rate: float = eqx.field(static=True, default=0.1)

    def __check_init__(self):
        if not 0.0 <= self.rate < 1.0:
            raise ValueError("Dropout rate must lie in [0, 1)")

    @property
    def dropout_rate(self):
        return self.rate


REGULARISATIONS = {c.__name__: c for c in (NoRegularisation, DataReplicas, ParameterNoise, Dropout)}


def regularisation_from_description(d: dict) -> AbstractRegularisation:
    d = dict(d)
    cls = REGULARISATIONS.get(d.pop("kind"))
    if cls is None:
        raise ValueError(f"unknown regularisation in {d}")
    return cls(**d)

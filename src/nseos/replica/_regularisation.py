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
import jax.flatten_util


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

    @property
    def noisy_copies(self) -> bool:
        """Whether this regulariser puts Gaussian noise on the inputs' copies.

        Only :class:`DataReplicas` does. The estimator's inputs are observations, which
        always carry their own noise, so it does not ask; a problem whose inputs are exact
        (the 1-D toy study) adds input noise only when this is True.
        """
        return False

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

    @property
    def noisy_copies(self):
        return True


class ParameterNoise(AbstractRegularisation):
    """Gaussian noise added to the network's parameters, drawn once per mini-batch (the
    gradient is taken at the perturbed point).

    Parameters
    ----------
    scale : float
        Standard deviation of the noise.
    layers : {"first", "all"}
        ``"first"`` perturbs only the first layer's biases: for a linear first layer, noise
        on the inputs is noise on those biases, W(x + dx) + b = Wx + (b + W dx), which is
        why the original talk equates input noise with first-layer bias noise. ``"all"``
        perturbs every weight and bias with independent noise of std ``scale``.
    through_weights : bool
        Only with ``layers="first"``. False (default): independent noise of std ``scale``
        on each bias. True: the bias noise is W dx with dx ~ N(0, scale^2) per input, i.e.
        exactly the image of input noise of std ``scale`` (the "scale implied by dx"),
        with its correlations across units, but one draw per mini-batch instead of one
        per input.
    """

    name: ClassVar[str] = "parameter noise"
    scale: float = eqx.field(static=True, default=0.1)
    layers: Literal["first", "all"] = eqx.field(static=True, default="first")
    through_weights: bool = eqx.field(static=True, default=False)

    def __check_init__(self):
        if not self.scale >= 0.0:
            raise ValueError("ParameterNoise needs scale >= 0")
        if self.layers not in ("first", "all"):
            raise ValueError(f"layers must be 'first' or 'all', not {self.layers!r}")
        if self.through_weights and self.layers != "first":
            raise ValueError("through_weights=True needs layers='first'")

    def perturb(self, network, key):
        if self.layers == "first":
            where = network.first_layer_path()
            layer = where(network)
            if self.through_weights:
                dx = self.scale * jax.random.normal(key, layer.weight.shape[1:], layer.bias.dtype)
                noise = layer.weight @ dx
            else:
                noise = self.scale * jax.random.normal(key, layer.bias.shape, layer.bias.dtype)
            return eqx.tree_at(lambda n: where(n).bias, network, layer.bias + noise)
        params, static = eqx.partition(network, eqx.is_inexact_array)
        flat, unravel = jax.flatten_util.ravel_pytree(params)
        # One draw for all parameters (one random-number call, not one per array).
        noise = self.scale * jax.random.normal(key, flat.shape, flat.dtype)
        return eqx.combine(unravel(flat + noise), static)


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

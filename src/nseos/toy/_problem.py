"""The 1-D problem of the noise-injection study: an "expensive" function known at 20 points.

**References:** Fujimoto, Fukushima and Murase, arXiv:1903.03400 (and the accompanying talk):
a deliberately small regression problem on which data replicas, parameter noise and dropout
can be compared at equal cost.
"""

from __future__ import annotations

import abc

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._typing import Array, Float


class AbstractTarget(eqx.Module):
    """The function to learn, f: R -> R."""

    @abc.abstractmethod
    def __call__(self, x: Float[Array, "*shape"]) -> Float[Array, "*shape"]: ...


class SpectralPeaks(AbstractTarget):
    """A spectral-function-like target: a sum of Breit-Wigner (Lorentzian) peaks,
    f(x) = sum_k h_k G_k^2 / ((x - x_k)^2 + G_k^2), with peak heights h_k at x_k and
    half-widths G_k.

    The default has a sharp, a medium and a broad peak on [-1, 1], so that a 1-2-2-1
    network cannot resolve all three, a 1-4-4-1 network just can, and a 1-9-9-1 network
    can also thread through 20 points in ways that do not generalise.
    """

    centres: tuple[float, ...] = eqx.field(static=True, default=(-0.55, 0.05, 0.6))
    half_widths: tuple[float, ...] = eqx.field(static=True, default=(0.08, 0.2, 0.1))
    heights: tuple[float, ...] = eqx.field(static=True, default=(1.0, 0.6, 0.8))

    def __check_init__(self):
        if not len(self.centres) == len(self.half_widths) == len(self.heights):
            raise ValueError("centres, half_widths and heights need the same length")
        if min(self.half_widths) <= 0:
            raise ValueError("half-widths must be positive")

    def __call__(self, x):
        x = jnp.asarray(x)[..., None]
        shape = (1,) * (x.ndim - 1) + (-1,)
        c, g, h = (
            jnp.asarray(v, x.dtype).reshape(shape)
            for v in (self.centres, self.half_widths, self.heights)
        )
        return jnp.sum(h * g**2 / ((x - c) ** 2 + g**2), axis=-1)


class ToyProblem(eqx.Module):
    """Training points, their input noise and the validation grid.

    Parameters
    ----------
    target : AbstractTarget
    n_train : int
        Points at which f is "computed" (the talk: 20), drawn uniformly on the domain.
    input_sigma : float
        Standard deviation of the noise dx placed on x by the replicas (and implied for
        first-layer parameter noise).
    domain : tuple[float, float]
    n_grid : int
        Points of the dense, noise-free validation grid.
    """

    target: AbstractTarget = SpectralPeaks()
    n_train: int = eqx.field(static=True, default=20)
    input_sigma: float = eqx.field(static=True, default=0.05)
    domain: tuple[float, float] = eqx.field(static=True, default=(-1.0, 1.0))
    n_grid: int = eqx.field(static=True, default=401)

    def __check_init__(self):
        if self.n_train < 1 or self.n_grid < 2:
            raise ValueError("n_train must be >= 1 and n_grid >= 2")
        if not self.input_sigma >= 0.0:
            raise ValueError("input_sigma must be >= 0")
        if not self.domain[0] < self.domain[1]:
            raise ValueError("domain must be (low, high) with low < high")

    def training_points(self, key) -> tuple[Float[Array, " n"], Float[Array, " n"]]:
        """``n_train`` random x, one uniform in each of ``n_train`` equal bins of the domain
        (stratified, so no seed leaves a large stretch of the domain without data), and the
        exact f(x)."""
        lo, hi = self.domain
        u = jax.random.uniform(key, (self.n_train,), jnp.float32)
        x = lo + (jnp.arange(self.n_train, dtype=jnp.float32) + u) * ((hi - lo) / self.n_train)
        return x, self.target(x)

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """The dense validation grid and the noise-free f on it."""
        x = np.linspace(*self.domain, self.n_grid, dtype=np.float32)
        with jax.ensure_compile_time_eval():  # concrete even when called while tracing
            y = np.asarray(self.target(jnp.asarray(x)))
        return x, y

"""Gridded kernel density estimates: built once in NumPy, evaluated in JAX (jit/vmap/grad).

A posterior given as samples becomes a likelihood through a kernel density estimate (KDE).
Evaluating a KDE sum over 20 000 samples at every likelihood call is too slow, so the KDE is
tabulated once on a regular grid and interpolated:

1. the samples are *whitened*, u = W (x - mean) with W = chol(Cov)^-1, so one isotropic
   bandwidth suits correlated posteriors (NICER's M and R correlate at rho = 0.8);
2. the (optionally weighted) samples are linearly binned onto the grid (each sample's weight is
   shared between the 2^d surrounding nodes, which preserves its mean);
3. the binned counts are convolved with a Gaussian kernel of width h (Scott's rule,
   h = n_eff^(-1/(d+4)) in whitened units), one axis at a time, exactly (a dense kernel matrix
   per axis, no FFT wrap-around);
4. the log of the density is stored; queries use cubic convolution (Catmull-Rom) interpolation,
   which is C^1, so likelihood gradients are continuous;
5. a *defensive* Gaussian of weight 1e-4 and twice the samples' spread is mixed in. Far
   from the samples a KDE is set by a handful of draws and then by nothing at all; the
   Gaussian gives the tails a smooth, monotonic shape instead (so a sampler that starts far
   away is still pulled towards the data), and changes the density by less than 1 % out to
   about 4 standard deviations.

The density is returned in the original coordinates (the Jacobian |det W| is included), so a
KDE of samples from N(mu, Sigma) approximates N(mu, (1 + h^2) Sigma): the usual KDE bias,
which for 20 000 samples in 2-D is a 3.7 % wider distribution.

**References:** D. W. Scott, *Multivariate Density Estimation* (Wiley 1992), Ch. 6 (rule of
thumb); M. P. Wand, J. Comput. Graph. Stat. 3, 433 (1994) (binned KDE); R. Keys, IEEE Trans.
ASSP 29, 1153 (1981) (cubic convolution).
"""

from __future__ import annotations

import math

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .._typing import Array, Float, Int

LOG_DENSITY_FLOOR_BELOW_PEAK = 80.0
"""Grid values are floored at exp(-80) times the peak density (to keep the logarithm finite);
the defensive Gaussian exceeds the floor everywhere on the grid, so the floor never shows."""
DEFENSIVE_WEIGHT = 1e-4
"""Weight of the defensive Gaussian in the mixture."""
DEFENSIVE_SCALE = 2.0
"""The defensive Gaussian's standard deviations, in units of the samples' own."""
_GRID_PADDING_BANDWIDTHS = 4.0
"""The grid extends 4 bandwidths beyond the outermost sample, where the kernel is exp(-8)."""


class GriddedKDE(eqx.Module):
    """A log-density tabulated on a regular grid in whitened coordinates.

    Build it with :func:`fit_gridded_kde`; call it with points of shape (..., d) in the
    original coordinates to get ln p of shape (...).
    """

    mean: Float[Array, " d"]
    whitening: Float[Array, "d d"]
    origin: Float[Array, " d"]
    spacing: Float[Array, " d"]
    log_density: Float[Array, ...]
    log_jacobian: Float[Array, ""]
    floor: Float[Array, ""]
    grid_shape: Int[Array, " d"]
    """Nodes per axis that hold the density; ``log_density`` may be larger (padded with the
    floor, see :meth:`padded`) so that KDEs of different sizes stack for ``vmap``."""
    bandwidth: float = eqx.field(static=True)
    effective_sample_size: float = eqx.field(static=True)

    @property
    def ndim(self) -> int:
        return self.mean.shape[0]

    def __call__(self, x: Float[Array, "... d"]) -> Float[Array, ...]:
        x = jnp.asarray(x)
        lead = x.shape[:-1]

        def lift(v):  # (d,) -> (1, ..., 1, d): explicit broadcasting against x
            return v.reshape((1,) * len(lead) + v.shape)

        u = jnp.einsum("ij,...j->...i", self.whitening, x - lift(self.mean))
        pos = (u - lift(self.origin)) / lift(self.spacing)
        n = lift(self.grid_shape)
        inside = jnp.all((pos >= 0) & (pos <= n - 1), axis=-1)
        value = interpolate_grid(self.log_density, pos, n)
        kde = jnp.where(inside, jnp.maximum(value, self.floor), -jnp.inf)
        tail = -0.5 * jnp.sum(u * u, axis=-1) / DEFENSIVE_SCALE**2 - self.ndim * math.log(
            math.sqrt(2.0 * math.pi) * DEFENSIVE_SCALE
        )
        mixed = jnp.logaddexp(
            kde + math.log1p(-DEFENSIVE_WEIGHT), tail + math.log(DEFENSIVE_WEIGHT)
        )
        return mixed + self.log_jacobian

    def padded(self, shape: tuple[int, ...]) -> GriddedKDE:
        """The same density on a grid enlarged to ``shape`` (the new nodes hold the floor and
        count as outside, so the values are unchanged)."""
        extra = [(0, n - m) for n, m in zip(shape, self.log_density.shape, strict=True)]
        if any(e < 0 for _, e in extra):
            raise ValueError(f"cannot pad a grid of shape {self.log_density.shape} to {shape}")
        table = jnp.pad(self.log_density, extra, constant_values=self.floor)
        return eqx.tree_at(lambda k: k.log_density, self, table)


def interpolate_grid(table: Float[Array, ...], pos: Float[Array, "... d"], grid_shape=None):
    """Cubic convolution (Catmull-Rom) interpolation of ``table`` at fractional node
    positions ``pos`` (C^1; positions beyond the outer nodes extrapolate the edge cells).
    ``grid_shape`` (default: the table's) is the part of the table that holds values."""
    lead, ndim = pos.shape[:-1], table.ndim
    shape = table.shape
    n = jnp.asarray(shape) if grid_shape is None else jnp.asarray(grid_shape)
    n = n.reshape((1,) * (pos.ndim - n.ndim) + n.shape)
    base = jnp.clip(jnp.floor(pos), 1, n - 3).astype(int)
    t = pos - base
    flat = table.reshape(-1)
    # Tensor product of per-axis 4-point stencils, built by broadcasting.
    index = jnp.zeros(lead + (1,) * ndim, dtype=int)
    weight = jnp.ones(lead + (1,) * ndim)
    offsets = jnp.arange(-1, 3).reshape((1,) * len(lead) + (4,))
    stride = 1
    for axis in reversed(range(ndim)):
        expand = (1,) * axis + (4,) + (1,) * (ndim - 1 - axis)
        idx = base[..., axis, None] + offsets
        w = _catmull_rom_weights(t[..., axis])
        index = index + (stride * idx).reshape(lead + expand)
        weight = weight * w.reshape(lead + expand)
        stride *= shape[axis]
    return jnp.sum(weight * flat[index], axis=tuple(range(-ndim, 0)))


def _catmull_rom_weights(t):
    """Weights of the nodes -1, 0, 1, 2 for cubic convolution (a = -1/2) at offset t in [0, 1]."""
    t2, t3 = t * t, t * t * t
    return jnp.stack(
        [
            -0.5 * t3 + t2 - 0.5 * t,
            1.5 * t3 - 2.5 * t2 + 1.0,
            -1.5 * t3 + 2.0 * t2 + 0.5 * t,
            0.5 * t3 - 0.5 * t2,
        ],
        axis=-1,
    )


def fit_gridded_kde(
    samples: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    max_nodes_per_axis: int | None = None,
    nodes_per_bandwidth: float = 4.0,
    bandwidth: float | None = None,
) -> GriddedKDE:
    """Tabulate a Gaussian KDE of ``samples`` (shape (n, d)) on a grid.

    Parameters
    ----------
    samples : ndarray, shape (n, d)
        Posterior draws.
    weights : ndarray, shape (n,), optional
        Non-negative sample weights (for example 1 / analysis prior).
    max_nodes_per_axis : int, optional
        Cap on the grid size per axis (default 256 in 1-2 D, 64 in 3 D, 28 in 4 D, so the
        grid stays below a few MB).
    nodes_per_bandwidth : float
        Grid nodes per kernel bandwidth before the cap applies.
    bandwidth : float, optional
        Kernel width in whitened units; Scott's rule n_eff^(-1/(d+4)) by default.
    """
    x = np.asarray(samples, dtype=float)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError("samples must have shape (n, d) with n >= 2")
    n, d = x.shape
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (n,) or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError("weights must be finite, non-negative, not all zero, one per sample")
    if not np.all(np.isfinite(x)):
        raise ValueError("samples contain NaN or infinite values")
    w = w / w.sum()
    n_eff = 1.0 / np.sum(w * w)
    mean = w @ x
    cov = (x - mean).T @ ((x - mean) * w[:, None]) * n_eff / max(n_eff - 1.0, 1.0)
    try:
        chol = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        raise ValueError("the samples are degenerate (singular covariance)") from None
    whitening = np.linalg.inv(chol)
    u = (x - mean) @ whitening.T
    h = float(n_eff ** (-1.0 / (d + 4))) if bandwidth is None else float(bandwidth)
    cap = max_nodes_per_axis or {1: 256, 2: 256, 3: 64}.get(d, 28)
    lo = u.min(axis=0) - _GRID_PADDING_BANDWIDTHS * h
    hi = u.max(axis=0) + _GRID_PADDING_BANDWIDTHS * h
    nodes = np.minimum(np.ceil((hi - lo) / h * nodes_per_bandwidth).astype(int) + 1, cap)
    nodes = np.maximum(nodes, 8)
    spacing = (hi - lo) / (nodes - 1)

    # Linear binning onto the 2^d surrounding nodes.
    pos = (u - lo) / spacing
    base = np.clip(np.floor(pos).astype(int), 0, nodes - 2)
    frac = pos - base
    counts = np.zeros(tuple(nodes))
    for corner in np.ndindex(*(2,) * d):
        c = np.asarray(corner)
        share = np.prod(np.where(c == 1, frac, 1.0 - frac), axis=1) * w
        np.add.at(counts, tuple((base + c).T), share)

    # Exact separable Gaussian smoothing, one dense kernel matrix per axis.
    density = counts
    for axis in range(d):
        grid = np.arange(nodes[axis]) * spacing[axis]
        kernel = np.exp(-0.5 * ((grid[:, None] - grid[None, :]) / h) ** 2)
        kernel /= np.sqrt(2.0 * np.pi) * h
        density = np.moveaxis(np.tensordot(kernel, density, axes=([1], [axis])), 0, axis)
    peak = density.max()
    log_density = np.log(np.maximum(density, peak * np.exp(-LOG_DENSITY_FLOOR_BELOW_PEAK)))
    _, logdet_w = np.linalg.slogdet(whitening)
    return GriddedKDE(
        mean=jnp.asarray(mean),
        whitening=jnp.asarray(whitening),
        origin=jnp.asarray(lo),
        spacing=jnp.asarray(spacing),
        log_density=jnp.asarray(log_density),
        log_jacobian=jnp.asarray(logdet_w),
        floor=jnp.asarray(np.log(peak) - LOG_DENSITY_FLOOR_BELOW_PEAK),
        grid_shape=jnp.asarray(nodes, dtype=int),
        bandwidth=h,
        effective_sample_size=float(n_eff),
    )

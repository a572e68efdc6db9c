"""The observation interface shared by every kind of data."""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Hashable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp

from .. import units
from .._typing import Array, Float

BUCHDAHL_COMPACTNESS = 4.0 / 9.0
"""No static fluid star is more compact than G M / (R c^2) = 4/9 (Buchdahl 1959), i.e.
R > 9/4 G M / c^2."""


class ObservationError(ValueError):
    """An observation or observation file is invalid; the message names the field or row."""


def buchdahl_radius_km(mass_msun: float) -> float:
    """The Buchdahl limit 9/4 G M / c^2 in km."""
    return mass_msun * units.SOLAR_MASS_KM / BUCHDAHL_COMPACTNESS


def check_positive(value: float, field: str, where: str) -> float:
    """``value`` as a float if finite and > 0, else an :class:`ObservationError`."""
    v = float(value)
    if not math.isfinite(v):
        raise ObservationError(f"{where}: {field} is {value!r}; it must be a finite number")
    if v <= 0:
        raise ObservationError(f"{where}: {field} = {v:g} must be positive")
    return v


def check_finite(value: float, field: str, where: str) -> float:
    """``value`` as a float if finite, else an :class:`ObservationError`."""
    v = float(value)
    if not math.isfinite(v):
        raise ObservationError(f"{where}: {field} is {value!r}; it must be a finite number")
    return v


class AbstractObservation(eqx.Module):
    """One measurement. ``name`` labels it in tables, plots and diagnostics."""

    name: eqx.AbstractVar[str]

    @property
    @abc.abstractmethod
    def kind(self) -> str:
        """A short label for tables: ``mass_radius``, ``mass``, ``mass_radius_samples``,
        ``tidal``."""

    @abc.abstractmethod
    def summary(self) -> dict[str, float | str]:
        """Mean / spread numbers for a table (M in M_sun, R in km)."""


class AbstractStarObservation(AbstractObservation):
    """A measurement of one star: its log-likelihood given the star's M, R and Lambda."""

    @abc.abstractmethod
    def log_likelihood(
        self,
        mass_msun: Float[Array, ...],
        radius_km: Float[Array, ...],
        tidal_deformability: Float[Array, ...],
    ) -> Float[Array, ...]:
        """ln L of the data given a star with these properties (any matching shapes)."""

    @abc.abstractmethod
    def mass_support_msun(self) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """Masses outside this range contribute negligibly (< e^-30 of the peak); the
        marginalisation over the star's mass integrates only over it (over the whole branch
        when the branch misses it, so the likelihood stays finite)."""

    def batch_key(self) -> Hashable | None:
        """Observations of one class with equal keys are integrated along the branch as one
        vmapped block (see :meth:`stack`): XLA on a CPU is bound by the number of small
        operations, so four NICER stars cost about a third as much that way. None (the
        default) integrates this observation on its own."""
        return None

    @classmethod
    def stack(cls, observations: Sequence[AbstractStarObservation]) -> AbstractStarObservation:
        """One observation whose array fields carry a leading axis over ``observations``
        (all of this class, with one batch key), for ``jax.vmap``. Its static fields are the
        first one's, so the methods of a class with a batch key must use array fields only."""
        return stack_modules(observations)

    def log_mass_integral(self, lo_msun, hi_msun) -> Float[Array, ""] | None:
        """ln of the integral of the likelihood over the mass from ``lo_msun`` to
        ``hi_msun``, in closed form, for observations that depend on the mass alone; None
        (the default) where there is no closed form and the likelihood integrates by
        quadrature along the branch."""
        return None


class AbstractBinaryObservation(AbstractObservation):
    """A measurement of a binary (two stars), parameterised by chirp mass and mass ratio."""

    @abc.abstractmethod
    def log_likelihood(
        self,
        chirp_mass_msun: Float[Array, ...],
        mass_ratio: Float[Array, ...],
        lambda1: Float[Array, ...],
        lambda2: Float[Array, ...],
    ) -> Float[Array, ...]:
        """ln L given the binary's source-frame chirp mass, q = m2/m1 <= 1 and both Lambdas."""

    @abc.abstractmethod
    def chirp_mass_support_msun(self) -> tuple[float, float]:
        """Range of source-frame chirp mass to integrate over."""

    @abc.abstractmethod
    def mass_ratio_support(self) -> tuple[float, float]:
        """Range of q = m2 / m1 to integrate over (upper end 1)."""

    def chirp_mass_marginal(self) -> tuple[float, Callable] | None:
        """``(Mc_ref, f)``, where f(q, lambda1, lambda2) is ln of the likelihood integrated
        over the chirp mass with the components' Lambdas those at ``Mc_ref`` [M_sun]; None
        (the default) where the observation offers no such marginal."""
        return None


def stack_modules(modules: Sequence[eqx.Module]) -> eqx.Module:
    """Modules of one structure and leaf shapes, stacked leaf by leaf along a new first
    axis (static fields from the first)."""
    leaves = [jax.tree_util.tree_leaves(m) for m in modules]
    treedef = jax.tree_util.tree_structure(modules[0])
    stacked = [jnp.stack([jnp.asarray(v) for v in column]) for column in zip(*leaves, strict=True)]
    return jax.tree_util.tree_unflatten(treedef, stacked)


def component_masses(chirp_mass_msun, mass_ratio):
    """(m1, m2) from the chirp mass and q = m2/m1: m1 = Mc (1+q)^(1/5) q^(-3/5)."""
    m1 = chirp_mass_msun * (1.0 + mass_ratio) ** 0.2 * mass_ratio ** (-0.6)
    return m1, mass_ratio * m1


def chirp_mass(m1, m2):
    """Chirp mass (m1 m2)^(3/5) / (m1 + m2)^(1/5)."""
    return (m1 * m2) ** 0.6 / (m1 + m2) ** 0.2


def lambda_tilde(m1, m2, lambda1, lambda2):
    """The binary tidal deformability of Flanagan & Hinderer (2008) (arXiv:0709.1915), in
    the form of Favata, PRL 112, 101101 (2014), Eq. 5."""
    m = m1 + m2
    return (
        16.0
        / 13.0
        * ((m1 + 12.0 * m2) * m1**4 * lambda1 + (m2 + 12.0 * m1) * m2**4 * lambda2)
        / m**5
    )

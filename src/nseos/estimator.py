"""The interface both estimators share: observations in, :class:`EoSPosterior` out."""

from __future__ import annotations

import abc

import equinox as eqx
import jax

from .observations import ObservationSet
from .posterior import EoSPosterior


class AbstractEstimator(eqx.Module):
    """Observations in, EoS posterior out: :class:`nseos.bayes.BayesianEstimator` and
    :class:`nseos.replica.ReplicaEstimator` implement it."""

    @abc.abstractmethod
    def fit(self, observations: ObservationSet, *, key: jax.Array) -> EoSPosterior:
        """Infer the EoS from the observations."""

"""The interface both estimators share: observations in, :class:`EoSPosterior` out."""

from __future__ import annotations

import abc
from typing import ClassVar

import equinox as eqx
import jax

from .observations import ObservationSet
from .posterior import EoSPosterior

OBSERVATION_KINDS = ("mass_radius", "mass", "mass_radius_samples", "tidal")
"""Every kind of observation nseos reads (``AbstractObservation.kind``)."""


class AbstractEstimator(eqx.Module):
    """Observations in, EoS posterior out: :class:`nseos.bayes.BayesianEstimator` and
    :class:`nseos.replica.ReplicaEstimator` implement it.

    ``fit`` takes the same arguments for every estimator; what differs between estimators
    (sampler, number of prior draws stored with the posterior, ...) lives in the estimator
    object. Each estimator declares the observation kinds it can use
    (``supported_kinds``); :meth:`check_observations` refuses the others, naming the kind
    and what to do instead (``unsupported_hint``).
    """

    supported_kinds: ClassVar[tuple[str, ...]] = OBSERVATION_KINDS
    unsupported_hint: ClassVar[str] = ""

    @abc.abstractmethod
    def fit(self, observations: ObservationSet, *, key: jax.Array) -> EoSPosterior:
        """Infer the EoS from the observations."""

    def check_observations(self, observations: ObservationSet) -> None:
        """Raise ValueError unless ``observations`` is a non-empty ObservationSet of kinds
        this estimator supports."""
        if not isinstance(observations, ObservationSet) or len(observations) == 0:
            raise ValueError("fit needs a non-empty ObservationSet")
        unsupported = [o for o in observations if o.kind not in self.supported_kinds]
        if unsupported:
            kinds = sorted({o.kind for o in unsupported})
            names = ", ".join(o.name for o in unsupported)
            raise ValueError(
                f"{type(self).__name__} cannot use {' or '.join(map(repr, kinds))} "
                f"observations ({names}); it takes {', '.join(self.supported_kinds)}. "
                f"{self.unsupported_hint}".strip()
            )

"""Observations of neutron stars and their likelihoods given an EoS.

* Types: :class:`MassRadiusGaussian`, :class:`MassRadiusSamples`, :class:`PulsarMass`,
  :class:`TidalDeformability`, collected in an :class:`ObservationSet`.
* Files: :func:`load` (CSV of Gaussian rows, or a TOML manifest pointing to sample files).
* Mock data: :func:`mock_observations` (the protocol of Fujimoto, Fukushima and Murase).
* Likelihoods: :class:`Likelihood` (mass-marginalised along the stable branch, or with
  latent masses), with explicit mass priors (:class:`UniformMass`, :class:`GaussianMass`).

Bundled real data live in :mod:`nseos.catalogs`.
"""

from ._base import AbstractBinaryObservation as AbstractBinaryObservation
from ._base import AbstractObservation as AbstractObservation
from ._base import AbstractStarObservation as AbstractStarObservation
from ._base import ObservationError as ObservationError
from ._base import buchdahl_radius_km as buchdahl_radius_km
from ._base import component_masses as component_masses
from ._base import lambda_tilde as lambda_tilde
from ._files import load as load
from ._gaussian import MassRadiusGaussian as MassRadiusGaussian
from ._gaussian import PulsarMass as PulsarMass
from ._kde import GriddedKDE as GriddedKDE
from ._kde import fit_gridded_kde as fit_gridded_kde
from ._likelihood import BinaryQuadrature as BinaryQuadrature
from ._likelihood import BranchQuadrature as BranchQuadrature
from ._likelihood import Likelihood as Likelihood
from ._likelihood import LikelihoodStatus as LikelihoodStatus
from ._likelihood import LogLikelihood as LogLikelihood
from ._likelihood import count_failures as count_failures
from ._mock import MockObservations as MockObservations
from ._mock import mock_observations as mock_observations
from ._priors import AbstractErrorDistribution as AbstractErrorDistribution
from ._priors import AbstractMassPrior as AbstractMassPrior
from ._priors import GaussianMass as GaussianMass
from ._priors import UniformError as UniformError
from ._priors import UniformMass as UniformMass
from ._samples import AbstractAnalysisPrior as AbstractAnalysisPrior
from ._samples import CallableAnalysisPrior as CallableAnalysisPrior
from ._samples import FlatComponentTidalPrior as FlatComponentTidalPrior
from ._samples import MassRadiusSamples as MassRadiusSamples
from ._samples import TidalDeformability as TidalDeformability
from ._set import GaussianReductionWarning as GaussianReductionWarning
from ._set import ObservationSet as ObservationSet

"""The Bayesian estimator: NUTS (NumPyro or BlackJAX) over the EoS parameters, with explicit
priors, and ArviZ-ready output (:class:`nseos.posterior.EoSPosterior`)."""

from ._batch import UniverseDraws as UniverseDraws
from ._batch import sample_universes as sample_universes
from ._estimator import AbstractEstimator as AbstractEstimator
from ._estimator import BayesianEstimator as BayesianEstimator
from ._priors import AbstractEoSPrior as AbstractEoSPrior
from ._priors import ChiEFTBand as ChiEFTBand
from ._priors import ChiEFTConstrained as ChiEFTConstrained
from ._priors import LogUniformSoundSpeed as LogUniformSoundSpeed
from ._priors import ProbitInterval as ProbitInterval
from ._priors import UniformSoundSpeed as UniformSoundSpeed
from ._samplers import AbstractSampler as AbstractSampler
from ._samplers import BlackJAXNUTS as BlackJAXNUTS
from ._samplers import NumPyroNUTS as NumPyroNUTS
from ._samplers import SamplerResult as SamplerResult
from ._samplers import forward_mode_gradient as forward_mode_gradient
from ._samplers import run_chains as run_chains

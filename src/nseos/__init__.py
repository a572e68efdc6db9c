"""nseos: neutron-star equation-of-state inference in JAX.

The package reads like the physics, bottom-up:

* :mod:`nseos.units`: constants and conversions (geometric units, km, M_sun, MeV fm^-3);
* :mod:`nseos.eos`: equations of state (tables, piecewise polytropes, the speed-of-sound
  segments of Fujimoto, Fukushima and Murase);
* :mod:`nseos.tov`: the differentiable TOV + tidal solver and mass-radius sequences;
* :mod:`nseos.observations`, :mod:`nseos.catalogs`: data, mock catalogues, likelihoods;
* :mod:`nseos.bayes`, :mod:`nseos.replica`: the two estimators, sharing
  :class:`nseos.estimator.AbstractEstimator` and returning :class:`nseos.posterior.EoSPosterior`;
* :mod:`nseos.cli`: the ``nseos`` command.

nseos needs float64. It never switches JAX to 64-bit behind your back: call
``jax.config.update("jax_enable_x64", True)`` first (the CLI does this itself).
"""

from . import eos as eos
from . import tov as tov
from . import units as units
from ._config import PrecisionError as PrecisionError
from ._config import enable_compilation_cache as enable_compilation_cache
from ._config import require_x64 as require_x64

__version__ = "0.1.0"

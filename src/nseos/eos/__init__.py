"""Equations of state: the abstract interface and the bundled families.

Every EoS is an equinox module parameterised by the pseudo-enthalpy h (see
:class:`AbstractEOS`), so it can be vmapped and differentiated.
"""

from ._base import AbstractEOS as AbstractEOS
from ._base import EOSState as EOSState
from ._errors import AcausalEOSWarning as AcausalEOSWarning
from ._errors import EOSValidationError as EOSValidationError
from ._polytrope import PiecewisePolytrope as PiecewisePolytrope
from ._polytrope import polytrope as polytrope
from ._polytrope import read2009 as read2009
from ._polytrope import read2009_named as read2009_named
from ._polytrope import read2009_parameters as read2009_parameters
from ._reference import REFERENCE_EOS_NAMES as REFERENCE_EOS_NAMES
from ._reference import reference_eos as reference_eos
from ._reference import sly4 as sly4
from ._speed_of_sound import DEFAULT_BOUNDARIES_RHO0 as DEFAULT_BOUNDARIES_RHO0
from ._speed_of_sound import SpeedOfSoundSegments as SpeedOfSoundSegments
from ._speed_of_sound import sly4_crust as sly4_crust
from ._tabulated import DEFAULT_CAUSALITY_TOLERANCE as DEFAULT_CAUSALITY_TOLERANCE
from ._tabulated import Tabulated as Tabulated
from ._uniform import UniformDensity as UniformDensity

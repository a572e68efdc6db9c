"""The TOV solver: stellar structure and tidal deformability in pseudo-enthalpy."""

from ._at_mass import solve_at_mass as solve_at_mass
from ._curve import DEFAULT_N_STARS as DEFAULT_N_STARS
from ._curve import BranchPoint as BranchPoint
from ._curve import MassRadiusCurve as MassRadiusCurve
from ._curve import TOVSolveError as TOVSolveError
from ._curve import check_curve as check_curve
from ._curve import mass_radius_curve as mass_radius_curve
from ._curve import placed_mass_radius_curve as placed_mass_radius_curve
from ._solver import RK4 as RK4
from ._solver import SolveStatus as SolveStatus
from ._solver import StarSolution as StarSolution
from ._solver import solve_star as solve_star

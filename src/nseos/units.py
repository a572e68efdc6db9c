"""Physical constants and unit conversions: the one place where numbers with units live.

nseos works internally in geometric units (G = c = 1) with lengths in kilometres, so masses
are in km (G M / c^2) and pressures and energy densities are in km^-2 (G p / c^4). Public
functions take and return physical units, with the unit in the name (``radius_km``,
``mass_msun``, ``pressure_mev_fm3``). Every conversion happens through the constants below.

Sources
-------
* c, G: CODATA 2018 (``G = 6.67430e-11 m^3 kg^-1 s^-2``; c is exact).
* e (for MeV -> J): exact since the 2019 SI redefinition.
* G M_sun / c^2 = 1.4766250 km: IAU 2015 Resolution B3 nominal solar mass parameter
  GM_sun = 1.3271244e20 m^3 s^-2, divided by c^2.
* Nuclear saturation: rho0 c^2 with rho0 = 2.7e14 g cm^-3 (the convention of Fujimoto,
  Fukushima and Murase, arXiv:1711.06748) and n0 = 0.16 fm^-3.
"""

from __future__ import annotations

from typing import Final

# --- fundamental constants (SI) -------------------------------------------------------------
SPEED_OF_LIGHT_M_S: Final = 299_792_458.0
"""Speed of light in vacuum [m s^-1] (exact, SI)."""
GRAVITATIONAL_CONSTANT_SI: Final = 6.67430e-11
"""Newton's constant [m^3 kg^-1 s^-2] (CODATA 2018)."""
ELEMENTARY_CHARGE_C: Final = 1.602176634e-19
"""Elementary charge [C] (exact, SI); 1 MeV = 1.602176634e-13 J."""
SOLAR_MASS_PARAMETER_M3_S2: Final = 1.3271244e20
"""Nominal solar mass parameter G M_sun [m^3 s^-2] (IAU 2015 Resolution B3)."""

# --- derived conversions ---------------------------------------------------------------------
SOLAR_MASS_KM: Final = SOLAR_MASS_PARAMETER_M3_S2 / SPEED_OF_LIGHT_M_S**2 / 1e3
"""G M_sun / c^2 in km (= 1.4766250 km)."""

MEV_FM3_TO_PA: Final = ELEMENTARY_CHARGE_C * 1e6 * 1e45
"""1 MeV fm^-3 in Pa (J m^-3) = 1.602176634e32."""
MEV_FM3_TO_DYN_CM2: Final = MEV_FM3_TO_PA * 10.0
"""1 MeV fm^-3 in dyn cm^-2 = 1.602176634e33."""
MEV_FM3_TO_G_CM3: Final = MEV_FM3_TO_PA / SPEED_OF_LIGHT_M_S**2 * 1e-3
"""An energy density of 1 MeV fm^-3 divided by c^2, in g cm^-3 (= 1.782662e12)."""
MEV_FM3_TO_GEOMETRIC_KM2: Final = (
    MEV_FM3_TO_PA * GRAVITATIONAL_CONSTANT_SI / SPEED_OF_LIGHT_M_S**4 * 1e6
)
"""1 MeV fm^-3 as a geometric pressure G p / c^4 in km^-2 (= 1.32379e-6 km^-2)."""

# --- nuclear reference densities ------------------------------------------------------------
SATURATION_MASS_DENSITY_G_CM3: Final = 2.7e14
"""rho0 = 2.7e14 g cm^-3, the saturation density used by Fujimoto, Fukushima and Murase."""
SATURATION_ENERGY_DENSITY_MEV_FM3: Final = SATURATION_MASS_DENSITY_G_CM3 / MEV_FM3_TO_G_CM3
"""rho0 c^2 in MeV fm^-3 (= 151.46)."""
SATURATION_NUMBER_DENSITY_FM3: Final = 0.16
"""n0 = 0.16 fm^-3."""


# --- conversions as functions (work on floats, numpy and jax arrays alike) ----------------------
def mev_fm3_to_geometric(value_mev_fm3):
    """Convert a pressure or energy density from MeV fm^-3 to geometric km^-2."""
    return value_mev_fm3 * MEV_FM3_TO_GEOMETRIC_KM2


def geometric_to_mev_fm3(value_km2):
    """Convert a geometric pressure or energy density from km^-2 to MeV fm^-3."""
    return value_km2 / MEV_FM3_TO_GEOMETRIC_KM2


def g_cm3_to_mev_fm3(value_g_cm3):
    """Convert a mass density (or energy density / c^2) from g cm^-3 to MeV fm^-3."""
    return value_g_cm3 / MEV_FM3_TO_G_CM3


def mev_fm3_to_g_cm3(value_mev_fm3):
    """Convert an energy density from MeV fm^-3 to a mass density in g cm^-3."""
    return value_mev_fm3 * MEV_FM3_TO_G_CM3


def dyn_cm2_to_mev_fm3(value_dyn_cm2):
    """Convert a pressure from dyn cm^-2 to MeV fm^-3."""
    return value_dyn_cm2 / MEV_FM3_TO_DYN_CM2


def msun_to_km(mass_msun):
    """Convert a mass from solar masses to geometric km (G M / c^2)."""
    return mass_msun * SOLAR_MASS_KM


def km_to_msun(mass_km):
    """Convert a geometric mass in km (G M / c^2) to solar masses."""
    return mass_km / SOLAR_MASS_KM

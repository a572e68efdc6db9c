"""Units: the conversion factors against the values quoted in shared/data/README.md."""

import numpy as np

from nseos import units


def test_solar_mass_length():
    assert np.isclose(units.SOLAR_MASS_KM, 1.4766250, rtol=2e-8)


def test_energy_density_to_mass_density():
    assert np.isclose(units.MEV_FM3_TO_G_CM3, 1.782662e12, rtol=1e-6)


def test_geometric_pressure():
    # 1 m^-2 (G p / c^4) = 7.55382e11 MeV fm^-3, and 1 km^-2 = 1e-6 m^-2.
    per_m2 = 1e6 / units.MEV_FM3_TO_GEOMETRIC_KM2  # 1 m^-2 = 1e6 km^-2
    assert np.isclose(per_m2, 7.55382e11, rtol=1e-6)
    x = 123.4
    assert np.isclose(units.geometric_to_mev_fm3(units.mev_fm3_to_geometric(x)), x)


def test_saturation_energy_density():
    # rho0 c^2 with rho0 = 2.7e14 g cm^-3 is about 151.5 MeV fm^-3.
    assert np.isclose(units.SATURATION_ENERGY_DENSITY_MEV_FM3, 151.46, atol=0.01)


def test_pressure_units():
    assert np.isclose(units.dyn_cm2_to_mev_fm3(1.602176634e33), 1.0)
    assert np.isclose(units.km_to_msun(units.msun_to_km(1.4)), 1.4)

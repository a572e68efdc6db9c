"""Many universes through one compiled NUTS program (nseos.bayes.sample_universes)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from nseos.bayes import BayesianEstimator, NumPyroNUTS, sample_universes
from nseos.observations import MassRadiusGaussian, ObservationSet
from nseos.tov import RK4
from nseos.validation import radii_at_masses


def _stars(radius_km: float, names: str = "star") -> ObservationSet:
    masses = (1.2, 1.35, 1.5, 1.65, 1.8)
    return ObservationSet(
        [MassRadiusGaussian(f"{names}-{i}", m, 0.05, radius_km, 0.2) for i, m in enumerate(masses)]
    )


def test_universes_of_different_structure_are_refused():
    est = BayesianEstimator(sampler=NumPyroNUTS(5, 5, 1, progress=False))
    with pytest.raises(ValueError, match="same structure"):
        sample_universes(est, [_stars(11.0), _stars(11.0, names="other")], jax.random.key(0))
    with pytest.raises(ValueError, match="at least one"):
        sample_universes(est, [], jax.random.key(0))


@pytest.mark.slow
def test_each_universe_is_fitted_to_its_own_data():
    """Three universes in two chunks (the last one padded): compact stars (R = 10.5 km), wide
    ones (13 km), compact again. Each posterior's R(1.5) must follow its own data, so a mix-up
    of the batched observations (or of the padding) cannot pass."""
    est = BayesianEstimator(sampler=NumPyroNUTS(150, 100, 2, progress=False))
    sets = [_stars(10.5), _stars(13.0), _stars(10.5)]
    draws = sample_universes(est, sets, jax.random.key(1), chunk_size=2, progress=False)
    assert draws.params.shape == (3, 2, 100, 5)
    assert draws.diverging.shape == draws.n_steps.shape == (3, 2, 100)
    flat = jnp.asarray(draws.params.reshape(-1, 5))
    r = np.asarray(radii_at_masses(est.make_eos, flat, jnp.array([1.5]), 100, RK4()))
    median = np.nanmedian(r.reshape(3, -1), axis=1)
    assert abs(median[0] - 10.5) < 0.4 and abs(median[2] - 10.5) < 0.4, median
    assert abs(median[1] - 13.0) < 0.4, median

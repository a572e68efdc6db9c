"""Observations given as posterior samples (NICER, X-ray bursters, gravitational waves).

A posterior p(theta | d) = L(theta) pi(theta) / Z carries the prior pi of the analysis that
produced it. An EoS inference that uses the posterior density as a likelihood counts that
prior a second time unless it is divided out. Here it is divided out by weighting each
sample by 1 / pi(theta) before the KDE is built (see :mod:`nseos.observations._kde`). A
likelihood is only defined up to a constant, so all that matters is the *shape* of pi.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.special import logsumexp

from .._typing import Array, Float
from ._base import (
    AbstractBinaryObservation,
    AbstractStarObservation,
    ObservationError,
    chirp_mass,
    component_masses,
    lambda_tilde,
    stack_modules,
)
from ._kde import GriddedKDE, fit_gridded_kde, interpolate_grid

MIN_SAMPLES = 100
"""Fewer posterior draws than this cannot support a KDE in 2-3 dimensions."""
_SUPPORT_BANDWIDTHS = 5.0
"""Integration ranges extend 5 kernel widths beyond the outermost sample."""
LAMBDA_TILDE_FLOOR_QUANTILE = 0.01
"""When dividing out a prior that vanishes at Lambda-tilde -> 0, the prior is evaluated no
lower than the 1 % quantile of the samples' Lambda-tilde, so that the few samples near zero
cannot take unbounded weights (their weight is capped at ~100x the median's)."""


class AbstractAnalysisPrior(eqx.Module):
    """The prior of the analysis that produced a set of posterior samples."""

    @abc.abstractmethod
    def log_density(self, **columns: np.ndarray) -> np.ndarray:
        """ln pi at each sample, up to a constant; keyword names are the sample columns."""


class CallableAnalysisPrior(AbstractAnalysisPrior):
    """A user-supplied log prior density, ``fn(**columns) -> ndarray`` (NumPy).

    For :class:`MassRadiusSamples` the columns are ``mass_msun`` and ``radius_km``; for
    :class:`TidalDeformability` they are ``m1_msun``, ``m2_msun``, ``lambda1`` and ``lambda2``.
    """

    fn: Callable[..., np.ndarray] = eqx.field(static=True)

    def log_density(self, **columns: np.ndarray) -> np.ndarray:
        return np.asarray(self.fn(**columns), dtype=float)


class FlatComponentTidalPrior(AbstractAnalysisPrior):
    """The LVK analysis prior: flat in m1, m2 (m1 >= m2) and in Lambda1, Lambda2 on
    [0, lambda_max], expressed as a density over the likelihood coordinates
    (chirp mass, q, Lambda-tilde) after Lambda1 - Lambda2 is marginalised:

        pi(Mc, q, Lt) = |d(m1, m2)/d(Mc, q)| * pi(Lt | q),  |d(m1,m2)/d(Mc,q)| = m1^2 / Mc,

    where Lt = a Lambda1 + b Lambda2 (a, b from the masses) is a sum of two uniform variables,
    so pi(Lt | q) is a trapezoid that rises linearly from 0. Dividing it out is the
    "flat prior in Lambda-tilde" reweighting of the LVK papers. The detector-frame versus
    source-frame distinction of the mass prior is ignored (a redshift factor that is nearly
    constant across one event).
    """

    lambda_max: float = 5000.0

    def log_density(self, **columns: np.ndarray) -> np.ndarray:
        m1, m2 = columns["m1_msun"], columns["m2_msun"]
        lt = lambda_tilde(m1, m2, columns["lambda1"], columns["lambda2"])
        lt = np.maximum(lt, np.quantile(lt, LAMBDA_TILDE_FLOOR_QUANTILE))
        m = m1 + m2
        a = 16.0 / 13.0 * (m1 + 12.0 * m2) * m1**4 / m**5 * self.lambda_max
        b = 16.0 / 13.0 * (m2 + 12.0 * m1) * m2**4 / m**5 * self.lambda_max
        trapezoid = np.minimum(np.minimum(lt, np.minimum(a, b)), a + b - lt) / (a * b)
        jacobian = m1**2 / chirp_mass(m1, m2)
        return np.log(np.maximum(trapezoid, 1e-300)) + np.log(jacobian)


class SampleTable:
    """Posterior draws by column name (NumPy arrays), kept out of the JAX pytree.

    Hashable by identity, so an observation holding one can be a static part of a jitted
    function: the likelihood only needs the KDE built from it.
    """

    __slots__ = ("columns",)

    def __init__(self, columns: dict[str, np.ndarray]):
        self.columns = {k: np.asarray(v, dtype=float) for k, v in columns.items()}

    def __getitem__(self, key: str) -> np.ndarray:
        return self.columns[key]

    def __len__(self) -> int:
        return next(iter(self.columns.values())).shape[0]

    __hash__ = object.__hash__
    __eq__ = object.__eq__


def _check_spread(where: str, columns: dict[str, np.ndarray]) -> None:
    """A KDE needs spread in every direction: a constant column, or columns on one line,
    have a singular covariance (no density to evaluate)."""
    x = np.stack(list(columns.values()), axis=1)
    scaled = (x - x.mean(axis=0)) / np.maximum(np.abs(x).max(axis=0), 1e-300)
    singular = np.linalg.svd(scaled, compute_uv=False)
    if singular[-1] <= 1e-8 * singular[0]:
        raise ObservationError(
            f"{where}: the samples are degenerate (singular covariance: a constant column, "
            f"or columns that lie on one line); a KDE likelihood needs spread in "
            f"{', '.join(columns)}"
        )


def _as_columns(where: str, **columns) -> dict[str, np.ndarray]:
    out = {}
    n = None
    for key, values in columns.items():
        try:
            arr = np.asarray(values, dtype=float)
        except (TypeError, ValueError):
            raise ObservationError(f"{where}: column {key!r} is not numeric") from None
        if arr.ndim != 1:
            raise ObservationError(f"{where}: column {key!r} must be one-dimensional")
        if n is not None and arr.shape[0] != n:
            raise ObservationError(f"{where}: columns have different lengths")
        n = arr.shape[0]
        bad = np.nonzero(~np.isfinite(arr))[0]
        if bad.size:
            raise ObservationError(
                f"{where}: column {key!r} has a non-finite value in sample {bad[0]}"
            )
        out[key] = arr
    if n is None or n < MIN_SAMPLES:
        raise ObservationError(
            f"{where}: {n or 0} samples; at least {MIN_SAMPLES} are needed for a KDE likelihood"
        )
    return out


def _prior_weights(prior: AbstractAnalysisPrior | None, columns) -> np.ndarray | None:
    if prior is None:
        return None
    log_pi = prior.log_density(**columns)
    if log_pi.shape != next(iter(columns.values())).shape or not np.all(np.isfinite(log_pi)):
        raise ObservationError("the analysis prior must give a finite log density per sample")
    return np.exp(-(log_pi - log_pi.min()))


class MassRadiusSamples(AbstractStarObservation):
    """A mass-radius posterior given as equally weighted samples (NICER, X-ray bursters).

    The likelihood is a gridded 2-D KDE of the samples (see :func:`fit_gridded_kde`),
    optionally with the analysis prior divided out.

    Parameters
    ----------
    name : str
    mass_msun, radius_km : array, shape (n,)
        Posterior draws, n >= 100.
    analysis_prior : AbstractAnalysisPrior, optional
        The prior of the original analysis, to divide out. The default (None) treats the
        samples' density as the likelihood, right for analyses flat in M and R over the
        region the data constrain (the X-PSI NICER analyses and Kim et al. 2021).
    reference : str
    """

    name: str = eqx.field(static=True)
    samples: SampleTable = eqx.field(static=True)
    kde: GriddedKDE
    support_msun: Float[Array, " 2"]
    """The mass range of :meth:`mass_support_msun`."""
    reference: str = eqx.field(static=True)

    def __init__(
        self,
        name: str,
        mass_msun,
        radius_km,
        analysis_prior: AbstractAnalysisPrior | None = None,
        reference: str = "",
    ):
        where = f"observation {name!r}"
        cols = _as_columns(where, mass_msun=mass_msun, radius_km=radius_km)
        for key, arr in cols.items():
            if np.any(arr <= 0):
                raise ObservationError(f"{where}: {key} samples must be positive")
        _check_spread(where, cols)
        self.name = str(name)
        self.samples = SampleTable(cols)
        self.reference = str(reference)
        weights = _prior_weights(analysis_prior, cols)
        self.kde = fit_gridded_kde(np.stack([cols["mass_msun"], cols["radius_km"]], 1), weights)
        m = cols["mass_msun"]
        pad = _SUPPORT_BANDWIDTHS * self.kde.bandwidth * float(np.std(m))
        self.support_msun = jnp.asarray([max(float(m.min()) - pad, 0.0), float(m.max()) + pad])

    @property
    def kind(self) -> str:
        return "mass_radius_samples"

    def summary(self) -> dict[str, float | str]:
        m, r = self.samples["mass_msun"], self.samples["radius_km"]
        return {
            "mass_msun": float(np.mean(m)),
            "mass_sigma_msun": float(np.std(m, ddof=1)),
            "radius_km": float(np.mean(r)),
            "radius_sigma_km": float(np.std(r, ddof=1)),
            "correlation": float(np.corrcoef(m, r)[0, 1]),
            "n_samples": float(m.shape[0]),
        }

    def log_likelihood(self, mass_msun, radius_km, tidal_deformability=None):
        m, r = jnp.broadcast_arrays(jnp.asarray(mass_msun), jnp.asarray(radius_km))
        return self.kde(jnp.stack([m, r], axis=-1))

    def mass_support_msun(self):
        return self.support_msun[0], self.support_msun[1]

    def batch_key(self):
        return "mass_radius_kde"

    @classmethod
    def stack(cls, observations):
        shape = tuple(np.max([o.kde.log_density.shape for o in observations], axis=0))
        padded = [eqx.tree_at(lambda o: o.kde, o, o.kde.padded(shape)) for o in observations]
        return stack_modules(padded)


_MARGINAL_GRID = (64, 384)
"""Nodes of the chirp-mass marginal in q (over the support) and in ln Lambda-tilde."""
_MARGINAL_LOG_LAMBDA_TILDE = (math.log(0.1), math.log(1e5))
"""Range of the marginal's table in ln Lambda-tilde; beyond it the edge value holds."""
_MARGINAL_CHIRP_MASS_NODES = 24


@jax.jit
def _marginal_rows(kde, q, lambda_tilde, chirp_mass, log_weight):
    qq, ll, cc = jnp.meshgrid(q, lambda_tilde, chirp_mass, indexing="ij")
    return logsumexp(kde(jnp.stack([cc, qq, ll], axis=-1)) + log_weight[None, None, :], axis=-1)


def _chirp_mass_marginal(kde: GriddedKDE, chirp_mass_support, mass_ratio_support):
    """ln of int dMc p(Mc, q, Lambda-tilde) on a (q, ln Lambda-tilde) grid: Gauss-Legendre
    over the chirp-mass support, from the 3-D KDE itself (the same density estimate)."""
    (mc_lo, mc_hi), (q_lo, q_hi) = chirp_mass_support, mass_ratio_support
    n_q, n_l = _MARGINAL_GRID
    q = np.linspace(q_lo, q_hi, n_q)
    log_lt = np.linspace(*_MARGINAL_LOG_LAMBDA_TILDE, n_l)
    xc, wc = np.polynomial.legendre.leggauss(_MARGINAL_CHIRP_MASS_NODES)
    mc = mc_lo + (mc_hi - mc_lo) * 0.5 * (xc + 1.0)
    log_w = np.log(0.5 * (mc_hi - mc_lo) * wc)
    args = (jnp.asarray(np.exp(log_lt)), jnp.asarray(mc), jnp.asarray(log_w))
    rows = [
        np.asarray(_marginal_rows(kde, jnp.asarray(q[i : i + 8]), *args)) for i in range(0, n_q, 8)
    ]
    origin = jnp.asarray([q[0], log_lt[0]])
    spacing = jnp.asarray([q[1] - q[0], log_lt[1] - log_lt[0]])
    return jnp.asarray(np.concatenate(rows)), origin, spacing


class TidalDeformability(AbstractBinaryObservation):
    """A binary neutron star's tidal measurement from posterior samples (m1, m2, Lambda1,
    Lambda2), with a likelihood in (chirp mass, q, Lambda-tilde).

    The chirp mass is measured to ~0.1 %, and the tidal signal constrains mainly
    Lambda-tilde, so a 3-D KDE in (Mc, q, Lambda-tilde) keeps the information while staying
    well sampled. **Analysis-prior caveat:** raw LVK posterior draws carry a prior flat in
    Lambda1 and Lambda2, which induces a prior on Lambda-tilde that grows linearly from 0 and
    so favours large values (the raw GW170817 median Lambda-tilde is ~406, against ~300 after
    the LVK's flat-Lambda-tilde reweighting). Pass ``analysis_prior=FlatComponentTidalPrior()``
    (what the bundled catalogs do) to divide it out; ``None`` uses the raw density.

    Parameters
    ----------
    name : str
    m1_msun, m2_msun : array, shape (n,)
        Source-frame component masses; rows with m1 < m2 are swapped (with their Lambdas).
    lambda1, lambda2 : array, shape (n,)
        Tidal deformabilities, >= 0.
    analysis_prior : AbstractAnalysisPrior, optional
    reference : str
    """

    name: str = eqx.field(static=True)
    samples: SampleTable = eqx.field(static=True)
    kde: GriddedKDE
    marginal_log_density: Float[Array, "n_q n_lambda"]
    """ln of the KDE integrated over the chirp mass, on a grid in (q, ln Lambda-tilde)."""
    marginal_origin: Float[Array, " 2"]
    marginal_spacing: Float[Array, " 2"]
    reference_chirp_mass_msun: float = eqx.field(static=True)
    """The samples' weighted median chirp mass."""
    reference: str = eqx.field(static=True)

    def __init__(
        self,
        name: str,
        m1_msun,
        m2_msun,
        lambda1,
        lambda2,
        analysis_prior: AbstractAnalysisPrior | None = None,
        reference: str = "",
    ):
        where = f"observation {name!r}"
        cols = _as_columns(
            where, m1_msun=m1_msun, m2_msun=m2_msun, lambda1=lambda1, lambda2=lambda2
        )
        if np.any(cols["m2_msun"] <= 0) or np.any(cols["m1_msun"] <= 0):
            raise ObservationError(f"{where}: component masses must be positive")
        if np.any(cols["lambda1"] < 0) or np.any(cols["lambda2"] < 0):
            raise ObservationError(f"{where}: tidal deformabilities must be non-negative")
        swap = cols["m1_msun"] < cols["m2_msun"]
        for a, b in (("m1_msun", "m2_msun"), ("lambda1", "lambda2")):
            cols[a], cols[b] = np.where(swap, cols[b], cols[a]), np.where(swap, cols[a], cols[b])
        self.name = str(name)
        self.samples = SampleTable(cols)
        self.reference = str(reference)
        weights = _prior_weights(analysis_prior, cols)
        # q = m2/m1 <= 1 is a hard edge where such posteriors often peak; a plain KDE would
        # halve the density there. Reflecting the samples about q = 1 removes that bias
        # (the likelihood is only evaluated at q <= 1; the factor 2 is a constant).
        x = self.coordinates()
        mirrored = x.copy()
        mirrored[:, 1] = 2.0 - mirrored[:, 1]
        w = np.ones(x.shape[0]) if weights is None else weights
        self.kde = fit_gridded_kde(np.concatenate([x, mirrored]), np.concatenate([w, w]))
        order = np.argsort(x[:, 0])
        cdf = np.cumsum(w[order]) / np.sum(w)
        self.reference_chirp_mass_msun = float(x[order[np.searchsorted(cdf, 0.5)], 0])
        table, self.marginal_origin, self.marginal_spacing = _chirp_mass_marginal(
            self.kde, self.chirp_mass_support_msun(), self.mass_ratio_support()
        )
        self.marginal_log_density = table

    def coordinates(self) -> np.ndarray:
        """The samples in the likelihood's coordinates: (chirp mass, q, Lambda-tilde)."""
        c = self.samples
        m1, m2 = c["m1_msun"], c["m2_msun"]
        return np.stack(
            [chirp_mass(m1, m2), m2 / m1, lambda_tilde(m1, m2, c["lambda1"], c["lambda2"])], 1
        )

    @property
    def kind(self) -> str:
        return "tidal"

    def summary(self) -> dict[str, float | str]:
        x = self.coordinates()
        return {
            "chirp_mass_msun": float(np.median(x[:, 0])),
            "mass_ratio": float(np.median(x[:, 1])),
            "lambda_tilde_median": float(np.median(x[:, 2])),
            "n_samples": float(x.shape[0]),
        }

    def log_likelihood(self, chirp_mass_msun, mass_ratio, lambda1, lambda2):
        mc, q, l1, l2 = jnp.broadcast_arrays(
            *(jnp.asarray(v) for v in (chirp_mass_msun, mass_ratio, lambda1, lambda2))
        )
        m1, m2 = component_masses(mc, q)
        return self.kde(jnp.stack([mc, q, lambda_tilde(m1, m2, l1, l2)], axis=-1))

    def chirp_mass_marginal(self):
        mc = self.reference_chirp_mass_msun

        def log_likelihood(mass_ratio, lambda1, lambda2):
            q, l1, l2 = jnp.broadcast_arrays(
                *(jnp.asarray(v) for v in (mass_ratio, lambda1, lambda2))
            )
            m1, m2 = component_masses(mc, q)
            log_lt = jnp.log(jnp.maximum(lambda_tilde(m1, m2, l1, l2), 1e-300))
            x = jnp.stack([q, log_lt], axis=-1)
            lead = (1,) * (x.ndim - 1)
            pos = (x - self.marginal_origin.reshape((*lead, 2))) / self.marginal_spacing.reshape(
                (*lead, 2)
            )
            top = jnp.asarray(self.marginal_log_density.shape, float).reshape((*lead, 2)) - 1.0
            return interpolate_grid(self.marginal_log_density, jnp.clip(pos, 0.0, top))

        return mc, log_likelihood

    def _support(self, column: int) -> tuple[float, float]:
        x = self.coordinates()[:, column]
        pad = _SUPPORT_BANDWIDTHS * self.kde.bandwidth * float(np.std(x))
        return float(x.min()) - pad, float(x.max()) + pad

    def chirp_mass_support_msun(self) -> tuple[float, float]:
        return self._support(0)

    def mass_ratio_support(self) -> tuple[float, float]:
        lo, _ = self._support(1)
        return max(lo, 0.05), 1.0

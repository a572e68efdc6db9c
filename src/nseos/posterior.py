"""The output of every estimator: EoS parameter draws, derived quantities, and diagnostics.

An :class:`EoSPosterior` wraps an ArviZ 1.x ``xarray.DataTree`` with the groups
``posterior`` (parameters and derived quantities), ``sample_stats``, ``log_likelihood``,
``prior`` and ``observed_data``. The Bayesian estimator fills it from its chains; the
NN-replica estimator uses one chain whose draws are the ensemble members.

Derived quantities (all on fixed grids, units in the names):

* ``pressure_mev_fm3`` on ``energy_density_mev_fm3`` (rho0 c^2 to 8 rho0 c^2, log-spaced);
* ``radius_km`` on ``mass_msun`` (0.8 to 2.6 M_sun; NaN above the draw's M_max);
* scalars ``max_mass_msun``, ``radius_1p4_km``, ``lambda_1p4``, ``pressure_2rho0_mev_fm3``,
  ``pressure_3rho0_mev_fm3``, ``pressure_5rho0_mev_fm3``.

:data:`SUMMARY_QUANTITIES` names the headline numbers that tables, ``summary.json`` and the
method comparison report (``radius_km_at_1p4``, ``pressure_mev_fm3_at_3rho0``, ...);
:meth:`EoSPosterior.draws` returns the draws of any of them and :meth:`EoSPosterior.summary`
their median and 2.5/16/84/97.5 % quantiles.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import xarray as xr

from . import units
from ._io import DIGEST_KEY, array_digest, atomic_path, check_digest
from .eos import AbstractEOS
from .tov import RK4, mass_radius_curve

RHO0_MEV_FM3 = units.SATURATION_ENERGY_DENSITY_MEV_FM3
ENERGY_DENSITY_GRID_MEV_FM3 = RHO0_MEV_FM3 * np.geomspace(1.0, 8.0, 48)
"""Where p(eps) is recorded: 48 log-spaced points from rho0 c^2 to 8 rho0 c^2."""
MASS_GRID_MSUN = np.round(np.arange(0.8, 2.6001, 0.05), 2)
"""Where R(M) is recorded: 0.8 to 2.6 M_sun in steps of 0.05."""
SCALARS = (
    "max_mass_msun",
    "radius_1p4_km",
    "lambda_1p4",
    "pressure_2rho0_mev_fm3",
    "pressure_3rho0_mev_fm3",
    "pressure_5rho0_mev_fm3",
)
_DERIVED_BATCH = 128
_SCALAR_DENSITIES_RHO0 = (2.0, 3.0, 5.0)
"""Densities (in rho0) where the pressure is also recorded exactly, as a scalar."""


class SummaryQuantity(NamedTuple):
    """A headline number of an EoS posterior.

    Attributes
    ----------
    key : str
        Its name in ``summary.json`` and the tables, unit included (``radius_km_at_1p4``).
    label : str
        For tables and figure axes, unit included.
    unit : str
    variable : str
        The posterior variable it is read from.
    mass_msun : float or None
        For ``radius_km``: the grid mass it is read at.
    """

    key: str
    label: str
    unit: str
    variable: str
    mass_msun: float | None = None


def _radius_quantity(mass_msun: float) -> SummaryQuantity:
    tag = f"{mass_msun:.1f}".replace(".", "p")
    return SummaryQuantity(
        f"radius_km_at_{tag}", f"R({mass_msun:.1f} M_sun) [km]", "km", "radius_km", mass_msun
    )


def _pressure_quantity(rho0: int) -> SummaryQuantity:
    return SummaryQuantity(
        f"pressure_mev_fm3_at_{rho0}rho0",
        f"p({rho0} rho0) [MeV/fm^3]",
        "MeV/fm^3",
        f"pressure_{rho0}rho0_mev_fm3",
    )


SUMMARY_QUANTITIES: tuple[SummaryQuantity, ...] = (
    *(_radius_quantity(m) for m in (1.0, 1.4, 1.8, 2.0)),
    SummaryQuantity("max_mass_msun", "M_max [M_sun]", "M_sun", "max_mass_msun"),
    SummaryQuantity("lambda_at_1p4", "Lambda(1.4 M_sun) [dimensionless]", "1", "lambda_1p4"),
    *(_pressure_quantity(k) for k in (2, 3, 5)),
)
"""The headline numbers: R at 1.0, 1.4, 1.8 and 2.0 M_sun, M_max, Lambda(1.4), and the
pressure at 2, 3 and 5 rho0 (rho0 c^2 = 151.5 MeV fm^-3, units.py)."""
SUMMARY_PROBABILITIES = (0.025, 0.16, 0.5, 0.84, 0.975)
"""The quantiles that summaries report: median, 68 % and 95 % central intervals."""
_QUANTILE_NAMES = ("q2.5", "q16", "median", "q84", "q97.5")


def summary_quantity(key: str) -> SummaryQuantity:
    """The :data:`SUMMARY_QUANTITIES` entry named ``key``."""
    for q in SUMMARY_QUANTITIES:
        if q.key == key:
            return q
    raise KeyError(
        f"no summary quantity {key!r}; have {', '.join(q.key for q in SUMMARY_QUANTITIES)}"
    )


class ConvergenceWarning(UserWarning):
    """A sampler ended without meeting the convergence criteria."""


R_HAT_MAX = 1.01
"""Chains count as converged when every parameter has R-hat <= 1.01 (Vehtari et al. 2021,
arXiv:1903.08008)..."""
ESS_BULK_MIN = 400
"""... a bulk effective sample size of at least 400 (the same paper's recommendation), and
no divergent transition."""


def _derived_one(eos: AbstractEOS, n_stars: int, method: RK4) -> dict[str, jax.Array]:
    return derived_from_curve(eos, mass_radius_curve(eos, n_stars, method))


def derived_from_curve(eos: AbstractEOS, curve) -> dict[str, jax.Array]:
    """The derived quantities of one EoS whose M-R curve is already solved."""
    r14, lam14 = curve.radius_and_lambda_at(1.4)
    n_grid = ENERGY_DENSITY_GRID_MEV_FM3.shape[0]
    eps = jnp.concatenate(
        [
            jnp.asarray(ENERGY_DENSITY_GRID_MEV_FM3),
            jnp.asarray(_SCALAR_DENSITIES_RHO0) * RHO0_MEV_FM3,
        ]
    )
    p = eos.pressure_of_energy_density(eps)
    return {
        "pressure_mev_fm3": p[:n_grid],
        "radius_km": curve.radius_at(jnp.asarray(MASS_GRID_MSUN)),
        "max_mass_msun": curve.max_mass_msun,
        "radius_1p4_km": r14,
        "lambda_1p4": lam14,
        **{
            f"pressure_{k:.0f}rho0_mev_fm3": p[n_grid + i]
            for i, k in enumerate(_SCALAR_DENSITIES_RHO0)
        },
    }


@eqx.filter_jit
def _derived_batch(make_eos, params, n_stars: int, method: RK4):
    """One compiled batch per (EoS family, n_stars, method): jitted once at module level so
    that repeated calls (posterior, then prior draws) reuse the compilation."""
    return jax.vmap(lambda x: _derived_one(make_eos(x), n_stars, method))(params)


def derived_quantities(
    make_eos: Callable[[jax.Array], AbstractEOS],
    params: np.ndarray,
    *,
    n_stars: int = 100,
    method: RK4 = RK4(),
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Derived quantities for parameter vectors of shape (..., K), in batches."""
    params = np.asarray(params)
    lead, k = params.shape[:-1], params.shape[-1]
    flat = params.reshape(-1, k)
    chunks = []
    starts = range(0, flat.shape[0], _DERIVED_BATCH)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="derived quantities", unit="batch")
    for i in starts:
        batch = flat[i : i + _DERIVED_BATCH]
        pad = _DERIVED_BATCH - batch.shape[0]
        padded = np.concatenate([batch, np.repeat(batch[-1:], pad, 0)]) if pad else batch
        out = jax.device_get(_derived_batch(make_eos, jnp.asarray(padded), n_stars, method))
        chunks.append({key: v[: batch.shape[0]] for key, v in out.items()})
    return {
        key: np.concatenate([c[key] for c in chunks]).reshape(lead + chunks[0][key].shape[1:])
        for key in chunks[0]
    }


def _dataset(params: np.ndarray, derived: dict[str, np.ndarray]) -> dict:
    """Variables with named dimensions for a posterior-like group (chain, draw, ...)."""
    data = {"cs2": (("chain", "draw", "segment"), params)}
    for key, v in derived.items():
        if key == "pressure_mev_fm3":
            data[key] = (("chain", "draw", "energy_density_mev_fm3"), v)
        elif key == "radius_km":
            data[key] = (("chain", "draw", "mass_msun"), v)
        else:
            data[key] = (("chain", "draw"), v)
    return data


def _arviz_values(result, group: str, name: str) -> np.ndarray:
    """A variable of an ArviZ 1.x diagnostic result (it returns the group's node when the
    input has one group, the whole tree otherwise)."""
    node = result[group] if group in getattr(result, "children", {}) else result
    return np.asarray(node[name].values)


def _tree_digest(tree: xr.DataTree) -> str:
    """SHA-256 of a DataTree's content: each group's variables and coordinates (values,
    dtype, shape) and attributes, the root's ``content_sha256`` excluded."""
    arrays, attrs = {}, {}
    for node in tree.subtree:
        group = node.path
        for name, var in node.dataset.variables.items():
            arrays[f"{group}:{name}"] = var.values
            attrs[f"{group}:{name}"] = {**var.attrs, "dims": list(var.dims)}
        attrs[group] = {k: v for k, v in node.attrs.items() if k != DIGEST_KEY}
    return array_digest(arrays, attrs)


class EoSPosterior:
    """EoS posterior (or ensemble) draws with derived quantities, as an ArviZ DataTree.

    Build one with :meth:`from_draws`; read it back with :meth:`load`.
    """

    def __init__(self, datatree: xr.DataTree):
        if "posterior" not in datatree.children:
            raise ValueError("an EoSPosterior needs a 'posterior' group")
        self.datatree = datatree

    @classmethod
    def from_draws(
        cls,
        params: np.ndarray,
        derived: dict[str, np.ndarray],
        *,
        sample_stats: dict[str, np.ndarray] | None = None,
        log_likelihood: dict[str, np.ndarray] | None = None,
        prior_params: np.ndarray | None = None,
        prior_derived: dict[str, np.ndarray] | None = None,
        observed_data: dict[str, np.ndarray] | None = None,
        attrs: dict[str, str | float | int] | None = None,
    ) -> EoSPosterior:
        """Assemble from arrays shaped (chain, draw, ...)."""
        coords = {
            "energy_density_mev_fm3": ENERGY_DENSITY_GRID_MEV_FM3,
            "mass_msun": MASS_GRID_MSUN,
            "segment": np.arange(np.asarray(params).shape[-1]),
        }
        groups = {"posterior": xr.Dataset(_dataset(params, derived), coords=coords)}
        if sample_stats:
            groups["sample_stats"] = xr.Dataset(
                {k: (("chain", "draw"), np.asarray(v)) for k, v in sample_stats.items()}
            )
        if log_likelihood:
            groups["log_likelihood"] = xr.Dataset(
                {k: (("chain", "draw"), np.asarray(v)) for k, v in log_likelihood.items()}
            )
        if prior_params is not None:
            groups["prior"] = xr.Dataset(_dataset(prior_params, prior_derived or {}), coords=coords)
        if observed_data:
            groups["observed_data"] = xr.Dataset(
                {k: ((f"{k}_dim",), np.asarray(v)) for k, v in observed_data.items()}
            )
        tree = xr.DataTree.from_dict(groups)
        tree.attrs.update({k: v for k, v in (attrs or {}).items() if v is not None})
        return cls(tree)

    # --- access ---------------------------------------------------------------------------
    @property
    def posterior(self) -> xr.Dataset:
        return self.datatree["posterior"].to_dataset()

    def _values(self, quantity: str, group: str = "posterior") -> xr.DataArray:
        ds = self.datatree[group].to_dataset()
        if quantity not in ds:
            raise KeyError(f"no quantity {quantity!r}; have {', '.join(ds.data_vars)}")
        return ds[quantity].stack(sample=("chain", "draw"))

    def band(self, quantity: str, prob: float = 0.68, group: str = "posterior"):
        """Central ``prob`` interval (lo, hi) of a quantity, per grid point; NaN draws (e.g.
        R(M) above the draw's M_max) are left out."""
        if not 0 < prob < 1:
            raise ValueError("prob must lie in (0, 1)")
        v = self._values(quantity, group)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            q = np.nanquantile(v.values, [(1 - prob) / 2, (1 + prob) / 2], axis=-1)
        return q[0], q[1]

    def median(self, quantity: str, group: str = "posterior"):
        """Median per grid point (NaN draws left out)."""
        v = self._values(quantity, group)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmedian(v.values, axis=-1)

    def draws(self, key: str, group: str = "posterior") -> np.ndarray:
        """All draws of a :data:`SUMMARY_QUANTITIES` entry, flattened over (chain, draw);
        NaN where it does not exist (R(2.0) of a draw with M_max < 2 M_sun)."""
        q = summary_quantity(key)
        ds = self.datatree[group].to_dataset()
        if q.variable not in ds:
            raise KeyError(
                f"{key} needs the variable {q.variable!r}, which this posterior lacks "
                "(saved by an older nseos?)"
            )
        v = ds[q.variable]
        if q.mass_msun is not None:
            v = v.sel(mass_msun=q.mass_msun, method="nearest", tolerance=1e-6)
        return np.asarray(v.values, float).reshape(-1)

    def summary(self, group: str = "posterior") -> dict[str, dict[str, float | str | None]]:
        """Median and 2.5/16/84/97.5 % quantiles of every :data:`SUMMARY_QUANTITIES` entry,
        over the draws where it exists, keyed as in ``summary.json``
        (``{"radius_km_at_1p4": {"unit": "km", "median": ..., "q2.5": ..., ...}}``).
        ``fraction_defined`` is the share of draws where the quantity exists; a quantity
        with no defined draw has ``None`` values."""
        out = {}
        for q in SUMMARY_QUANTITIES:
            x = self.draws(q.key, group)
            ok = np.isfinite(x)
            entry: dict[str, float | str | None] = {"unit": q.unit}
            values = (
                np.quantile(x[ok], SUMMARY_PROBABILITIES)
                if ok.any()
                else [None] * len(SUMMARY_PROBABILITIES)
            )
            for name, value in zip(_QUANTILE_NAMES, values, strict=True):
                entry[name] = None if value is None else float(value)
            entry["fraction_defined"] = float(ok.mean())
            out[q.key] = entry
        return out

    def fraction_defined(self, quantity: str = "radius_km") -> np.ndarray:
        """Fraction of draws where the quantity exists (e.g. the star is below M_max)."""
        v = self._values(quantity)
        return np.mean(np.isfinite(v.values), axis=-1)

    # --- diagnostics ----------------------------------------------------------------------
    def diagnostics(self) -> list[dict[str, float | str]]:
        """R-hat, bulk and tail ESS per EoS parameter, plus divergences and E-BFMI."""
        import arviz as az

        post = xr.DataTree.from_dict(
            {"posterior": self.datatree["posterior"].to_dataset()[["cs2"]]}
        )
        rhat = _arviz_values(az.rhat(post), "posterior", "cs2")
        ess_bulk = _arviz_values(az.ess(post, method="bulk"), "posterior", "cs2")
        ess_tail = _arviz_values(az.ess(post, method="tail"), "posterior", "cs2")
        rows = [
            {
                "parameter": f"cs2[{i}]",
                "r_hat": float(rhat[i]),
                "ess_bulk": float(ess_bulk[i]),
                "ess_tail": float(ess_tail[i]),
            }
            for i in range(rhat.shape[0])
        ]
        if "sample_stats" in self.datatree.children:
            stats = self.datatree["sample_stats"].to_dataset()
            if "diverging" in stats:
                rows.append({"parameter": "divergences", "value": int(stats["diverging"].sum())})
            if "energy" in stats:
                bfmi = _arviz_values(az.bfmi(self.datatree), "sample_stats", "energy")
                rows.append({"parameter": "min E-BFMI", "value": float(bfmi.min())})
        return rows

    def convergence_problems(self) -> list[str]:
        """Why the chains do not count as converged, in words (empty when they do): R-hat
        above :data:`R_HAT_MAX`, ESS_bulk below :data:`ESS_BULK_MIN`, divergent transitions."""
        problems = []
        for row in self.diagnostics():
            if "r_hat" in row and not row["r_hat"] <= R_HAT_MAX:
                problems.append(f"{row['parameter']}: R-hat {row['r_hat']:.3f} > {R_HAT_MAX}")
            if "ess_bulk" in row and not row["ess_bulk"] >= ESS_BULK_MIN:
                problems.append(
                    f"{row['parameter']}: ESS_bulk {row['ess_bulk']:.0f} < {ESS_BULK_MIN}"
                )
            if row["parameter"] == "divergences" and row["value"] > 0:
                problems.append(f"{row['value']} divergent transitions")
        return problems

    # --- files ----------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write the DataTree to a netCDF-4 file (h5netcdf engine), atomically, with the
        SHA-256 of its content (every group's variables, coordinates and attributes) in the
        root attribute ``content_sha256``, which :meth:`load` checks."""
        path = Path(path)
        tree = self.datatree.copy()
        tree.attrs = {k: v for k, v in tree.attrs.items() if k != DIGEST_KEY}
        tree.attrs[DIGEST_KEY] = _tree_digest(tree)
        with atomic_path(path) as tmp:
            tree.to_netcdf(tmp, engine="h5netcdf")
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> EoSPosterior:
        """Read a posterior written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"posterior file not found: {path}")
        try:
            tree = xr.open_datatree(path, engine="h5netcdf").load()
        except (OSError, ValueError, KeyError) as err:
            raise ValueError(f"{path}: not a netCDF-4 posterior file ({err})") from None
        attrs = dict(tree.attrs)
        expected = attrs.pop(DIGEST_KEY, None)
        tree.attrs = attrs
        check_digest(path, expected, _tree_digest(tree))
        return cls(tree)

    def to_datatree(self) -> xr.DataTree:
        """The underlying ArviZ 1.x DataTree."""
        return self.datatree

    def __repr__(self) -> str:
        post = self.datatree["posterior"]
        n_chain, n_draw = post.sizes["chain"], post.sizes["draw"]
        method = self.datatree.attrs.get("method", "?")
        return f"EoSPosterior({method}: {n_chain} chains x {n_draw} draws)"

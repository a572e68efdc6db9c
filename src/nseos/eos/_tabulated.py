"""Tabulated EoS with thermodynamically consistent piecewise-polytropic interpolation."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import equinox as eqx
import jax.numpy as jnp
import numpy as np

from .. import units
from .._config import require_x64
from .._io import check_input_file, read_csv
from .._typing import Array, Float
from ._base import AbstractEOS, EOSState
from ._errors import AcausalEOSWarning, EOSValidationError
from ._pieces import (
    PolytropicPieces,
    polytrope_enthalpy,
    polytrope_state,
    polytropic_pieces,
)

MIN_ROWS = 8
"""Fewest rows a table may have: fewer cannot describe a crust and a core."""
DEFAULT_CAUSALITY_TOLERANCE = 0.01
"""Accepted excess of the chord slope dp/deps over 1 between rows. Published tables carry
four to ten significant digits; with rows a few per cent apart in eps, round-off alone moves
the slope by ~0.2 %, so 1 % separates real acausality from rounding."""
MAX_SURFACE_PRESSURE_MEV_FM3 = 1e-4
"""A table must start below this pressure (eps/c^2 of order 1e8 g cm^-3), so that it
contains the outer crust and the surface h = 0 is physical."""
# Enthalpy targets (in units of the saturation energy density) for the solver's step
# boundaries; the table node closest to each becomes a break (see enthalpy_breaks).
_BREAK_TARGETS_RHO0 = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 5.5, 7.5, 10.0)
_N_SHARP_BREAKS = 4

PRESSURE_COLUMN = "pressure_mev_fm3"
ENERGY_COLUMN = "energy_density_mev_fm3"
NUMBER_DENSITY_COLUMNS = ("number_density_fm3", "n_fm3")


def _polytrope_energy_density_np(log_x, p_a, e_a, gamma):
    """Energy density at ln(n / n_a) on a polytropic piece anchored at (p_a, eps_a).

    The first law integrated: eps = x (eps_a + p_a (x^(Gamma - 1) - 1) / (Gamma - 1)), with
    x = n / n_a. NumPy, for load-time fitting.
    """
    t = gamma - 1.0
    small = np.abs(t) < 1e-7
    t_safe = np.where(small, 1.0, t)
    growth = np.where(small, log_x * (1.0 + 0.5 * log_x * t), np.expm1(t_safe * log_x) / t_safe)
    return np.exp(log_x) * (e_a + p_a * growth)


def _fit_piece_gammas(p: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Adiabatic index of each interval such that the polytrope through row i hits row i+1.

    On an interval, p = p_i x^Gamma with x = n / n_i, and the first law fixes eps(x). Given
    (p_{i+1}, eps_{i+1}) the one unknown is Gamma; eps at p_{i+1} falls monotonically from
    infinity to eps_i as Gamma grows from 0 to infinity, so bisection in ln Gamma converges.
    """
    lp = np.log(p[1:] / p[:-1])
    lo = np.full(lp.shape, np.log(1e-3))
    hi = np.full(lp.shape, np.log(1e3))
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        g = np.exp(mid)
        e_model = _polytrope_energy_density_np(lp / g, p[:-1], e[:-1], g)
        too_dense = e_model > e[1:]
        lo = np.where(too_dense, mid, lo)
        hi = np.where(too_dense, hi, mid)
    return np.exp(0.5 * (lo + hi))


def cut_table(table: Tabulated, energy_density_mev_fm3: float, name: str) -> Tabulated:
    """The rows of ``table`` below ``energy_density_mev_fm3``, plus the interpolated point there.

    The cut point lies on the table's own interpolant, so the result agrees with ``table``
    everywhere below the cut.
    """
    e_nodes = np.asarray(table.node_energy_density_mev_fm3)
    p_nodes = np.asarray(table.node_pressure_mev_fm3)
    i = int(np.searchsorted(e_nodes, energy_density_mev_fm3)) - 1
    if not 0 < i < e_nodes.size - 1:
        raise EOSValidationError(
            f"{table.name}: cannot cut at eps = {energy_density_mev_fm3} MeV fm^-3, outside the "
            "table."
        )
    gamma = float(table.piece_gamma[i])
    lo, hi = 0.0, np.log(e_nodes[i + 1] / e_nodes[i]) + 1.0  # eps grows at least like n
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        e_mid = _polytrope_energy_density_np(mid, p_nodes[i], e_nodes[i], gamma)
        if e_mid < energy_density_mev_fm3:
            lo = mid
        else:
            hi = mid
    p_cut = p_nodes[i] * np.exp(gamma * 0.5 * (lo + hi))
    p = np.append(p_nodes[: i + 1], p_cut)
    e = np.append(e_nodes[: i + 1], energy_density_mev_fm3)
    return Tabulated(p, e, name=name)


class Tabulated(AbstractEOS):
    """An EoS table p(eps), interpolated as a piecewise polytrope in the baryon density.

    Between rows i and i+1, p = K_i n^Gamma_i with eps from the first law, and Gamma_i chosen
    so that the piece passes through both rows exactly. The interpolant is therefore
    continuous in p and eps, thermodynamically consistent (n, mu and h follow exactly), and
    has closed-form p(h), eps(h) and c_s^2(h). Above the last row the last piece continues.

    Parameters
    ----------
    pressure_mev_fm3, energy_density_mev_fm3 : array_like
        The table, from the stellar surface up; eps includes the rest mass.
    number_density_fm3 : array_like, optional
        Baryon density. The interpolation does not need it (it derives n from the first law);
        when given it is validated and kept for reference.
    name : str
        Label used in messages and plots.
    allow_acausal : bool
        Accept rows where dp/deps exceeds 1 + ``causality_tolerance`` (with an
        :class:`AcausalEOSWarning` that says where). Some published tables (APR4, WFF1) turn
        acausal inside their heaviest stable stars.
    truncate_acausal : bool
        Instead of rejecting an acausal table, keep the rows below the first acausal interval.
    causality_tolerance : float
        See :data:`DEFAULT_CAUSALITY_TOLERANCE`.

    Raises
    ------
    EOSValidationError
        If the table is too short, non-finite, non-positive, not strictly increasing, starts
        above :data:`MAX_SURFACE_PRESSURE_MEV_FM3`, or is acausal (unless allowed). The
        message names the offending row (1 = first data row)."""

    node_enthalpy: Float[Array, " n_rows"]
    node_pressure_mev_fm3: Float[Array, " n_rows"]
    node_energy_density_mev_fm3: Float[Array, " n_rows"]
    piece_gamma: Float[Array, " n_rows-1"]
    breaks: Float[Array, " n_breaks"]
    number_density_fm3: Float[Array, " n_rows"] | None
    name: str = eqx.field(static=True, default="tabulated")

    def __init__(
        self,
        pressure_mev_fm3,
        energy_density_mev_fm3,
        number_density_fm3=None,
        *,
        name: str = "tabulated",
        allow_acausal: bool = False,
        truncate_acausal: bool = False,
        causality_tolerance: float = DEFAULT_CAUSALITY_TOLERANCE,
    ):
        require_x64()
        p = np.asarray(pressure_mev_fm3, dtype=np.float64)
        e = np.asarray(energy_density_mev_fm3, dtype=np.float64)
        n = None if number_density_fm3 is None else np.asarray(number_density_fm3, np.float64)
        _validate_table(p, e, n, name)
        slope = np.diff(p) / np.diff(e)
        bad = np.nonzero(slope > 1.0 + causality_tolerance)[0]
        if bad.size:
            i = int(bad[0])
            where = (
                f"c_s^2 = dp/deps = {slope[i]:.4g} > 1 between rows {i + 1} and {i + 2} "
                f"(eps = {e[i]:.6g} to {e[i + 1]:.6g} MeV fm^-3)"
            )
            if truncate_acausal:
                keep = i + 1
                if keep < MIN_ROWS:
                    raise EOSValidationError(
                        f"{name}: {where}; fewer than {MIN_ROWS} causal rows remain."
                    )
                p, e = p[:keep], e[:keep]
                n = None if n is None else n[:keep]
            elif allow_acausal:
                warnings.warn(
                    f"{name}: {where}; {bad.size} acausal interval(s) kept because "
                    "allow_acausal=True.",
                    AcausalEOSWarning,
                    stacklevel=2,
                )
            else:
                raise EOSValidationError(
                    f"{name}: acausal table: {where}. To keep it (with a warning): "
                    "allow_acausal=True, or `nseos tov --allow-acausal`; to cut the table "
                    "there: truncate_acausal=True, or `nseos tov --truncate-acausal`."
                )
        gamma = _fit_piece_gammas(p, e)
        log_x = np.log(p[1:] / p[:-1]) / gamma  # ln(n_{i+1} / n_i)
        log_n = np.concatenate([[0.0], np.cumsum(log_x)])
        h = np.log(e + p) - log_n
        h = h - h[0]
        if np.any(np.diff(h) <= 0):
            i = int(np.nonzero(np.diff(h) <= 0)[0][0])
            raise EOSValidationError(f"{name}: enthalpy does not increase at row {i + 2}.")
        targets = np.asarray(_BREAK_TARGETS_RHO0) * units.SATURATION_ENERGY_DENSITY_MEV_FM3
        targets = targets[(targets > e[1]) & (targets < e[-2])]
        # Break also at the nodes where the adiabatic index jumps most (neutron drip, the
        # crust-core transition, phase transitions): kinks that RK4 should not straddle.
        jumps = np.abs(np.diff(np.log(gamma)))
        sharp = np.argsort(jumps)[::-1][:_N_SHARP_BREAKS] + 1
        idx = np.unique(np.concatenate([np.searchsorted(e, targets), sharp]))
        self.node_enthalpy = jnp.asarray(h)
        self.node_pressure_mev_fm3 = jnp.asarray(p)
        self.node_energy_density_mev_fm3 = jnp.asarray(e)
        self.piece_gamma = jnp.asarray(gamma)
        self.breaks = jnp.asarray(h[idx])
        self.number_density_fm3 = None if n is None else jnp.asarray(n)
        self.name = name

    @classmethod
    def from_csv(cls, path: str | os.PathLike, **kwargs) -> Tabulated:
        """Read a CSV table with a header naming ``pressure_mev_fm3`` and
        ``energy_density_mev_fm3`` (any order; ``number_density_fm3`` optional).

        Raises
        ------
        FileNotFoundError
            If the file does not exist.
        EOSValidationError
            For a missing column, a non-numeric cell (with its line number) or any
            failure of the table checks.
        """
        path = Path(path)
        kwargs.setdefault("name", path.stem)
        p, e, n = read_eos_csv(path)
        return cls(p, e, n, **kwargs)

    # --- AbstractEOS --------------------------------------------------------------------------
    def _piece(self, h):
        i = jnp.searchsorted(self.node_enthalpy, h, side="right") - 1
        return jnp.clip(i, 0, self.piece_gamma.shape[0] - 1)

    def _pieces(self) -> PolytropicPieces:
        n = self.piece_gamma.shape[0]
        return polytropic_pieces(
            self.node_enthalpy[:n],
            self.node_pressure_mev_fm3[:n],
            self.node_energy_density_mev_fm3[:n],
            self.piece_gamma,
        )

    def state(self, h) -> EOSState:
        h = jnp.asarray(h)
        flat = h.reshape(-1)  # XLA's CPU gathers are several times faster on 1-D indices
        i = self._piece(flat)
        pieces = PolytropicPieces(*(v[i] for v in self._pieces()))
        return EOSState(*(v.reshape(h.shape) for v in polytrope_state(flat, pieces)))

    def enthalpy(self, pressure_mev_fm3):
        p = jnp.asarray(pressure_mev_fm3)
        i = jnp.searchsorted(self.node_pressure_mev_fm3, p, side="right") - 1
        i = jnp.clip(i, 0, self.piece_gamma.shape[0] - 1)
        return polytrope_enthalpy(
            p,
            self.node_enthalpy[i],
            self.node_pressure_mev_fm3[i],
            self.node_energy_density_mev_fm3[i],
            self.piece_gamma[i],
        )

    @property
    def enthalpy_breaks(self):
        return self.breaks

    def default_central_pressure_range_mev_fm3(self):
        """From the pressure at eps = rho0 c^2 (or the second row) to the table's last row."""
        e0 = units.SATURATION_ENERGY_DENSITY_MEV_FM3
        p_lo = jnp.maximum(
            jnp.interp(
                jnp.log(e0),
                jnp.log(self.node_energy_density_mev_fm3),
                jnp.log(self.node_pressure_mev_fm3),
            ),
            jnp.log(self.node_pressure_mev_fm3[1]),
        )
        return jnp.exp(p_lo), self.node_pressure_mev_fm3[-1]


def _validate_table(p: np.ndarray, e: np.ndarray, n: np.ndarray | None, name: str) -> None:
    columns = [("pressure", p), ("energy density", e)]
    if n is not None:
        columns.append(("number density", n))
    for label, col in columns:
        if col.ndim != 1:
            raise EOSValidationError(f"{name}: {label} must be a 1-D array, got {col.shape}.")
        if col.shape != p.shape:
            raise EOSValidationError(
                f"{name}: {label} has {col.size} rows but pressure has {p.size}."
            )
    if p.size < MIN_ROWS:
        raise EOSValidationError(
            f"{name}: the table has {p.size} rows; at least {MIN_ROWS} are needed."
        )
    for label, col in columns:
        bad = np.nonzero(~np.isfinite(col))[0]
        if bad.size:
            raise EOSValidationError(f"{name}: {label} is not finite at row {bad[0] + 1}.")
        bad = np.nonzero(col <= 0)[0]
        if bad.size:
            raise EOSValidationError(
                f"{name}: {label} must be positive; row {bad[0] + 1} has {col[bad[0]]:.6g}."
            )
        bad = np.nonzero(np.diff(col) <= 0)[0]
        if bad.size:
            i = int(bad[0])
            raise EOSValidationError(
                f"{name}: {label} must increase strictly; row {i + 2} ({col[i + 1]:.6g}) does "
                f"not exceed row {i + 1} ({col[i]:.6g})."
            )
    if p[0] > MAX_SURFACE_PRESSURE_MEV_FM3:
        raise EOSValidationError(
            f"{name}: the table starts at p = {p[0]:.6g} MeV fm^-3; it must reach down to "
            f"the crust (p < {MAX_SURFACE_PRESSURE_MEV_FM3:g} MeV fm^-3) so that the stellar "
            "surface is resolved. Prepend a crust table such as nseos.eos.sly4()'s rows."
        )


def read_eos_csv(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Read (p, eps, n or None) from an EoS CSV file; see :meth:`Tabulated.from_csv`."""
    check_input_file(path, what="EoS file")
    header, lines = read_csv(path, error=EOSValidationError)
    missing = [c for c in (PRESSURE_COLUMN, ENERGY_COLUMN) if c not in header]
    if missing:
        raise EOSValidationError(
            f"{path}: missing column(s) {', '.join(missing)}; the header must name "
            f"{PRESSURE_COLUMN} and {ENERGY_COLUMN} (found: {', '.join(header)})."
        )
    i_p, i_e = header.index(PRESSURE_COLUMN), header.index(ENERGY_COLUMN)
    n_col = next((c for c in NUMBER_DENSITY_COLUMNS if c in header), None)
    i_n = header.index(n_col) if n_col else None
    rows = []
    for line_no, row in lines:
        if len(row) != len(header):
            raise EOSValidationError(
                f"{path}, line {line_no}: {len(row)} fields, the header has {len(header)}."
            )
        cells = [row[i_p], row[i_e]] + ([row[i_n]] if i_n is not None else [])
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            raise EOSValidationError(
                f"{path}, line {line_no}: non-numeric value in {cells}."
            ) from None
    if not rows:
        raise EOSValidationError(f"{path}: the file has a header but no data rows.")
    data = np.asarray(rows)
    return data[:, 0], data[:, 1], (data[:, 2] if i_n is not None else None)

"""Reading observations from files: a CSV of Gaussian rows, or a TOML manifest.

CSV (one header line, one observation per row)::

    name,kind,mass_msun,mass_sigma_msun,radius_km,radius_sigma_km,correlation
    J0030,mass_radius,1.44,0.15,13.0,1.2,0.8
    J0348+0432,mass,2.01,0.04,,,

``kind`` is ``mass_radius`` (all five numbers; an empty correlation means 0) or ``mass``
(a symmetric radio mass; leave the radius columns empty).

TOML (paths relative to the TOML file)::

    [[observation]]
    name = "J0030+0451"
    kind = "mass_radius_samples"     # a CSV with columns mass_msun, radius_km
    file = "j0030_samples.csv"

    [[observation]]
    name = "GW170817"
    kind = "tidal"                   # columns m1_source_msun, m2_source_msun, lambda1, lambda2
    file = "gw170817.csv"
    analysis_lambda_max = 5000.0     # divide out a flat (Lambda1, Lambda2) prior; omit to keep it

    [[observation]]
    name = "J0740+6620"
    kind = "mass"
    mass_msun = 2.08
    minus_sigma_msun = 0.07
    plus_sigma_msun = 0.07

    [[observation]]
    name = "burster"
    kind = "mass_radius"
    mass_msun = 1.5
    mass_sigma_msun = 0.2
    radius_km = 11.0
    radius_sigma_km = 1.5
    correlation = 0.0

Every reader is strict: an unknown key in a TOML table (with a "did you mean" suggestion), a
duplicated or unknown CSV column, a non-numeric or non-finite value are refused with an
:class:`ObservationError` naming the file and the row; a byte-order mark is accepted.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

import numpy as np

from .._io import check_input_file, did_you_mean, read_csv
from ._base import AbstractObservation, ObservationError
from ._gaussian import MassRadiusGaussian, PulsarMass
from ._samples import FlatComponentTidalPrior, MassRadiusSamples, TidalDeformability
from ._set import ObservationSet

CSV_COLUMNS = (
    "name",
    "kind",
    "mass_msun",
    "mass_sigma_msun",
    "radius_km",
    "radius_sigma_km",
    "correlation",
)
KINDS = ("mass_radius", "mass", "mass_radius_samples", "tidal")
TOML_KEYS = {
    "mass_radius": ("mass_msun", "mass_sigma_msun", "radius_km", "radius_sigma_km", "correlation"),
    "mass": ("mass_msun", "minus_sigma_msun", "plus_sigma_msun"),
    "mass_radius_samples": ("file",),
    "tidal": ("file", "analysis_lambda_max"),
}
"""The keys of each kind's [[observation]] table besides name, kind and reference; any
other key is refused (a misspelt optional key would otherwise be ignored silently)."""
SAMPLE_COLUMNS = {
    "mass_radius_samples": ("mass_msun", "radius_km"),
    "tidal": ("m1_source_msun", "m2_source_msun", "lambda1", "lambda2"),
}


def load(path: str | os.PathLike) -> ObservationSet:
    """Read observations from a ``.csv`` (Gaussian and mass rows) or ``.toml`` manifest.

    Raises
    ------
    FileNotFoundError
        The file (or a sample file it names) does not exist.
    ObservationError
        Anything malformed; the message names the file, row or field.
    """
    path = check_input_file(path, what="observation file")
    if path.suffix.lower() == ".toml":
        return _load_toml(path)
    return _load_csv(path)


def _number(text: str, field: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ObservationError(f"{where}: {field} = {text!r} is not a number") from None
    if not np.isfinite(value):
        raise ObservationError(f"{where}: {field} is {text!r}; it must be a finite number")
    return value


def _load_csv(path: Path) -> ObservationSet:
    header, rows = read_csv(path, error=ObservationError)
    if tuple(header) != CSV_COLUMNS:
        unknown = [c for c in header if c not in CSV_COLUMNS]
        missing = [c for c in CSV_COLUMNS if c not in header]
        detail = []
        if unknown:
            detail.append(f"unknown column(s) {', '.join(unknown)}")
        if missing:
            detail.append(f"missing column(s) {', '.join(missing)}")
        raise ObservationError(
            f"{path}: wrong header ({'; '.join(detail) or 'wrong column order'}); expected "
            f"{','.join(CSV_COLUMNS)}"
        )
    if not rows:
        raise ObservationError(f"{path}: the file has a header but no observations")
    observations = []
    for line, row in rows:
        where = f"{path}, row {line}"
        if len(row) != len(CSV_COLUMNS):
            raise ObservationError(f"{where}: {len(row)} fields, expected {len(CSV_COLUMNS)}")
        fields = dict(zip(CSV_COLUMNS, (c.strip() for c in row), strict=True))
        observations.append(_from_fields(fields, where))
    return _as_set(observations, path)


def _from_fields(fields: dict[str, str], where: str) -> AbstractObservation:
    name, kind = fields["name"], fields["kind"]
    if not name:
        raise ObservationError(f"{where}: the name is empty")
    if kind == "mass_radius":
        corr = fields["correlation"]
        values = {
            k: _number(fields[k], k, where)
            for k in ("mass_msun", "mass_sigma_msun", "radius_km", "radius_sigma_km")
        }
        rho = _number(corr, "correlation", where) if corr else 0.0
        return _construct(where, MassRadiusGaussian, name, **values, correlation=rho)
    if kind == "mass":
        extra = [k for k in ("radius_km", "radius_sigma_km", "correlation") if fields[k]]
        if extra:
            raise ObservationError(
                f"{where}: a 'mass' row has no radius; leave {', '.join(extra)} empty"
            )
        m = _number(fields["mass_msun"], "mass_msun", where)
        s = _number(fields["mass_sigma_msun"], "mass_sigma_msun", where)
        return _construct(where, PulsarMass, name, m, s)
    raise ObservationError(f"{where}: unknown kind {kind!r}; a CSV row is 'mass_radius' or 'mass'")


def _construct(where: str, cls, *args, **kwargs):
    try:
        return cls(*args, **kwargs)
    except ObservationError as err:
        # Replace the generic "observation 'x'" prefix with the file position.
        message = str(err).split(": ", 1)[-1]
        raise ObservationError(f"{where}: {message}") from None
    except ValueError as err:  # e.g. degenerate samples (singular covariance) in the KDE
        raise ObservationError(f"{where}: {err}") from None


def _as_set(observations, path) -> ObservationSet:
    try:
        return ObservationSet(observations)
    except ObservationError as err:
        raise ObservationError(f"{path}: {err}") from None


def read_sample_file(path: Path, columns: tuple[str, ...], where: str) -> dict[str, np.ndarray]:
    """Read named numeric columns of a one-header CSV of posterior samples."""
    check_input_file(path, what=f"{where}: sample file")
    header, rows = read_csv(path, error=ObservationError)
    missing = [c for c in columns if c not in header]
    if missing:
        raise ObservationError(
            f"{path}: missing column(s) {', '.join(missing)}; the header is {','.join(header)}"
        )
    idx = [header.index(c) for c in columns]
    data = []
    for line, row in rows:
        try:
            data.append([float(row[i]) for i in idx])
        except (ValueError, IndexError):
            message = f"{path}, row {line}: a value is missing or not numeric"
            raise ObservationError(message) from None
    arr = np.asarray(data, dtype=float).reshape(-1, len(columns))
    bad = np.nonzero(~np.all(np.isfinite(arr), axis=1))[0]
    if bad.size:
        raise ObservationError(f"{path}: a non-finite value in data row {bad[0] + 1}")
    return {c: arr[:, i] for i, c in enumerate(columns)}


def _load_toml(path: Path) -> ObservationSet:
    try:
        with open(path, "rb") as fh:
            doc = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ObservationError(f"{path}: not valid TOML ({err})") from None
    for key in doc:
        if key != "observation":
            raise ObservationError(
                f"{path}: unknown top-level key {key!r}{did_you_mean(key, ['observation'])}; "
                "a manifest holds [[observation]] tables"
            )
    entries = doc.get("observation")
    if not isinstance(entries, list) or not entries:
        raise ObservationError(f"{path}: no [[observation]] tables")
    observations = []
    for i, entry in enumerate(entries, start=1):
        where = f"{path}, observation {i}"
        name, kind = entry.get("name"), entry.get("kind")
        if not isinstance(name, str) or not name:
            raise ObservationError(f"{where}: 'name' is missing")
        if kind not in KINDS:
            raise ObservationError(
                f"{where}: unknown kind {kind!r}; expected one of {', '.join(KINDS)}"
            )
        known = ("name", "kind", "reference", *TOML_KEYS[kind])
        for key in entry:
            if key not in known:
                raise ObservationError(
                    f"{where} ({name}): unknown key {key!r}{did_you_mean(key, known)}; a "
                    f"{kind!r} observation takes {', '.join(known)}"
                )
        if kind in SAMPLE_COLUMNS:
            file = entry.get("file")
            if not isinstance(file, str):
                raise ObservationError(f"{where}: 'file' (the sample CSV) is missing")
            cols = read_sample_file(path.parent / file, SAMPLE_COLUMNS[kind], where)
            if kind == "tidal":
                lam_max = entry.get("analysis_lambda_max")
                prior = None if lam_max is None else FlatComponentTidalPrior(float(lam_max))
                observations.append(
                    _construct(
                        where, TidalDeformability, name, *cols.values(), analysis_prior=prior
                    )
                )
            else:
                observations.append(_construct(where, MassRadiusSamples, name, *cols.values()))
        elif kind == "mass":
            observations.append(
                _construct(
                    where,
                    PulsarMass,
                    name,
                    _toml_number(entry, "mass_msun", where),
                    _toml_number(entry, "minus_sigma_msun", where),
                    entry.get("plus_sigma_msun"),
                    reference=str(entry.get("reference", "")),
                )
            )
        else:
            values = {
                k: _toml_number(entry, k, where)
                for k in ("mass_msun", "mass_sigma_msun", "radius_km", "radius_sigma_km")
            }
            rho = float(entry.get("correlation", 0.0))
            observations.append(
                _construct(where, MassRadiusGaussian, name, **values, correlation=rho)
            )
    return _as_set(observations, path)


def _toml_number(entry: dict, key: str, where: str) -> float:
    if key not in entry:
        raise ObservationError(f"{where}: {key!r} is missing")
    value = entry[key]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ObservationError(f"{where}: {key} = {value!r} is not a number")
    return float(value)

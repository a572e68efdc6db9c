"""Bundled reference EoS tables, available by name."""

from __future__ import annotations

import functools
from importlib import resources

import jax

from ._errors import EOSValidationError
from ._tabulated import Tabulated, read_eos_csv

_LAL_FILES = {
    "sly4-lal": "lal_SLY4.csv",
    "apr4": "lal_AP4.csv",
    "ap4": "lal_AP4.csv",
    "mpa1": "lal_MPA1.csv",
    "h4": "lal_H4.csv",
    "wff1": "lal_WFF1.csv",
    "ms1": "lal_MS1.csv",
    "ms1b": "lal_MS1B.csv",
}
# Tables that turn acausal only beyond the centre of their maximum-mass star are cut there
# (nothing stable changes); the others need an explicit allow_acausal=True.
_CUT_WHERE_ACAUSAL = frozenset({"sly4-lal"})
REFERENCE_EOS_NAMES = ("SLy4", "SLy4-LAL", "APR4", "MPA1", "H4", "WFF1", "MS1", "MS1b")
"""Names accepted by :func:`reference_eos` (case-insensitive; ``AP4`` is an alias of APR4)."""


def _data_file(name: str):
    return resources.files("nseos.data.eos").joinpath(name)


def sly4() -> Tabulated:
    """The SLy4 unified EoS of Douchin & Haensel (2001), crust and core.

    The rows above eps = 1798 MeV fm^-3, where the table turns acausal (beyond the centre of
    its maximum-mass star, eps_c ~ 1640 MeV fm^-3), are cut.
    """
    return _sly4()


@functools.cache
def _sly4() -> Tabulated:
    with resources.as_file(_data_file("sly4_douchin_haensel.csv")) as path:
        p, e, n = read_eos_csv(path)
    with jax.ensure_compile_time_eval():  # cached: must hold concrete arrays, never tracers
        return Tabulated(p, e, n, name="SLy4", truncate_acausal=True)


def reference_eos(name: str, *, allow_acausal: bool = False) -> Tabulated:
    """A bundled tabulated EoS by name: one of :data:`REFERENCE_EOS_NAMES`.

    ``SLy4`` is the Douchin-Haensel table (see :func:`sly4`); the others are LALSimulation
    tables. SLy4-LAL turns acausal above eps = 1799 MeV fm^-3, beyond its maximum-mass star,
    and is cut there. APR4 and WFF1 turn acausal inside their heaviest stable stars and need
    ``allow_acausal=True``.
    """
    key = name.lower()
    if key == "sly4":
        return sly4()
    if key not in _LAL_FILES:
        raise EOSValidationError(
            f"unknown reference EoS {name!r}; choose from {', '.join(REFERENCE_EOS_NAMES)}"
        )
    canonical = next((n for n in REFERENCE_EOS_NAMES if n.lower() == key), name.upper())
    with resources.as_file(_data_file(_LAL_FILES[key])) as path:
        p, e, _ = read_eos_csv(path)
    with jax.ensure_compile_time_eval():
        return Tabulated(
            p,
            e,
            name=canonical,
            allow_acausal=allow_acausal,
            truncate_acausal=key in _CUT_WHERE_ACAUSAL,
        )

"""Errors and warnings raised when an EoS is built from bad input."""

from __future__ import annotations


class EOSValidationError(ValueError):
    """An EoS table or parameter set is malformed or unphysical; the message says where."""


class AcausalEOSWarning(UserWarning):
    """An EoS was accepted although its speed of sound exceeds c somewhere."""

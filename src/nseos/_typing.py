"""Shared jaxtyping aliases."""

from __future__ import annotations

from jaxtyping import Array, ArrayLike, Bool, Float, Int

ScalarLike = float | ArrayLike
"""A Python float or a 0-d array."""
FloatScalar = Float[Array, ""]
"""A 0-d float array."""

__all__ = ["Array", "ArrayLike", "Bool", "Float", "FloatScalar", "Int", "ScalarLike"]

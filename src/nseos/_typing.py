"""Shared jaxtyping aliases."""

from __future__ import annotations

from jaxtyping import Array, Bool, Float, Int

__all__ = ["Array", "Bool", "Float", "Int"]

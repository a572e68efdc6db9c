"""Precision checks.

nseos needs float64: the tidal Love number comes from a difference of terms that cancel to
O(C^5) in the compactness C, and the EoS spans 20 decades in pressure. nseos never switches
JAX to 64-bit behind the user's back; instead every entry point calls :func:`require_x64`,
which raises a clear error when float64 is off. Turn it on once, at the top of a script::

    import jax
    jax.config.update("jax_enable_x64", True)
"""

from __future__ import annotations

import jax


class PrecisionError(RuntimeError):
    """Raised when JAX runs in 32-bit mode, which nseos does not support."""


def require_x64() -> None:
    """Raise :class:`PrecisionError` unless JAX's 64-bit mode is enabled."""
    if not jax.config.read("jax_enable_x64"):
        raise PrecisionError(
            "nseos needs 64-bit floats (float32 loses the tidal deformability of light "
            "stars). Call jax.config.update('jax_enable_x64', True) before using nseos, "
            "or set the environment variable JAX_ENABLE_X64=1."
        )

"""Precision checks and the compilation cache.

nseos needs float64: the tidal Love number comes from a difference of terms that cancel to
O(C^5) in the compactness C, and the EoS spans 20 decades in pressure. nseos never switches
JAX to 64-bit behind the user's back; instead every entry point calls :func:`require_x64`,
which raises a clear error when float64 is off. Turn it on once, at the top of a script::

    import jax
    jax.config.update("jax_enable_x64", True)
"""

from __future__ import annotations

import os
from pathlib import Path

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


def cache_root() -> Path:
    """Where nseos keeps what it can rebuild (compiled programs, trained demo ensembles):
    ``$XDG_CACHE_HOME/nseos``, else ``~/.cache/nseos``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nseos"


def enable_compilation_cache(path: str | os.PathLike | None = None) -> Path:
    """Keep JAX's compiled programs on disk, so that later runs skip compilation.

    A Bayesian fit compiles its log-posterior gradient into the NUTS step (about a minute
    on a 2-core CPU); with the cache, a second fit of the same model in a new process
    loads it instead. The directory is ``path``, else ``$NSEOS_CACHE_DIR``, else
    ``cache_root() / "jax"``. Call it once, before the first compilation.

    Returns
    -------
    Path
        The cache directory.
    """
    if path is None:
        path = os.environ.get("NSEOS_CACHE_DIR") or cache_root() / "jax"
    directory = Path(path).expanduser()
    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return directory

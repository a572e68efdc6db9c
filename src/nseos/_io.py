"""Atomic file output: a crash never leaves a half-written result behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it into place only on success, with the
    permissions of a newly created file (``mkstemp``'s are owner-only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class OutputError(ValueError):
    """An output location that cannot be written, or that holds a run to keep."""


def check_output_file(path: str | os.PathLike, *, what: str = "output") -> Path:
    """Check, before any work, that ``path`` can be written as a file: it is not a directory,
    and its folder exists (or can be created) and is writable. Raises :class:`OutputError`."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{what} {path} is a directory, not a file")
    _check_writable_folder(path.parent, what=f"{what} {path}")
    return path


def check_output_folder(out: str | os.PathLike) -> Path:
    """Check, before any work, that ``out`` is a directory or can be created as one (a
    writable folder above it). Raises :class:`OutputError`."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} exists and is not a directory")
    _check_writable_folder(out if out.exists() else out.parent, what=f"--out {out}")
    return out


def _check_writable_folder(folder: Path, *, what: str) -> None:
    existing = folder
    while not existing.exists():  # the deepest part that exists must be a writable folder
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"cannot create {what}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create {what}: {existing} is not writable")


@contextlib.contextmanager
def run_directory(out: str | os.PathLike, *, overwrite: bool = False) -> Iterator[Path]:
    """Write a whole run as one unit: yield a new temporary folder beside ``out``; on success
    it replaces ``out`` (renamed into place), on any error or interrupt it is removed and
    ``out`` is left as it was. A reader sees the previous run or the new one, never a mix.

    The checks come first, before any work: ``out`` must not be a file, its parent must be
    creatable and writable, and an ``out`` that is not empty (a previous run, or anything
    else) is refused unless ``overwrite`` is true. Raises :class:`OutputError`.
    """
    out = check_output_folder(out)
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise OutputError(
            f"--out {out} already holds files (a previous run?); pass --overwrite to replace "
            "it, or choose another directory"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
            os.replace(out, old / out.name)  # the previous run, until the new one is in place
            os.replace(tmp, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)

"""Files in and out: atomic output (a crash never leaves a half-written result behind), run
directories written as one unit, strict CSV and JSON, and content hashes that show when a
saved file was modified or damaged."""

from __future__ import annotations

import contextlib
import csv
import difflib
import hashlib
import json
import math
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np


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


def check_input_file(path: str | os.PathLike, *, what: str) -> Path:
    """``path`` as an existing file; FileNotFoundError (naming ``what``) if it is missing,
    IsADirectoryError if it is a directory."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{what} {path} is a directory, not a file")
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def read_csv(path: Path, *, error: type[Exception]) -> tuple[list[str], list[tuple[int, list]]]:
    """The header (names stripped) and the non-blank rows (with their line numbers) of a CSV
    file. A byte-order mark (as spreadsheet programs write) is accepted; an empty file, a
    duplicated column name or text that is not UTF-8 raise ``error`` naming the file."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            lines = list(csv.reader(fh))
    except UnicodeDecodeError:
        raise error(f"{path}: not a text (UTF-8) CSV file") from None
    except csv.Error as err:
        raise error(f"{path}: not a valid CSV file ({err})") from None
    rows = [(i, r) for i, r in enumerate(lines, start=1) if any(c.strip() for c in r)]
    if not rows:
        raise error(f"{path}: the file is empty")
    header = [c.strip() for c in rows[0][1]]
    repeated = sorted({c for c in header if header.count(c) > 1})
    if repeated:
        raise error(f"{path}: the column(s) {', '.join(repeated)} appear more than once")
    return header, rows[1:]


def did_you_mean(name: str, known) -> str:
    """`` (did you mean 'x'?)`` for the closest of ``known``, or an empty string."""
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def json_text(document, *, indent: int | None = 1) -> str:
    """``document`` as strict JSON: NaN and infinities become ``null`` (Python's ``json``
    would write bare ``NaN``, which strict parsers reject); numpy scalars and arrays become
    numbers and lists."""
    return json.dumps(_strict(document), indent=indent, allow_nan=False)


def _strict(value):
    if isinstance(value, dict):
        return {str(k): _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return _strict(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# --- integrity of saved files -----------------------------------------------------------------


class IntegrityError(ValueError):
    """A saved file whose content does not match the hash written with it: it was modified
    or damaged after nseos wrote it."""


DIGEST_KEY = "content_sha256"
"""Where a saved file keeps the SHA-256 of its own payload."""


def array_digest(arrays: dict[str, np.ndarray], extra: dict | None = None) -> str:
    """SHA-256 of named arrays (name, dtype, shape and bytes, in name order; text arrays by
    their strings, whatever their dtype) and of a JSON-able ``extra``."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        h.update(name.encode() + b"\0")
        if a.dtype.kind in "OUS":  # text: the same however the reader types it
            h.update(b"text" + str(a.shape).encode())
            h.update("\0".join(str(v) for v in a.reshape(-1).tolist()).encode())
        else:
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(np.ascontiguousarray(a).tobytes())
    if extra is not None:
        h.update(json_text(extra, indent=None).encode())
    return h.hexdigest()


def json_digest(document) -> str:
    """SHA-256 of a JSON-able document in canonical form (sorted keys, no spaces)."""
    text = json.dumps(_strict(document), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_digest(path, expected, actual: str) -> None:
    """Raise :class:`IntegrityError` naming ``path`` unless the two digests agree."""
    if expected is None:
        raise IntegrityError(
            f"{path}: no content hash; the file was not written by this nseos (or its hash "
            "was removed), so its integrity cannot be checked. Rebuild it."
        )
    if str(expected) != actual:
        raise IntegrityError(
            f"{path}: the content does not match the hash written with it; the file was "
            "modified or damaged after nseos wrote it. Rebuild it, or restore a copy."
        )


def save_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> Path:
    """Write named arrays to an ``.npz`` file (no pickle) with the hash of its content,
    atomically."""
    path = Path(path)
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    digest = np.asarray(array_digest(arrays))
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, **arrays, **{DIGEST_KEY: digest})
    return path


def load_npz(path: str | os.PathLike, *, what: str) -> dict[str, np.ndarray]:
    """Read an ``.npz`` written by :func:`save_npz` and check its content hash. A file that
    is not a readable ``.npz`` is a ValueError naming ``what``; a hash mismatch an
    :class:`IntegrityError`."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ValueError(f"{path}: not an nseos {what} file ({err})") from None
    expected = arrays.pop(DIGEST_KEY, None)
    check_digest(path, None if expected is None else str(expected), array_digest(arrays))
    return arrays

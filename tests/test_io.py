"""Atomic output: all or nothing, with ordinary file permissions."""

import os
import stat

import pytest

from nseos._io import atomic_path, write_text_atomic


def test_atomic_write_keeps_the_old_file_on_failure_and_uses_umask_permissions(tmp_path):
    target = tmp_path / "out" / "report.md"
    write_text_atomic(target, "first")
    mask = os.umask(0o022)
    try:
        write_text_atomic(target, "second")
        assert stat.S_IMODE(target.stat().st_mode) == 0o644
    finally:
        os.umask(mask)
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "second"
    assert [p.name for p in target.parent.iterdir()] == ["report.md"]  # no temporary left

"""core/files.py, the one atomic write: the old file survives any failure, no temporary file is left."""

from __future__ import annotations

import os

import pytest

from aigc_desktop.core.files import atomic_open, atomic_path, atomic_write, set_aside


def test_atomic_write_and_open(tmp_path):
    target = tmp_path / "sub" / "a.json"
    assert atomic_write(target, "one") == target and target.read_text() == "one"
    with pytest.raises(RuntimeError):
        with atomic_open(target, "w", encoding="utf-8") as handle:
            handle.write("half")
            raise RuntimeError("killed mid-write")
    assert target.read_text() == "one" and os.listdir(target.parent) == ["a.json"]


def test_atomic_path_for_writers_that_take_a_name(tmp_path):
    target = tmp_path / "w.safetensors"
    target.write_bytes(b"old")
    target.chmod(0o640)
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp != target
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o640
    with pytest.raises(OSError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"partial")
            raise OSError(28, "No space left on device")
    assert target.read_bytes() == b"new" and os.listdir(tmp_path) == ["w.safetensors"]


def test_set_aside(tmp_path):
    bad = tmp_path / "settings.json"
    bad.write_text("{broken")
    assert set_aside(bad) == tmp_path / "settings.json.bad"
    assert not bad.exists() and (tmp_path / "settings.json.bad").read_text() == "{broken"
    assert set_aside(tmp_path / "missing.json") is None

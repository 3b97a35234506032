"""Model hashes: correct values, cached by path/size/mtime (in memory and on disk), never computed twice."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import threading

import pytest

from aigc_desktop.core import hashing


@pytest.fixture
def counted(monkeypatch):
    """Counts the real hashing passes (each reads the file's bytes once)."""
    calls = []
    real = hashing._hash_files

    def counting(files, offset=0, progress=None):
        calls.append([f.name for f in files])
        return real(files, offset, progress)

    monkeypatch.setattr(hashing, "_hash_files", counting)
    return calls


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_sha256_is_the_file_digest_and_a1111_short_hash(tmp_path):
    data = os.urandom(3 * (1 << 20) + 123)  # several read blocks
    f = _write(tmp_path / "model.safetensors", data)
    full = hashing.sha256_file(f)
    assert full == hashlib.sha256(data).hexdigest()
    assert hashing.short_hash(full) == full[:10]


def test_hashed_once_then_cached_in_memory_and_on_disk(tmp_path, counted):
    f = _write(tmp_path / "big.ckpt", os.urandom(100_000))
    first = hashing.sha256_file(f)
    assert hashing.sha256_file(f) == first
    assert hashing.sha256_file(str(f)) == first  # str or Path, same key
    assert len(counted) == 1
    # A new process (memory cache empty) reads the cache file instead of hashing again.
    hashing.clear_memory_cache()
    assert hashing.sha256_file(f) == first
    assert len(counted) == 1
    saved = json.loads((hashing._cache_path()).read_text())
    assert any(v["sha256"] == first for v in saved.values())


def test_changed_size_or_mtime_hashes_again(tmp_path, counted):
    f = _write(tmp_path / "m.safetensors", b"a" * 1000)
    h1 = hashing.sha256_file(f)
    st = f.stat()
    f.write_bytes(b"b" * 1000)  # same size, new content, new mtime
    os.utime(f, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    h2 = hashing.sha256_file(f)
    assert h2 != h1 and h2 == hashlib.sha256(b"b" * 1000).hexdigest()
    f.write_bytes(b"b" * 1001)
    assert hashing.sha256_file(f) == hashlib.sha256(b"b" * 1001).hexdigest()
    assert len(counted) == 3


def test_cached_sha256_never_hashes(tmp_path, counted):
    f = _write(tmp_path / "m.safetensors", b"xyz")
    assert hashing.cached_sha256(f) is None
    assert not counted
    value = hashing.sha256_file(f)
    assert hashing.cached_sha256(f) == value
    assert hashing.cached_sha256(tmp_path / "missing.safetensors") is None


def test_concurrent_requests_hash_once(tmp_path, counted):
    f = _write(tmp_path / "m.safetensors", os.urandom(2 << 20))
    results = []
    threads = [threading.Thread(target=lambda: results.append(hashing.sha256_file(f))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(results)) == 1 and len(results) == 4
    assert len(counted) == 1


def test_folder_hash_covers_weight_files_only(tmp_path):
    folder = tmp_path / "pipe"
    (folder / "unet").mkdir(parents=True)
    (folder / "model_index.json").write_text("{}")
    _write(folder / "unet" / "diffusion_pytorch_model.safetensors", b"u" * 10)
    _write(folder / "vae.bin", b"v" * 10)
    h = hashing.sha256_file(folder)
    (folder / "model_index.json").write_text('{"changed": 1}')  # configs do not count
    hashing.clear_memory_cache()
    assert hashing.sha256_file(folder) == h
    files = sorted([folder / "unet" / "diffusion_pytorch_model.safetensors", folder / "vae.bin"])
    assert h == hashlib.sha256(b"".join(p.read_bytes() for p in files)).hexdigest()


def test_addnet_hash_skips_the_header_like_a1111_lora_hashes(tmp_path):
    payload = os.urandom(4096)
    header = json.dumps({"w": {"dtype": "U8", "shape": [4096], "data_offsets": [0, 4096]}}).encode()
    f = _write(tmp_path / "style.safetensors", struct.pack("<Q", len(header)) + header + payload)
    expected = hashlib.sha256(payload).hexdigest()
    assert hashing.addnet_sha256(f) == expected
    assert hashing.lora_short_hash(f) == expected[:12]
    # Editing the metadata header keeps the addnet hash but changes the full-file hash.
    header2 = json.dumps({"__metadata__": {"ss_name": "x"}, "w": {"dtype": "U8", "shape": [4096],
                                                                   "data_offsets": [0, 4096]}}).encode()
    g = _write(tmp_path / "style2.safetensors", struct.pack("<Q", len(header2)) + header2 + payload)
    assert hashing.addnet_sha256(g) == expected
    assert hashing.sha256_file(g) != hashing.sha256_file(f)
    with pytest.raises(ValueError):
        hashing.addnet_sha256(_write(tmp_path / "x.ckpt", b"123"))
    with pytest.raises(ValueError):
        hashing.addnet_sha256(_write(tmp_path / "short.safetensors", b"123"))


def test_legacy_a1111_hash(tmp_path):
    data = os.urandom(0x100000 + 0x10000 + 10)
    f = _write(tmp_path / "old.ckpt", data)
    assert hashing.legacy_model_hash(f) == hashlib.sha256(data[0x100000:0x110000]).hexdigest()[:8]


def test_progress_and_missing_file(tmp_path):
    f = _write(tmp_path / "m.bin", os.urandom(3 << 20))
    seen = []
    hashing.sha256_file(f, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (3 << 20, 3 << 20)
    with pytest.raises(FileNotFoundError):
        hashing.sha256_file(tmp_path / "nope.safetensors")


def test_unwritable_or_corrupt_cache_file_is_harmless(tmp_path, counted):
    hashing._cache_path().parent.mkdir(parents=True, exist_ok=True)
    hashing._cache_path().write_text("{not json")
    f = _write(tmp_path / "m.bin", b"abc")
    assert hashing.sha256_file(f) == hashlib.sha256(b"abc").hexdigest()
    assert len(counted) == 1

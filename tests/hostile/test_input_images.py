"""Input images (init image, mask) that are not regular files, are damaged, or claim a huge size in their
header: one line, before anything is decoded, and no decompression-bomb warning leaks."""

from __future__ import annotations

import io
import struct
import warnings
import zlib

import pytest
from PIL import Image

from aigc_desktop.core.errors import UserError
from aigc_desktop.engines.diffusion.images import read_image
from tests.hostile.conftest import make_fifo, one_error_line, run_cli


def _png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose IHDR claims width x height (a decompression bomb's header)."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, format="PNG")
    data = bytearray(buf.getvalue())
    ihdr = data.index(b"IHDR")
    struct.pack_into(">II", data, ihdr + 4, width, height)
    struct.pack_into(">I", data, ihdr + 17, zlib.crc32(bytes(data[ihdr:ihdr + 17])))
    return bytes(data)


def test_huge_header_is_refused_before_decoding(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_claiming(100_000, 100_000))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any warning (DecompressionBombWarning) would fail the test
        with pytest.raises(UserError) as err:
            read_image(path)
    assert "too large" in str(err.value) or "at most 8192" in str(err.value)
    with pytest.raises(UserError, match="at most 8192"):
        read_image(_png_claiming(9000, 64))


@pytest.mark.parametrize("make", ["fifo", "zero", "folder", "garbage", "truncated"])
def test_bad_init_images_on_the_cli(tmp_path, capsys, tiny_sd_path, make):
    path = tmp_path / "init.png"
    if make == "fifo":
        make_fifo(path)
    elif make == "zero":
        path.symlink_to("/dev/zero")
    elif make == "folder":
        path.mkdir()
    elif make == "garbage":
        path.write_bytes(b"not an image at all")
    else:
        path.write_bytes(_png_claiming(64, 64)[:60])
    code, _, err = run_cli(capsys, "generate", "--model", tiny_sd_path, "--prompt", "x", "--init-image", path,
                           "--steps", "2", "--out", tmp_path / "o.png", "--quiet")
    line = one_error_line(err)
    expected = {"fifo": "not a regular file", "zero": "not a regular file", "folder": "folder",
                "garbage": "not an image file", "truncated": "damaged or truncated"}[make]
    assert code in (1, 2) and expected in line, line

"""Hostile and broken images: byte limits before reading, pixel limits from the header, deep JSON, files that
are not regular files, and a 10 MB parameters line read in well under a second."""

from __future__ import annotations

import json
import os
import struct
import time
import warnings
import zlib

import pytest
from PIL import Image

from aigc_desktop.core.metadata import UnreadableImage, parse_parameters, read_image_metadata, split_a1111
from aigc_desktop.core.metadata import limits
from aigc_desktop.core.metadata.a1111 import loras_in_prompt
from tests import metadata_fixtures as fx
from tests.metadata import images as im

TEN_MB = 10 * 1024 * 1024
# Each of these took seconds to minutes with a backtracking pattern; linear code needs ~0.1 s on this
# machine. 1.0 s leaves room for a busy shared CPU and still fails anything quadratic by far.
LINE_BUDGET_S = 1.0


def _timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


@pytest.mark.parametrize("unit", [" ", "a", "a: ", 'a: "', "Steps: 1, ", 'k: "\\', "<lora:x:", "{", "a:{", "[x",
                                  "Hashes: {", '{"prompt": "x'])
def test_a_10mb_parameters_line_reads_in_well_under_a_second(unit):
    # the last unit opens a JSON object (Fooocus' format) whose string never ends
    json_start = unit.startswith("{") and len(unit) > 1
    line = unit + "x" * TEN_MB if json_start else (unit * (TEN_MB // len(unit) + 1))[:TEN_MB]
    meta, seconds = _timed(parse_parameters, line)
    assert seconds < LINE_BUDGET_S, f"{unit!r}: {seconds:.2f} s"
    assert meta is None or meta.source == "A1111"


def test_a_10mb_prompt_with_a_real_settings_line():
    text = "a cat, " * (TEN_MB // 7) + "\n" + fx.A1111_2022.split("\n", 2)[2]
    (prompt, negative, settings), seconds = _timed(split_a1111, text)
    assert seconds < LINE_BUDGET_S and settings["Seed"] == "965400086" and len(prompt) > TEN_MB - 10
    tags, seconds = _timed(loras_in_prompt, "<lora:" * (TEN_MB // 6) + "<lora:detail:0.5>")
    assert seconds < LINE_BUDGET_S and [(t.name, t.weight) for t in tags] == [("detail", 0.5)]


@pytest.mark.parametrize("unit", ['a: "', "Steps: 1, ", "<lora:x:"])
def test_a_7mb_line_through_the_whole_reader(tmp_path, unit):
    """Under the chunk limit: read, described and restored (the prompt panel's path) in well under a second."""
    from aigc_desktop.core.metadata import describe
    from aigc_desktop.core.params import GenerationParams
    from aigc_desktop.core.restore import restore_params

    line = (unit * (7 * 1024 * 1024 // len(unit)))
    path = im.png_with_chunks(tmp_path / "long.png", im.chunk(b"tEXt", b"parameters\0" + line.encode()))
    start = time.perf_counter()
    meta = read_image_metadata(path)
    describe(meta)
    restore_params(meta, GenerationParams())
    assert time.perf_counter() - start < LINE_BUDGET_S


def test_a_10mb_text_chunk_is_refused_with_its_size(tmp_path):
    line = "x" * TEN_MB
    path = im.png_with_chunks(tmp_path / "big.png", im.chunk(b"tEXt", b"parameters\0" + line.encode()))
    meta, seconds = _timed(read_image_metadata, path)
    assert seconds < LINE_BUDGET_S and not meta.found
    assert meta.unreadable == ["PNG tEXt chunk 'parameters' is 10.0 MiB, more than the 8.0 MiB allowed: skipped"]


def test_a_chunk_claiming_gigabytes_and_a_zip_bomb(tmp_path):
    lying = struct.pack(">I", 0xFFFF_FFF0) + b"tEXtparameters\0short"
    path = im.png_with_chunks(tmp_path / "liar.png", im.chunk(b"tEXt", b"Title\0ok"), lying)
    meta = read_image_metadata(path)
    assert any("4.0 GiB, more than the 8.0 MiB allowed" in u for u in meta.unreadable)
    bomb = im.chunk(b"zTXt", b"parameters\0\0" + zlib.compress(b"A" * (limits.TEXT_CHUNK_MAX + 1)))
    meta = read_image_metadata(im.png_with_chunks(tmp_path / "bomb.png", bomb))
    assert meta.unreadable == ["PNG zTXt chunk 'parameters' inflates to more than 8.0 MiB: skipped"]
    itxt = im.chunk(b"iTXt", b"parameters\0\1\0\0\0" + zlib.compress(b"B" * (limits.TEXT_CHUNK_MAX + 1)))
    assert "inflates to more than" in read_image_metadata(im.png_with_chunks(tmp_path / "i.png", itxt)).unreadable[0]


def test_deep_json_is_one_line_not_a_recursion_error(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    for key in ("prompt", "workflow", "aigc_desktop", "invokeai_metadata", "parameters"):
        chunks = {key: deep if key != "parameters" else ('{"a":' * 50_000) + "1" + "}" * 50_000}
        meta = read_image_metadata(fx.png_with(tmp_path / f"{key}.png", chunks))
        assert any("nests deeper than 64 levels" in u for u in meta.unreadable), key
    comment = im.user_comment('{"prompt": ' + deep + "}", order="utf-16-le")
    meta = read_image_metadata(im.image_with_exif(tmp_path / "deep.webp", "WEBP", comment=comment))
    assert any("nests deeper than 64 levels" in u for u in meta.unreadable)


def test_json_with_wrong_types_gives_what_is_readable(tmp_path):
    graph = {"3": {"class_type": "KSampler", "inputs": {"seed": {"a": 1}, "steps": "1" * 5000, "cfg": [1, 2, 3],
                                                          "sampler_name": 7, "positive": ["6", 0]}},
             "6": {"class_type": "CLIPTextEncode", "inputs": {"text": ["x"]}}}
    meta = read_image_metadata(fx.png_with(tmp_path / "t.png", {"prompt": json.dumps(graph)}))
    assert meta.source == "ComfyUI" and meta.seed is None and meta.steps is None and meta.cfg_scale is None
    record = {"prompt": 5, "seed": "1e999", "model": "not a dict", "loras": {"a": 1}, "scheduler": ["x"]}
    meta = read_image_metadata(fx.png_with(tmp_path / "r.png", {"aigc_desktop": json.dumps(record)}))
    assert meta.source == "aigc-desktop" and meta.prompt is None and meta.seed is None


def test_oversized_images_are_refused_from_the_header(tmp_path):
    png = bytearray(im.png_bytes())
    png[16:24] = struct.pack(">II", 100_000, 100_000)
    png[29:33] = struct.pack(">I", zlib.crc32(bytes(png[12:29])))
    (tmp_path / "huge.png").write_bytes(bytes(png))
    with pytest.raises(UnreadableImage, match=r"huge.png is 100000x100000 pixels, more than the 178,956,970"):
        read_image_metadata(tmp_path / "huge.png")
    jpeg = bytearray((tmp_path / "j.jpg").write_bytes(b"") or b"")
    Image.new("RGB", (8, 8)).save(tmp_path / "j.jpg", "JPEG")
    jpeg = bytearray((tmp_path / "j.jpg").read_bytes())
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5:sof + 9] = struct.pack(">HH", 60_000, 60_000)
    (tmp_path / "j.jpg").write_bytes(bytes(jpeg))
    with pytest.raises(UnreadableImage, match="60000x60000 pixels"):
        read_image_metadata(tmp_path / "j.jpg")


def test_pillow_bomb_warning_never_leaks(tmp_path):
    """Formats Pillow opens for us (here a GIF) with a header past its bomb limit: one line, no warning."""
    gif = bytearray()
    Image.new("P", (8, 8)).save(tmp_path / "g.gif", "GIF")
    gif = bytearray((tmp_path / "g.gif").read_bytes())
    gif[6:10] = struct.pack("<HH", 12_000, 12_000)  # 144 Mpx: above Pillow's warning limit, below its error
    (tmp_path / "g.gif").write_bytes(bytes(gif))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(UnreadableImage, match="g.gif"):
            read_image_metadata(tmp_path / "g.gif")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_pipes_and_devices_are_not_opened(tmp_path):
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    start = time.perf_counter()
    with pytest.raises(UnreadableImage, match="not a regular file"):
        read_image_metadata(fifo)  # opening a FIFO would block forever
    link = tmp_path / "zero.png"
    link.symlink_to("/dev/zero")
    with pytest.raises(UnreadableImage, match="not a regular file"):
        read_image_metadata(link)
    assert time.perf_counter() - start < 1.0

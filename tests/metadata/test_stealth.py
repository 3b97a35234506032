"""A1111 stealth pnginfo: parameters in the low bits of alpha or RGB (plain and gzip), with size limits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from aigc_desktop.core.metadata import limits, read_image_metadata
from tests import metadata_fixtures as fx
from tests.metadata import images as im


@pytest.mark.parametrize("mode", ["alpha", "rgb"])
@pytest.mark.parametrize("compressed", [False, True])
def test_stealth_parameters_are_read(tmp_path, mode, compressed):
    text = "a hidden fox 🦊\n" + fx.A1111_2022.split("\n", 1)[1]
    m = read_image_metadata(im.stealth_png(tmp_path / "s.png", text, mode, compressed))
    assert m.source == "A1111" and m.prompt == "a hidden fox 🦊" and m.seed == 965400086
    assert m.field_sources["seed"] == f"stealth metadata in the {'alpha' if mode == 'alpha' else 'RGB'} low bits"


def test_stealth_in_lossless_webp(tmp_path):
    png = im.stealth_png(tmp_path / "s.png", fx.A1111_2022, "alpha", True)
    webp = tmp_path / "s.webp"
    Image.open(png).save(webp, "WEBP", lossless=True, exact=True)
    assert read_image_metadata(webp).seed == 965400086


def test_text_chunks_win_and_plain_images_have_none(tmp_path):
    """Like the extension: stealth bits are looked at only when the image has no metadata text."""
    path = im.stealth_png(tmp_path / "s.png", fx.A1111_2022, "alpha")
    with Image.open(path) as image:
        from PIL.PngImagePlugin import PngInfo

        info = PngInfo()
        info.add_text("parameters", "visible\nSteps: 5, Sampler: Euler, Seed: 7")
        image.save(tmp_path / "both.png", pnginfo=info)
    assert read_image_metadata(tmp_path / "both.png").seed == 7
    noise = np.random.default_rng(0).integers(0, 256, (40, 50, 4), dtype=np.uint8)
    Image.fromarray(noise, "RGBA").save(tmp_path / "noise.png")
    m = read_image_metadata(tmp_path / "noise.png")
    assert not m.found and m.unreadable == []


def test_stealth_limits(tmp_path, monkeypatch):
    # A length field claiming more than the image holds, or more than the limit: one line, nothing read.
    path = im.stealth_png(tmp_path / "s.png", "x" * 50, "alpha", size=(40, 40))
    pixels = np.array(Image.open(path))
    column_major = pixels[..., 3].T.reshape(-1).copy()
    column_major[120:152] = (column_major[120:152] & 0xFE) | 1  # length = 2^32 - 1 bits
    pixels[..., 3] = column_major.reshape(40, 40).T
    Image.fromarray(pixels, "RGBA").save(tmp_path / "liar.png")
    m = read_image_metadata(tmp_path / "liar.png")
    assert not m.found and m.unreadable == ["stealth metadata claims 512.0 MiB, more than the 4.0 MiB allowed"]
    monkeypatch.setattr(limits, "STEALTH_MAX_PIXELS", 100)
    m = read_image_metadata(path)
    assert not m.found and m.unreadable[0].startswith("stealth metadata not checked: 40x40 pixels")


def test_novelai_stealth_json(tmp_path):
    """NovelAI hides a JSON object of its usual chunks (Description, Software, Comment, ...) in the alpha."""
    text = json.dumps({key: value for key, value in fx.NOVELAI.items()})
    m = read_image_metadata(im.stealth_png(tmp_path / "nai.png", text, "alpha", True, size=(96, 64)))
    assert m.source == "NovelAI" and m.prompt == "1girl, {{best quality}}, silver hair, night city"
    assert (m.seed, m.steps, m.width, m.height) == (1234567890, 28, 832, 1216)
    assert m.field_sources["seed"] == "stealth metadata in the alpha low bits (Comment)"

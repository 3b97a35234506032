"""`aigc-desktop info --json` says per field where its value came from and what could not be read; restoring
into the prompt panel's parameters keeps saying what it could not restore (or read)."""

from __future__ import annotations

import json

from aigc_desktop.cli import main
from aigc_desktop.core.params import GenerationParams
from aigc_desktop.core.restore import restore_from_file
from tests import metadata_fixtures as fx
from tests.metadata import images as im


def _info(capsys, *argv):
    code = main(["info", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def test_info_json_field_sources_and_unreadable(tmp_path, capsys):
    path = fx.png_with(tmp_path / "counter.png", {"prompt": json.dumps(im.comfy_counter_seed())})
    code, out, _ = _info(capsys, path, "--json")
    data = json.loads(out)
    assert code == 0 and data["seed"] is None and data["steps"] == 33
    assert data["field_sources"]["steps"] == "PNG tEXt chunk 'prompt', node 41 (PrimitiveInt)"
    assert data["field_sources"]["prompt"] == "PNG tEXt chunk 'prompt', node 6 (CLIPTextEncode)"
    assert "seed" not in data["field_sources"]
    assert data["unreadable"] == ["seed: comes from node 40 (CounterNode), computed when the graph ran"]
    code, out, _ = _info(capsys, path)
    assert "Could not read: seed: comes from node 40 (CounterNode)" in out


def test_info_json_of_exif_and_a1111(tmp_path, capsys):
    jpg = im.image_with_exif(tmp_path / "a.jpg", "JPEG", comment=im.user_comment(fx.A1111_2022, order="utf-16-le"))
    data = json.loads(_info(capsys, jpg, "--json")[1])
    assert data["source"] == "A1111" and set(data["field_sources"].values()) == {"JPEG EXIF UserComment"}
    assert {"prompt", "seed", "steps", "cfg_scale", "width", "height", "scheduler"} <= set(data["field_sources"])


def test_info_of_an_image_with_only_refused_chunks(tmp_path, capsys):
    big = im.chunk(b"tEXt", b"parameters\0" + b"x" * (9 << 20))
    path = im.png_with_chunks(tmp_path / "big.png", big)
    code, out, _ = _info(capsys, path)
    assert code == 0 and "No generation parameters found." in out
    assert "Could not read: PNG tEXt chunk 'parameters' is 9.0 MiB, more than the 8.0 MiB allowed" in out
    assert json.loads(_info(capsys, path, "--json")[1])["unreadable"][0].startswith("PNG tEXt chunk")


def test_restore_says_what_it_could_not_read(tmp_path):
    current = GenerationParams(prompt="old", seed=5, steps=20)
    path = fx.png_with(tmp_path / "math.png", {"prompt": json.dumps(im.comfy_math_size())})
    result, meta = restore_from_file(path, current)
    assert result.params.width == current.width and result.params.prompt.startswith("beautiful scenery")
    assert "could not read size: comes from node 30 (SimpleMath+)" in result.message
    assert "\n" not in result.message
    big = im.png_with_chunks(tmp_path / "big.png", im.chunk(b"tEXt", b"parameters\0" + b"x" * (9 << 20)))
    result, _ = restore_from_file(big, current)
    assert result.message.startswith("No generation parameters found in big.png. Could not read: PNG tEXt")
    assert result.params == current

"""Our own PNG records read back from disk are checked field by field (core.params.params_from_record): a
hostile record (wrong types, NaN / Infinity, huge numbers, a dict where text belongs) is one InvalidParameter
line naming the field, never a traceback."""

from __future__ import annotations

import json

import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from aigc_desktop.core.errors import InvalidParameter, UserError
from aigc_desktop.core.metadata import read_image_metadata, read_record, record_to_job, record_to_params
from aigc_desktop.core.restore import regeneration

SHA = "ab" * 32


def _record(**over):
    rec = {
        "app": "aigc-desktop", "app_version": "0.1.0", "engine": "diffusion", "mode": "txt2img",
        "model": {"name": "m", "path": "/models/m.safetensors", "sha256": SHA, "family": "sd1",
                  "kind": "checkpoint", "vae": None, "prediction_type": "epsilon"},
        "prompt": "a fox", "negative_prompt": "blur", "seed": 12, "base_seed": 12, "batch_index": 0,
        "batch_size": 1, "steps": 20, "cfg_scale": 6.5, "width": 512, "height": 512, "scheduler": "euler_a",
        "clip_skip": 1, "device": "cpu", "dtype": "fp32",
    }
    rec.update(over)
    return rec


HOSTILE = [
    ({"steps": "20"}, "steps"),
    ({"steps": 10 ** 5000}, "Steps"),
    ({"steps": 2.5}, "steps"),
    ({"cfg_scale": float("inf")}, "CFG scale"),
    ({"cfg_scale": float("nan")}, "CFG scale"),
    ({"cfg_scale": [7]}, "cfg_scale"),
    ({"width": {"a": 1}}, "width"),
    ({"width": 10 ** 30}, "Width"),
    ({"height": True}, "height"),
    ({"scheduler": {"a": 1}}, "scheduler"),
    ({"scheduler": "no-such"}, "scheduler"),
    ({"prompt": {"text": "x"}}, "prompt"),
    ({"negative_prompt": 5}, "negative_prompt"),
    ({"mode": {"x": 1}}, "mode"),
    ({"mode": "sideways"}, "mode"),
    ({"strength": float("-inf")}, "strength"),
    ({"outpaint": {"left": 1}}, "outpaint"),
    ({"variation_seed": "5"}, "Variation seed"),
    ({"variation_strength": float("nan"), "variation_seed": 3}, "Variation strength"),
    ({"clip_skip": 10 ** 100}, "CLIP skip"),
    ({"seed": None}, "seed"),
    ({"seed": "12"}, "seed"),
    ({"seed": 10 ** 5000}, "seed"),
    ({"seed": -1}, "seed"),
    ({"loras": {"a": 1}}, "loras"),
    ({"loras": [{"path": {"x": 1}, "source": "cli"}]}, "LoRA"),
    ({"loras": [{"path": "/l/a.safetensors", "weight": "heavy", "source": "cli"}]}, "LoRA"),
    ({"loras": [{"path": "/l/a.safetensors", "weight": float("inf"), "source": "cli"}]}, "LoRA weight"),
    ({"model": "a string"}, "model"),
    ({"model": {"path": {"x": 1}}}, "model path"),
    ({"model": {"path": "/m.safetensors", "family": {"x": 1}}}, "model family"),
    ({"model": {"path": "/m.safetensors", "vae": ["x"]}}, "model vae"),
]


@pytest.mark.parametrize("change, field", HOSTILE, ids=[str(i) for i in range(len(HOSTILE))])
def test_a_hostile_record_is_one_line_naming_the_field(change, field):
    with pytest.raises(InvalidParameter) as err:
        record_to_params(_record(**change))
    message = str(err.value)
    assert field.lower() in message.lower() and "\n" not in message and len(message) < 300, message
    assert message.startswith("the image's record"), message
    with pytest.raises(InvalidParameter):  # the window and the CLI regenerate through here
        regeneration(_record(**change))


def test_not_a_record():
    for bad in ([1, 2], "text", None):
        with pytest.raises(InvalidParameter, match="not a JSON object"):
            record_to_params(bad)


def test_batch_and_device_fields_are_checked():
    with pytest.raises(InvalidParameter, match="batch_size must be between 1 and 64"):
        regeneration(_record(batch_size=10 ** 40, batch_index=3))
    with pytest.raises(InvalidParameter, match="device"):
        record_to_job(_record(device={"cuda": 0}), exact_device=True)
    assert record_to_job(_record(device={"cuda": 0})).device == "auto"  # only read when asked for


def test_a_good_record_still_regenerates():
    ref, params = record_to_params(_record(batch_size=4, batch_count=9, loras=[
        {"name": "a", "path": "/l/a.safetensors", "weight": 0.5, "source": "cli"},
        {"name": "b", "path": "/l/b.safetensors", "weight": 0.8}], prompt="x <lora:b:0.8>"))
    assert ref.path == "/models/m.safetensors" and ref.kind == "checkpoint" and ref.vae is None
    assert (params.seed, params.batch_size, params.batch_count, params.steps) == (12, 1, 1, 20)
    assert [(l.path, l.weight) for l in params.loras] == [("/l/a.safetensors", 0.5)]
    with pytest.raises(UserError, match="does not name its model"):
        record_to_params(_record(model={}))
    with pytest.raises(UserError, match="stylegan"):
        record_to_params(_record(engine="stylegan"))


def _png_with_chunk(path, text: str):
    info = PngInfo()
    info.add_text("aigc_desktop", text)
    Image.new("RGB", (8, 8)).save(path, format="PNG", pnginfo=info)
    return path


def test_hostile_record_in_a_png(tmp_path):
    """Through the file: the chunk's JSON is read with limits (Infinity refused), then checked as above."""
    rec = read_record(_png_with_chunk(tmp_path / "a.png", json.dumps(_record(steps={"n": 1}, engine=["x"]))))
    with pytest.raises(InvalidParameter, match="steps"):
        record_to_params({**rec, "engine": "diffusion"})
    meta = read_image_metadata(tmp_path / "a.png")  # showing it never fails either
    assert meta.steps is None and meta.engine == "diffusion"
    path = _png_with_chunk(tmp_path / "b.png", json.dumps(_record(cfg_scale=float("inf"))))
    try:
        rec = read_record(path)
    except UserError as exc:
        assert "\n" not in str(exc)
    else:
        assert rec is None or not isinstance(rec.get("cfg_scale"), float) or rec["cfg_scale"] != float("inf")

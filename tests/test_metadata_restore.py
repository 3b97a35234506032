"""Restoring parameters from an image: the Qt-free logic, finding the model, and the prompt panel
(drop an image on it, or "Load from image…")."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest
from PIL import Image

from aigc_desktop.core import hashing
from aigc_desktop.core.metadata import ImageMetadata, LoraUse, read_image_metadata, save_png
from aigc_desktop.core.params import GenerationParams
from aigc_desktop.core.restore import PANEL_FIELDS, find_model, restore_from_file, restore_params
from tests import metadata_fixtures as fx

CURRENT = GenerationParams(prompt="old", negative_prompt="old neg", seed=-1, steps=20, cfg_scale=7.0, width=512,
                           height=512, scheduler="euler_a", batch_size=2, batch_count=3)


def test_restore_a1111_into_panel_fields(tmp_path):
    meta = read_image_metadata(fx.png_with(tmp_path / "a.png", {"parameters": fx.A1111_HIRES}))
    r = restore_params(meta, CURRENT)
    p = r.params
    assert p.prompt == meta.prompt and p.negative_prompt.startswith("(worst quality")
    assert (p.seed, p.steps, p.cfg_scale, p.width, p.height, p.scheduler) == (
        2357413081, 25, 7.0, 512, 768, "dpmpp_2m_karras")
    assert (p.batch_size, p.batch_count) == (2, 3)  # not in the image: kept
    assert p.clip_skip == 1  # the panel has no clip-skip box: reported, not changed
    assert r.restored == ("prompt", "negative prompt", "seed", "steps", "CFG scale", "size", "sampler")
    assert "clip skip 2" in r.not_restored and "hires fix (x2)" in r.not_restored
    assert r.model == "anything-v5-PrtRE [7f96a1a9ca]"
    assert "\n" not in r.message and r.message.startswith("Restored from A1111: prompt, negative prompt, seed")
    assert "Not restored: " in r.message and "model anything-v5-PrtRE [7f96a1a9ca] (pick it in Models)" in r.message


def test_restore_with_more_fields_takes_clip_skip_strength_variation():
    meta = ImageMetadata(source="A1111", prompt="p", seed=5, clip_skip=2, mode="img2img", strength=0.4,
                         variation_seed=9, variation_strength=0.3)
    r = restore_params(meta, CURRENT, PANEL_FIELDS | {"clip_skip", "strength", "variation_seed",
                                                      "variation_strength"})
    assert (r.params.clip_skip, r.params.strength) == (2, 0.4)
    assert (r.params.variation_seed, r.params.variation_strength) == (9, 0.3)
    assert "img2img (strength 0.4)" in r.not_restored  # the init image itself never comes back


def test_node_loras_become_prompt_tags_and_odd_values_are_reported(tmp_path):
    meta = ImageMetadata(source="ComfyUI", prompt="a cat", negative_prompt="", seed=156680208700286, steps=20,
                         cfg_scale=8.0, width=1000, height=60, sampler="dpmpp_3m_sde / karras",
                         loras=[LoraUse("detail", 0.8), LoraUse("style", None)])
    r = restore_params(meta, CURRENT)
    assert r.params.prompt == "a cat <lora:detail:0.8> <lora:style:1>"
    assert r.params.seed == -1 and r.params.width == 512  # seed too large; height too small: both kept
    assert "seed 156680208700286 (beyond 4294967295)" in r.not_restored
    assert "width 1000 rounded to 1000" not in r.not_restored and "height 60 (below 64)" in r.not_restored
    assert "LoRAs" in r.restored and r.params.scheduler == "euler_a"
    meta.height = 1001
    r = restore_params(meta, CURRENT)
    assert (r.params.width, r.params.height) == (1000, 1000) and "height 1001 rounded to 1000" in r.not_restored


def test_restore_own_image_stylegan_and_nothing(tmp_path):
    rec = {"engine": "diffusion", "prompt": "fox 🦊", "negative_prompt": "", "seed": 7, "steps": 9, "cfg_scale": 4.5,
           "width": 640, "height": 384, "scheduler": "lcm", "model": {"name": "tiny", "sha256": "ab" * 32}}
    path = save_png(Image.new("RGB", (8, 8)), tmp_path / "own.png", rec)
    r, meta = restore_from_file(path, CURRENT)
    assert meta.source == "aigc-desktop"
    assert (r.params.prompt, r.params.seed, r.params.steps, r.params.scheduler) == ("fox 🦊", 7, 9, "lcm")
    assert r.not_restored == ("model tiny [abababab] (pick it in Models)".replace("abababab", "ab" * 5),)
    sg = save_png(Image.new("RGB", (8, 8)), tmp_path / "sg.png", {"engine": "stylegan", "seed": 3, "psi": 0.5})
    r, _ = restore_from_file(sg, CURRENT)
    assert r.params == CURRENT and "stylegan engine" in r.message
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    r, meta = restore_from_file(plain, CURRENT)
    assert r.params == CURRENT and r.message == "No generation parameters found in plain.png."


@dataclass
class _Model:
    name: str
    path: str


def test_find_model_by_cached_hash_name_or_legacy_hash(tmp_path, monkeypatch):
    a = tmp_path / "anything-v5-PrtRE.safetensors"
    a.write_bytes(b"a" * (0x110000 + 10))
    b = tmp_path / "other.safetensors"
    b.write_bytes(b"b" * 100)
    models = [_Model("other", str(b)), _Model("anything-v5-PrtRE", str(a))]
    assert find_model(ImageMetadata(source="A1111", model_name="anything-v5-PrtRE"), models).path == str(a)
    assert find_model(ImageMetadata(source="ComfyUI", model_name="SD15\\Anything-V5-PrtRE.safetensors"),
                      models).path == str(a)
    # By hash only when the hash is already cached: looking up never hashes every model.
    calls = []
    monkeypatch.setattr(hashing, "_hash_files", lambda files, offset=0, progress=None: calls.append(1) or "0" * 64)
    by_hash = ImageMetadata(source="A1111", model_name="renamed", model_hash=hashing.sha256_file(b)[:10])
    assert find_model(by_hash, models).path == str(b) and len(calls) == 1
    legacy = ImageMetadata(source="A1111", model_hash=hashing.legacy_model_hash(a))
    assert find_model(legacy, models).path == str(a)
    assert find_model(ImageMetadata(source="A1111", model_name="nope"), models) is None
    assert len(calls) == 1


# ------------------------------------------------------------------------------------------ the panel


@pytest.fixture
def panel(qtbot):
    from aigc_desktop.ui.panels.prompt import PromptPanel

    widget = PromptPanel()
    qtbot.addWidget(widget)
    return widget


def _drop(qtbot, target, path, receiver=None):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent
    from PySide6.QtWidgets import QApplication

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    receiver = receiver or target
    enter = QDragEnterEvent(QPointF(5, 5).toPoint(), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(receiver, enter)
    drop = QDropEvent(QPointF(5, 5), Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(receiver, drop)
    return enter.isAccepted(), drop.isAccepted()


def _message(panel) -> tuple[str, bool, str]:
    """(text, is an error, details) of the panel's last message line."""
    return panel.last_message


def test_drop_comfy_png_on_panel_restores(qtbot, panel, tmp_path):
    path = fx.png_with(tmp_path / "comfy.png", {"prompt": json.dumps(fx.COMFY_SDXL_REFINER)})
    seen = []
    panel.parameters_loaded.connect(seen.append)
    accepted = _drop(qtbot, panel, path)
    assert accepted == (True, True)
    assert panel.prompt.toPlainText() == "a majestic lion, golden hour <lora:offset_example:0.5> <lora:add-detail-xl:0.8>"
    assert panel.negative.toPlainText() == "cartoon, blurry"
    assert (panel.width_box.value(), panel.height_box.value(), panel.steps.value()) == (1024, 1024, 25)
    assert panel.scheduler.currentData() == "dpmpp_2m_karras" and panel.cfg.value() == 8.0
    assert panel.seed.seed() == -1  # ComfyUI's 64-bit seed does not fit
    text, error, details = _message(panel)
    assert text.startswith("Restored from ComfyUI:") and "refiner sd_xl_refiner_1.0" in text and not error
    assert "Source:     ComfyUI" in details
    assert len(seen) == 1 and seen[0].source == "ComfyUI"


def test_drop_on_the_prompt_box_loads_instead_of_pasting_the_url(qtbot, panel, tmp_path):
    path = fx.png_with(tmp_path / "a1111.png", {"parameters": fx.A1111_2022})
    panel.prompt.setPlainText("keep me?")
    accepted = _drop(qtbot, panel, path, receiver=panel.prompt.viewport())
    assert accepted == (True, True)
    assert panel.prompt.toPlainText().startswith("girl with an artist's beret")
    assert panel.seed.seed() == 965400086 and panel.scheduler.currentData() == "euler_a"
    assert "file://" not in panel.prompt.toPlainText()


def test_non_image_drop_is_ignored_and_bad_image_says_one_line(qtbot, panel, tmp_path):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    panel.prompt.setPlainText("unchanged")
    _drop(qtbot, panel, text_file)  # the panel may refuse it or say it is not an image: nothing changes
    assert panel.prompt.toPlainText() == "unchanged"
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 3)
    panel.prompt.setPlainText("unchanged")
    panel.load_parameters_from(str(broken))
    assert panel.prompt.toPlainText() == "unchanged"
    text, error, _ = _message(panel)
    assert error and text == "broken.png is not an image this app can read (no PNG image header)"
    plain = tmp_path / "plain.png"
    Image.new("RGB", (8, 8)).save(plain)
    panel.load_parameters_from(str(plain))
    assert _message(panel)[0] == "No generation parameters found in plain.png."
    panel.load_parameters_from(str(tmp_path / "gone.png"))
    text, error, _ = _message(panel)
    assert error and text.endswith("gone.png: file not found") and "\n" not in text


def test_load_button_opens_a_file_dialog(qtbot, panel, tmp_path, monkeypatch):
    from PySide6.QtWidgets import QFileDialog

    path = fx.png_with(tmp_path / "invoke.png", {"invokeai_metadata": json.dumps(fx.INVOKE_4)})
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: (str(path), "")))
    panel.load_image_params.click()
    assert panel.prompt.toPlainText() == "a lighthouse on a cliff, dramatic sky <lora:add-detail-xl:0.75>"
    assert panel.seed.seed() == 3953240000 and panel.scheduler.currentData() == "dpmpp_2m_karras"
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: ("", "")))
    panel.load_image_params.click()  # cancelled: nothing changes
    assert panel.seed.seed() == 3953240000

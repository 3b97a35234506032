"""The window as a workspace: inpaint from a painted mask with a real tiny model, drops, title, import and
export, message area."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from aigc_desktop.core.document import Frame, Layer
from aigc_desktop.engines.base import FakeEngine
from tests.ui.test_main_window import make_window, models_dir  # noqa: F401 - fixture


@pytest.fixture
def fake_window(qtbot, models_dir):  # noqa: F811
    window = make_window(qtbot, models_dir, engines={"diffusion": FakeEngine()}, save_outputs=False)
    yield window
    window.close()


def a1111_png(path, size=(8, 8)):
    info = PngInfo()
    info.add_text("parameters", "a castle on a hill\nNegative prompt: fog\n"
                  "Steps: 12, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 5.5, Seed: 1234, "
                  "Size: 128x192, Model: tiny-sd")
    Image.new("RGB", size, (10, 200, 30)).save(path, pnginfo=info)
    return path


def drop_event(paths, pos=None):
    from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
    from PySide6.QtGui import QDropEvent

    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    event = QDropEvent(QPointF(*(pos or (50, 50))), Qt.DropAction.CopyAction, mime, Qt.MouseButton.NoButton,
                       Qt.KeyboardModifier.NoModifier)
    event.keep_alive = mime  # the event does not own its mime data
    return event


def test_inpaint_from_a_painted_mask_changes_only_masked_pixels(qtbot, models_dir):  # noqa: F811
    """The tiny real model repaints inside the painted mask; outside, the result equals the layer."""
    from aigc_desktop.ui.canvas.commands import AddLayerCommand, PaintCommand

    w = make_window(qtbot, models_dir, save_outputs=False)
    try:
        doc = w.document.doc
        rng = np.random.default_rng(3)
        pixels = rng.integers(0, 256, (64, 64, 4), dtype=np.uint8)
        pixels[..., 3] = 255
        layer = Layer(Image.fromarray(pixels, "RGBA"), name="photo")
        w.document.push(AddLayerCommand(doc, layer))
        assert doc.frame == Frame(0, 0, 64, 64)  # the tiny model's native size
        w.document.push(PaintCommand(doc, doc.mask.id, 16, 24, Image.new("L", (24, 16), 255)))
        panel = w.prompt_panel
        panel.prompt.setPlainText("a red apple")
        panel.steps.setValue(3)
        panel.seed.setValue(5)
        options = panel.options
        options.mode.setCurrentIndex(options.mode.findData("inpaint"))
        options.mask_blur.setValue(0)
        options.strength.setValue(1.0)
        with qtbot.waitSignal(w.queue.job_finished, timeout=120000):
            assert w.generate() is not None, w.message_bar.text()
        assert len(w.document.staged) == 1
        w.document.accept_staged()
        result = np.asarray(doc.layers[-1].image.convert("RGB")).astype(int)
        source = pixels[..., :3].astype(int)
        inside = np.zeros((64, 64), bool)
        inside[24:40, 16:40] = True
        assert (result[~inside] == source[~inside]).all()  # exact: the engine pastes the original back
        assert np.abs(result[inside] - source[inside]).mean() > 10  # repainted (noise has mean |diff| ~85)
        assert doc.layers[-1].record["mode"] == "inpaint"
    finally:
        w.close()


def test_dropped_a1111_png_becomes_a_layer_and_restores_its_fields(qtbot, fake_window, tmp_path):
    w = fake_window
    path = a1111_png(tmp_path / "a1111.png")
    w.prompt_panel.options.mode.setCurrentIndex(w.prompt_panel.options.mode.findData("inpaint"))
    w.prompt_panel.options.mask.set_path("/tmp/old-mask.png")
    w.canvas.dropEvent(drop_event([path]))
    assert [la.name for la in w.document.doc.layers] == ["a1111"]
    assert w.message_bar.isVisible() and w.message_bar.action.isVisible()
    w.message_bar.action.click()  # "Restore parameters"
    p = w.prompt_panel.params()
    assert (p.prompt, p.negative_prompt, p.seed, p.steps, p.cfg_scale) == ("a castle on a hill", "fog", 1234, 12, 5.5)
    assert (p.width, p.height, p.scheduler) == (128, 192, "dpmpp_2m_karras")
    # A txt2img image puts the mode back to txt2img and drops the old image and mask.
    assert p.mode == "txt2img" and p.mask is None and p.init_image is None
    assert w.document.doc.frame.rect[2:] == (128, 192)  # the frame follows the restored size
    w.document.undo_stack.undo()
    w.document.undo_stack.undo()
    assert w.document.doc.layers == []


def test_dropping_a_non_image_never_pastes_a_url_into_the_prompt(qtbot, fake_window, tmp_path):
    w = fake_window
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    w.prompt_panel.prompt.setPlainText("cat")
    # What Qt calls for a drop on the prompt box: the panel's filter takes it, so the box never pastes
    # the file's URL.
    panel = w.prompt_panel
    assert panel.eventFilter(panel.prompt.viewport(), drop_event([text])) is True
    assert panel.prompt.toPlainText() == "cat"
    assert "Not an image" in w.message_bar.text()
    w.message_bar.clear()
    w.canvas.dropEvent(drop_event([text]))
    assert w.document.doc.layers == [] and "Not an image" in w.message_bar.text()


def test_title_shows_unsaved_changes_from_the_undo_stack(qtbot, fake_window):
    from aigc_desktop.ui.canvas.commands import SetFrameCommand

    w = fake_window
    assert not w.isWindowModified() and "[*]" in w.windowTitle()
    w.document.push(SetFrameCommand(w.document.doc, Frame(8, 8, 64, 64)))
    assert w.isWindowModified()
    w.document.undo_stack.setClean()
    assert not w.isWindowModified()
    w.undo_action.trigger()
    assert w.isWindowModified() and w.document.doc.frame == Frame(0, 0, 64, 64)
    w.redo_action.trigger()
    assert not w.isWindowModified()
    w.show_undo_history()
    assert w.undo_view.stack() is w.document.undo_stack


def test_generate_with_the_fake_engine_stages_and_accepts_with_record(qtbot, fake_window):
    w = fake_window
    w.prompt_panel.prompt.setPlainText("a red apple")
    w.prompt_panel.steps.setValue(2)
    w.prompt_panel.batch_count.setValue(2)
    finished = []
    w.queue.job_finished.connect(lambda *a: finished.append(a))
    job = w.generate()
    assert job is not None
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=20000)  # one job per batch: results arrive one by one
    assert len(w.document.staged) == 2
    spec = w.queue.spec(job)
    assert spec.target["frame"] == list(w.document.doc.frame.rect)
    w.document.accept_staged()
    layer = w.document.doc.layers[-1]
    assert layer.rect == w.document.doc.frame.rect and layer.record["prompt"] == "a red apple"


def test_import_paste_and_export(qtbot, fake_window, tmp_path):
    from PySide6.QtGui import QGuiApplication

    from aigc_desktop.core.metadata import read_image_metadata
    from aigc_desktop.ui.qt_image import pil_to_qimage

    w = fake_window
    src = tmp_path / "in.png"
    Image.new("RGBA", (64, 64), (200, 10, 10, 255)).save(src)
    layer_id = w.import_image(str(src))
    assert w.document.doc.get_layer(layer_id).rect == (0, 0, 64, 64)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not a png")
    assert w.import_image(str(bad)) is None and w.message_bar.error
    QGuiApplication.clipboard().setImage(pil_to_qimage(Image.new("RGBA", (16, 16), (0, 0, 255, 255))))
    pasted = w.paste_from_clipboard()
    assert pasted is not None and w.document.doc.get_layer(pasted).image.getpixel((0, 0)) == (0, 0, 255, 255)
    out = tmp_path / "frame.png"
    w.export_png("frame", str(out))
    with Image.open(out) as im:
        assert im.size == (64, 64) and im.convert("RGBA").getpixel((0, 0)) == (0, 0, 255, 255)
        assert im.convert("RGBA").getpixel((40, 40)) == (200, 10, 10, 255)
    # A generated layer exports with its metadata.
    w.document.push(__import__("aigc_desktop.ui.canvas.commands", fromlist=["x"]).AddLayerCommand(
        w.document.doc, Layer(Image.new("RGBA", (64, 64), (1, 2, 3, 255)), record={
            "engine": "diffusion", "prompt": "kept", "seed": 9, "steps": 3, "width": 64, "height": 64})))
    out2 = tmp_path / "layer.png"
    w.export_png("layer", str(out2))
    assert read_image_metadata(out2).prompt == "kept"
    w.copy_to_clipboard("frame")
    assert QGuiApplication.clipboard().image().size().width() == 64


def test_gallery_cards_filter_by_kind_and_search(qtbot, fake_window, tmp_path):
    from dataclasses import replace

    w = fake_window
    tiny = w.models.models[0]
    w.models.models = [tiny, replace(tiny, path=tiny.path + "-sg", name="faces", kind="stylegan", family=None),
                       replace(tiny, path=tiny.path + "-lora", name="ink-lora", kind="lora")]
    w.models.models_changed.emit()
    g = w.gallery
    assert g.visible_names() == ["tiny-sd", "faces", "ink-lora"]
    card = g.list.item(0).text()
    assert card.startswith("tiny-sd\ndiffusers") and card.endswith("B")  # name, kind (family), size
    g.kind_filter.setCurrentIndex(g.kind_filter.findText("StyleGAN"))
    assert g.visible_names() == ["faces"]
    g.kind_filter.setCurrentIndex(0)
    g.search.setText("LORA")
    assert g.visible_names() == ["ink-lora"]
    g.search.setText("")
    # A finished job puts its last image on the model's card.
    before = g.list.item(0).icon().pixmap(48, 48).toImage()
    w.prompt_panel.prompt.setPlainText("x")
    w.prompt_panel.steps.setValue(1)
    with qtbot.waitSignal(w.queue.job_finished, timeout=10000):
        w.generate()
    assert tiny.path in w.models.last_images
    assert g.list.item(0).icon().pixmap(48, 48).toImage() != before


def test_every_control_has_a_tooltip(qtbot, fake_window):
    from PySide6.QtWidgets import (QAbstractButton, QAbstractSpinBox, QComboBox, QLineEdit, QPlainTextEdit, QSlider,
                                   QWidget)

    w = fake_window
    kinds = (QAbstractButton, QAbstractSpinBox, QComboBox, QSlider, QLineEdit, QPlainTextEdit)
    internal = {"QToolBarExtension", "QDockWidgetTitleButton"}  # Qt's own buttons
    missing = []
    for widget in w.findChildren(QWidget):
        if not isinstance(widget, kinds) or not widget.isVisibleTo(w) or widget.toolTip():
            continue
        if widget.metaObject().className() in internal or isinstance(widget.parent(), (QAbstractSpinBox, QComboBox)):
            continue
        missing.append(f"{type(widget).__name__} {widget.objectName() or getattr(widget, 'text', lambda: '')()!r} "
                       f"in {type(widget.parent()).__name__}")
    assert missing == []
    panel = w.prompt_panel
    for box in (panel.steps, panel.cfg, panel.width_box, panel.scheduler, panel.batch_size, panel.options.strength):
        assert box.toolTip()


def test_dock_layout_is_remembered(qtbot, models_dir):  # noqa: F811
    from PySide6.QtCore import Qt

    from aigc_desktop.core.settings import Settings
    from aigc_desktop.ui.main_window import MainWindow

    settings = Settings({"models_dir": str(models_dir)})
    w = MainWindow(settings, engines={"diffusion": FakeEngine()}, scan_models=False)
    qtbot.addWidget(w)
    w.show()
    w.removeDockWidget(w.layers_dock)
    w.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, w.layers_dock)
    w.layers_dock.show()
    w.close()
    assert settings.get("window_state")
    again = MainWindow(settings, engines={"diffusion": FakeEngine()}, scan_models=False)
    qtbot.addWidget(again)
    again.show()
    try:
        assert again.dockWidgetArea(again.layers_dock) == Qt.DockWidgetArea.LeftDockWidgetArea
    finally:
        again.close()


def test_opening_a_document_restores_its_prompt_and_frame(qtbot, fake_window):
    from aigc_desktop.core.document import Document

    w = fake_window
    w.prompt_panel.prompt.setPlainText("kept in the document")
    assert w.document.doc.prompt_state["prompt"] == "kept in the document"
    other = Document.new(128, 128)
    other.set_prompt_state({"prompt": "from the file", "steps": 7, "seed": 42, "width": 128, "height": 128})
    other.add_layer(Layer(Image.new("RGBA", (8, 8), (1, 2, 3, 255)), name="saved"))
    w.document.push(__import__("aigc_desktop.ui.canvas.commands", fromlist=["x"]).SetFrameCommand(
        w.document.doc, Frame(8, 8, 64, 64)))
    w.document.doc.load_from(other)  # what opening a project does
    p = w.prompt_panel.params()
    assert (p.prompt, p.steps, p.seed, p.width, p.height) == ("from the file", 7, 42, 128, 128)
    assert [la.name for la in w.document.doc.layers] == ["saved"] and "saved" in w.layers_panel.list.item(1).text()
    assert w.document.undo_stack.count() == 0  # a fresh document has no history of edits
    bad = Document.new(64, 64)
    bad.set_prompt_state({"steps": "many"})
    w.document.doc.load_from(bad)
    assert w.message_bar.error and "steps" in w.message_bar.text()


def test_typing_in_the_prompt_is_not_taken_by_canvas_shortcuts(qtbot, fake_window):
    w = fake_window
    box = w.prompt_panel.prompt
    box.setFocus()
    qtbot.waitUntil(box.hasFocus, timeout=2000)
    size, tool = w.canvas.brush.size, w.canvas.tool
    qtbot.keyClicks(box, "a [bev] f")
    assert box.toPlainText() == "a [bev] f"
    assert w.canvas.brush.size == size and w.canvas.tool == tool


def test_dark_theme_by_default_light_on_request(qtbot):
    from PySide6.QtGui import QPalette
    from PySide6.QtWidgets import QApplication

    from aigc_desktop.core.settings import Settings
    from aigc_desktop.ui.theme import apply_theme

    app = QApplication.instance()
    before, style = app.palette(), app.style().name()
    try:
        assert Settings().get("theme") == "dark"
        apply_theme("dark", app)
        assert app.palette().color(QPalette.ColorRole.Window).lightness() < 80
        apply_theme("light", app)
        assert app.palette().color(QPalette.ColorRole.Window).lightness() > 180
    finally:
        app.setStyle(style)
        app.setPalette(before)

"""The workspace offscreen: undo commands, brush strokes, the frame, staging, specs built from the canvas."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from aigc_desktop.core.document import Document, Frame, Layer
from aigc_desktop.core.params import GenerationParams


def noise(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    arr[..., 3] = 255
    return Image.fromarray(arr, "RGBA")


def snapshot(doc: Document):
    """Everything an edit may change, comparable with ==."""
    layers = [(la.id, la.name, la.x, la.y, la.width, la.height, round(la.opacity, 6), la.visible, la.locked,
               la.image.tobytes()) for la in doc.layers]
    m = doc.mask
    return layers, (m.x, m.y, m.width, m.height, m.image.tobytes()), doc.frame


def test_every_command_round_trips(vm):
    from aigc_desktop.ui.canvas import commands as cmd

    doc = vm.doc
    a = Layer(noise(32, 32, 1), name="a", x=0, y=0)
    b = Layer(noise(16, 16, 2), name="b", x=8, y=8, opacity=0.5)
    vm.push(cmd.AddLayerCommand(doc, a))
    vm.push(cmd.AddLayerCommand(doc, b))
    builders = [
        lambda: cmd.AddLayerCommand(doc, Layer(noise(8, 8, 3), name="c")),
        lambda: cmd.RemoveLayerCommand(doc, a.id),
        lambda: cmd.MoveLayerCommand(doc, b.id, (b.x, b.y), (40, -12)),
        lambda: cmd.ReorderLayerCommand(doc, b.id, 0),
        lambda: cmd.SetLayerPropertyCommand(doc, a.id, "opacity", 0.25),
        lambda: cmd.SetLayerPropertyCommand(doc, a.id, "visible", False),
        lambda: cmd.SetLayerPropertyCommand(doc, a.id, "locked", True),
        lambda: cmd.SetLayerPropertyCommand(doc, a.id, "name", "renamed"),
        lambda: cmd.PaintCommand(doc, a.id, 4, 4, Image.new("RGBA", (8, 8), (255, 0, 0, 255))),
        lambda: cmd.PaintCommand(doc, doc.mask.id, 300, 300, Image.new("L", (8, 8), 255)),  # grows the mask
        lambda: cmd.SetPixelsCommand(doc, a.id, noise(10, 12, 4), 3, 5),
        lambda: cmd.ScaleLayerCommand(doc, b.id, 40, 24, -6, 2),
        lambda: cmd.SetFrameCommand(doc, Frame(16, 24, 128, 64)),
        lambda: cmd.clear_mask_command(doc),
        lambda: cmd.fit_to_frame_command(doc, a.id),
        lambda: cmd.duplicate_layer_command(doc, b.id),
        lambda: cmd.merge_down_command(doc, b.id),
    ]
    vm.push(cmd.PaintCommand(doc, doc.mask.id, 0, 0, Image.new("L", (8, 8), 200)))  # something to clear
    for build in builders:
        before = snapshot(doc)
        command = build()
        vm.push(command)
        after = snapshot(doc)
        assert after != before, command.text()
        vm.undo_stack.undo()
        # Undoing a stroke that grew the mask leaves the larger mask with the old pixels: compare contents.
        if command.text() == "Brush stroke" and command.layer_id == doc.mask.id:
            assert doc.mask.image.crop((-doc.mask.x, -doc.mask.y, 256 - doc.mask.x, 256 - doc.mask.y)).tobytes() \
                == Image.frombytes("L", (256, 256), before[1][4]).tobytes()
        else:
            assert snapshot(doc) == before, command.text()
        vm.undo_stack.redo()
        assert snapshot(doc) == after, command.text()
        vm.undo_stack.undo()


def test_merge_down_composites_into_the_lower_layer(vm):
    from aigc_desktop.ui.canvas import commands as cmd

    doc = vm.doc
    low = Layer(Image.new("RGBA", (8, 8), (255, 0, 0, 255)), name="low")
    high = Layer(Image.new("RGBA", (4, 4), (0, 0, 255, 255)), name="high", x=6, y=6)
    vm.push(cmd.AddLayerCommand(doc, low))
    vm.push(cmd.AddLayerCommand(doc, high))
    vm.push(cmd.merge_down_command(doc, high.id))
    assert [la.name for la in doc.layers] == ["low"]
    assert low.rect == (0, 0, 10, 10)
    assert low.image.getpixel((0, 0)) == (255, 0, 0, 255) and low.image.getpixel((7, 7)) == (0, 0, 255, 255)
    assert low.image.getpixel((9, 0)) == (0, 0, 0, 0)
    vm.undo_stack.undo()  # one step brings both back
    assert [la.name for la in doc.layers] == ["low", "high"] and low.rect == (0, 0, 8, 8)


def test_brush_stroke_sets_mask_pixels_and_is_one_undo_step(canvas, vm):
    from PySide6.QtCore import QPointF

    canvas.set_tool("brush")
    canvas.set_brush(size=20, hardness=1.0, opacity=1.0)
    assert vm.selected_id == vm.doc.mask.id
    assert canvas.begin_stroke(QPointF(60, 100))
    for x in range(62, 161, 2):
        canvas.stroke_to(QPointF(x, 100))
    canvas.end_stroke()
    m = np.asarray(vm.doc.mask.image)
    assert vm.undo_stack.count() == 1 and vm.undo_stack.text(0) == "Paint mask"
    # Inside the stroke's capsule (radius 10 around the segment) fully painted; well outside untouched.
    assert (m[95:106, 60:161] == 255).all()
    assert (m[:88] == 0).all() and (m[113:] == 0).all() and (m[:, :48] == 0).all() and (m[:, 173:] == 0).all()
    # The canvas shows it as the tinted overlay.
    assert canvas.mask_item.image.pixelColor(100, 100).alpha() > 100
    assert canvas.mask_item.image.pixelColor(100, 20).alpha() == 0
    vm.undo_stack.undo()
    assert vm.doc.mask.image.getbbox() is None
    assert canvas.mask_item.image.pixelColor(100, 100).alpha() == 0


def test_brush_on_image_layer_with_opacity_and_eraser(canvas, vm):
    from PySide6.QtCore import QPointF

    from aigc_desktop.ui.canvas.commands import AddLayerCommand

    layer = Layer(Image.new("RGBA", (100, 100), (0, 0, 255, 255)), name="blue")
    vm.push(AddLayerCommand(vm.doc, layer))
    assert vm.selected_id == layer.id  # a new layer is where painting goes
    canvas.set_brush(size=30, hardness=1.0, opacity=0.5, color=(255, 0, 0))
    canvas.begin_stroke(QPointF(50, 50))
    for _ in range(10):  # dabs on one spot do not build up past the stroke's opacity
        canvas.stroke_to(QPointF(50.5, 50))
        canvas.stroke_to(QPointF(50, 50))
    canvas.end_stroke()
    r, g, b, a = layer.image.getpixel((50, 50))
    assert (abs(r - 128) <= 1, g, abs(b - 127) <= 1, a) == (True, 0, True, 255)
    assert layer.image.getpixel((5, 5)) == (0, 0, 255, 255)
    canvas.set_tool("eraser")
    canvas.set_brush(opacity=1.0)
    canvas.begin_stroke(QPointF(20, 80))
    canvas.end_stroke()
    assert layer.image.getpixel((20, 80))[3] == 0
    assert vm.undo_stack.count() == 3  # add, paint, erase
    vm.undo_stack.undo()
    vm.undo_stack.undo()
    assert layer.image.getpixel((50, 50)) == (0, 0, 255, 255)


def test_locked_layer_refuses_the_brush(canvas, vm):
    from PySide6.QtCore import QPointF

    from aigc_desktop.ui.canvas.commands import AddLayerCommand, SetLayerPropertyCommand

    layer = Layer(Image.new("RGBA", (50, 50), (0, 0, 255, 255)))
    vm.push(AddLayerCommand(vm.doc, layer))
    vm.push(SetLayerPropertyCommand(vm.doc, layer.id, "locked", True))
    messages = []
    canvas.message.connect(lambda text, err: messages.append(text))
    assert not canvas.begin_stroke(QPointF(10, 10))
    assert messages and "locked" in messages[0]


def test_mouse_stroke_and_frame_drag_through_events(qtbot, canvas, vm):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtTest import QTest

    vp = canvas.viewport()
    canvas.set_brush(size=10, hardness=1.0)
    start = canvas.mapFromScene(QPointF(40, 40))
    end = canvas.mapFromScene(QPointF(80, 40))
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    for i in range(1, 11):
        QTest.mouseMove(vp, start + (end - start) * (i / 10))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    m = np.asarray(vm.doc.mask.image)
    assert m[40, 45] == 255 and m[40, 75] == 255 and vm.undo_stack.count() == 1
    # Drag the frame's bottom-right handle: the new size snaps to multiples of 8; one undo step.
    canvas.set_tool("move")
    f = vm.doc.frame
    corner = canvas.mapFromScene(QPointF(f.x + f.width, f.y + f.height))
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, corner)
    QTest.mouseMove(vp, corner + QPoint(-61, -29))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, corner + QPoint(-61, -29))
    assert vm.doc.frame == Frame(0, 0, 256 - 64, 256 - 32)
    assert vm.undo_stack.count() == 2
    vm.undo_stack.undo()
    assert vm.doc.frame == Frame(0, 0, 256, 256) and canvas.frame_item.frame == vm.doc.frame


def test_zoom_keeps_the_point_under_the_cursor(canvas):
    from PySide6.QtCore import QPointF

    anchor = QPointF(150, 120)
    before = canvas.mapToScene(anchor.toPoint())
    canvas.zoom_by(2.0, anchor)
    after = canvas.mapToScene(anchor.toPoint())
    assert abs(canvas.zoom_factor() - 2.0) < 1e-9
    assert abs(after.x() - before.x()) <= 1.0 and abs(after.y() - before.y()) <= 1.0  # one screen pixel
    canvas.zoom_100()
    assert canvas.zoom_factor() == 1.0


def test_brush_size_keys(qtbot, canvas):
    from PySide6.QtCore import Qt

    canvas.set_brush(size=48)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketRight)
    assert canvas.brush.size == pytest.approx(48 * 1.2)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    qtbot.keyClick(canvas, Qt.Key.Key_BracketLeft)
    assert canvas.brush.size == pytest.approx(48 / 1.2)


def test_accepted_result_lands_as_layer_at_frame_with_record(qtbot, canvas, vm):
    from PySide6.QtCore import Qt

    from aigc_desktop.ui.canvas.commands import SetFrameCommand
    from aigc_desktop.ui.viewmodels.document import StagedResult

    vm.push(SetFrameCommand(vm.doc, Frame(64, 32, 64, 64)))
    rect = vm.doc.frame.rect
    records = [{"prompt": "cat", "seed": s} for s in (5, 6)]
    vm.stage([StagedResult(noise(64, 64, s), rec, None, rect) for s, rec in zip((5, 6), records)])
    assert canvas.staging_bar.isVisible() and canvas.staging_bar.label.text() == "1 / 2"
    assert len(vm.doc.history) == 2
    canvas.setFocus()
    qtbot.keyClick(canvas, Qt.Key.Key_Right)  # arrow keys cycle the staged results
    assert vm.staged_index == 1 and canvas.staging_bar.label.text() == "2 / 2"
    count = vm.undo_stack.count()
    canvas.staging_bar.accept.click()
    layer = vm.doc.layers[-1]
    assert (layer.x, layer.y, layer.width, layer.height) == rect
    assert layer.record == records[1] and layer.image.tobytes() == noise(64, 64, 6).tobytes()
    assert vm.undo_stack.count() == count + 1 and not canvas.staging_bar.isVisible()
    vm.undo_stack.undo()
    assert vm.doc.layers == []
    # Discard drops them from staging; they stay in the history.
    vm.stage([StagedResult(noise(64, 64, 7), {"seed": 7}, None, rect)])
    canvas.staging_bar.discard.click()
    assert vm.staged == [] and len(vm.doc.history) == 3 and vm.doc.layers == []


def test_batch_previews_show_every_image_in_the_frame(canvas, vm):
    rect = vm.doc.frame.rect
    vm.show_preview("job-1", 0, Image.new("RGB", (8, 8), (255, 0, 0)), rect)
    vm.show_preview("job-1", 1, Image.new("RGB", (8, 8), (0, 255, 0)), rect)
    assert canvas.preview_item.isVisible() and len(canvas.preview_item.cells) == 2
    vm.show_preview("job-2", 0, Image.new("RGB", (8, 8), (0, 0, 255)), rect)  # a new run starts over
    assert len(canvas.preview_item.cells) == 1
    vm.clear_preview()
    assert not canvas.preview_item.isVisible()


def test_preview_brings_the_frame_into_view(canvas, vm):
    from PySide6.QtCore import QRectF

    from aigc_desktop.ui.canvas.commands import SetFrameCommand

    vm.push(SetFrameCommand(vm.doc, Frame(5000, 5000, 64, 64)))
    vm.show_preview("job", 0, Image.new("RGB", (8, 8)), vm.doc.frame.rect)
    visible = canvas.mapToScene(canvas.viewport().rect()).boundingRect()
    assert visible.contains(QRectF(5000, 5000, 64, 64))


# ------------------------------------------------------------------------------------ specs from the canvas


class _Info:
    def __init__(self, kind="diffusers"):
        self.kind, self.path, self.name, self.family, self.label, self.note = kind, "/m/tiny", "tiny", None, kind, ""


def png_image(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data))


def test_generation_specs_take_pixels_and_mask_under_the_frame(vm):
    from aigc_desktop.core.errors import UserError
    from aigc_desktop.ui.canvas.commands import AddLayerCommand, PaintCommand, SetFrameCommand
    from aigc_desktop.ui.viewmodels.generation import GenerationViewModel

    gen = GenerationViewModel(vm)
    doc = vm.doc
    vm.push(SetFrameCommand(doc, Frame(16, 16, 64, 64)))
    assert (gen.params.width, gen.params.height) == (64, 64)  # the size follows the frame
    gen.set_params(GenerationParams(prompt="x", seed=10, width=64, height=64, batch_size=2, batch_count=3))
    specs = gen.build_jobs(_Info())
    assert [s.params.seed for s in specs] == [10, 12, 14] and all(s.params.batch_count == 1 for s in specs)
    assert all(s.target["frame"] == [16, 16, 64, 64] for s in specs) and specs[0].params.init_image is None
    gen.set_params(replace_params(gen.params, mode="img2img", batch_size=1, batch_count=1))
    with pytest.raises(UserError, match="frame is empty"):
        gen.build_jobs(_Info())
    layer = Layer(noise(128, 128, 1), x=0, y=0)
    vm.push(AddLayerCommand(doc, layer))
    spec = gen.build_jobs(_Info())[0]
    init = png_image(spec.params.init_image)
    assert init.size == (64, 64) and init.tobytes() == layer.image.crop((16, 16, 80, 80)).convert("RGB").tobytes()
    gen.set_params(replace_params(gen.params, mode="inpaint"))
    with pytest.raises(UserError, match="mask"):
        gen.build_jobs(_Info())
    vm.push(PaintCommand(doc, doc.mask.id, 20, 20, Image.new("L", (8, 8), 255)))
    spec = gen.build_jobs(_Info())[0]
    mask = np.asarray(png_image(spec.params.mask))
    assert mask.shape == (64, 64) and (mask[4:12, 4:12] == 255).all() and mask.sum() == 64 * 255
    # Outpaint: where nothing is visible under the frame is repainted (as an inpaint of that area).
    vm.push(SetFrameCommand(doc, Frame(96, 96, 64, 64)))
    gen.set_params(replace_params(gen.params, mode="outpaint"))
    spec = gen.build_jobs(_Info())[0]
    hole = np.asarray(png_image(spec.params.mask))
    assert spec.params.mode == "inpaint" and (hole[:32, :32] == 0).all() and (hole[32:, :] == 255).all()
    assert (hole[:, 32:] == 255).all()
    # A file chosen in More options wins over the canvas (the CLI's way).
    gen.set_params(replace_params(gen.params, mode="img2img", init_image="/tmp/file.png"))
    assert gen.build_jobs(_Info())[0].params.init_image == "/tmp/file.png"


def replace_params(p, **kw):
    from dataclasses import replace

    return replace(p, **kw)


def test_stroke_off_the_mask_grows_it(canvas, vm):
    from PySide6.QtCore import QPointF

    canvas.set_brush(size=10, hardness=1.0)
    canvas.begin_stroke(QPointF(-40, -30))
    canvas.stroke_to(QPointF(-20, -30))
    canvas.end_stroke()
    m = vm.doc.mask
    assert m.x <= -45 and m.y <= -35 and m.x + m.width == 256 and m.y + m.height == 256
    assert m.image.getpixel((-30 - m.x, -30 - m.y)) == 255 and m.image.getpixel((10 - m.x, 10 - m.y)) == 0
    assert canvas.mask_item.pos().x() == m.x and canvas.mask_item.image.width() == m.width
    assert vm.undo_stack.count() == 1
    vm.undo_stack.undo()
    assert m.image.getbbox() is None


def test_the_view_is_kept_in_the_document_and_restored(canvas, vm):
    from aigc_desktop.core.document import View

    canvas.zoom_by(2.0)
    saved = vm.doc.view
    assert saved.zoom == pytest.approx(2.0)
    other = Document.new(256, 256)
    other.add_layer(Layer(noise(16, 16)))
    other.set_view(View(4.0, 10.0, 20.0))
    vm.doc.load_from(other)  # opening a project
    assert canvas.zoom_factor() == pytest.approx(4.0)
    centre = canvas.mapToScene(canvas.viewport().rect().center())
    assert abs(centre.x() - 10) <= 1 and abs(centre.y() - 20) <= 1  # within a screen pixel or so


def test_move_tool_drags_the_selected_layer_and_pan_keeps_the_document(qtbot, canvas, vm):
    from PySide6.QtCore import QPoint, QPointF, Qt
    from PySide6.QtTest import QTest

    from aigc_desktop.ui.canvas.commands import AddLayerCommand

    layer = Layer(noise(40, 40), name="photo", x=100, y=100)
    vm.push(AddLayerCommand(vm.doc, layer))
    canvas.set_tool("move")
    vp = canvas.viewport()
    start = canvas.mapFromScene(QPointF(120, 120))
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(vp, start + QPoint(30, -10))
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start + QPoint(30, -10))
    assert (layer.x, layer.y) == (130, 90) and vm.undo_stack.text(vm.undo_stack.count() - 1) == "Move layer"
    vm.undo_stack.undo()
    assert (layer.x, layer.y) == (100, 100) and canvas.items[layer.id].pos() == QPointF(100, 100)
    # The middle button pans the view; the document does not change.
    before = canvas.mapToScene(QPoint(200, 200))
    count = vm.undo_stack.count()
    QTest.mousePress(vp, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, QPoint(200, 200))
    QTest.mouseMove(vp, QPoint(250, 230))
    QTest.mouseRelease(vp, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier, QPoint(250, 230))
    after = canvas.mapToScene(QPoint(250, 230))
    assert abs(after.x() - before.x()) <= 1 and abs(after.y() - before.y()) <= 1  # the point followed the mouse
    assert vm.undo_stack.count() == count and (layer.x, layer.y) == (100, 100)


def test_rectangle_selection_masks_and_frames(qtbot, canvas, vm):
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtTest import QTest

    from aigc_desktop.ui.canvas.commands import SetFrameCommand, mask_rect_command

    canvas.set_tool("select")
    vp = canvas.viewport()
    a, b = canvas.mapFromScene(QPointF(20, 30)), canvas.mapFromScene(QPointF(60, 50))
    QTest.mousePress(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, a)
    QTest.mouseMove(vp, b)
    QTest.mouseRelease(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, b)
    assert canvas.selection == (20, 30, 40, 20) and canvas.selection_item.isVisible()
    assert vm.undo_stack.count() == 0  # selecting is not an edit
    vm.push(mask_rect_command(vm.doc, canvas.selection))
    m = np.asarray(vm.doc.mask.image)
    assert (m[30:50, 20:60] == 255).all() and m.sum() == 40 * 20 * 255
    vm.undo_stack.undo()
    assert vm.doc.mask.image.getbbox() is None
    vm.push(SetFrameCommand(vm.doc, Frame.snapped(*canvas.selection)))
    assert vm.doc.frame == Frame(24, 32, 40, 24)
    canvas.set_selection(None)
    assert not canvas.selection_item.isVisible()

"""Scaling a layer on the canvas with the Move tool's handles, driven by real mouse events (offscreen)."""

from __future__ import annotations

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QTransform
from PySide6.QtTest import QTest

from aigc_desktop.core.document import MAX_LAYER_SIDE, Layer

LEFT, NONE, SHIFT = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ShiftModifier


def noise(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    arr[..., 3] = 255
    return Image.fromarray(arr, "RGBA")


def add(vm, layer: Layer) -> Layer:
    from aigc_desktop.ui.canvas.commands import AddLayerCommand

    vm.push(AddLayerCommand(vm.doc, layer))
    return layer


def drag(canvas, scene_from: tuple[float, float], delta: tuple[int, int], modifiers=NONE, steps: int = 5) -> None:
    """Press at a scene point, move in steps by `delta` screen pixels, release (real mouse events)."""
    vp = canvas.viewport()
    start = canvas.mapFromScene(QPointF(*scene_from))
    QTest.mousePress(vp, LEFT, modifiers, start)
    for i in range(1, steps + 1):
        QTest.mouseMove(vp, start + QPoint(round(delta[0] * i / steps), round(delta[1] * i / steps)))
    QTest.mouseRelease(vp, LEFT, modifiers, start + QPoint(*delta))


def test_move_tool_shows_the_selected_layers_box_with_handles(canvas, vm):
    layer = add(vm, Layer(noise(64, 40), x=40, y=50))
    box = canvas.transform_box
    assert not box.isVisible()  # the brush is the tool
    canvas.set_tool("move")
    assert box.isVisible() and box.rect.getRect() == (40, 50, 64, 40)
    assert set(box.handles()) == {"lt", "rt", "lb", "rb", "t", "b", "l", "r"}
    assert box.hit(QPointF(104, 90)) == "rb" and box.hit(QPointF(72, 50)) == "t" and box.hit(QPointF(70, 70)) is None
    assert box.hit(QPointF(38, 71)) == "l"  # a few screen pixels off still takes it
    vm.select(vm.doc.mask.id)  # the mask does not scale: no box
    assert not box.isVisible()
    vm.select(layer.id)
    assert box.isVisible()
    canvas.set_tool("brush")
    assert not box.isVisible()


def test_corner_drag_keeps_aspect_and_is_one_undo_step_with_exact_undo(canvas, vm):
    record = {"prompt": "a lighthouse", "seed": 3}
    layer = add(vm, Layer(noise(64, 32, 1), name="gen", x=40, y=50, record=record))
    original, rect0 = layer.image.tobytes(), layer.rect
    canvas.set_tool("move")
    count = vm.undo_stack.count()
    drag(canvas, (104, 82), (32, 40))  # the bottom-right corner: the top-left corner stays put
    w, h = layer.width, layer.height
    assert (layer.x, layer.y) == (40, 50)
    assert w > 64 and abs(w / h - 2.0) < 0.05  # the aspect ratio held, though the drag was steeper
    assert vm.undo_stack.count() == count + 1 and vm.undo_stack.text(count) == "Scale layer"
    assert layer.image.tobytes() == noise(64, 32, 1).resize((w, h), Image.Resampling.LANCZOS).tobytes()
    assert layer.record is record  # a generated layer keeps its record
    item = canvas.items[layer.id]
    assert item.transform().isIdentity() and item.image.size().toTuple() == (w, h)  # the preview is gone
    assert canvas.transform_box.rect.getRect() == (40, 50, w, h)
    assert not vm.undo_stack.isClean()  # the window title shows unsaved changes
    vm.undo_stack.undo()
    assert layer.rect == rect0 and layer.image.tobytes() == original  # bit-identical
    assert item.image.size().toTuple() == (64, 32) and canvas.transform_box.rect.getRect() == rect0
    vm.undo_stack.redo()
    assert layer.rect == (40, 50, w, h)
    vm.undo_stack.undo()
    assert layer.image.tobytes() == original


def test_top_left_corner_keeps_the_bottom_right_in_place(canvas, vm):
    layer = add(vm, Layer(noise(40, 40, 2), x=100, y=100))
    canvas.set_tool("move")
    drag(canvas, (100, 100), (20, 20))  # shrink from the top-left
    assert (layer.width, layer.height) == (20, 20) and (layer.x + layer.width, layer.y + layer.height) == (140, 140)


def test_shift_frees_the_aspect_ratio_and_edges_scale_one_axis(canvas, vm):
    layer = add(vm, Layer(noise(64, 32, 3), x=40, y=50))
    canvas.set_tool("move")
    drag(canvas, (104, 82), (36, 28), modifiers=SHIFT)
    assert layer.rect == (40, 50, 100, 60)
    drag(canvas, (140, 80), (-50, 0))  # the right edge (the middle of the new box's right side)
    assert layer.rect == (40, 50, 50, 60)
    drag(canvas, (65, 50), (0, -30))  # the top edge: the bottom stays
    assert layer.rect == (40, 20, 50, 90)
    assert vm.undo_stack.count() == 4  # add + three scales


def test_live_preview_transforms_the_item_without_touching_the_document(canvas, vm):
    layer = add(vm, Layer(noise(64, 32, 4), x=40, y=50))
    canvas.set_tool("move")
    vp = canvas.viewport()
    start = canvas.mapFromScene(QPointF(104, 82))
    revision = layer.revision
    QTest.mousePress(vp, LEFT, NONE, start)
    QTest.mouseMove(vp, start + QPoint(64, 32))
    item = canvas.items[layer.id]
    assert item.transform() == QTransform.fromScale(2, 2) and item.image.size().toTuple() == (64, 32)
    assert layer.rect == (40, 50, 64, 32) and layer.revision == revision  # nothing resampled yet
    assert canvas.transform_box.rect.getRect() == (40, 50, 128, 64) and "128 × 64" in canvas.transform_box.label
    QTest.keyClick(canvas, Qt.Key.Key_Escape)  # Esc cancels the drag
    QTest.mouseRelease(vp, LEFT, NONE, start + QPoint(64, 32))
    assert layer.rect == (40, 50, 64, 32) and item.transform().isIdentity() and vm.undo_stack.count() == 1


def test_scaling_never_goes_below_one_pixel(canvas, vm):
    layer = add(vm, Layer(noise(20, 10, 5), x=100, y=100))
    canvas.set_tool("move")
    drag(canvas, (120, 110), (-200, -200), modifiers=SHIFT)  # far past the opposite corner: no flip
    assert layer.rect == (100, 100, 1, 1)


def test_locked_layer_refuses_with_a_message(qtbot, canvas, vm):
    from aigc_desktop.ui.canvas.commands import SetLayerPropertyCommand

    layer = add(vm, Layer(noise(64, 32, 6), name="bg", x=40, y=50))
    vm.push(SetLayerPropertyCommand(vm.doc, layer.id, "locked", True))
    canvas.set_tool("move")
    assert canvas.transform_box.isVisible() and canvas.transform_box.locked
    messages = []
    canvas.message.connect(lambda text, error: messages.append((text, error)))
    before, count = layer.image.tobytes(), vm.undo_stack.count()
    drag(canvas, (104, 82), (30, 30))
    assert layer.rect == (40, 50, 64, 32) and layer.image.tobytes() == before and vm.undo_stack.count() == count
    assert any("locked" in text and error for text, error in messages)


def test_too_large_is_refused_with_one_message(canvas, vm):
    layer = add(vm, Layer(noise(2048, 2048, 7), name="big", x=0, y=0))
    canvas.set_tool("move")
    canvas.zoom_by(1 / 32)
    canvas.centerOn(2048, 1024)
    messages = []
    canvas.message.connect(lambda text, error: messages.append((text, error)))
    # Drag the right edge far enough that the layer would pass the limit; the box turns red on the way.
    d = int((MAX_LAYER_SIDE + 500 - 2048) * canvas.zoom_factor())
    vp = canvas.viewport()
    start = canvas.mapFromScene(QPointF(2048, 1024))
    QTest.mousePress(vp, LEFT, NONE, start)
    QTest.mouseMove(vp, start + QPoint(d, 0))
    assert canvas.transform_box.invalid and canvas.transform_box.rect.width() > MAX_LAYER_SIDE
    QTest.mouseRelease(vp, LEFT, NONE, start + QPoint(d, 0))
    assert layer.rect == (0, 0, 2048, 2048) and vm.undo_stack.count() == 1
    assert len(messages) == 1 and str(MAX_LAYER_SIDE) in messages[0][0] and messages[0][1]
    assert canvas.items[layer.id].transform().isIdentity()


def test_body_drag_still_moves_and_handles_take_precedence_over_the_frame(canvas, vm):
    # A layer placed exactly on the frame (an accepted result): with Move, its corner scales the layer.
    f = vm.doc.frame
    layer = add(vm, Layer(noise(f.width, f.height, 8), x=f.x, y=f.y))
    canvas.set_tool("move")
    canvas.fit()
    drag(canvas, (f.x + f.width, f.y + f.height), (-40, -40))
    assert layer.width < f.width and vm.doc.frame == f
    drag(canvas, (layer.x + layer.width / 2, layer.y + layer.height / 2), (10, 5))
    assert vm.undo_stack.text(vm.undo_stack.count() - 1) == "Move layer"

"""The Layers panel drives the document through undo commands; the selected row is where painting goes."""

from __future__ import annotations

import pytest
from PIL import Image

from aigc_desktop.core.document import Document, Layer


@pytest.fixture
def panel(qtbot):
    from aigc_desktop.ui.canvas.commands import AddLayerCommand
    from aigc_desktop.ui.panels.layers import LayersPanel
    from aigc_desktop.ui.viewmodels.document import DocumentViewModel

    vm = DocumentViewModel(Document.new(64, 64))
    for name, color in (("bottom", (255, 0, 0, 255)), ("middle", (0, 255, 0, 255)), ("top", (0, 0, 255, 128))):
        vm.push(AddLayerCommand(vm.doc, Layer(Image.new("RGBA", (32, 32), color), name=name)))
    vm.undo_stack.clear()
    p = LayersPanel(vm)
    qtbot.addWidget(p)
    p.show()
    return p


def names(panel) -> list[str]:
    return [panel.list.item(i).text() for i in range(panel.list.count())]


def test_rows_show_mask_then_layers_top_first_and_select(panel):
    vm = panel.vm
    assert names(panel) == ["Mask", "top", "middle", "bottom"]
    assert vm.selected_id == vm.doc.layers[-1].id  # the last added layer
    panel.list.setCurrentRow(0)
    assert vm.selected_id == vm.doc.mask.id  # painting now goes to the mask
    assert panel.buttons["delete"].text() == "Clear" and not panel.buttons["merge"].isEnabled()
    panel.list.setCurrentRow(3)
    assert vm.selected.name == "bottom" and not panel.buttons["down"].isEnabled()


def test_visibility_rename_opacity_lock_are_undoable(panel):
    from PySide6.QtCore import Qt

    vm = panel.vm
    top = vm.doc.layers[-1]
    panel.list.item(1).setCheckState(Qt.CheckState.Unchecked)
    assert not top.visible
    panel.list.item(1).setText("sky")
    assert top.name == "sky"
    panel.list.setCurrentRow(1)
    for v in (90, 70, 50):  # a slider drag is one undo step
        panel.opacity.setValue(v)
    assert top.opacity == 0.5
    panel.lock.setChecked(True)
    assert top.locked
    assert [vm.undo_stack.text(i) for i in range(vm.undo_stack.count())] == \
        ["Layer visibility", "Rename layer", "Layer opacity", "Lock layer"]
    for _ in range(4):
        vm.undo_stack.undo()
    assert (top.visible, top.name, top.opacity, top.locked) == (True, "top", 1.0, False)
    assert names(panel)[1] == "top"


def test_buttons_new_duplicate_delete_merge_and_order(panel):
    vm = panel.vm
    panel.list.setCurrentRow(2)  # middle
    panel.buttons["duplicate"].click()
    assert [la.name for la in vm.doc.layers] == ["bottom", "middle", "middle copy", "top"]
    panel.buttons["up"].click()
    assert [la.name for la in vm.doc.layers] == ["bottom", "middle", "top", "middle copy"]
    panel.buttons["delete"].click()
    assert [la.name for la in vm.doc.layers] == ["bottom", "middle", "top"]
    panel.list.setCurrentRow(1)  # top
    panel.buttons["merge"].click()
    assert [la.name for la in vm.doc.layers] == ["bottom", "middle"]
    assert vm.doc.layers[1].image.getpixel((0, 0))[:3] != (0, 255, 0)  # the half-transparent blue merged in
    panel.buttons["fit"].click()  # 32x32 scaled to the 64x64 frame
    assert vm.doc.layers[1].rect == (0, 0, 64, 64)
    panel.buttons["new"].click()
    assert vm.doc.layers[-1].rect == vm.doc.frame.rect and vm.doc.layers[-1].image.getbbox() is None
    n = vm.undo_stack.count()
    for _ in range(n):
        vm.undo_stack.undo()
    assert [la.name for la in vm.doc.layers] == ["bottom", "middle", "top"]


def test_drag_reorder_is_one_command(panel):
    from PySide6.QtCore import QModelIndex

    vm = panel.vm
    model = panel.list.model()
    assert model.moveRow(QModelIndex(), 3, QModelIndex(), 1)  # "bottom" dragged to the top
    assert [la.name for la in vm.doc.layers] == ["middle", "top", "bottom"]
    assert vm.undo_stack.count() == 1
    vm.undo_stack.undo()
    assert [la.name for la in vm.doc.layers] == ["bottom", "middle", "top"]

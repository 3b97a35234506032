"""The window's side of project files: unsaved state, New / Open / Save / Revert, autosave, recovery offer."""

from __future__ import annotations

import pytest
from PIL import Image

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QFileDialog, QMenu, QMessageBox, QWidget  # noqa: E402

from aigc_desktop.core.document import HistoryItem, Layer  # noqa: E402
from aigc_desktop.core.project import open_project, save_document  # noqa: E402
from aigc_desktop.core.settings import Settings  # noqa: E402
from aigc_desktop.ui.canvas.commands import AddLayerCommand  # noqa: E402
from aigc_desktop.ui.viewmodels import project as pvm  # noqa: E402
from aigc_desktop.ui.viewmodels.document import DocumentViewModel  # noqa: E402
from tests.project.helpers import assert_same_document, make_document  # noqa: E402


@pytest.fixture
def vm(qtbot, tmp_path):
    document = DocumentViewModel()
    model = pvm.ProjectViewModel(document, Settings(), recovery_root=tmp_path / "recovery")
    yield model
    model.shutdown()


def add_layer(vm) -> None:
    layer = Layer(Image.new("RGBA", (8, 8), (1, 2, 3, 255)), name="painted")
    vm.document_vm.push(AddLayerCommand(vm.document_vm.doc, layer, text="Add"))


def test_dirty_follows_undo_and_generations(vm, tmp_path):
    assert not vm.dirty and vm.title() == "Untitled[*]"
    add_layer(vm)
    assert vm.dirty
    vm.document_vm.undo_stack.undo()
    assert not vm.dirty  # back at the clean state
    vm.document_vm.doc.add_history(HistoryItem({"seed": 1}, Image.new("RGB", (8, 8))))
    assert vm.dirty  # a generation is unsaved work although it is not an undo step
    assert vm.save(tmp_path / "w.aigc") and not vm.dirty and vm.title() == "w[*]"
    assert vm.recent() == [str((tmp_path / "w.aigc").resolve())]


def test_open_save_as_and_revert(vm, tmp_path):
    doc = make_document(seed=61)
    path = save_document(doc, tmp_path / "cat.aigc")
    assert vm.open(path)
    window_doc = vm.document_vm.doc
    assert vm.project.document is window_doc and vm.path == path and not vm.dirty
    assert_same_document(doc, window_doc)
    add_layer(vm)
    assert vm.save(tmp_path / "copy.aigc") and vm.path == tmp_path / "copy.aigc"
    assert len(open_project(tmp_path / "copy.aigc").document.layers) == 3
    add_layer(vm)
    assert vm.revert() and len(window_doc.layers) == 3 and not vm.dirty


def test_errors_are_one_line_messages(vm, tmp_path, qtbot):
    bad = tmp_path / "bad.aigc"
    bad.write_bytes(b"nope")
    with qtbot.waitSignal(vm.message) as blocker:
        assert not vm.open(bad)
    assert blocker.args[1] is True and "not a zip file" in blocker.args[0]
    assert not vm.save()  # untitled: the window must ask for a file first


def test_autosave_tick_and_clean_shutdown(vm, tmp_path):
    vm.settings.set("autosave_seconds", 60)
    vm.autosaver.clock = lambda: 1e9  # long past the interval
    add_layer(vm)
    assert vm.autosave_tick()
    assert (vm.session.folder / "autosave.aigc").exists()
    assert not vm.pending_recovery()  # this run's own data is never offered
    vm.shutdown()
    assert not vm.session.folder.exists()


def test_recovery_offer_restore_later_discard(qtbot, tmp_path, monkeypatch):
    root = tmp_path / "recovery"
    crashed = pvm.ProjectViewModel(DocumentViewModel(), Settings(), recovery_root=root)
    crashed.document_vm.doc.add_history(HistoryItem({"seed": 5}, Image.new("RGB", (8, 8), (5, 5, 5)), id="g5"))
    crashed.timer.stop()
    crashed.session.flush()
    crashed.session._lock.close()  # the run dies without cleaning up

    vm = pvm.ProjectViewModel(DocumentViewModel(), Settings(), recovery_root=root)
    parent = QWidget()
    qtbot.addWidget(parent)
    pending = vm.pending_recovery()
    assert len(pending) == 1 and "1 generation journaled" in pending[0].describe()

    def click(name):
        def exec_(box):
            box.setProperty("seen", box.text())
            for button in box.buttons():
                if button.text() == name:
                    button.click()
            return 0
        monkeypatch.setattr(QMessageBox, "exec", exec_)

    click("Later")
    assert not pvm.offer_recovery(vm, parent) and len(vm.pending_recovery()) == 1  # kept
    click("Restore")
    assert pvm.offer_recovery(vm, parent)
    assert [h.id for h in vm.document_vm.doc.history] == ["g5"] and vm.dirty
    assert vm.pending_recovery() == []  # moved into this run's recovery data
    vm.shutdown()


def test_file_menu_dialogs(vm, qtbot, tmp_path, monkeypatch):
    parent = QWidget()
    qtbot.addWidget(parent)
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "named"), ""))
    add_layer(vm)
    assert pvm.file_save(vm, parent) and vm.path == tmp_path / "named.aigc"
    add_layer(vm)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Cancel)
    assert not pvm.file_new(vm, parent) and vm.dirty  # cancelled: nothing changes
    assert not pvm.confirm_close(vm, parent)
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    assert pvm.file_new(vm, parent) and vm.path is None and vm.document_vm.doc.layers == []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(tmp_path / "named.aigc"), ""))
    assert pvm.file_open(vm, parent) and len(vm.document_vm.doc.layers) == 1
    menu = QMenu()
    pvm.fill_recent_menu(vm, menu, parent)
    assert [a.text() for a in menu.actions()] == ["named.aigc"]

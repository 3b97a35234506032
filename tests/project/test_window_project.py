"""The File menu in the real window, once main_window.py is wired to ProjectViewModel (skipped before)."""

from __future__ import annotations

import inspect

import pytest
from PIL import Image

pytest.importorskip("PySide6")

from PySide6.QtWidgets import QFileDialog, QMessageBox  # noqa: E402

from aigc_desktop.core.document import Frame, HistoryItem  # noqa: E402
from aigc_desktop.core.params import GenerationParams  # noqa: E402
from aigc_desktop.core.project import open_project, save_document  # noqa: E402
from aigc_desktop.core.settings import Settings  # noqa: E402
from tests.project.helpers import assert_same_document, make_document  # noqa: E402


def _wired() -> bool:
    from aigc_desktop.ui.main_window import MainWindow

    return "ProjectViewModel" in inspect.getsource(MainWindow.__init__)


pytestmark = pytest.mark.skipif(not _wired(), reason="main_window.py is not wired to ProjectViewModel yet")


@pytest.fixture
def window(qtbot, tmp_path, monkeypatch):
    from aigc_desktop.ui.main_window import MainWindow

    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Discard)
    w = MainWindow(Settings({"models_dir": str(tmp_path / "models")}), scan_models=False)
    qtbot.addWidget(w)
    w.show()
    yield w
    w.close()


def test_open_edit_save_as_and_title(window, tmp_path, monkeypatch):
    doc = make_document(seed=71)
    doc.set_frame(Frame(8, 16, 64, 64))  # sizes the prompt panel accepts
    doc.set_prompt_state(GenerationParams(prompt="a lighthouse", seed=5, width=64, height=64).to_dict())
    path = save_document(doc, tmp_path / "cat.aigc")
    window.open_project(str(path))
    opened = window.document.doc
    assert window.generation.params.prompt == "a lighthouse" and window.generation.params.seed == 5
    opened.prompt_state, opened.model = doc.prompt_state, doc.model  # the panels rewrite them in their own form
    assert_same_document(doc, opened, view=False)  # the view: test_saved_view_is_shown
    assert window.windowTitle().startswith("cat") and not window.isWindowModified()
    window.document.doc.add_history(HistoryItem({"seed": 9}, Image.new("RGB", (8, 8), (9, 9, 9))))
    assert window.isWindowModified()
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(tmp_path / "copy"), ""))
    window.save_project(None, ask=True)
    assert not window.isWindowModified() and window.windowTitle().startswith("copy.aigc")
    assert len(open_project(tmp_path / "copy.aigc").document.history) == 4
    window.new_project()
    assert window.document.doc.layers == [] and window.windowTitle().startswith("Untitled")


def test_saved_view_is_shown(window, tmp_path, qtbot):
    """The canvas shows the project where it was left (zoom and centre), not a fresh fit."""
    doc = make_document(seed=72)
    window.open_project(str(save_document(doc, tmp_path / "view.aigc")))
    qtbot.wait(10)
    view = window.document.doc.view
    # The canvas rounds through its transform and integer scroll bars: 0.1 % of zoom, and the centre within
    # 3 screen pixels (1.07 document pixels = 1.9 screen pixels measured at zoom 1.75).
    assert view.zoom == pytest.approx(doc.view.zoom, rel=1e-3)
    assert (view.center_x, view.center_y) == pytest.approx((doc.view.center_x, doc.view.center_y),
                                                           abs=3 / doc.view.zoom)

"""Fixtures shared by the canvas tests: a document view-model and a canvas on it at 100 %."""

import pytest

from aigc_desktop.core.document import Document


@pytest.fixture
def vm(qtbot):
    from aigc_desktop.ui.viewmodels.document import DocumentViewModel

    return DocumentViewModel(Document.new(256, 256))


@pytest.fixture
def canvas(qtbot, vm):
    from aigc_desktop.ui.canvas.view import CanvasView

    view = CanvasView(vm)
    qtbot.addWidget(view)
    view.resize(600, 500)
    view.show()
    view.zoom_100()
    view.centerOn(128, 128)
    return view

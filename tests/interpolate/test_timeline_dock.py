"""The timeline in the main window (install_timeline), offscreen with qtbot: the dock tabbed with the History,
keyframes from canvas layers and history items, easing, a VAE morph rendered by the window's own worker,
scrubbing, a frame sent to the canvas as one undo step, the prompt's "Send prompt to timeline", and the
timeline saved in the project and back after reopening it."""

from __future__ import annotations

import shutil

import pytest

from aigc_desktop.core.settings import Settings
from aigc_desktop.engines.base import FakeEngine

pytest.importorskip("pytestqt")


@pytest.fixture
def models_dir(tmp_path, tiny_sd_path, morph_vae_path):
    folder = tmp_path / "models"
    shutil.copytree(tiny_sd_path, folder / "tiny-sd")
    shutil.copytree(morph_vae_path, folder / "tiny-morph")
    return folder


@pytest.fixture
def window(qtbot, models_dir):
    """A window built as tests/ui/test_main_window.py builds one (its timeline is installed by the window)."""
    from aigc_desktop.ui.main_window import MainWindow

    w = MainWindow(Settings({"models_dir": str(models_dir), "save_outputs": False}),
                   engines={"diffusion": FakeEngine()})
    qtbot.addWidget(w)
    w.show()
    qtbot.waitUntil(lambda: len(w.models.models) == 2 and w.models.selected is not None, timeout=10000)
    w.timeline.panel.auto.setChecked(False)  # the tests press Render themselves
    yield w
    w.close()


def select_kind(w, kind):
    info = next(m for m in w.models.models if m.kind == kind)
    w.models.select(info)
    return info


def add_two_layers(w, key_images):
    return [w.add_image_layer(im, f"key {i}") for i, im in enumerate(key_images[:2])]


def render_all(qtbot, t):
    t.panel.render_button.click()
    qtbot.waitUntil(lambda: t.vm.frame_count > 0 and t.vm.rendered_count() == t.vm.frame_count, timeout=30000)
    qtbot.waitUntil(lambda: not t.vm.pending, timeout=10000)


def test_dock_is_under_the_canvas_tabbed_with_history(qtbot, window):
    from PySide6.QtCore import Qt

    t = window.timeline
    assert t.dock.widget().widget() is t.panel and t.dock.windowTitle() == "Timeline"  # in a scroll area
    assert window.dockWidgetArea(t.dock) == Qt.DockWidgetArea.BottomDockWidgetArea
    qtbot.waitUntil(lambda: t.dock in window.tabifiedDockWidgets(window.history_dock), timeout=2000)
    qtbot.waitUntil(lambda: t.dock.visibleRegion().isEmpty(), timeout=2000)  # behind the History until used
    assert t.vm.model is not None and t.vm.model.path == window.models.selected.path  # follows the selection
    assert not window.project.dirty  # installing (and following the chosen model) is not an edit
    select_kind(window, "vae_morph")
    assert t.vm.model.kind == "vae_morph" and not window.project.dirty
    t.send_prompt_action.trigger()  # an empty prompt: a message, no keyframe
    assert t.vm.keyframes == [] and "prompt" in window.message_bar.text()
    window.prompt_panel.prompt.setPlainText("a red apple")
    t.send_prompt_action.trigger()  # a keyframe, and the timeline comes to the front
    qtbot.waitUntil(lambda: t.dock.height() >= min(t.panel.sizeHint().height(), window.height() // 2))  # shown whole
    qtbot.waitUntil(lambda: not t.dock.visibleRegion().isEmpty(), timeout=2000)
    assert len(t.vm.keyframes) == 1 and window.project.dirty
    assert t.dock.toggleViewAction() in window.view_menu.actions()
    generate = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Generate")
    assert t.send_prompt_action in generate.actions()


def test_layers_easing_render_scrub_and_send_a_frame_to_the_canvas(qtbot, window, key_images):
    t, vm, panel = window.timeline, window.timeline.vm, window.timeline.panel
    select_kind(window, "vae_morph")
    assert vm.travel == "vae" and vm.model.kind == "vae_morph"
    ids = add_two_layers(window, key_images)
    panel.canvas_actions["visible"].trigger()
    assert [k.image for k in vm.keyframes] == [f"layer:{i}" for i in ids]
    assert [k.label for k in vm.keyframes] == ["key 0", "key 1"] and panel.strip.count() == 2
    assert window.project.dirty and window.document.doc.timeline == vm.to_state()  # in the document at once

    panel.canvas_actions["selected"].trigger()  # the selected layer (the last one added) once more
    assert len(vm.keyframes) == 3 and vm.keyframes[2].image == f"layer:{ids[1]}"
    panel.strip.setCurrentRow(2)
    panel.remove_button.click()

    panel.strip.setCurrentRow(0)
    panel.frames_spin.setValue(6)
    panel.easing.setCurrentIndex(panel.easing.findData("ease-in-out"))
    assert vm.timeline.segments[0].frames == 6 and vm.timeline.segments[0].easing == "ease-in-out"
    assert panel.curve.easing == "ease-in-out" and vm.frame_count == 7
    assert window.document.doc.timeline["timeline"]["segments"][0]["easing"] == "ease-in-out"

    render_all(qtbot, t)  # a TravelJob on the window's queue, rendered by its worker thread
    spec = next(r.spec for r in window.queue.rows.values() if r.spec.kind == "travel")
    assert spec.frames[:3] == (0, 4, 6)  # coarse first
    assert vm.frame_image(0).size == (16, 16) and not window.document.staged  # frames are not staged results

    panel.scrubber.setValue(3)
    assert vm.current == 3 and panel.view.pixmap() is not None and not panel.view.pixmap().isNull()
    assert "frame 4/7" in panel.frame_label.text()

    layers, steps = len(window.document.doc.layers), window.document.undo_stack.count()
    panel.send_button.click()
    doc_layers = window.document.doc.layers
    assert len(doc_layers) == layers + 1 and window.document.undo_stack.count() == steps + 1
    new = doc_layers[-1]
    assert new.name == "Timeline frame 4" and new.record["travel"]["frame"] == 3
    assert new.image.convert("RGB").tobytes() == vm.frame_image(3).convert("RGB").tobytes()
    window.document.undo_stack.undo()
    assert len(window.document.doc.layers) == layers


def test_history_items_and_the_prompt_become_diffusion_keyframes(qtbot, window):
    t, vm = window.timeline, window.timeline.vm
    select_kind(window, "diffusers")
    panel = window.prompt_panel
    panel.prompt.setPlainText("a red apple")
    panel.seed.setValue(7)
    panel.steps.setValue(3)
    with qtbot.waitSignal(window.queue.job_finished, timeout=10000):
        window.generate()
    entry = window.document.doc.history[-1]

    assert t.keyframes_from_canvas("history") == []  # nothing selected in the strip: a hint, no keyframe
    assert "History" in t.panel.status.text()
    window.history_panel.list.setCurrentRow(0)
    assert t.keyframes_from_canvas("history") == [0]
    assert (vm.keyframes[0].prompt, vm.keyframes[0].seed) == ("a red apple", entry.record["seed"])
    assert vm.keyframes[0].image == f"history:{entry.id}" and vm.keyframes[0].id in vm.images
    assert t.add_history_item(entry) == 1  # the History strip's context menu entry
    assert ("Add to timeline", t.add_history_item) in window.history_panel.extra_actions

    panel.prompt.setPlainText("a green apple")
    panel.seed.setValue(-1)  # random: a seed is drawn for the keyframe
    panel.cfg.setValue(4.5)
    t.send_prompt_action.trigger()
    assert vm.travel == "diffusion" and len(vm.keyframes) == 3
    k = vm.keyframes[2]
    assert k.prompt == "a green apple" and k.seed >= 0 and vm.params.cfg_scale == 4.5 and vm.params.steps == 3
    assert t.panel.strip.currentRow() == 2 and t.panel.prompt.text() == "a green apple"
    assert "Keyframe 3" in window.status.currentMessage()
    t.send_prompt_button.click()  # the button under Generate does the same
    assert len(vm.keyframes) == 4

    panel.prompt.setPlainText("  ")
    assert t.send_prompt() is None and len(vm.keyframes) == 4 and "prompt" in window.message_bar.text()


def test_a_hostile_record_is_one_line_and_adds_nothing(window):
    from aigc_desktop.core.errors import InvalidParameter

    vm = window.timeline.vm
    with pytest.raises(InvalidParameter, match="seed"):
        vm.add_record({"engine": "diffusion", "prompt": "x", "seed": "abc"}, source="history:h")
    with pytest.raises(InvalidParameter, match="prompt"):
        vm.add_record({"prompt": ["not", "text"]})
    assert vm.keyframes == []


def test_timeline_saved_in_the_project_and_back_after_reopening(qtbot, window, key_images, tmp_path):
    from aigc_desktop.core.project import SUFFIX, open_project

    t, vm, panel = window.timeline, window.timeline.vm, window.timeline.panel
    select_kind(window, "vae_morph")
    add_two_layers(window, key_images)
    t.keyframes_from_canvas("visible")
    vm.set_segment(0, frames=5, easing="ease-out")
    vm.set_fps(8)
    render_all(qtbot, t)
    keys = [f.key for f in vm.frames()]

    path = tmp_path / f"morph{SUFFIX}"
    vm.set_keyframe(1, hold=2)  # an edit right before the save: the save takes it
    assert window.save_project(str(path)) and not window.project.dirty
    assert open_project(path).document.timeline == vm.to_state()
    state = vm.to_state()

    assert window.new_project()  # a new document: an empty timeline
    assert vm.keyframes == [] and panel.strip.count() == 0 and not window.project.dirty
    assert window.document.doc.timeline is None

    assert window.open_project(str(path))
    assert vm.to_state() == state and not window.project.dirty
    assert [k.label for k in vm.keyframes] == ["key 0", "key 1"] and vm.keyframes[1].hold == 2
    assert all(k.id in vm.images for k in vm.keyframes)  # pictures back from the project's layers
    assert vm.timeline.segments[0].easing == "ease-out" and vm.timeline.fps == 8
    assert panel.strip.count() == 2 and not panel.strip.item(0).icon().isNull()
    assert [f.key for f in vm.frames()][:5] == keys[:5]  # the same frames: the cache still has them
    assert vm.rendered_count() >= 5


def test_a_bad_timeline_in_a_project_is_one_message(window):
    doc = window.document.doc
    from aigc_desktop.core.document import Document

    other = Document.new(64, 64)
    other.timeline = {"travel": "warp"}
    doc.load_from(other)  # as a project file with a hostile timeline opens
    assert window.timeline.vm.keyframes == [] and "timeline could not be read" in window.message_bar.text()


def test_the_dock_comes_back_where_it_was_left(qtbot, models_dir):
    """The window restores its layout before install_timeline adds the dock: the dock still comes back."""
    from aigc_desktop.ui.main_window import MainWindow

    settings = Settings({"models_dir": str(models_dir), "save_outputs": False})
    shown = []
    for _ in range(2):
        w = MainWindow(settings, engines={"diffusion": FakeEngine()}, scan_models=False)
        qtbot.addWidget(w)
        w.show()
        t = w.timeline
        qtbot.waitUntil(lambda: t.dock in w.tabifiedDockWidgets(w.history_dock), timeout=2000)
        qtbot.wait(50)
        shown.append(not t.dock.visibleRegion().isEmpty())
        t.dock.raise_()  # the user leaves the timeline in front
        qtbot.waitUntil(lambda: not t.dock.visibleRegion().isEmpty(), timeout=2000)
        w.close()
    assert shown == [False, True]


def test_installed_at_the_end_of_the_windows_init(qtbot, models_dir):
    """As the window does it (`self.timeline = install_timeline(self)` last in MainWindow.__init__): the
    model scan ends after the install and the timeline follows the model it picks, the project stays saved."""
    from aigc_desktop.ui.main_window import MainWindow

    w = MainWindow(Settings({"models_dir": str(models_dir), "save_outputs": False}), engines={"diffusion": FakeEngine()})
    qtbot.addWidget(w)
    w.show()
    try:
        qtbot.waitUntil(lambda: w.models.selected is not None and w.timeline.vm.model is not None, timeout=10000)
        assert w.timeline.vm.model.path == w.models.selected.path and not w.project.dirty
    finally:
        w.close()


def test_interpolate_mode_renders_the_prompt_lines_as_a_travel(qtbot, window):
    """The prompt area's Interpolate mode: each line a keyframe; Generate (button or Ctrl+Enter) renders the
    travel; unticked, Generate generates again."""
    t, panel, vm = window.timeline, window.prompt_panel, window.timeline.vm
    select_kind(window, "diffusers")
    t.interpolate_box.setChecked(True)
    assert panel.generate.text() == "Render travel" and not t.dock.visibleRegion().isEmpty()
    panel.prompt.setPlainText("just one line")
    panel.generate.click()
    assert vm.keyframes == [] and "one per line" in window.message_bar.text()

    panel.prompt.setPlainText("a red apple\n\n  a green apple \na cat face")
    panel.seed.setValue(42)
    panel.steps.setValue(2)
    window.generate_action.trigger()  # Ctrl+Enter
    assert [k.prompt for k in vm.keyframes] == ["a red apple", "a green apple", "a cat face"]
    assert {k.seed for k in vm.keyframes} == {42} and vm.travel == "diffusion" and vm.params.steps == 2
    travels = [r for r in window.queue.rows.values() if r.spec.kind == "travel"]
    assert len(travels) == 1 and not [r for r in window.queue.rows.values() if r.spec.kind == "diffusion"]
    window.queue.cancel(travels[0].job_id)

    t.interpolate_box.setChecked(False)
    assert panel.generate.text() == "Generate"
    panel.prompt.setPlainText("a red apple")
    with qtbot.waitSignal(window.queue.job_finished, timeout=10000):
        panel.generate.click()
    assert len(vm.keyframes) == 3  # a plain generation leaves the timeline alone

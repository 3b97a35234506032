"""The timeline view-model and dock, driven with qtbot (offscreen): keyframes, easing, scrubbing, progressive
rendering through the real runner, cache invalidation by segment, state round trip, export."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from aigc_desktop.core import interpolate as ip
from aigc_desktop.core import jobs

pytest.importorskip("pytestqt")


class Inline:
    """A submit callable that runs jobs at once on a runner and feeds every event back (no thread)."""

    def __init__(self, runner, vm) -> None:
        self.runner, self.vm, self.specs = runner, vm, []

    def __call__(self, spec):
        self.specs.append(spec)
        self.runner.run(spec, self.vm.handle_event, lambda: False)
        return spec.id


@pytest.fixture
def panel(qtbot, runner, morph_vae_path):
    from aigc_desktop.ui.panels.timeline import TimelinePanel
    from aigc_desktop.ui.viewmodels.timeline import TimelineViewModel

    vm = TimelineViewModel()
    vm.submit = Inline(runner, vm)
    w = TimelinePanel(vm)
    w.auto.setChecked(False)  # the tests press Render themselves
    qtbot.addWidget(w)
    vm.set_model(jobs.ModelRef(str(morph_vae_path), kind="vae_morph"))
    return w


def test_add_keyframes_change_easing_scrub_and_export(panel, qtbot, tmp_path, key_images):
    vm = panel.vm
    files = []
    for i, im in enumerate(key_images):
        files.append(str(tmp_path / f"k{i}.png"))
        im.save(files[-1])
    panel.add_files(files[:2])
    vm.add_image(key_images[2], label="layer", source="layer:abc")  # as the window adds a canvas layer
    assert panel.strip.count() == 3 and vm.frame_count == 16 * 2 + 1
    assert not panel.strip.item(0).icon().isNull()

    panel.strip.setCurrentRow(1)
    panel.frames_spin.setValue(4)
    panel.easing.setCurrentIndex(panel.easing.findData("ease-in"))
    assert vm.timeline.segments[1].frames == 4 and vm.timeline.segments[1].easing == "ease-in"
    assert panel.curve.easing == "ease-in" and panel.curve.points()[0].y() > panel.curve.points()[-1].y()
    assert vm.frame_count == 16 + 4 + 1

    panel.render_button.click()
    spec = vm.submit.specs[-1]
    assert spec.frames[:6] == (0, 4, 8, 12, 16, 20)  # coarse first: every 4th frame and the last
    assert vm.rendered_count() == vm.frame_count and "rendered" in panel.frame_label.text()
    assert vm.pending == {} and panel.status.text() == ""  # the job's end cleared "Rendering…"

    panel.scrubber.setValue(18)  # scrubbing shows the cached frame at once
    assert vm.current == 18 and panel.view.pixmap() is not None and not panel.view.pixmap().isNull()
    got = []
    panel.send_to_canvas.connect(lambda image, record: got.append((image, record)))
    panel.send_button.click()
    assert got and got[0][0] is vm.frame_image(18) and got[0][1]["travel"]["frame"] == 18

    out = tmp_path / "t.gif"
    assert panel.export_to(str(out)) is not None
    with Image.open(out) as im:
        assert im.size == (16, 16) and im.n_frames >= 2
    panel.export_to(str(tmp_path / "t.avi"))
    assert ".avi" in panel.status.text()


def test_editing_one_segment_rerenders_only_it(panel, key_images):
    vm = panel.vm
    for i, im in enumerate(key_images):
        vm.add_image(im, label=str(i))
    vm.set_all_segments(frames=4)
    vm.request_render()
    first = len(vm.submit.specs[-1].frames)
    assert first == 9 and vm.missing() == []
    vm.set_segment(0, easing="ease-in")
    assert vm.missing() == [1, 2, 3]  # segment 1's in-between frames; its keyframes are cached
    vm.request_render()
    vm.set_segment(0, easing="cubic")
    assert vm.missing() == [1, 3]  # cubic and linear meet at t = 0.5: that picture is cached
    vm.request_render()
    vm.set_segment(1, frames=6)  # t 0, 1/6, 1/3, 1/2, 2/3, 5/6: only t = 1/2 was there before
    assert vm.missing() == [8, 5, 6, 9]  # coarse first (8 is a 4th frame), then the rest
    vm.request_render()
    assert vm.missing() == []


def test_play_reorder_remove_and_state_round_trip(panel, qtbot, key_images, tmp_path):
    vm = panel.vm
    for i, im in enumerate(key_images):
        vm.add_image(im, label=f"k{i}")
    ids = [k.id for k in vm.keyframes]
    panel.strip.model().moveRow(panel.strip.rootIndex(), 0, panel.strip.rootIndex(), 3)  # drag the first last
    qtbot.waitUntil(lambda: [k.id for k in vm.keyframes] == [ids[1], ids[2], ids[0]], timeout=2000)

    vm.set_fps(50)
    panel.render_button.click()
    panel.play_button.click()
    start = vm.current
    qtbot.waitUntil(lambda: vm.current != start, timeout=2000)
    panel.play_button.click()
    assert not panel.timer.isActive()

    state = json.loads(json.dumps(vm.to_state()))  # JSON-able, as Document.timeline keeps it
    from aigc_desktop.ui.viewmodels.timeline import TimelineViewModel

    pictures = {k.image: vm.images[k.id] for k in vm.keyframes}
    other = TimelineViewModel()
    other.from_state(state, resolve=lambda source: pictures.get(source))
    assert other.to_state() == state
    assert [f.key for f in other.frames()] == [f.key for f in vm.frames()]  # same keys: the cache carries over

    panel.strip.setCurrentRow(0)
    panel.remove_button.click()
    assert len(vm.keyframes) == 2 and len(vm.timeline.segments) == 1


def test_diffusion_keyframes_take_prompt_and_seed(qtbot):
    from aigc_desktop.ui.panels.timeline import TimelinePanel
    from aigc_desktop.ui.viewmodels.timeline import TimelineViewModel

    vm = TimelineViewModel()
    w = TimelinePanel(vm)
    qtbot.addWidget(w)
    vm.set_travel("diffusion")
    vm.add_record({"engine": "diffusion", "prompt": "a red apple", "seed": 7})
    w.add_key_button.click()
    assert [(k.prompt, k.seed) for k in vm.keyframes] == [("a red apple", 7), ("a red apple", 8)]
    w.strip.setCurrentRow(1)
    w.prompt.setText("a green apple")
    w.prompt.editingFinished.emit()
    w.seed.setValue(42)
    assert (vm.keyframes[1].prompt, vm.keyframes[1].seed) == ("a green apple", 42)
    assert w.prompt.isEnabled() and "seed 42" in w.strip.item(1).text()
    with pytest.raises(Exception, match="model"):
        vm.job()
    w.steps.setValue(7)
    w.strength.setValue(0.3)
    assert vm.params.steps == 7 and vm.strength == 0.3 and not w.psi.isVisibleTo(w)
    from types import SimpleNamespace

    vm.set_model_info(SimpleNamespace(path="/m/sg", kind="stylegan", family=None))
    assert vm.travel == "stylegan" and w.psi.isVisibleTo(w) and not w.steps.isVisibleTo(w)
    w.psi.setValue(0.5)
    assert dict(vm.job().stylegan)["truncation_psi"] == 0.5
    vm.set_model_info(SimpleNamespace(path="/m/sd", kind="diffusers", family="sd1", default_size=64))
    assert vm.travel == "diffusion" and vm.job().params.steps == 7


def test_timeline_lives_in_the_document_and_pictures_come_back_from_layers(qtbot, key_images, morph_vae_path):
    from aigc_desktop.core.document import Document, Layer
    from aigc_desktop.ui.viewmodels.timeline import TimelineViewModel, load_from_document, save_to_document

    doc = Document.new(width=64, height=64)
    layer = Layer(key_images[0].convert("RGBA"), name="a")
    doc.add_layer(layer)
    vm = TimelineViewModel()
    vm.set_model(jobs.ModelRef(str(morph_vae_path), kind="vae_morph"))
    vm.add_image(doc.get_layer(layer.id).image, label="a", source=f"layer:{layer.id}")
    vm.add_image(key_images[1], label="gone", source="layer:missing")
    save_to_document(vm, doc)
    other = TimelineViewModel()
    load_from_document(other, doc)
    assert other.to_state() == vm.to_state()
    first, second = other.keyframes
    assert first.id in other.images and second.id not in other.images  # a deleted layer: no picture
    with pytest.raises(Exception, match="Keyframe 2 has no picture"):
        other.job()


def test_an_edit_cancels_render_jobs_it_made_useless(qtbot, key_images, morph_vae_path):
    from aigc_desktop.ui.viewmodels.timeline import TimelineViewModel

    submitted, cancelled = [], []
    vm = TimelineViewModel(submit=lambda spec: submitted.append(spec), cancel=cancelled.append)
    vm.set_model(jobs.ModelRef(str(morph_vae_path), kind="vae_morph"))
    for im in key_images[:2]:
        vm.add_image(im)
    vm.set_all_segments(frames=4)
    vm.request_render()
    assert vm.request_render() is None  # its frames are on the way: nothing more to ask
    vm.set_segment(0, easing="ease-out")  # the in-between frames change...
    vm.request_render()
    assert cancelled == []  # ...but the first job also brings the keyframes, still wanted
    vm.remove(0)
    vm.add_image(key_images[2])
    vm.set_mode("lerp")
    vm.request_render()
    assert cancelled == [submitted[1].id]  # only in-betweens of an old easing: useless now


@pytest.mark.parametrize("state", [
    [], {"travel": "warp"}, {"timeline": {"keyframes": [{"seed": "x"}]}}, {"model": {"path": 3}},
    {"params": {"steps": "many"}, "timeline": {}}, {"params": 5}, {"strength": 2}, {"size": "big"},
    {"stylegan": [["rm -rf", 1]]}, {"stylegan": [1]},
])
def test_a_bad_saved_timeline_is_one_line_and_changes_nothing(qtbot, state):
    from aigc_desktop.core.errors import InvalidParameter
    from aigc_desktop.ui.viewmodels.timeline import TimelineViewModel

    vm = TimelineViewModel()
    vm.add_keyframe(ip.Keyframe(seed=5))
    before = vm.to_state()
    with pytest.raises(InvalidParameter) as info:
        vm.from_state(state)
    assert "\n" not in str(info.value)
    assert vm.to_state() == before

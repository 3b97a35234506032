"""Saving and reopening keeps every stored element exactly; saving again copies what did not change."""

from __future__ import annotations

import errno
import zipfile

import numpy as np
import pytest
from PIL import Image

from aigc_desktop.core.document import HistoryItem, Layer
from aigc_desktop.core.errors import user_message
from aigc_desktop.core.project import Project, ProjectError, open_project, save_document
from aigc_desktop.core.project import project as project_module
from tests.project.helpers import assert_same_document, make_document, pixels


@pytest.mark.parametrize("lazy", [False, True])
def test_round_trip_every_element(tmp_path, lazy):
    doc = make_document()
    path = save_document(doc, tmp_path / "cat.aigc")
    opened = open_project(path, lazy=lazy)
    assert opened.path == path and opened.name == "cat"
    if lazy:  # nothing decoded yet; thumbnails come from the file without the pixels
        assert not any(la.loaded for la in opened.document.layers)
        thumb = opened.document.history[0].thumbnail(128)
        assert thumb.size == (24, 16) and opened.document.history[0]._image is None
    assert_same_document(doc, opened.document)


def test_reopen_and_save_again_is_identical(tmp_path):
    doc = make_document(seed=1)
    path = save_document(doc, tmp_path / "a.aigc")
    project = open_project(path, lazy=True)
    project.save(tmp_path / "b.aigc")
    assert_same_document(doc, open_project(tmp_path / "b.aigc").document)
    assert not any(la.loaded for la in project.document.layers)  # copied, never decoded


def test_only_changed_layers_are_encoded(tmp_path, monkeypatch):
    doc = make_document(seed=2)
    path = save_document(doc, tmp_path / "p.aigc")
    project = open_project(path, lazy=True)
    before = {i.filename: i.CRC for i in zipfile.ZipFile(path).infolist()}
    encoded = []
    real = project_module._png_bytes
    monkeypatch.setattr(project_module, "_png_bytes", lambda im: encoded.append(im.size) or real(im))
    ink = project.document.layers[1]
    project.document.paint(ink.id, ink.x, ink.y, Image.new("RGBA", (2, 2), (9, 8, 7, 6)))
    project.save()
    assert encoded == [ink.image.size] * 2  # the painted layer and its (same-size) thumbnail, nothing else
    after = {i.filename: i.CRC for i in zipfile.ZipFile(path).infolist()}
    changed = {n for n in after if before.get(n) != after[n]}
    assert changed == {"manifest.json", f"layers/{ink.id}.png", f"thumbs/layers/{ink.id}.png"}
    assert not project.document.layers[0].loaded
    reopened = open_project(path).document
    assert reopened.layers[1].image.getpixel((0, 0)) == (9, 8, 7, 6)
    assert pixels(reopened.layers[0].image) == pixels(doc.layers[0].image)


def test_lazy_layers_follow_the_file_after_save_as(tmp_path):
    doc = make_document(seed=3)
    first = save_document(doc, tmp_path / "first.aigc")
    project = open_project(first, lazy=True)
    project.save(tmp_path / "second.aigc")
    first.unlink()  # the lazy pixels now come from the new file
    assert pixels(project.document.layers[0].image) == pixels(doc.layers[0].image)


def test_removed_layer_kept_by_undo_survives_saving_over_its_file(tmp_path):
    doc = make_document(seed=4)
    path = save_document(doc, tmp_path / "p.aigc")
    project = open_project(path, lazy=True)
    removed, _ = project.document.remove_layer(project.document.layers[0].id)  # an undo step holds it
    project.save()
    assert pixels(removed.image) == pixels(doc.layers[0].image)


def test_history_modes_and_new_items(tmp_path):
    doc = make_document(seed=5, history=3)
    project = Project(doc, tmp_path / "h.aigc")
    project.save()
    doc.add_history(HistoryItem({"seed": 1}, Image.new("LA", (8, 8), (5, 200))))
    doc.add_layer(Layer(Image.new("RGBA", (4, 4), (1, 2, 3, 0)), name="new"))
    project.save()
    reopened = open_project(project.path).document
    assert [h.image.mode for h in reopened.history] == ["RGB", "RGBA", "L", "RGBA"]
    assert reopened.history[3].image.getpixel((0, 0)) == (5, 5, 5, 200)
    assert reopened.layers[-1].image.getpixel((3, 3)) == (1, 2, 3, 0)


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EACCES])
def test_failed_save_says_so_and_changes_nothing(tmp_path, monkeypatch, error):
    doc = make_document(seed=6)
    path = save_document(doc, tmp_path / "p.aigc")
    old_bytes = path.read_bytes()
    project = open_project(path, lazy=True)
    layer = project.document.layers[0]
    project.document.paint(layer.id, layer.x, layer.y, Image.new("RGBA", (2, 2), (1, 1, 1, 1)))
    revision, saved_state = layer.revision, dict(project._saved)
    real = zipfile.ZipFile.writestr
    calls = []

    def failing(self, info, data, *a, **k):
        calls.append(info)
        if len(calls) == 4:
            raise OSError(error, {errno.ENOSPC: "No space left on device", errno.EACCES: "Permission denied"}[error])
        return real(self, info, data, *a, **k)

    monkeypatch.setattr(zipfile.ZipFile, "writestr", failing)
    with pytest.raises(ProjectError) as caught:
        project.save()
    message = user_message(caught.value)
    assert message.startswith("Could not save p.aigc: ") and "\n" not in message
    assert ("No space left" in message) if error == errno.ENOSPC else ("Permission denied" in message)
    assert path.read_bytes() == old_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["p.aigc"]  # the temporary file is gone
    assert layer.revision == revision and project._saved == saved_state and project.path == path
    monkeypatch.undo()
    project.save()  # the document is intact: the next save works
    assert open_project(path).document.layers[0].image.getpixel((0, 0)) == (1, 1, 1, 1)


def test_untitled_project_needs_a_name(tmp_path):
    with pytest.raises(ProjectError, match="no file yet"):
        Project(make_document()).save()


def test_large_side_png_is_stored_not_deflated(tmp_path):
    path = save_document(make_document(seed=7), tmp_path / "p.aigc")
    infos = zipfile.ZipFile(path).infolist()
    assert infos[0].filename == "mimetype"
    assert all(i.compress_type == zipfile.ZIP_STORED for i in infos if i.filename.endswith(".png"))
    assert np.asarray(Image.open(zipfile.ZipFile(path).open(infos[2]))).size > 0


@pytest.mark.parametrize("kernel_copy", [True, False])
def test_unchanged_members_are_copied_byte_for_byte(tmp_path, monkeypatch, kernel_copy):
    if not kernel_copy:
        monkeypatch.delattr("os.copy_file_range", raising=False)  # the read + write fallback
    path = save_document(make_document(seed=8), tmp_path / "a.aigc")
    project = open_project(path, lazy=True)
    project.document.set_prompt_state({"prompt": "only this changed"})
    project.save(tmp_path / "b.aigc")
    with zipfile.ZipFile(path) as a, zipfile.ZipFile(tmp_path / "b.aigc") as b:
        pngs = [n for n in a.namelist() if n.endswith(".png")]
        assert sorted(pngs) == sorted(n for n in b.namelist() if n.endswith(".png")) and len(pngs) == 12
        for name in pngs:
            assert a.read(name) == b.read(name)  # zipfile checks each CRC on the way
            assert a.getinfo(name).CRC == b.getinfo(name).CRC
    assert open_project(tmp_path / "b.aigc").document.prompt_state == {"prompt": "only this changed"}


def test_saving_sweeps_temporaries_left_by_killed_saves(tmp_path):
    import os
    import time

    path = save_document(make_document(seed=9), tmp_path / "p.aigc")
    old, young = tmp_path / ".p.aigc.abc123.tmp", tmp_path / ".p.aigc.def456.tmp"
    old.write_bytes(b"half a save")
    young.write_bytes(b"a save in progress elsewhere")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    open_project(path).save()
    assert not old.exists() and young.exists()


def test_saving_over_a_file_someone_broke_keeps_what_is_in_memory(tmp_path):
    path = save_document(make_document(seed=10), tmp_path / "p.aigc")
    project = open_project(path, lazy=False)  # everything in memory
    path.write_bytes(b"overwritten by another program")
    project.save()
    assert_same_document(project.document, open_project(path).document)
    lazy = open_project(path, lazy=True)
    path.write_bytes(b"overwritten again")
    with pytest.raises(ProjectError, match="changed on disk since it was opened"):  # pixels nowhere else
        lazy.save()

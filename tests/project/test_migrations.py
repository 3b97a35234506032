"""Older project formats open through the one migration table, a test per step."""

from __future__ import annotations

import copy

import pytest

from aigc_desktop.core.document import View
from aigc_desktop.core.project import MIGRATIONS, VERSION, ProjectError, open_project, save_document
from aigc_desktop.core.project.manifest import migrate, validate
from tests.project import zips
from tests.project.helpers import assert_same_document, make_document


def test_every_older_version_has_a_step():
    assert sorted(MIGRATIONS) == list(range(1, VERSION))


def _as_v1(m: dict) -> dict:
    """Version 1 (the first format) did not save the view."""
    m = copy.deepcopy(m)
    m["version"] = 1
    del m["canvas"]["view"]
    return m


def test_v1_to_v2_centres_the_view_on_the_frame(tmp_path):
    doc = make_document(seed=31)
    path = save_document(doc, tmp_path / "p.aigc")
    v2 = zips.manifest_of(path)
    v1 = _as_v1(v2)
    migrated = MIGRATIONS[1](copy.deepcopy(v1))
    frame = v2["canvas"]["frame"]
    assert migrated["version"] == 2
    assert migrated["canvas"]["view"] == {"zoom": 1.0, "center_x": frame["x"] + frame["width"] / 2,
                                          "center_y": frame["y"] + frame["height"] / 2}
    validate(migrated, "p.aigc")
    assert {k: v for k, v in migrated.items() if k != "canvas"} == {k: v for k, v in v2.items() if k != "canvas"}


def test_a_v1_file_opens_with_everything_else_intact(tmp_path):
    doc = make_document(seed=32)
    path = save_document(doc, tmp_path / "p.aigc")
    old = zips.with_manifest(path, tmp_path / "old.aigc", _as_v1)
    opened = open_project(old).document
    assert opened.view == View(1.0, doc.frame.x + doc.frame.width / 2, doc.frame.y + doc.frame.height / 2)
    opened.set_view(doc.view)
    assert_same_document(doc, opened)
    # Saving writes the current version.
    project = open_project(old)
    project.save()
    assert zips.manifest_of(old)["version"] == VERSION


def test_a_broken_v1_file_is_still_one_clear_error(tmp_path):
    path = save_document(make_document(seed=33), tmp_path / "p.aigc")
    broken = zips.with_manifest(path, tmp_path / "b.aigc", lambda m: {**_as_v1(m), "canvas": {"frame": "x"}})
    with pytest.raises(ProjectError, match="manifest.json is invalid"):
        open_project(broken)


@pytest.mark.parametrize("version", [0, -1, True, 2.5, None])
def test_unknown_versions(version):
    with pytest.raises(ProjectError, match="no valid format version"):
        migrate({"format": "aigc-desktop-project", "version": version}, "x.aigc")

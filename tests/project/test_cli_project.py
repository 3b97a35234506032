"""`info` / `export` of project files and `generate --project`, without the GUI."""

from __future__ import annotations

import json
import zipfile

import pytest
from PIL import Image

from aigc_desktop.cli import main
from aigc_desktop.cli_project import add_to_project
from aigc_desktop.core.document.composite import composite
from aigc_desktop.core.metadata import read_record
from aigc_desktop.core.project import open_project, save_document
from tests.project.helpers import make_document, pixels


def run(capsys, *args):
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def project_file(tmp_path):
    return save_document(make_document(seed=51), tmp_path / "cat.aigc")


def test_info_text_and_json(capsys, project_file):
    code, out, err = run(capsys, "info", str(project_file))
    assert code == 0, err
    assert "AIGC Desktop project, format 2" in out and "History:    3 images" in out
    assert "Ink: 16x32 at (20, -3), opacity 25% hidden locked generated" in out
    assert f"tiny-sd sha256 {'ab' * 32}, used 4x" in out and f"inky sha256 {'c' * 64}" in out
    code, out, _ = run(capsys, "info", str(project_file), "--json")
    data = json.loads(out)
    assert data["version"] == 2 and data["history"] == 3
    assert [la["name"] for la in data["layers"]] == ["Background", "Ink"]
    assert {(m["name"], m["hash"]) for m in data["models"]} == {("tiny-sd", "ab" * 32), ("inky", "c" * 64)}
    assert data["timeline"] is True


def test_info_of_a_broken_project_is_one_line(capsys, tmp_path):
    bad = tmp_path / "bad.aigc"
    bad.write_bytes(b"PK\x03\x04 not really")
    code, out, err = run(capsys, "info", str(bad))
    assert code == 2 and out == "" and err.count("\n") == 1 and "not a zip file" in err


def test_export_layer_visible_and_history(capsys, project_file, tmp_path):
    doc = make_document(seed=51)
    code, out, err = run(capsys, "export", str(project_file), "--layer", "Ink", "--out", str(tmp_path / "ink.png"))
    assert code == 0, err and out.strip() == str(tmp_path / "ink.png")
    with Image.open(tmp_path / "ink.png") as im:
        assert pixels(im.convert("RGBA")) == pixels(doc.layers[1].image)
    assert read_record(tmp_path / "ink.png") == doc.layers[1].record

    code, _, err = run(capsys, "export", str(project_file), "--history", "-1", "--out", str(tmp_path / "h.png"))
    assert code == 0, err
    assert read_record(tmp_path / "h.png") == doc.history[-1].record
    with Image.open(tmp_path / "h.png") as im:
        assert pixels(im) == pixels(doc.history[-1].image)

    code, _, err = run(capsys, "export", str(project_file), "--visible", "--out", str(tmp_path / "v.png"))
    assert code == 0, err
    with Image.open(tmp_path / "v.png") as im:
        assert im.size == (32, 16)  # only the visible Background layer
        assert pixels(im) == pixels(composite(doc, doc.layers[0].rect))


@pytest.mark.parametrize("args, fragment", [
    (["--layer", "Nope"], "No layer named 'Nope' (layers: 'Background', 'Ink')"),
    (["--history", "4"], "--history takes 1..3"),
    (["--history", "0"], "--history takes 1..3"),
])
def test_export_errors(capsys, project_file, tmp_path, args, fragment):
    code, _, err = run(capsys, "export", str(project_file), *args, "--out", str(tmp_path / "x.png"))
    assert code == 2 and fragment in err and err.count("\n") == 1
    assert not (tmp_path / "x.png").exists()


def test_add_to_project_creates_then_appends(tmp_path):
    target = tmp_path / "batch.aigc"
    images = [Image.new("RGB", (64, 48), (i, 0, 0)) for i in range(2)]
    add_to_project(target, images, [{"seed": 0}, {"seed": 1}])
    doc = open_project(target).document
    assert [h.record for h in doc.history] == [{"seed": 0}, {"seed": 1}] and doc.frame.rect == (0, 0, 64, 48)
    before = {i.filename: i.CRC for i in zipfile.ZipFile(target).infolist()}
    add_to_project(target, [Image.new("RGB", (64, 48), (9, 9, 9))], [{"seed": 2}])
    after = {i.filename: i.CRC for i in zipfile.ZipFile(target).infolist()}
    assert all(after[n] == crc for n, crc in before.items() if n != "manifest.json")  # copied as they were
    doc = open_project(target).document
    assert [h.record["seed"] for h in doc.history] == [0, 1, 2]
    assert doc.history[2].image.getpixel((0, 0)) == (9, 9, 9)


def test_generate_into_a_project(capsys, tmp_path, tiny_sd_path):
    target = tmp_path / "batch.aigc"
    code, out, err = run(capsys, "generate", "--model", str(tiny_sd_path), "--prompt", "a red apple", "--seed", "3",
                         "--steps", "2", "--width", "64", "--height", "64", "--batch", "2", "--out",
                         str(tmp_path / "out"), "--project", str(target), "--quiet")
    assert code == 0, err
    assert f"Added 2 images to {target}" in err
    doc = open_project(target).document
    assert [h.record["seed"] for h in doc.history] == [3, 4]
    pngs = sorted((tmp_path / "out").glob("*.png"))
    assert len(pngs) == 2
    with Image.open(pngs[0]) as im:
        assert pixels(im.convert("RGB")) == pixels(doc.history[0].image.convert("RGB"))


def test_two_writers_feeding_one_project_both_land(tmp_path):
    import threading

    target = tmp_path / "shared.aigc"
    errors = []

    def feed(start):
        try:
            for i in range(3):
                add_to_project(target, [Image.new("RGB", (16, 16), (start + i, 0, 0))], [{"seed": start + i}])
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=feed, args=(s,)) for s in (0, 100)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    seeds = sorted(h.record["seed"] for h in open_project(target).document.history)
    assert seeds == [0, 1, 2, 100, 101, 102]  # the lock serialises them: no save overwrote another's

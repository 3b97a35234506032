"""Untrusted project files, one hostile case at a time: each is one clear ProjectError line, loads nothing,
and writes nothing anywhere."""

from __future__ import annotations

import io
import os
import zipfile

import pytest
from PIL import Image

from aigc_desktop.core.errors import UserError, user_message
from aigc_desktop.core.project import NewerProjectError, ProjectError, open_project, save_document
from aigc_desktop.core.project import container
from aigc_desktop.core.project.container import Limits, ProjectZip
from tests.project import zips
from tests.project.helpers import make_document


@pytest.fixture
def good(tmp_path):
    return save_document(make_document(seed=21, history=2), tmp_path / "good.aigc")


def refused(path, match: str, lazy=None) -> ProjectError:
    before = sorted(p for p in path.parent.rglob("*"))
    with pytest.raises(ProjectError, match=match) as caught:
        open_project(path, lazy=lazy)
    message = user_message(caught.value)
    assert "\n" not in message and len(message) < 300, message
    assert isinstance(caught.value, UserError)
    assert sorted(p for p in path.parent.rglob("*")) == before  # nothing extracted, nothing written
    return caught.value


def layer_name(path) -> str:
    return "layers/" + zips.manifest_of(path)["layers"][0]["id"] + ".png"


def test_newer_format_version(good, tmp_path):
    bad = zips.with_manifest(good, tmp_path / "newer.aigc", lambda m: m.update(version=99))
    error = refused(bad, "made by a newer AIGC Desktop")
    assert isinstance(error, NewerProjectError) and "99" in str(error)


def test_not_a_project_at_all(tmp_path, good):
    (tmp_path / "noise.aigc").write_bytes(os.urandom(2000))
    refused(tmp_path / "noise.aigc", "not a zip file")
    (tmp_path / "empty.aigc").write_bytes(b"")
    refused(tmp_path / "empty.aigc", "not a zip file")
    other = zips.write(tmp_path / "other.aigc", [("manifest.json", b'{"format": "something-else"}', 8)])
    refused(other, "not an AIGC Desktop project")
    (tmp_path / "folder.aigc").mkdir()
    refused(tmp_path / "folder.aigc", "is a folder")
    if hasattr(os, "mkfifo"):  # POSIX
        os.mkfifo(tmp_path / "pipe.aigc")
        refused(tmp_path / "pipe.aigc", "not a regular file")
    refused(tmp_path / "missing.aigc", "file not found")


def test_missing_member(good, tmp_path):
    name = layer_name(good)
    bad = zips.rewrite(good, tmp_path / "missing.aigc", lambda es: [e for e in es if e[0] != name])
    refused(bad, "is incomplete: layer 'Background' is missing")
    no_manifest = zips.rewrite(good, tmp_path / "nomanifest.aigc",
                               lambda es: [e for e in es if e[0] != "manifest.json"])
    refused(no_manifest, "manifest.json is missing")


def test_missing_thumbnail_is_not_an_error(good, tmp_path):
    trimmed = zips.rewrite(good, tmp_path / "nothumbs.aigc",
                           lambda es: [e for e in es if not e[0].startswith("thumbs/")])
    doc = open_project(trimmed, lazy=True).document
    assert doc.history[0].thumbnail(16).size == (16, 11)


@pytest.mark.parametrize("lazy", [False, True])
def test_corrupt_member(tmp_path, lazy):
    good = save_document(make_document(seed=22, size=64), tmp_path / "good.aigc")  # members past zipfile's 4 KiB read
    name = layer_name(good)

    def flip(es):
        out = []
        for n, data, c in es:
            if n == name:
                data = data[:5000] + bytes([data[5000] ^ 0xFF]) + data[5001:]
            out.append((n, data, c))
        return out
    bad = tmp_path / "corrupt.aigc"
    zips.write(bad, flip(zips.entries(good)))
    original_crc = zipfile.ZipFile(good).getinfo(name).CRC  # the flipped byte no longer matches it
    zips.patch_central(bad, name, 16, "<I", original_crc, 14)
    if not lazy:
        refused(bad, "layer 'Background' is damaged", lazy=False)
    else:  # opens (headers are fine); the damage is one clear line when the pixels are first needed
        doc = open_project(bad, lazy=True).document
        with pytest.raises(ProjectError, match="layer 'Background' is damaged"):
            doc.layers[0].image


def test_file_changed_on_disk_under_a_lazy_layer(good, tmp_path):
    project = open_project(good, lazy=True)
    save_document(make_document(seed=99, history=2), good)  # another program rewrites the file
    with pytest.raises(ProjectError, match="changed on disk since it was opened"):
        project.document.layers[0].image


@pytest.mark.parametrize("change, match", [
    (lambda m: m["layers"][0].update(opacity=2), r"layers\[0\]\.opacity must be between 0 and 1"),
    (lambda m: m["layers"][0].update(width="wide"), r"layers\[0\]\.width must be a whole number"),
    (lambda m: m["layers"][1].update(visible="yes"), r"layers\[1\]\.visible must be true or false"),
    (lambda m: m.pop("canvas") and None, r"manifest\.canvas is missing"),
    (lambda m: m["canvas"]["frame"].update(width=12), r"frame size must be multiples of 8"),
    (lambda m: m["canvas"]["view"].update(zoom=0), r"view\.zoom must be between"),
    (lambda m: m["layers"][1].update(id=m["layers"][0]["id"]), "two layers with the same id"),
    (lambda m: m["layers"][0].update(id="../../evil"), r"layers\[0\]\.id is not a valid id"),
    (lambda m: m["history"][0].update(record=[1, 2]), r"history\[0\]\.record must be a JSON object"),
    (lambda m: m["history"][0].update(created="yesterday"), r"history\[0\]\.created must be a number"),
    (lambda m: m["mask"].update(kind="image"), r"mask\.kind must be one of"),
    (lambda m: m.update(layers={}), r"manifest\.layers must be a list"),
    (lambda m: m.update(version="2"), "no valid format version"),
    (lambda m: m["layers"][0].update(width=20000, height=20000), "more than 134 megapixels"),
    (lambda m: b'{"format": "aigc-desktop-project", "version": NaN}', "not valid JSON"),
    (lambda m: b"[" * 5000 + b"]" * 5000, "nests deeper than"),
    (lambda m: b'{"format": "aigc-desktop-\xff\xfe"}', "not UTF-8"),
])
def test_manifest_that_does_not_validate(good, tmp_path, change, match):
    refused(zips.with_manifest(good, tmp_path / "bad.aigc", change), match)


@pytest.mark.parametrize("name", ["../evil.txt", "/etc/evil", "a/../../evil", "C:/evil", "a\\..\\evil",
                                  ".hidden", "layers//x.png", "évil.png"])
def test_path_traversal_and_absolute_names(good, tmp_path, name):
    bad = zips.rewrite(good, tmp_path / "traversal.aigc", lambda es: es + [(name, b"x", zipfile.ZIP_STORED)])
    refused(bad, "is not allowed in a project")
    assert not (tmp_path.parent / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()


def test_duplicate_encrypted_and_unsupported_entries(good, tmp_path):
    dup = zips.rewrite(good, tmp_path / "dup.aigc", lambda es: es + [es[1]])
    refused(dup, "appears twice")
    bz = zips.rewrite(good, tmp_path / "bz.aigc", lambda es: es + [("extra.bin", b"x" * 100, zipfile.ZIP_BZIP2)])
    refused(bz, "unsupported compression")
    enc = zips.rewrite(good, tmp_path / "enc.aigc", lambda es: es)
    zips.patch_central(enc, "manifest.json", 8, "<H", 0x1)
    refused(enc, "is encrypted")


def test_member_larger_than_its_claim(good, tmp_path):
    bad = zips.rewrite(good, tmp_path / "claim.aigc", lambda es: es)
    size = zipfile.ZipFile(bad).getinfo("manifest.json").file_size
    zips.patch_central(bad, "manifest.json", 24, "<I", size // 2, 22)  # claims half its real size
    refused(bad, "manifest.json")
    stored = zips.rewrite(good, tmp_path / "stored.aigc", lambda es: es)
    name = layer_name(good)
    zips.patch_central(stored, name, 24, "<I", 10, 22)
    refused(stored, "damaged")


def test_reading_stops_past_the_claim_whatever_the_zip_library_does(good, monkeypatch):
    served = []

    class Endless(io.RawIOBase):
        def read(self, n=-1):
            served.append(n)
            return b"\0" * n

    with ProjectZip(good) as z:
        monkeypatch.setattr(z._zip, "open", lambda info: Endless())
        claim = z.member("manifest.json").size
        with pytest.raises(ProjectError, match="larger than it claims"):
            z.read("manifest.json")
    assert sum(served) <= claim + container.CHUNK + 1


def test_decompression_bomb_images(good, tmp_path):
    name = layer_name(good)
    bomb = zips.png_with_header(20000, 20000)
    bad = zips.rewrite(good, tmp_path / "bomb.aigc", lambda es: [(n, bomb if n == name else d, c) for n, d, c in es])
    refused(bad, "claims 20000x20000 pixels.*decompression bomb")
    liar = zips.png_with_header(64, 64)  # a header that disagrees with the manifest
    bad = zips.rewrite(good, tmp_path / "liar.aigc", lambda es: [(n, liar if n == name else d, c) for n, d, c in es])
    refused(bad, "the manifest says")
    rgb = io.BytesIO()
    Image.new("RGB", (32, 16)).save(rgb, "PNG")
    bad = zips.rewrite(good, tmp_path / "rgb.aigc", lambda es: [(n, rgb.getvalue() if n == name else d, c)
                                                                for n, d, c in es])
    refused(bad, "is RGB 32x16, the manifest says RGBA 32x16")
    jpeg = io.BytesIO()
    Image.new("RGB", (32, 16)).save(jpeg, "JPEG")
    bad = zips.rewrite(good, tmp_path / "jpeg.aigc", lambda es: [(n, jpeg.getvalue() if n == name else d, c)
                                                                 for n, d, c in es])
    refused(bad, "is not a PNG image")


def test_zip_bombs(good, tmp_path):
    bomb = zips.rewrite(good, tmp_path / "bomb.aigc",
                        lambda es: es + [("padding.bin", b"\0" * (20 << 20), zipfile.ZIP_DEFLATED)])
    refused(bomb, "expands .* times \\(a zip bomb\\?\\)")
    with pytest.raises(ProjectError, match="would expand to more than"):
        ProjectZip(good, Limits(max_total_bytes=10_000))
    with pytest.raises(ProjectError, match="claims .* more than the"):
        ProjectZip(good, Limits(max_member_bytes=100))
    with pytest.raises(ProjectError, match="entries, more than the 3 allowed"):
        ProjectZip(good, Limits(max_members=3))

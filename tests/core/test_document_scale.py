"""Scaling a layer in the document model, without Qt: the operation, its events, its limits, and a project
file that saves the scaled pixels."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from aigc_desktop.core.document import MAX_LAYER_SIDE, Document, Layer, events as ev


def noise(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    arr = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    arr[..., 3] = 255
    return Image.fromarray(arr, "RGBA")


def test_scale_layer_resamples_places_emits_and_undoes_exactly():
    doc = Document.new()
    record = {"prompt": "a red fox", "seed": 7}
    layer = Layer(noise(40, 20, 1), name="fox", x=10, y=30, opacity=0.5, record=record)
    doc.add_layer(layer)
    original = layer.image.tobytes()
    seen: list = []
    doc.subscribe(seen.append)
    rev = layer.revision
    old_image, ox, oy = doc.scale_layer(layer.id, 80, 40, -5, 6)
    assert (layer.x, layer.y, layer.width, layer.height) == (-5, 6, 80, 40)
    assert layer.image.size == (80, 40) and layer.mode == "RGBA"
    assert layer.image.tobytes() == noise(40, 20, 1).resize((80, 40), Image.Resampling.LANCZOS).tobytes()
    assert layer.record is record and layer.opacity == 0.5 and layer.name == "fox"  # a generated layer keeps it
    assert layer.revision > rev  # the project file sees a changed layer
    assert seen == [ev.LayerGeometryChanged(layer.id, -5, 6, 80, 40), ev.PixelsChanged(layer.id, -5, 6, 80, 40)]
    assert (ox, oy) == (10, 30) and old_image.tobytes() == original
    doc.set_pixels(layer.id, old_image, ox, oy)  # what the undo command does
    assert layer.rect == (10, 30, 40, 20) and layer.image.tobytes() == original


def test_scale_layer_keeps_the_offset_when_not_given_and_premultiplies_alpha():
    doc = Document.new()
    img = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    img.paste((255, 0, 0, 255), (0, 0, 4, 8))  # opaque red left half, fully transparent (black) right half
    layer = Layer(img, x=3, y=4)
    doc.add_layer(layer)
    doc.scale_layer(layer.id, 32, 8)
    assert (layer.x, layer.y) == (3, 4)
    r, g, b, a = layer.image.getpixel((16, 4))  # the seam: partly transparent, still red, not darkened to black
    assert 0 < a < 255 and r > 200 and g < 30 and b < 30


@pytest.mark.parametrize("size", [(0, 10), (10, 0), (-3, 5), (MAX_LAYER_SIDE + 1, 10), (10, MAX_LAYER_SIDE + 1)])
def test_scale_layer_refuses_sizes_outside_the_limits(size):
    doc = Document.new()
    layer = Layer(noise(8, 8))
    doc.add_layer(layer)
    seen: list = []
    doc.subscribe(seen.append)
    with pytest.raises(ValueError, match="px"):
        doc.scale_layer(layer.id, *size)
    assert layer.image.size == (8, 8) and seen == []


def test_scale_layer_refuses_a_locked_layer_and_the_mask():
    doc = Document.new()
    layer = Layer(noise(8, 8), name="bg", locked=True)
    doc.add_layer(layer)
    with pytest.raises(ValueError, match="locked"):
        doc.scale_layer(layer.id, 16, 16)
    with pytest.raises(ValueError, match="mask"):
        doc.scale_layer(doc.mask.id, 16, 16)
    assert layer.image.size == (8, 8) and doc.mask.image.size == (512, 512)


def test_one_pixel_and_the_largest_side_are_allowed():
    doc = Document.new()
    layer = Layer(noise(4, 4))
    doc.add_layer(layer)
    doc.scale_layer(layer.id, 1, 1)
    assert layer.image.size == (1, 1)
    doc.scale_layer(layer.id, MAX_LAYER_SIDE, 1)
    assert layer.image.size == (MAX_LAYER_SIDE, 1)


def test_project_saves_the_scaled_pixels(tmp_path):
    from aigc_desktop.core.project.project import Project, open_project

    doc = Document.new(64, 64)
    layer = Layer(noise(16, 16, 3), name="photo", x=4, y=4, record={"seed": 1})
    doc.add_layer(layer)
    path = tmp_path / "a.aigc"
    Project(doc).save(path)
    # Reopened lazily (pixels not loaded yet), scaled, saved again: the file holds the new pixels.
    project = open_project(path, lazy=True)
    opened = project.document.layers[0]
    project.document.scale_layer(opened.id, 24, 8, 0, 2)
    scaled = opened.image.tobytes()
    project.save()
    again = open_project(path, lazy=False).document.layers[0]
    assert (again.id, again.x, again.y, again.width, again.height) == (layer.id, 0, 2, 24, 8)
    assert again.image.tobytes() == scaled and again.record == {"seed": 1}

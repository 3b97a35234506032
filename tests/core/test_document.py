"""The document model, driven without Qt: operations, their events, pixels, lazy layers, composite."""

from __future__ import annotations

import sys

import pytest
from PIL import Image

from aigc_desktop.core.document import Document, Frame, HistoryItem, Layer, View, events as ev
from aigc_desktop.core.document.composite import composite, is_blank, mask_crop, transparency_mask


def recorder(doc: Document) -> list:
    seen: list = []
    doc.subscribe(seen.append)
    return seen


def solid(color, size=(4, 4)) -> Image.Image:
    return Image.new("RGBA", size, color)


def test_new_document_is_empty_with_default_frame():
    doc = Document.new()
    assert doc.layers == [] and doc.history == []
    assert doc.frame == Frame(0, 0, 512, 512)
    assert doc.mask.kind == "mask" and doc.mask.image.mode == "L" and is_blank(doc.mask.image)
    assert doc.get_layer(doc.mask.id) is doc.mask


def test_import_has_no_qt_and_no_torch():
    # The document model is plain Python: core/ imports neither at import time.
    import subprocess

    code = ("import sys, aigc_desktop.core.document, aigc_desktop.core.document.composite;"
            "print(any(m.startswith(('PySide6', 'torch')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_add_remove_reorder_and_events():
    doc = Document.new()
    seen = recorder(doc)
    a, b, c = (Layer(solid((i, 0, 0, 255)), name=n) for i, n in ((1, "a"), (2, "b"), (3, "c")))
    doc.add_layer(a)
    doc.add_layer(b)
    doc.add_layer(c, index=0)
    assert [la.name for la in doc.layers] == ["c", "a", "b"]
    assert seen == [ev.LayerAdded(a.id, 0), ev.LayerAdded(b.id, 1), ev.LayerAdded(c.id, 0)]
    doc.reorder_layer(c.id, 2)
    assert [la.name for la in doc.layers] == ["a", "b", "c"]
    assert seen[-1] == ev.LayerReordered(c.id, 0, 2)
    layer, index = doc.remove_layer(b.id)
    assert layer is b and index == 1 and seen[-1] == ev.LayerRemoved(b.id, 1)
    assert [la.name for la in doc.layers] == ["a", "c"]
    with pytest.raises(KeyError):
        doc.get_layer(b.id)
    with pytest.raises(ValueError):
        doc.add_layer(a)  # already there
    # The layer list handed out is a copy: changing it changes nothing.
    doc.layers.clear()
    assert len(doc.layers) == 2


def test_ids_are_unique_and_stable():
    layers = [Layer(solid((0, 0, 0, 0))) for _ in range(50)]
    assert len({la.id for la in layers}) == 50
    dup = layers[0].copy()
    assert dup.id != layers[0].id and dup.image is not layers[0].image


def test_move_and_properties():
    doc = Document.new()
    layer = Layer(solid((9, 9, 9, 255)))
    doc.add_layer(layer)
    seen = recorder(doc)
    doc.move_layer(layer.id, 10, -20)
    assert (layer.x, layer.y) == (10, -20) and seen[-1] == ev.LayerMoved(layer.id, 10, -20)
    doc.set_layer_property(layer.id, "opacity", 1.7)
    assert layer.opacity == 1.0  # clamped to 0..1
    doc.set_layer_property(layer.id, "visible", False)
    doc.set_layer_property(layer.id, "name", "sky")
    doc.set_layer_property(layer.id, "locked", True)
    assert (layer.visible, layer.name, layer.locked) == (False, "sky", True)
    assert seen[-1] == ev.LayerPropertyChanged(layer.id, "locked", True)
    with pytest.raises(ValueError):
        doc.set_layer_property(layer.id, "x", 3)


def test_paint_returns_previous_pixels_and_undo_restores():
    doc = Document.new()
    layer = Layer(solid((10, 20, 30, 255), (16, 16)), x=100, y=100)
    doc.add_layer(layer)
    seen = recorder(doc)
    before = layer.image.copy()
    patch = solid((255, 0, 0, 255), (4, 4))
    old = doc.paint(layer.id, 104, 106, patch)
    assert old.size == (4, 4) and old.getpixel((0, 0)) == (10, 20, 30, 255)
    assert layer.image.getpixel((4, 6)) == (255, 0, 0, 255) and layer.image.getpixel((3, 6)) == (10, 20, 30, 255)
    assert layer.revision == 1 and seen == [ev.PixelsChanged(layer.id, 104, 106, 4, 4)]
    doc.paint(layer.id, 104, 106, old)  # what an undo command does
    assert layer.image.tobytes() == before.tobytes() and layer.revision == 2


def test_mask_paint_outside_grows_and_keeps_old_pixels():
    doc = Document.new(64, 64)
    seen = recorder(doc)
    doc.paint(doc.mask.id, 10, 10, Image.new("L", (4, 4), 255))
    old = doc.paint(doc.mask.id, -8, 70, Image.new("L", (4, 4), 200))  # outside the mask: it grows
    assert is_blank(old)
    m = doc.mask
    assert (m.x, m.y, m.width, m.height) == (-8, 0, 72, 74)
    assert m.image.getpixel((10 + 8, 10)) == 255 and m.image.getpixel((0, 70)) == 200
    assert ev.LayerGeometryChanged(m.id, -8, 0, 72, 74) in seen
    crop = mask_crop(doc, (8, 8, 8, 8))
    assert crop.getpixel((2, 2)) == 255 and crop.getpixel((0, 0)) == 0


def test_set_pixels_replaces_image():
    doc = Document.new()
    layer = Layer(solid((1, 1, 1, 255)))
    doc.add_layer(layer)
    old, ox, oy = doc.set_pixels(layer.id, solid((2, 2, 2, 255), (8, 6)), x=5, y=7)
    assert (layer.width, layer.height, layer.x, layer.y) == (8, 6, 5, 7)
    assert old.size == (4, 4) and (ox, oy) == (0, 0)


def test_frame_snaps_and_validates():
    assert Frame.snapped(13, -5, 509, 3) == Frame(16, -8, 512, 8)
    with pytest.raises(ValueError):
        Frame(0, 0, 100, 64)
    with pytest.raises(ValueError):
        Frame(0, 0, 0, 64)
    doc = Document.new()
    seen = recorder(doc)
    doc.set_frame(Frame(8, 8, 64, 64))
    doc.set_frame(Frame(8, 8, 64, 64))  # no change, no event
    assert seen == [ev.FrameChanged(Frame(8, 8, 64, 64))]
    doc.set_view(View(2.0, 1.0, 2.0))
    assert doc.view.zoom == 2.0 and seen[-1] == ev.ViewChanged(View(2.0, 1.0, 2.0))
    with pytest.raises(ValueError):
        View(0.0, 0, 0)


def test_lazy_layer_loads_once_on_first_access():
    calls = []

    def loader():
        calls.append(1)
        return solid((5, 6, 7, 255), (8, 4))

    layer = Layer.lazy(id="abc", width=8, height=4, loader=loader, name="lazy",
                       thumb_loader=lambda side: solid((1, 1, 1, 255), (2, 1)))
    assert not layer.loaded and (layer.width, layer.height) == (8, 4)
    assert layer.thumbnail(16).size == (2, 1) and calls == []  # thumbnail without decoding
    assert layer.image.getpixel((0, 0)) == (5, 6, 7, 255) and layer.image.size == (8, 4)
    _ = layer.image
    assert calls == [1]
    bad = Layer.lazy(id="x", width=9, height=9, loader=loader)
    with pytest.raises(ValueError):
        _ = bad.image


def test_thumbnail_follows_revision():
    doc = Document.new()
    layer = Layer(solid((0, 0, 0, 255), (256, 128)))
    doc.add_layer(layer)
    t1 = layer.thumbnail(64)
    assert t1.size == (64, 32) and layer.thumbnail(64) is t1
    doc.paint(layer.id, 0, 0, solid((255, 255, 255, 255), (256, 128)))
    t2 = layer.thumbnail(64)
    assert t2 is not t1 and t2.getpixel((10, 10)) == (255, 255, 255, 255)


def test_history_and_state():
    doc = Document.new()
    seen = recorder(doc)
    item = HistoryItem({"prompt": "cat"}, solid((1, 2, 3, 255), (8, 8)))
    doc.add_history(item)
    assert doc.history == [item] and seen[-1] == ev.HistoryAdded(item.id)
    assert doc.remove_history(item.id) is item and doc.history == []
    state = {"prompt": "a", "steps": 20}
    doc.set_prompt_state(state)
    state["steps"] = 1
    assert doc.prompt_state == {"prompt": "a", "steps": 20}  # copied, not aliased
    doc.set_model({"name": "m"})
    doc.set_timeline({"keys": []})
    assert isinstance(seen[-3], ev.PromptStateChanged) and seen[-1] == ev.TimelineChanged({"keys": []})


def test_unsubscribe_and_load_from():
    doc = Document.new()
    seen = recorder(doc)
    other = Document.new(64, 64)
    other.add_layer(Layer(solid((1, 1, 1, 255))))
    doc.load_from(other)
    assert seen == [ev.DocumentReset()] and len(doc.layers) == 1 and doc.frame == Frame(0, 0, 64, 64)
    calls = []
    unsub = doc.subscribe(calls.append)
    unsub()
    doc.set_frame(Frame(0, 0, 8, 8))
    assert calls == []


def test_composite_respects_order_visibility_opacity():
    doc = Document.new(8, 8)
    bottom = Layer(solid((255, 0, 0, 255), (8, 8)))
    top = Layer(solid((0, 0, 255, 255), (4, 4)), x=4, y=4, opacity=0.5)
    hidden = Layer(solid((0, 255, 0, 255), (8, 8)), visible=False)
    for la in (bottom, top, hidden):
        doc.add_layer(la)
    out = composite(doc, (0, 0, 8, 8))
    assert out.getpixel((0, 0)) == (255, 0, 0, 255)
    r, g, b, a = out.getpixel((6, 6))
    # 50 % blue over opaque red: alpha_composite rounds, so allow one level either way.
    assert a == 255 and abs(r - 127) <= 1 and g == 0 and abs(b - 128) <= 1
    # Outside every layer: transparent; the outpaint mask marks it.
    out2 = composite(doc, (4, 4, 8, 8))
    assert out2.getpixel((7, 7)) == (0, 0, 0, 0)
    tm = transparency_mask(out2)
    assert tm.getpixel((7, 7)) == 255 and tm.getpixel((0, 0)) == 0


def test_image_files_read_render_write(tmp_path):
    from aigc_desktop.core.document.image_files import read_image, rendered, write_png
    from aigc_desktop.core.errors import UserError

    path = tmp_path / "in.png"
    Image.new("RGB", (10, 6), (1, 2, 3)).save(path)
    image = read_image(path)
    assert image.mode == "RGBA" and image.size == (10, 6) and image.getpixel((0, 0)) == (1, 2, 3, 255)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG broken")
    with pytest.raises(UserError, match="Cannot read bad.png"):
        read_image(bad)
    doc = Document.new(16, 16)
    layer = Layer(image, x=20, y=0)
    doc.add_layer(layer)
    whole, record = rendered(doc, "canvas")
    assert whole.size == (30, 16) and record is None and whole.getpixel((25, 3)) == (1, 2, 3, 255)
    frame, _ = rendered(doc, "frame")
    assert frame.size == (16, 16) and frame.getpixel((0, 0)) == (0, 0, 0, 0)
    with pytest.raises(UserError):
        rendered(doc, "layer", doc.mask)
    pixels, record = rendered(doc, "layer", layer)
    out = write_png(pixels, tmp_path / "out.png", record)
    with Image.open(out) as im:
        assert im.size == (10, 6)


def test_paint_then_undo_in_reverse_restores_any_sequence():
    """Property: any sequence of patches (inside, across and outside the layer), undone in reverse, gives the
    original pixels back (the layer may stay grown, with unmasked pixels in the grown part)."""
    from hypothesis import given, settings, strategies as st

    patches = st.lists(st.tuples(st.integers(-20, 40), st.integers(-20, 40), st.integers(1, 12), st.integers(1, 12),
                                 st.integers(0, 255)), min_size=1, max_size=8)

    @settings(max_examples=60, deadline=None)
    @given(patches)
    def check(steps):
        doc = Document.new(24, 24)
        doc.paint(doc.mask.id, 0, 0, Image.new("L", (24, 24), 7))
        original = doc.mask.image.copy()
        undo = []
        for x, y, w, h, v in steps:
            undo.append((x, y, doc.paint(doc.mask.id, x, y, Image.new("L", (w, h), v))))
        for x, y, before in reversed(undo):
            doc.paint(doc.mask.id, x, y, before)
        m = doc.mask
        assert m.image.crop((-m.x, -m.y, 24 - m.x, 24 - m.y)).tobytes() == original.tobytes()
        outside = Image.new("L", m.image.size, 0)
        outside.paste(Image.new("L", (24, 24), 255), (-m.x, -m.y))
        grown = Image.composite(Image.new("L", m.image.size, 0), m.image, outside)
        assert grown.getbbox() is None  # the grown part is unmasked again

    check()

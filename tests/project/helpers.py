"""A small document holding every kind of element a project stores, and an exact comparison of two."""

from __future__ import annotations

import numpy as np
from PIL import Image

from aigc_desktop.core.document import Document, Frame, HistoryItem, Layer, View


def noise(rng: np.random.Generator, w: int, h: int, mode: str) -> Image.Image:
    channels = {"RGBA": 4, "RGB": 3, "L": 1}[mode]
    a = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
    if mode == "RGBA":
        a[: h // 2, : w // 2, 3] = 0  # fully transparent pixels keep their colour: PNG stores straight alpha
    return Image.fromarray(a[..., 0] if channels == 1 else a, mode)


def make_document(seed: int = 0, size: int = 32, history: int = 3) -> Document:
    rng = np.random.default_rng(seed)
    doc = Document.new(64, 64)
    doc.add_layer(Layer(noise(rng, size, size // 2, "RGBA"), name="Background", x=-8, y=4))
    doc.add_layer(Layer(noise(rng, size // 2, size, "RGBA"), name="Ink", x=20, y=-3, opacity=0.25, visible=False,
                        locked=True,
                        record={"prompt": "ink", "seed": 7, "model": {"name": "inky", "sha256": "c" * 64}}))
    doc.paint(doc.mask.id, 4, 4, Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), "L"))
    modes = ("RGB", "RGBA", "L")
    for i in range(history):
        record = {"prompt": f"a cat {i} ✓", "seed": 100 + i, "steps": 3, "cfg_scale": 7.5, "scheduler": "euler_a",
                  "model": {"name": "tiny-sd", "sha256": "ab" * 32, "path": "/models/tiny.safetensors"},
                  "loras": [{"name": "l", "weight": 0.8}]}
        doc.add_history(HistoryItem(record, noise(rng, 24, 16, modes[i % 3]), created=1_700_000_000.5 + i,
                                    path=f"/outputs/{i:05d}.png" if i else None))
    doc.set_frame(Frame(8, 16, 48, 24))
    doc.set_view(View(1.75, 12.5, -3.25))
    doc.set_prompt_state({"prompt": "a lighthouse", "negative": "blurry", "seed": -1, "size": [64, 64]})
    doc.set_model({"name": "tiny-sd", "path": "/models/tiny.safetensors", "hash": "ab" * 32, "kind": "checkpoint"})
    doc.set_timeline({"keyframes": [{"t": 0.0, "seed": 1}, {"t": 1.0, "seed": 2}], "fps": 24})
    return doc


def pixels(image: Image.Image) -> tuple[str, tuple[int, int], bytes]:
    return image.mode, image.size, image.tobytes()


def layer_state(layer: Layer) -> dict:
    return {"id": layer.id, "name": layer.name, "kind": layer.kind, "rect": layer.rect, "opacity": layer.opacity,
            "visible": layer.visible, "locked": layer.locked, "record": layer.record}


def assert_same_document(a: Document, b: Document, view: bool = True) -> None:
    """Every stored element equal: pixels bit for bit (alpha included), records, canvas, prompt, timeline."""
    assert [layer_state(la) for la in a.layers] == [layer_state(la) for la in b.layers]
    for la, lb in zip(a.layers, b.layers):
        assert pixels(la.image) == pixels(lb.image)
    assert layer_state(a.mask) == layer_state(b.mask)
    assert pixels(a.mask.image) == pixels(b.mask.image)
    assert (a.width, a.height, a.frame) == (b.width, b.height, b.frame)
    if view:
        assert a.view == b.view
    assert [(h.id, h.record, h.width, h.height, h.created, h.path) for h in a.history] == \
        [(h.id, h.record, h.width, h.height, h.created, h.path) for h in b.history]
    for ha, hb in zip(a.history, b.history):
        assert pixels(ha.image) == pixels(hb.image)
    assert a.prompt_state == b.prompt_state
    assert a.model == b.model
    assert a.timeline == b.timeline

"""Every edit of the document as a QUndoCommand. Commands call Document operations only (never scene
items): the canvas and panels follow the document's events, so undo and redo repaint by themselves."""

from __future__ import annotations

from PIL import Image
from PySide6.QtGui import QUndoCommand

from aigc_desktop.core.document import Document, Frame, Layer

# Ids for mergeable commands (QUndoCommand.id): consecutive changes of one thing become one step.
_MOVE, _PROP, _FRAME = 1, 2, 3


class AddLayerCommand(QUndoCommand):
    def __init__(self, doc: Document, layer: Layer, index: int | None = None, text: str = "Add layer") -> None:
        super().__init__(text)
        self.doc, self.layer, self.index = doc, layer, index

    def redo(self) -> None:
        self.index = self.doc.add_layer(self.layer, self.index)

    def undo(self) -> None:
        self.doc.remove_layer(self.layer.id)


class RemoveLayerCommand(QUndoCommand):
    def __init__(self, doc: Document, layer_id: str, text: str = "Delete layer") -> None:
        super().__init__(text)
        self.doc, self.layer_id = doc, layer_id
        self.layer: Layer | None = None
        self.index = 0

    def redo(self) -> None:
        self.layer, self.index = self.doc.remove_layer(self.layer_id)

    def undo(self) -> None:
        self.doc.add_layer(self.layer, self.index)


class MoveLayerCommand(QUndoCommand):
    def __init__(self, doc: Document, layer_id: str, old: tuple[int, int], new: tuple[int, int]) -> None:
        super().__init__("Move layer")
        self.doc, self.layer_id, self.old, self.new = doc, layer_id, old, new

    def redo(self) -> None:
        self.doc.move_layer(self.layer_id, *self.new)

    def undo(self) -> None:
        self.doc.move_layer(self.layer_id, *self.old)


class ReorderLayerCommand(QUndoCommand):
    def __init__(self, doc: Document, layer_id: str, new_index: int) -> None:
        super().__init__("Reorder layers")
        self.doc, self.layer_id, self.new_index = doc, layer_id, new_index
        self.old_index = doc.index_of(layer_id)

    def redo(self) -> None:
        self.doc.reorder_layer(self.layer_id, self.new_index)

    def undo(self) -> None:
        self.doc.reorder_layer(self.layer_id, self.old_index)


class SetLayerPropertyCommand(QUndoCommand):
    """Name, opacity, visibility or lock. Consecutive opacity changes of one layer merge (a slider drag)."""

    def __init__(self, doc: Document, layer_id: str, name: str, value) -> None:
        labels = {"name": "Rename layer", "opacity": "Layer opacity", "visible": "Layer visibility",
                  "locked": "Lock layer"}
        super().__init__(labels.get(name, f"Set {name}"))
        self.doc, self.layer_id, self.name, self.value = doc, layer_id, name, value
        self.old = getattr(doc.get_layer(layer_id), name)

    def id(self) -> int:  # noqa: A003 - Qt API
        return _PROP if self.name == "opacity" else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt API
        if isinstance(other, SetLayerPropertyCommand) and other.layer_id == self.layer_id \
                and other.name == self.name:
            self.value = other.value
            return True
        return False

    def redo(self) -> None:
        self.doc.set_layer_property(self.layer_id, self.name, self.value)

    def undo(self) -> None:
        self.doc.set_layer_property(self.layer_id, self.name, self.old)


class PaintCommand(QUndoCommand):
    """One brush stroke (or any pixel patch): `after` pasted at (x, y); undo pastes back what was there."""

    def __init__(self, doc: Document, layer_id: str, x: int, y: int, after: Image.Image,
                 text: str = "Brush stroke") -> None:
        super().__init__(text)
        self.doc, self.layer_id, self.x, self.y, self.after = doc, layer_id, x, y, after
        self.before: Image.Image | None = None

    def redo(self) -> None:
        self.before = self.doc.paint(self.layer_id, self.x, self.y, self.after)

    def undo(self) -> None:
        self.doc.paint(self.layer_id, self.x, self.y, self.before)


class SetPixelsCommand(QUndoCommand):
    """Replace a layer's whole image (merge down, fit to frame)."""

    def __init__(self, doc: Document, layer_id: str, image: Image.Image, x: int, y: int,
                 text: str = "Change layer pixels") -> None:
        super().__init__(text)
        self.doc, self.layer_id, self.image, self.x, self.y = doc, layer_id, image, x, y
        self.old: tuple[Image.Image, int, int] | None = None

    def redo(self) -> None:
        self.old = self.doc.set_pixels(self.layer_id, self.image, self.x, self.y)

    def undo(self) -> None:
        image, x, y = self.old
        self.doc.set_pixels(self.layer_id, image, x, y)


class ScaleLayerCommand(QUndoCommand):
    """Scale an image layer to width x height at (x, y): Lanczos once, on the first redo. It keeps the
    original image and offset (undo gives back the exact pixels) and, once undone, the scaled one (redo
    does not resample again). The layer's record and properties stay."""

    def __init__(self, doc: Document, layer_id: str, width: int, height: int, x: int, y: int,
                 text: str = "Scale layer") -> None:
        super().__init__(text)
        self.doc, self.layer_id = doc, layer_id
        self.size, self.pos = (int(width), int(height)), (int(x), int(y))
        self.old: tuple[Image.Image, int, int] | None = None
        self.scaled: Image.Image | None = None

    def redo(self) -> None:
        if self.scaled is None:
            self.old = self.doc.scale_layer(self.layer_id, *self.size, *self.pos)
        else:
            self.doc.set_pixels(self.layer_id, self.scaled, *self.pos)

    def undo(self) -> None:
        image, x, y = self.old
        # Every later edit is undone by now: the image set_pixels hands back is exactly the scaled one.
        self.scaled = self.doc.set_pixels(self.layer_id, image, x, y)[0]


class SetFrameCommand(QUndoCommand):
    """Move / resize the generation frame; consecutive changes merge (typing a size, dragging)."""

    def __init__(self, doc: Document, new: Frame, merge: bool = False) -> None:
        super().__init__("Move frame" if (new.width, new.height) == (doc.frame.width, doc.frame.height)
                         else "Resize frame")
        self.doc, self.old, self.new, self.merge = doc, doc.frame, new, merge

    def id(self) -> int:  # noqa: A003 - Qt API
        return _FRAME if self.merge else -1

    def mergeWith(self, other: QUndoCommand) -> bool:  # noqa: N802 - Qt API
        if isinstance(other, SetFrameCommand) and other.merge:
            self.new = other.new
            return True
        return False

    def redo(self) -> None:
        self.doc.set_frame(self.new)

    def undo(self) -> None:
        self.doc.set_frame(self.old)


def fit_to_frame_command(doc: Document, layer_id: str) -> SetPixelsCommand:
    """Scale a layer (keeping its aspect ratio) to fit the frame, centred in it."""
    layer, f = doc.get_layer(layer_id), doc.frame
    scale = min(f.width / layer.width, f.height / layer.height)
    w, h = max(1, round(layer.width * scale)), max(1, round(layer.height * scale))
    image = layer.image.resize((w, h), Image.Resampling.LANCZOS)
    return SetPixelsCommand(doc, layer_id, image, f.x + (f.width - w) // 2, f.y + (f.height - h) // 2,
                            text="Fit layer to frame")


def mask_rect_command(doc: Document, rect: tuple[int, int, int, int], value: int = 255) -> PaintCommand:
    """Fill a rectangle of the mask (255: repaint it, 0: keep it) as one undo step."""
    x, y, w, h = rect
    return PaintCommand(doc, doc.mask.id, x, y, Image.new("L", (w, h), value),
                        text="Mask selection" if value else "Unmask selection")


def clear_mask_command(doc: Document) -> PaintCommand:
    m = doc.mask
    return PaintCommand(doc, m.id, m.x, m.y, Image.new("L", (m.width, m.height), 0), text="Clear mask")


def duplicate_layer_command(doc: Document, layer_id: str) -> AddLayerCommand:
    src = doc.get_layer(layer_id)
    copy = src.copy()
    copy.name = f"{src.name} copy"
    return AddLayerCommand(doc, copy, doc.index_of(layer_id) + 1, text="Duplicate layer")


def merge_down_command(doc: Document, layer_id: str) -> QUndoCommand | None:
    """The layer composited onto the one below it (its opacity applied), as one undo step; None at the bottom."""
    from aigc_desktop.core.document.composite import composite
    from aigc_desktop.core.document.document import _union

    index = doc.index_of(layer_id)
    if index == 0:
        return None
    upper, lower = doc.get_layer(layer_id), doc.layers[index - 1]
    rect = _union(lower.rect, upper.rect)
    # The lower layer's own opacity stays a property of the merged layer; the upper one's is baked in.
    shown_lower = Layer(lower.image, x=lower.x, y=lower.y)
    merged = composite(doc, rect, layers=[shown_lower, upper])
    return MacroCommand("Merge down", [
        SetPixelsCommand(doc, lower.id, merged, rect[0], rect[1], text="Merge down"),
        RemoveLayerCommand(doc, layer_id)])


class MacroCommand(QUndoCommand):
    """Several commands as one undo step. Plain Python children, not QUndoCommand parents: PySide does not
    track the ownership of QUndoCommand children, and their wrappers crash at garbage collection."""

    def __init__(self, text: str, commands: list[QUndoCommand]) -> None:
        super().__init__(text)
        self.commands = commands

    def redo(self) -> None:
        for c in self.commands:
            c.redo()

    def undo(self) -> None:
        for c in reversed(self.commands):
            c.undo()

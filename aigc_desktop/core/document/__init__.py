"""The layered document (Qt-free, torch-free): layers, one mask, the generation frame, the view, the
history; small operations that emit plain events. See document.py."""

from aigc_desktop.core.document import events
from aigc_desktop.core.document.document import LAYER_PROPERTIES, MAX_LAYER_SIDE, SNAP, Document, Frame, View, snap
from aigc_desktop.core.document.layer import HistoryItem, Layer, new_id

__all__ = ["Document", "Layer", "Frame", "View", "HistoryItem", "events", "snap", "SNAP", "LAYER_PROPERTIES",
           "new_id", "MAX_LAYER_SIDE"]

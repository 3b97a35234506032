"""Dark (default) and light themes as Qt palettes on the Fusion style: no style sheets to fight."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

THEMES = ("dark", "light")


def dark_palette() -> QPalette:
    p = QPalette()
    window, base, text = QColor(45, 45, 50), QColor(30, 30, 34), QColor(225, 225, 230)
    accent = QColor(64, 140, 230)
    roles = {
        QPalette.ColorRole.Window: window, QPalette.ColorRole.WindowText: text,
        QPalette.ColorRole.Base: base, QPalette.ColorRole.AlternateBase: QColor(40, 40, 45),
        QPalette.ColorRole.ToolTipBase: QColor(60, 60, 66), QPalette.ColorRole.ToolTipText: text,
        QPalette.ColorRole.PlaceholderText: QColor(140, 140, 148),
        QPalette.ColorRole.Text: text, QPalette.ColorRole.Button: QColor(56, 56, 62),
        QPalette.ColorRole.ButtonText: text, QPalette.ColorRole.BrightText: QColor(255, 90, 90),
        QPalette.ColorRole.Highlight: accent, QPalette.ColorRole.HighlightedText: QColor(255, 255, 255),
        QPalette.ColorRole.Link: QColor(110, 170, 255), QPalette.ColorRole.Light: QColor(70, 70, 76),
        QPalette.ColorRole.Midlight: QColor(62, 62, 68), QPalette.ColorRole.Mid: QColor(40, 40, 44),
        QPalette.ColorRole.Dark: QColor(25, 25, 28), QPalette.ColorRole.Shadow: QColor(10, 10, 12),
    }
    for role, color in roles.items():
        p.setColor(role, color)
    disabled = QColor(120, 120, 126)
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        p.setColor(QPalette.ColorGroup.Disabled, role, disabled)
    return p


def apply_theme(name: str = "dark", app: QApplication | None = None) -> None:
    app = app or QApplication.instance()
    if app is None:
        return
    app.setStyle("Fusion")
    app.setPalette(dark_palette() if name == "dark" else app.style().standardPalette())

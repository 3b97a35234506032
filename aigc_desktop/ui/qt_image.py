"""PIL <-> Qt image conversion (copies, so Qt never points into freed Python memory)."""

from __future__ import annotations

from PIL import Image
from PySide6.QtGui import QImage, QPixmap


def pil_to_qimage(image: Image.Image) -> QImage:
    if image.mode not in ("RGB", "RGBA"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    fmt = QImage.Format.Format_RGBA8888 if image.mode == "RGBA" else QImage.Format.Format_RGB888
    data = image.tobytes()
    channels = 4 if image.mode == "RGBA" else 3
    qimage = QImage(data, image.width, image.height, image.width * channels, fmt)
    return qimage.copy()


def pil_to_pixmap(image: Image.Image) -> QPixmap:
    return QPixmap.fromImage(pil_to_qimage(image))


def qimage_to_pil(qimage: QImage) -> Image.Image:
    q = qimage.convertToFormat(QImage.Format.Format_RGBA8888)
    ptr = q.constBits()
    data = bytes(ptr)[: q.sizeInBytes()]
    image = Image.frombuffer("RGBA", (q.width(), q.height()), data, "raw", "RGBA", q.bytesPerLine(), 1)
    return image.copy()

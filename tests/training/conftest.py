"""A few generated images with captions (coloured shapes): the trainers' smoke tests need no emoji font."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle")
COLORS = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220), "yellow": (235, 200, 30)}


def write_shapes(folder: Path, size: int = 32) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    i = 0
    for shape in SHAPES:
        for color, rgb in COLORS.items():
            image = Image.new("RGB", (size, size), (236, 236, 236))
            d = ImageDraw.Draw(image)
            box = (size // 5, size // 5, size - size // 5, size - size // 5)
            if shape == "circle":
                d.ellipse(box, fill=rgb)
            elif shape == "square":
                d.rectangle(box, fill=rgb)
            else:
                d.polygon([(size // 2, box[1]), (box[2], box[3]), (box[0], box[3])], fill=rgb)
            image.save(folder / f"{i:02d}_{color}_{shape}.png")
            (folder / f"{i:02d}_{color}_{shape}.txt").write_text(f"{color} {shape}\n", encoding="utf-8")
            i += 1
    return folder


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory) -> Path:
    return write_shapes(tmp_path_factory.mktemp("shapes"))

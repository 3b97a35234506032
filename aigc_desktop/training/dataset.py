"""Training data: the emoji data set builder and the folder data set every trainer reads.

A data set is a folder of images, each with an optional caption in a .txt file of the same stem:

    0001_red_apple.png   0001_red_apple.txt ("red apple")

`aigc-desktop dataset emoji --out DIR` writes the Noto Color Emoji glyphs in that layout (plus emoji.json,
which maps each file to its emoji); an artist's own folder of PNG/JPEG + .txt files trains the same way.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from aigc_desktop.core.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
DEFAULT_BACKGROUND = (236, 236, 236)  # light neutral grey: white parts (clouds, eyes) stay visible
EMOJI_FONT_SIZE = 109  # the only size at which Pillow draws the colour bitmaps of Noto Color Emoji
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/noto/NotoColorEmoji.ttf",
    "/usr/share/fonts/google-noto-emoji/NotoColorEmoji.ttf",
    "/System/Library/Fonts/Apple Color Emoji.ttc",
)
SKIN_TONES = {chr(c) for c in range(0x1F3FB, 0x1F400)}

# The curated subset: a few hundred visually distinct emoji (single code points) that a small model learns
# to follow on a CPU. Ranges are inclusive; code points the emoji package does not list are skipped.
CURATED_RANGES: tuple[tuple[int, int], ...] = (
    (0x1F600, 0x1F644),  # smileys and cat faces
    (0x1F910, 0x1F917), (0x1F920, 0x1F92F), (0x1F970, 0x1F976),  # more faces
    (0x1F400, 0x1F43F), (0x1F980, 0x1F9AE), (0x1F98A, 0x1F98F),  # animals
    (0x1F330, 0x1F344), (0x1FAB4, 0x1FAB7),  # plants
    (0x1F345, 0x1F37F), (0x1F950, 0x1F96F), (0x1F9C0, 0x1F9CB), (0x1FAD0, 0x1FADB),  # fruit and food
    (0x1F300, 0x1F32C),  # weather, sky, moon phases, stars
    (0x2600, 0x2604), (0x26C4, 0x26C8),  # sun, cloud, umbrella, snowman
    (0x1F493, 0x1F49F),  # hearts
    (0x1F380, 0x1F393),  # celebration objects
)
CURATED_EXTRA = ("⭐", "⚡", "❄️", "🔥", "💧", "🌊", "☔", "❤️", "🧡", "🖤", "🤍", "🤎", "💔", "❣️", "⚽", "⚾",
                 "🏀", "🏈", "🎾", "🏐", "🎱", "💡", "💣", "💰", "💎", "🔔", "🔑", "🔒", "📱", "💻", "📚", "✏️",
                 "✂️", "🎸", "🎹", "🥁", "🚀", "🚗", "🚲", "✈️", "🚢", "🏠", "🌋", "🗻", "👑", "👒", "👓", "👕",
                 "👖", "👗", "👟", "☂️", "⏰", "🎩", "🧸", "🪁", "🎨", "🧲", "🕯️", "🧊", "🪐", "🎃", "👻",
                 "💀", "👽", "🤖", "💩", "🌍", "🌙", "☀️")


# ------------------------------------------------------------------------------------------- captions


def clean_name(short_name: str) -> str:
    """':grinning_face_with_big_eyes:' -> 'grinning face with big eyes' (plain lower-case words)."""
    text = short_name.strip(":").replace("_", " ").replace("’", "'").lower()
    text = re.sub(r"[^\w' #*&.-]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


def slug(text: str, limit: int = 48) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:limit] or "image"


def emoji_entries(skin_tones: bool = False, subset: str = "all") -> list[tuple[str, str]]:
    """(emoji, caption) pairs in code-point order: fully-qualified emoji, optionally with skin-tone variants."""
    import emoji

    if subset not in ("all", "curated"):
        raise UserError(f"Unknown emoji subset '{subset}'; choose all or curated")
    data = emoji.EMOJI_DATA
    wanted: set[str] | None = None
    if subset == "curated":
        wanted = {chr(c) for lo, hi in CURATED_RANGES for c in range(lo, hi + 1)}
        wanted |= {e.replace("\ufe0f", "") for e in CURATED_EXTRA}
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for s, info in data.items():
        if info.get("status") != emoji.STATUS["fully_qualified"]:
            continue
        if not skin_tones and any(ch in SKIN_TONES for ch in s):
            continue
        bare = s.replace("\ufe0f", "")
        if wanted is not None and bare not in wanted:
            continue
        if bare in seen:
            continue
        seen.add(bare)
        out.append((s, clean_name(info["en"])))
    out.sort(key=lambda pair: [ord(c) for c in pair[0]])
    return out


# ------------------------------------------------------------------------------------------ rendering


def find_emoji_font(path: str | None = None) -> Path:
    for candidate in ([path] if path else []) + list(FONT_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise UserError("Noto Color Emoji font not found; install it (Debian/Ubuntu: apt-get install "
                    "fonts-noto-color-emoji) or pass --font PATH")


class EmojiRenderer:
    """Draws one emoji as a square image: crop to the glyph, pad to a square on the background, resize."""

    def __init__(self, font_path: str | Path, size: int = 64, background: tuple[int, int, int] = DEFAULT_BACKGROUND,
                 margin: float = 0.06) -> None:
        from PIL import features

        layout = ImageFont.Layout.RAQM if features.check("raqm") else ImageFont.Layout.BASIC
        self.joins_sequences = layout == ImageFont.Layout.RAQM  # without RAQM, ZWJ sequences fall apart
        self.font = ImageFont.truetype(str(font_path), EMOJI_FONT_SIZE, layout_engine=layout)
        self.size = size
        self.background = background
        self.margin = margin
        self.advance = self.font.getlength("\U0001F600")  # one glyph's width
        self._missing = self._draw("\U000E0FFF")  # what a code point the font lacks looks like

    def _draw(self, text: str) -> Image.Image | None:
        w = int(self.advance * 4) + 32
        canvas = Image.new("RGBA", (w, int(EMOJI_FONT_SIZE * 1.6)), (0, 0, 0, 0))
        ImageDraw.Draw(canvas).text((16, 8), text, font=self.font, embedded_color=True)
        bbox = canvas.getchannel("A").getbbox()
        return canvas.crop(bbox) if bbox else None

    def render(self, text: str) -> Image.Image | None:
        """The emoji as an RGB image, or None when it draws blank, as the missing glyph, or as several glyphs."""
        if self.font.getlength(text) > self.advance * 1.3:
            return None
        glyph = self._draw(text)
        if glyph is None or glyph.width > self.advance * 1.3:
            return None
        if self._missing is not None and glyph.size == self._missing.size and \
                np.array_equal(np.asarray(glyph), np.asarray(self._missing)):
            return None
        side = int(max(glyph.size) * (1 + 2 * self.margin))
        square = Image.new("RGBA", (side, side), self.background + (255,))
        square.alpha_composite(glyph, ((side - glyph.width) // 2, (side - glyph.height) // 2))
        return square.convert("RGB").resize((self.size, self.size), Image.Resampling.LANCZOS)


@dataclass(frozen=True)
class BuildReport:
    written: int
    dropped: int
    folder: Path


def build_emoji_dataset(out: str | Path, size: int = 64, skin_tones: bool = False, subset: str = "all",
                        font: str | None = None, background: tuple[int, int, int] = DEFAULT_BACKGROUND,
                        progress: Callable[[int, int], None] | None = None) -> BuildReport:
    """Write PNG + .txt pairs (and emoji.json) to `out`. Returns how many were written and dropped."""
    if size < 8 or size > 512:
        raise UserError(f"Image size must be between 8 and 512, got {size}")
    out = Path(out)
    renderer = EmojiRenderer(find_emoji_font(font), size=size, background=background)
    entries = emoji_entries(skin_tones=skin_tones, subset=subset)
    out.mkdir(parents=True, exist_ok=True)
    manifest: list[dict[str, str]] = []
    dropped = 0
    for i, (text, caption) in enumerate(entries):
        image = renderer.render(text)
        if progress:
            progress(i + 1, len(entries))
        if image is None:
            dropped += 1
            continue
        stem = f"{len(manifest):04d}_{slug(caption)}"
        image.save(out / f"{stem}.png", optimize=True)
        (out / f"{stem}.txt").write_text(caption + "\n", encoding="utf-8")
        manifest.append({"file": f"{stem}.png", "emoji": text, "caption": caption})
    (out / "emoji.json").write_text(json.dumps({"size": size, "subset": subset, "skin_tones": skin_tones,
                                                "items": manifest}, ensure_ascii=False, indent=1),
                                    encoding="utf-8")
    return BuildReport(written=len(manifest), dropped=dropped, folder=out)


# ------------------------------------------------------------------------------------ folder data set


@dataclass
class FolderData:
    """All images of a folder in memory (small data sets): uint8 N x H x W x 3, one caption per image.
    `skipped` names the files that were left out, and why (unreadable images, files that are no images)."""

    images: np.ndarray
    captions: list[str]
    files: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.files)

    def skipped_message(self, shown: int = 5) -> str:
        """"3 files skipped: a.png (not a readable image), ..." or "" when nothing was skipped."""
        return skipped_message(self.skipped, shown)

    def to_tensor(self):
        """Float N x 3 x H x W in [-1, 1]."""
        import torch

        return torch.from_numpy(self.images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


# Files that belong beside the images and are not training data: captions and our own manifests.
SIDE_SUFFIXES = (".txt", ".json")


def image_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise UserError(f"Data folder not found: {folder}")
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def other_files(folder: str | Path) -> list[Path]:
    """Files of the folder that are neither images (by suffix) nor captions/manifests nor hidden."""
    return sorted(p for p in Path(folder).iterdir()
                  if p.suffix.lower() not in IMAGE_SUFFIXES + SIDE_SUFFIXES and not p.name.startswith(".")
                  and p.is_file())


def skipped_message(skipped: list[tuple[str, str]], shown: int = 5) -> str:
    if not skipped:
        return ""
    names = ", ".join(f"{name} ({why})" for name, why in skipped[:shown])
    more = f" and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return f"{len(skipped)} file{'s' if len(skipped) != 1 else ''} skipped: {names}{more}"


def _why_unreadable(exc: BaseException) -> str:
    from aigc_desktop.core.errors import first_line

    if isinstance(exc, Image.UnidentifiedImageError):
        return "not a readable image"
    if isinstance(exc, Image.DecompressionBombError):
        return "too many pixels"
    if isinstance(exc, PermissionError):
        return "permission denied"
    text = first_line(exc, 80)
    return text[:1].lower() + text[1:] if text else type(exc).__name__


def square_image(image: Image.Image, resolution: int,
                 background: tuple[int, int, int] = DEFAULT_BACKGROUND) -> Image.Image:
    """Flatten transparency onto the background, centre-crop to a square, resize to resolution."""
    if image.mode in ("RGBA", "LA", "P"):
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, background + (255,))
        flat.alpha_composite(rgba)
        image = flat
    image = image.convert("RGB")
    side = min(image.size)
    left, top = (image.width - side) // 2, (image.height - side) // 2
    image = image.crop((left, top, left + side, top + side))
    if side != resolution:
        image = image.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return image


def load_folder(folder: str | Path, resolution: int, limit: int = 0) -> FolderData:
    """Read every image (and its .txt caption, "" when missing) of a folder at resolution x resolution.

    Files that cannot be read as images, and files that are not images at all, are skipped and listed in
    `skipped` (a bad file in a folder of thousands must not stop a training run); no readable image at all
    is a UserError."""
    files = image_files(folder)
    skipped = [(p.name, "not an image") for p in other_files(folder)]
    if limit:
        files = files[:limit]
    arrays, captions, names = [], [], []
    for path in files:
        try:
            with Image.open(path) as im:
                arrays.append(np.asarray(square_image(im, resolution)))
        except (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError) as exc:
            skipped.append((path.name, _why_unreadable(exc)))
            continue
        txt = path.with_suffix(".txt")
        try:
            captions.append(txt.read_text(encoding="utf-8", errors="replace").strip() if txt.is_file() else "")
        except OSError:
            captions.append("")
        names.append(path.name)
    skipped.sort()
    if not arrays:
        if not skipped:
            raise UserError(f"No images (PNG/JPEG/WebP) in {folder}")
        raise UserError(f"No readable images (PNG/JPEG/WebP) in {folder} ({skipped_message(skipped)})")
    return FolderData(images=np.stack(arrays), captions=captions, files=names, skipped=skipped)


def copy_subset(src: str | Path, dst: str | Path, names: Iterable[str]) -> int:
    """Copy the image/caption pairs whose caption is in `names` (used to split held-out names)."""
    keep = set(names)
    dst = Path(dst)
    dst.mkdir(parents=True, exist_ok=True)
    n = 0
    for path in image_files(src):
        txt = path.with_suffix(".txt")
        if txt.is_file() and txt.read_text(encoding="utf-8").strip() in keep:
            shutil.copy2(path, dst / path.name)
            shutil.copy2(txt, dst / txt.name)
            n += 1
    return n


# ------------------------------------------------------------------------------------------ caption words

_STOP_WORDS = frozenset({"with", "and", "the", "for", "of", "on", "in", "out", "from", "without", "at", "a", "an"})


def caption_words(caption: str) -> list[str]:
    return [w for w in re.findall(r"[\w']+", caption.lower()) if len(w) >= 3 and w not in _STOP_WORDS]


def word_counts(captions: Iterable[str]) -> dict[str, int]:
    """In how many distinct captions each word occurs."""
    counts: dict[str, int] = {}
    for caption in set(captions):
        for w in set(caption_words(caption)):
            counts[w] = counts.get(w, 0) + 1
    return counts


# Words that qualify others instead of naming the thing (colours, sizes, "face" of the 100 smileys).
_QUALIFIERS = frozenset({"face", "red", "orange", "yellow", "green", "blue", "purple", "brown", "black", "white",
                         "pink", "grey", "gray", "light", "dark", "medium", "big", "small", "large", "little"})


def main_word(caption: str, counts: dict[str, int]) -> str:
    """The caption's category word: its most common word in the data set that is not a qualifier (the last
    one on ties). 'red heart' -> 'heart', 'cat face' -> 'cat', 'red apple' -> 'apple'."""
    words = caption_words(caption)
    content = [w for w in words if w not in _QUALIFIERS] or words
    if not content:
        return caption
    return max(reversed(content), key=lambda w: counts.get(w, 0))

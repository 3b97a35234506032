"""Frame writers for animations: GIF and WebP (Pillow), MP4 (PyAV, H.264), PNG sequences.

    with open_writer("walk.mp4", fps=30) as writer:
        for frame in frames:          # PIL images, all the same size
            writer.write(frame)
    writer.path                        # what was written

The format follows the target: `.gif`, `.webp`, `.mp4`, or a folder (an existing one, or a path without
suffix / ending in a separator) for `frame_00000.png, ...`. MP4 and PNG frames stream to disk; GIF and
WebP keep the frames in memory until `close()` (Pillow writes them in one call). Files appear atomically:
a failed or cancelled export leaves no half-written file behind.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, Sequence

from aigc_desktop.core.errors import UserError

FORMATS = ("gif", "webp", "mp4", "png")


class ExportError(UserError):
    pass


def format_for(path: str | os.PathLike) -> str:
    """gif | webp | mp4 | png (a folder of PNG frames), from the target path."""
    text = str(path)
    p = Path(path)
    if p.is_dir() or text.endswith(("/", os.sep)) or not p.suffix:
        return "png"
    suffix = p.suffix.lower().lstrip(".")
    if suffix in ("gif", "webp", "mp4"):
        return suffix
    raise ExportError(f"Cannot export animations as .{suffix}: use .gif, .webp, .mp4 or a folder for PNG frames")


class FrameWriter:
    """Base: counts frames, checks they keep one size, writes atomically."""

    def __init__(self, path: str | os.PathLike, fps: float) -> None:
        if not fps or fps <= 0:
            raise ExportError("Frames per second must be positive")
        self.path = Path(path).expanduser()
        self.fps = float(fps)
        self.count = 0
        self.size: tuple[int, int] | None = None

    def write(self, image: Any) -> None:
        if self.size is None:
            self.size = image.size
        elif image.size != self.size:
            raise ExportError(f"Frame {self.count} is {image.size[0]}x{image.size[1]}, the first was "
                              f"{self.size[0]}x{self.size[1]}")
        self._write(image)
        self.count += 1

    def _write(self, image: Any) -> None:
        raise NotImplementedError

    def close(self) -> Path:
        raise NotImplementedError

    def abort(self) -> None:
        """Drop what was written (cancel / failure)."""

    def __enter__(self) -> "FrameWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def _tmp(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        return self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp{self.path.suffix}")


class _PillowAnimationWriter(FrameWriter):
    pillow_format = ""

    def __init__(self, path: str | os.PathLike, fps: float, loop: int = 0, quality: int = 90) -> None:
        super().__init__(path, fps)
        self.loop = loop
        self.quality = quality
        self.frames: list[Any] = []

    def _write(self, image: Any) -> None:
        self.frames.append(image.copy())

    def _options(self) -> dict[str, Any]:
        return {}

    def close(self) -> Path:
        if not self.frames:
            raise ExportError("No frames to export")
        tmp = self._tmp()
        first, rest = self.frames[0], self.frames[1:]
        try:
            first.save(tmp, format=self.pillow_format, save_all=True, append_images=rest,
                       duration=max(1, round(1000 / self.fps)), loop=self.loop, **self._options())
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
            self.frames = []
        return self.path

    def abort(self) -> None:
        self.frames = []


class GifWriter(_PillowAnimationWriter):
    pillow_format = "GIF"

    def _write(self, image: Any) -> None:
        # GIF holds 256 colours per frame: an adaptive palette per frame keeps gradients smooth.
        self.frames.append(image.convert("RGB").quantize(colors=256, method=2, dither=1))

    def _options(self) -> dict[str, Any]:
        return {"optimize": False, "disposal": 1}


class WebPWriter(_PillowAnimationWriter):
    pillow_format = "WEBP"

    def _options(self) -> dict[str, Any]:
        return {"quality": self.quality, "method": 4}


class Mp4Writer(FrameWriter):
    """H.264 (yuv420p, so any player opens it) through PyAV; odd sizes are padded to even."""

    def __init__(self, path: str | os.PathLike, fps: float, crf: int = 18) -> None:
        super().__init__(path, fps)
        self.crf = crf
        self._container = None
        self._stream = None
        self._tmp_path: Path | None = None

    def _open(self, size: tuple[int, int]) -> None:
        import av
        from fractions import Fraction

        self._tmp_path = self._tmp()
        self._container = av.open(str(self._tmp_path), mode="w", format="mp4")
        rate = Fraction(self.fps).limit_denominator(1001)
        try:
            self._stream = self._container.add_stream("libx264", rate=rate)
            self._stream.options = {"crf": str(self.crf), "preset": "medium"}
        except Exception:  # noqa: BLE001 - a PyAV build without x264: MPEG-4 part 2 still plays everywhere
            self._stream = self._container.add_stream("mpeg4", rate=rate)
            self._stream.bit_rate = 8_000_000
        self._stream.width = size[0] + size[0] % 2
        self._stream.height = size[1] + size[1] % 2
        self._stream.pix_fmt = "yuv420p"

    def _write(self, image: Any) -> None:
        import av

        if self._container is None:
            self._open(image.size)
        rgb = image.convert("RGB")
        if rgb.size != (self._stream.width, self._stream.height):
            from PIL import Image

            padded = Image.new("RGB", (self._stream.width, self._stream.height))
            padded.paste(rgb, (0, 0))
            rgb = padded
        frame = av.VideoFrame.from_image(rgb)
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> Path:
        if self._container is None:
            raise ExportError("No frames to export")
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
            os.replace(self._tmp_path, self.path)
        finally:
            self._container = None
            if self._tmp_path is not None:
                self._tmp_path.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        if self._container is not None:
            try:
                self._container.close()
            except Exception:  # noqa: BLE001 - closing a half-written file may fail; it is deleted anyway
                pass
            self._container = None
        if self._tmp_path is not None:
            self._tmp_path.unlink(missing_ok=True)


class PngSequenceWriter(FrameWriter):
    """frame_00000.png, frame_00001.png, ... in a folder (written as they come)."""

    def __init__(self, path: str | os.PathLike, fps: float, prefix: str = "frame_") -> None:
        super().__init__(path, fps)
        self.prefix = prefix
        self.written: list[Path] = []

    def _write(self, image: Any) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        target = self.path / f"{self.prefix}{self.count:05d}.png"
        tmp = target.with_name(f".{target.name}.tmp")
        image.save(tmp, format="PNG")
        os.replace(tmp, target)
        self.written.append(target)

    def close(self) -> Path:
        if not self.written:
            raise ExportError("No frames to export")
        return self.path

    def abort(self) -> None:
        for p in self.written:
            p.unlink(missing_ok=True)
        self.written = []


def open_writer(path: str | os.PathLike, fps: float = 30, fmt: str | None = None, **options: Any) -> FrameWriter:
    fmt = fmt or format_for(path)
    writers = {"gif": GifWriter, "webp": WebPWriter, "mp4": Mp4Writer, "png": PngSequenceWriter}
    if fmt not in writers:
        raise ExportError(f"Unknown export format '{fmt}' (use one of {', '.join(FORMATS)})")
    return writers[fmt](path, fps, **options)


def export_frames(frames: Iterable[Any], path: str | os.PathLike, fps: float = 30, **options: Any) -> Path:
    """Write all frames; returns the file (or folder) written."""
    with open_writer(path, fps, **options) as writer:
        for frame in frames:
            writer.write(frame)
    return writer.path


def grid_image(images: Sequence[Any], cols: int | None = None, gap: int = 0) -> Any:
    """Lay same-sized PIL images out on a grid (square-ish when `cols` is None), row by row."""
    import math

    from PIL import Image

    if not images:
        raise ExportError("A grid needs at least one image")
    cols = max(1, min(cols or math.ceil(math.sqrt(len(images))), len(images)))
    rows = math.ceil(len(images) / cols)
    w, h = images[0].size
    canvas = Image.new(images[0].mode, (cols * w + (cols - 1) * gap, rows * h + (rows - 1) * gap))
    for i, im in enumerate(images):
        canvas.paste(im, ((i % cols) * (w + gap), (i // cols) * (h + gap)))
    return canvas

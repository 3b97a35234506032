"""Frame writers for animations: GIF and WebP (Pillow), MP4 (H.264) and WebM (VP9) through PyAV (no system
ffmpeg), PNG sequences whose frames carry their parameters.

    with open_writer("morph.mp4", fps=24, scale=2) as writer:
        for frame, record in frames:     # PIL images, all the same size
            writer.write(frame, record)  # the record goes into PNG frames' metadata
    writer.path                          # what was written

The format follows the target (core.interpolate.animation_format): `.gif`, `.webp`, `.mp4`, `.webm`, or a
folder for `frame_00000.png, ...`. Video and PNG frames stream to disk; GIF and WebP keep the frames in memory
until `close()` (Pillow writes them in one call). Files appear atomically (core.files): a failed or cancelled
export leaves no half-written file behind. `loop` is the GIF / WebP loop count (0 = forever); `scale`
resizes every frame (nearest neighbour for whole-number enlargements, so pixel art stays sharp).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from aigc_desktop.core.errors import CancelRequested, InvalidParameter, UserError
from aigc_desktop.core.files import atomic_open, atomic_write
from aigc_desktop.core.interpolate import ANIMATION_FORMATS, animation_format, pingpong

FORMATS = ANIMATION_FORMATS


class ExportError(UserError):
    pass


def format_for(path: str | os.PathLike) -> str:
    """gif | webp | mp4 | webm | png (a folder of PNG frames), from the target path."""
    try:
        return animation_format(path)
    except InvalidParameter as exc:
        raise ExportError(str(exc)) from None


def scaled(image: Any, scale: float) -> Any:
    if scale == 1:
        return image
    from PIL import Image

    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    whole = float(scale).is_integer() and scale > 1
    return image.resize(size, Image.Resampling.NEAREST if whole else Image.Resampling.LANCZOS)


class FrameWriter:
    """Base: scales, counts frames, checks they keep one size, writes atomically."""

    def __init__(self, path: str | os.PathLike, fps: float, scale: float = 1.0) -> None:
        if not fps or fps <= 0:
            raise ExportError("Frames per second must be positive")
        if not scale or scale <= 0:
            raise ExportError("Scale must be positive")
        self.path = Path(path).expanduser()
        self.fps = float(fps)
        self.scale = float(scale)
        self.count = 0
        self.size: tuple[int, int] | None = None

    def write(self, image: Any, record: dict[str, Any] | None = None) -> None:
        if self.size is None:
            self.size = image.size
        elif image.size != self.size:
            raise ExportError(f"Frame {self.count} is {image.size[0]}x{image.size[1]}, the first was "
                              f"{self.size[0]}x{self.size[1]}")
        self._write(scaled(image, self.scale), record)
        self.count += 1

    def _write(self, image: Any, record: dict[str, Any] | None) -> None:
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


class _PillowAnimationWriter(FrameWriter):
    pillow_format = ""

    def __init__(self, path: str | os.PathLike, fps: float, loop: int = 0, quality: int = 90,
                 scale: float = 1.0) -> None:
        super().__init__(path, fps, scale)
        self.loop = int(loop)
        self.quality = quality
        self.frames: list[Any] = []

    def _write(self, image: Any, record: dict[str, Any] | None) -> None:
        self.frames.append(image.copy())

    def _options(self) -> dict[str, Any]:
        return {}

    def close(self) -> Path:
        if not self.frames:
            raise ExportError("No frames to export")
        first, rest = self.frames[0], self.frames[1:]
        try:
            atomic_write(self.path, lambda fh: first.save(
                fh, format=self.pillow_format, save_all=True, append_images=rest,
                duration=max(1, round(1000 / self.fps)), loop=self.loop, **self._options()))
        finally:
            self.frames = []
        return self.path

    def abort(self) -> None:
        self.frames = []


class GifWriter(_PillowAnimationWriter):
    pillow_format = "GIF"

    def _write(self, image: Any, record: dict[str, Any] | None) -> None:
        # GIF holds 256 colours per frame: an adaptive palette per frame keeps gradients smooth.
        self.frames.append(image.convert("RGB").quantize(colors=256, method=2, dither=1))

    def _options(self) -> dict[str, Any]:
        return {"optimize": False, "disposal": 1}


class WebPWriter(_PillowAnimationWriter):
    pillow_format = "WEBP"

    def _write(self, image: Any, record: dict[str, Any] | None) -> None:
        self.frames.append(image.convert("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB"))

    def _options(self) -> dict[str, Any]:
        return {"quality": self.quality, "method": 4}


class VideoWriter(FrameWriter):
    """A PyAV video (yuv420p, so any player opens it); odd sizes are padded to even."""

    container_format = ""
    codecs: tuple[str, ...] = ()

    def __init__(self, path: str | os.PathLike, fps: float, crf: int = 18, scale: float = 1.0) -> None:
        super().__init__(path, fps, scale)
        self.crf = crf
        self._container = None
        self._stream = None
        self._file: contextlib.ExitStack | None = None

    def _codec_options(self, codec: str) -> dict[str, str]:
        return {}

    def _open(self, size: tuple[int, int]) -> None:
        import av
        from fractions import Fraction

        self._file = contextlib.ExitStack()
        handle = self._file.enter_context(atomic_open(self.path, "wb"))
        self._container = av.open(handle, mode="w", format=self.container_format)
        rate = Fraction(self.fps).limit_denominator(1001)
        for codec in self.codecs:
            try:
                self._stream = self._container.add_stream(codec, rate=rate)
                break
            except Exception:  # noqa: BLE001 - a PyAV build without this encoder: try the next one
                continue
        else:
            self.abort()
            raise ExportError(f"This PyAV build has no encoder for .{self.path.suffix.lstrip('.')} "
                              f"({' / '.join(self.codecs)})")
        self._stream.options = self._codec_options(self._stream.codec_context.name)
        self._stream.width = size[0] + size[0] % 2
        self._stream.height = size[1] + size[1] % 2
        self._stream.pix_fmt = "yuv420p"

    def _write(self, image: Any, record: dict[str, Any] | None) -> None:
        import av

        if self._container is None:
            self._open(image.size)
        rgb = image.convert("RGB")
        if rgb.size != (self._stream.width, self._stream.height):
            from PIL import Image

            padded = Image.new("RGB", (self._stream.width, self._stream.height))
            padded.paste(rgb, (0, 0))
            rgb = padded
        for packet in self._stream.encode(av.VideoFrame.from_image(rgb)):
            self._container.mux(packet)

    def close(self) -> Path:
        if self._container is None:
            raise ExportError("No frames to export")
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
        except BaseException:
            self.abort()
            raise
        self._container = None
        file, self._file = self._file, None
        file.close()  # the temporary file replaces the target
        return self.path

    def abort(self) -> None:
        if self._container is not None:
            with contextlib.suppress(Exception):  # closing a half-written file may fail; it is deleted anyway
                self._container.close()
            self._container = None
        if self._file is not None:
            file, self._file = self._file, None
            with contextlib.suppress(ExportError):
                file.__exit__(ExportError, ExportError("aborted"), None)  # atomic_open drops the temporary


class Mp4Writer(VideoWriter):
    """H.264 (MPEG-4 part 2 where the build lacks x264: it still plays everywhere)."""

    container_format = "mp4"
    codecs = ("libx264", "mpeg4")

    def _codec_options(self, codec: str) -> dict[str, str]:
        return {"crf": str(self.crf), "preset": "medium"} if codec == "libx264" else {"b": "8000000"}


class WebMWriter(VideoWriter):
    """VP9 in constant-quality mode (crf with no bitrate cap)."""

    container_format = "webm"
    codecs = ("libvpx-vp9", "libvpx")

    def __init__(self, path: str | os.PathLike, fps: float, crf: int = 30, scale: float = 1.0) -> None:
        super().__init__(path, fps, crf, scale)

    def _codec_options(self, codec: str) -> dict[str, str]:
        return {"crf": str(self.crf), "b": "0", "deadline": "good", "cpu-used": "4"}


class PngSequenceWriter(FrameWriter):
    """frame_00000.png, frame_00001.png, ... in a folder (written as they come); each frame's record goes
    into its metadata (the app's JSON record and an A1111 parameters line), so every frame regenerates."""

    def __init__(self, path: str | os.PathLike, fps: float, prefix: str = "frame_", scale: float = 1.0) -> None:
        super().__init__(path, fps, scale)
        self.prefix = prefix
        self.written: list[Path] = []

    def _write(self, image: Any, record: dict[str, Any] | None) -> None:
        target = self.path / f"{self.prefix}{self.count:05d}.png"
        info = None
        if record:
            from aigc_desktop.core.metadata import pnginfo

            info = pnginfo({**record, "frame": self.count, "fps": self.fps})
        atomic_write(target, lambda fh: image.save(fh, format="PNG", pnginfo=info))
        self.written.append(target)

    def close(self) -> Path:
        if not self.written:
            raise ExportError("No frames to export")
        return self.path

    def abort(self) -> None:
        for p in self.written:
            p.unlink(missing_ok=True)
        self.written = []


WRITERS = {"gif": GifWriter, "webp": WebPWriter, "mp4": Mp4Writer, "webm": WebMWriter, "png": PngSequenceWriter}


def open_writer(path: str | os.PathLike, fps: float = 30, fmt: str | None = None, **options: Any) -> FrameWriter:
    fmt = fmt or format_for(path)
    if fmt not in WRITERS:
        raise ExportError(f"Unknown export format '{fmt}' (use one of {', '.join(FORMATS)})")
    if fmt not in ("gif", "webp"):
        options.pop("loop", None)  # videos and PNG folders have no loop count
    return WRITERS[fmt](path, fps, **options)


def export_frames(frames: Iterable[Any], path: str | os.PathLike, fps: float = 30,
                  records: Sequence[dict[str, Any] | None] | None = None, pingpong_frames: bool = False,
                  progress: Callable[[int], None] | None = None, cancelled: Callable[[], bool] | None = None,
                  **options: Any) -> Path:
    """Write all frames (ping-pong: forth and back, the ends once); returns the file (or folder) written.
    `progress(n)` after each frame; `cancelled()` true drops the partial file and raises CancelRequested."""
    frames = list(frames)
    recs = list(records) if records else [None] * len(frames)
    if pingpong_frames:
        frames, recs = pingpong(frames), pingpong(recs)
    with open_writer(path, fps, **options) as writer:
        for i, (frame, record) in enumerate(zip(frames, recs)):
            if cancelled is not None and cancelled():
                raise CancelRequested()
            writer.write(frame, record)
            if progress is not None:
                progress(i + 1)
    return writer.path


class ExportEngine:
    """Runs ExportJob on the queue: frames the app already has, written with a progress bar."""

    def __init__(self, options: Any = None) -> None:
        self.options = options

    def run(self, spec: Any, emit: Any, cancelled: Callable[[], bool]) -> Any:
        from aigc_desktop.core.jobs import JobResult, Status, StepReporter

        from aigc_desktop.core.interpolate import pingpong_order

        n = len(spec.frames)
        reporter = StepReporter(spec.id, len(pingpong_order(n)) if spec.pingpong else n, emit)
        out = export_frames(spec.frames, spec.out, spec.fps, records=spec.records or None,
                            pingpong_frames=spec.pingpong, progress=lambda n: reporter.advance(),
                            cancelled=cancelled, loop=spec.loop_count, scale=spec.scale)
        emit(Status(job_id=spec.id, text=f"Exported {out}"))
        return JobResult(images=(), records=({"export": {"output": str(out), "frames": reporter.step,
                                                         "fps": spec.fps}},))


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

"""Input images of the image modes: reading, masks, blur, outpainting canvas and pre-fill (PIL + numpy).

Conventions: a mask is white where the image is to be repainted and black where it is kept. A mask with
a varying alpha channel (strokes painted on a transparent layer) uses its alpha instead of its brightness.
The init image is resized to the job's size; in "only masked" mode it keeps its size and diffusers crops
the masked region (plus padding), upscales it to the job's size and pastes the result back (A1111's
"Inpaint area: Only masked").
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter, UnidentifiedImageError

from aigc_desktop.core.errors import UserError
from aigc_desktop.core.safe_io import check_size, regular_file
from aigc_desktop.core.params import GenerationParams, outpaint_size

MAX_INPUT_SIDE = 8192
OUTPAINT_NOISE = 24.0  # std of the noise added to the pre-filled area (0-255 scale)


@dataclass(frozen=True)
class ModeInputs:
    """What one job's pipeline call gets besides prompts and seeds."""

    pipeline: str  # txt2img | img2img | inpaint (the diffusers pipeline kind)
    image: Image.Image | None = None  # RGB init image (job size, or its own size with crop_padding)
    mask: Image.Image | None = None  # L mask, blurred, same size as image
    strength: float = 1.0
    crop_padding: int | None = None  # "only masked": diffusers' padding_mask_crop
    overlay: bool = False  # paste the result over `image` through `mask`, so unmasked pixels stay exact
    note: str = ""  # what the user should know (e.g. the init image was resized to the job's size)

    @property
    def output_size(self) -> tuple[int, int] | None:
        """(width, height) of the images made, when it is not the job's size."""
        return self.image.size if self.crop_padding is not None and self.image is not None else None


MAX_INPUT_BYTES = 512 * 1024 * 1024  # an 8192 x 8192 16-bit RGBA PNG is under 512 MiB


def read_image(source: str | bytes | Path, what: str = "init image") -> Image.Image:
    """Open an image file path or PNG/JPEG bytes, fully decoded; bad input is one clear line.

    Only a regular file is opened (a FIFO would block); the size is read from the image's header and an
    oversized image is refused before it is decoded (no decompression-bomb warning leaks)."""
    label = "from memory" if isinstance(source, (bytes, bytearray)) else str(source)[:200]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)  # refused below, never printed
            if isinstance(source, (bytes, bytearray)):
                image = Image.open(io.BytesIO(source))
            else:
                path = Path(source).expanduser()
                if path.is_dir():
                    raise UserError(f"The {what} is a folder, not an image: {path}")
                if path.exists() or path.is_symlink():
                    path = regular_file(path, what)
                    check_size(path.stat().st_size, MAX_INPUT_BYTES, f"The {what} {path.name}")
                image = Image.open(path)
            if max(image.size) > MAX_INPUT_SIDE:
                raise UserError(f"The {what} is {image.width}x{image.height}; at most {MAX_INPUT_SIDE} pixels a side")
            image.load()
    except UserError:
        raise
    except FileNotFoundError:
        raise UserError(f"The {what} was not found: {label}") from None
    except PermissionError:
        raise UserError(f"The {what} cannot be read (permission denied): {label}") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UserError(f"The {what} is too large to open: {label}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError) as exc:
        kind = "not an image file" if isinstance(exc, UnidentifiedImageError) else "damaged or truncated"
        raise UserError(f"The {what} cannot be read ({kind}): {label}") from None
    return image


def source_record(source: str | bytes | Path | None) -> dict[str, str] | None:
    """File name and SHA-256 of an input image, for the image record (what regenerates it)."""
    if source is None:
        return None
    if isinstance(source, (bytes, bytearray)):
        return {"file": "", "sha256": hashlib.sha256(source).hexdigest()}
    path = regular_file(Path(source).expanduser(), "input image")
    return {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit / 32-bit grey images scaled to 8 bits (PIL's own conversion clips them)."""
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if arr.max() > 255 else 255.0
        return Image.fromarray(np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    return image


def as_rgb(image: Image.Image) -> Image.Image:
    return _eight_bit(image).convert("RGB")


def as_mask(image: Image.Image) -> Image.Image:
    """An L mask (white = repaint): the alpha channel when it varies, else the brightness."""
    image = _eight_bit(image)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        alpha = image.convert("RGBA").getchannel("A")
        if alpha.getextrema() != (255, 255):
            return alpha
    return image.convert("L")


def blur(mask: Image.Image, radius: int) -> Image.Image:
    return mask.filter(ImageFilter.GaussianBlur(radius)) if radius > 0 else mask


def outpaint_canvas(image: Image.Image, margins: tuple[int, int, int, int], seed: int) -> tuple[Image.Image, Image.Image]:
    """The image extended by (left, top, right, bottom) to a multiple of 8, and the mask of the new area.

    The new area is pre-filled so the sampler starts from plausible colours: the border pixels stretched
    outwards, blurred (far pixels fade to the border's average colour), plus seeded noise for texture.
    """
    rgb = np.asarray(image.convert("RGB"), dtype=np.float32)
    h, w = rgb.shape[:2]
    new_w, new_h, left, top, right, bottom = outpaint_size(w, h, margins)
    stretched = np.pad(rgb, ((top, bottom), (left, right), (0, 0)), mode="edge")
    radius = max(2.0, max(left, top, right, bottom) / 4.0)
    blurred = np.asarray(Image.fromarray(stretched.round().astype(np.uint8)).filter(ImageFilter.GaussianBlur(radius)),
                         dtype=np.float32)
    new_area = np.ones((new_h, new_w), dtype=bool)
    new_area[top:top + h, left:left + w] = False
    noise = np.random.default_rng(seed).normal(0.0, OUTPAINT_NOISE, size=stretched.shape).astype(np.float32)
    filled = np.where(new_area[..., None], blurred + noise, stretched)
    canvas = Image.fromarray(np.clip(filled + 0.5, 0, 255).astype(np.uint8), "RGB")
    mask = Image.fromarray(new_area.astype(np.uint8) * 255, "L")
    return canvas, mask


def mode_inputs(p: GenerationParams, inpaint_model: bool) -> ModeInputs:
    """Read and check the job's images for its mode.

    `inpaint_model`: the UNet takes 9 channels (latents, mask, masked-image latents); such a model runs
    txt2img and img2img through the inpainting pipeline with a full mask, as A1111 does."""
    size = (p.width, p.height)
    if p.mode == "txt2img":
        if not inpaint_model:
            return ModeInputs("txt2img")
        # The masked image is all zeros under a full mask, so the grey content never reaches the UNet.
        return ModeInputs("inpaint", Image.new("RGB", size, (127, 127, 127)), Image.new("L", size, 255), 1.0)
    image = as_rgb(read_image(p.init_image, "init image"))
    if p.mode == "img2img":
        note = _resize_note(image.size, size)
        image = _resized(image, size)
        if not inpaint_model:
            return ModeInputs("img2img", image, strength=float(p.strength), note=note)
        return ModeInputs("inpaint", image, Image.new("L", size, 255), float(p.strength), note=note)
    if p.mode == "outpaint":
        image, mask = outpaint_canvas(image, p.outpaint, p.seed)
    else:
        mask = as_mask(read_image(p.mask, "mask"))
        if mask.size != image.size:
            raise UserError(f"The mask is {mask.width}x{mask.height} but the init image is "
                            f"{image.width}x{image.height}; they must be the same size")
        if mask.getbbox() is None:
            raise UserError("The mask is empty (all black): paint the area to repaint in white")
    if p.inpaint_only_masked:
        return ModeInputs("inpaint", image, blur(mask, p.mask_blur), float(p.strength), crop_padding=p.inpaint_padding)
    note = _resize_note(image.size, size)
    image, mask = _resized(image, size), _resized(mask, size)
    return ModeInputs("inpaint", image, blur(mask, p.mask_blur), float(p.strength), overlay=True, note=note)


def _resize_note(have: tuple[int, int], want: tuple[int, int]) -> str:
    if have == want:
        return ""
    return f"Init image {have[0]}x{have[1]} resized to {want[0]}x{want[1]}"


def _resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    if image.size == size:
        return image
    resample = Image.Resampling.LANCZOS if image.mode == "RGB" else Image.Resampling.BILINEAR
    return image.resize(size, resample)

"""The prompt's state and the one place diffusion job specs are built from it and the document.

The frame is the generation's rectangle: its size is the image size (the size boxes and the frame are one
value), txt2img fills it, img2img / outpaint / inpaint take the visible pixels under it (and the painted
mask) unless a file was chosen in More options. Each spec carries its target (the frame rectangle), so
previews and results find their place from the spec alone. A batch count of N becomes N jobs so results
arrive in the staging strip one batch at a time.
"""

from __future__ import annotations

import io
from dataclasses import replace
from typing import Any

import numpy as np
from PIL import Image, ImageFilter
from PySide6.QtCore import QObject, Signal

from aigc_desktop.core import jobs
from aigc_desktop.core.catalog import DIFFUSION_KINDS
from aigc_desktop.core.document import Frame, events as ev
from aigc_desktop.core.document.composite import composite, is_blank, mask_crop, transparency_mask
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.params import MAX_SEED, GenerationParams
from aigc_desktop.ui.viewmodels.document import DocumentViewModel


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=1)  # fast: these bytes only travel to the engine
    return buf.getvalue()


def fill_transparent(image: Image.Image) -> Image.Image:
    """RGB pixels for an RGBA composite: transparent parts get the blurred colours of the visible ones
    around them (a plausible start for outpainting), fully transparent images a neutral grey."""
    arr = np.asarray(image, dtype=np.float32)
    alpha = arr[..., 3:4] / 255.0
    if float(alpha.max()) <= 0.0:
        return Image.new("RGB", image.size, (127, 127, 127))
    premul = arr[..., :3] * alpha
    radius = max(4.0, max(image.size) / 8.0)

    def blurred(a: np.ndarray) -> np.ndarray:
        chans = [np.asarray(Image.fromarray(np.clip(a[..., i], 0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(radius)), dtype=np.float32) for i in range(a.shape[-1])]
        return np.stack(chans, axis=-1)

    blur_rgb = blurred(premul)
    blur_a = blurred(alpha * 255.0) / 255.0
    mean = premul.reshape(-1, 3).sum(0) / max(1e-6, float(alpha.sum()))
    fill = np.where(blur_a > 1e-3, blur_rgb / np.maximum(blur_a, 1e-3), mean[None, None, :])
    out = arr[..., :3] * alpha + fill * (1.0 - alpha)
    return Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8), "RGB")


class GenerationViewModel(QObject):
    params_changed = Signal(object)  # GenerationParams: the size changed with the frame
    params_restored = Signal(object)  # GenerationParams from an opened document: the panel shows them all
    message = Signal(str, bool)

    def __init__(self, document: DocumentViewModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.params = GenerationParams(width=document.doc.frame.width, height=document.doc.frame.height)
        self.last_seed: int | None = None
        document.changed.connect(self._on_document)

    # -- state
    def set_params(self, params: GenerationParams) -> None:
        """The panel's values; a new size resizes the frame. Like the prompt text, the size boxes are not
        undo steps (a model's native size sets them too); dragging the frame on the canvas is."""
        old = self.params
        self.params = params
        f = self.document.doc.frame
        if (params.width, params.height) != (old.width, old.height) and \
                (params.width, params.height) != (f.width, f.height):
            self.document.doc.set_frame(Frame.snapped(f.x, f.y, params.width, params.height))
        self.document.doc.set_prompt_state(self.prompt_state())

    def prompt_state(self) -> dict[str, Any]:
        d = self.params.to_dict()
        for key in ("init_image", "mask"):
            if not isinstance(getattr(self.params, key), str):
                d[key] = None
        return d

    def _on_document(self, event) -> None:
        if isinstance(event, ev.DocumentReset):
            self._restore()
        elif isinstance(event, ev.FrameChanged):
            f = event.frame
            if (f.width, f.height) != (self.params.width, self.params.height):
                self.params = replace(self.params, width=f.width, height=f.height)
                self.params_changed.emit(self.params)

    def _restore(self) -> None:
        """An opened document brings its prompt state back (checked field by field like any file)."""
        from aigc_desktop.core.errors import InvalidParameter
        from aigc_desktop.core.params import params_from_record

        doc = self.document.doc
        f = doc.frame
        state = {k: v for k, v in (doc.prompt_state or {}).items() if k not in ("init_image", "mask")}
        try:
            p = params_from_record(state, base=GenerationParams(), source="the project's prompt") if state \
                else self.params
        except InvalidParameter as exc:
            self.message.emit(str(exc), True)
            p = self.params
        self.params = replace(p, width=f.width, height=f.height)
        self.params_restored.emit(self.params)

    # -- job specs
    def build_jobs(self, info, family: str | None = None, vae: str | None = None,
                   prediction: str | None = None) -> list[jobs.DiffusionJob]:
        """The jobs for Generate with model `info` (a catalog ModelInfo). Raises UserError with one line."""
        if info is None:
            raise UserError("Pick a model in the Models panel first")
        if info.kind not in DIFFUSION_KINDS:
            detail = f": {info.note}" if info.note else ""
            raise UserError(f"{info.name} is a {info.label}, not a model that generates images{detail}")
        doc = self.document.doc
        frame = doc.frame
        p = self._canvas_inputs(replace(self.params, width=frame.width, height=frame.height))
        p = p.with_seed_resolved()
        ref = jobs.ModelRef(info.path, kind=info.kind, family=family or info.family, vae=vae,
                            prediction_type=prediction)
        self.last_seed = p.seed
        target = {"frame": list(frame.rect), "layer_id": None}
        specs = []
        for k in range(p.batch_count):
            offset = k * p.batch_size
            q = replace(p, batch_count=1)
            if p.has_variation:
                q = replace(q, variation_seed=(int(p.variation_seed) + offset) % (MAX_SEED + 1))
            else:
                q = replace(q, seed=(p.seed + offset) % (MAX_SEED + 1))
            specs.append(jobs.DiffusionJob(model=ref, params=q, target={**target, "batch": k}))
        for spec in specs:
            spec.validate()
        return specs

    def _canvas_inputs(self, p: GenerationParams) -> GenerationParams:
        """Fill the init image / mask from the canvas when no file was chosen for them."""
        if p.mode == "txt2img":
            return replace(p, init_image=None, mask=None)
        doc = self.document.doc
        if p.init_image is not None and (p.mode != "inpaint" or p.mask is not None):
            return p  # files from More options (the CLI's way), untouched
        pixels = composite(doc, doc.frame.rect)
        if is_blank(pixels):
            raise UserError("The frame is empty: place or paint an image under it, choose an image file in "
                            "More options, or use Text to image")
        if p.mode == "img2img":
            return replace(p, init_image=png_bytes(fill_transparent(pixels)))
        painted = mask_crop(doc, doc.frame.rect)
        if p.mode == "inpaint":
            if is_blank(painted):
                raise UserError("Paint the area to repaint with the mask brush first (select Mask in Layers)")
            return replace(p, init_image=png_bytes(fill_transparent(pixels)), mask=png_bytes(painted))
        # Outpaint on the canvas: repaint where nothing is visible (and where the mask is painted).
        hole = transparency_mask(pixels)
        mask = Image.fromarray(np.maximum(np.asarray(hole), np.asarray(painted)), "L")
        if is_blank(mask):
            raise UserError("Nothing to outpaint: move the frame so it covers some empty canvas, "
                            "or paint a mask")
        return replace(p, mode="inpaint", strength=1.0, init_image=png_bytes(fill_transparent(pixels)),
                       mask=png_bytes(mask), outpaint=(0, 0, 0, 0))

"""One diffusers pipeline per mode, built from a loaded model's components (no reload, no copy).

txt2img, img2img and inpaint (which also runs outpainting, and txt2img / img2img on 9-channel inpainting
UNets) use diffusers' own pipeline classes, so an image equals what diffusers gives for the same inputs and
CPU generators. Every run gets its own pipeline object around a fresh scheduler: the scheduler keeps state
while it samples and must never be shared by two runs.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import diffusers
import torch

_CLASSES = {
    ("sd", "txt2img"): "StableDiffusionPipeline",
    ("sd", "img2img"): "StableDiffusionImg2ImgPipeline",
    ("sd", "inpaint"): "StableDiffusionInpaintPipeline",
    ("sdxl", "txt2img"): "StableDiffusionXLPipeline",
    ("sdxl", "img2img"): "StableDiffusionXLImg2ImgPipeline",
    ("sdxl", "inpaint"): "StableDiffusionXLInpaintPipeline",
}


def pipeline_class(family: str, kind: str):
    return getattr(diffusers, _CLASSES[("sdxl" if family == "sdxl" else "sd", kind)])


def is_inpaint_unet(pipe: Any) -> bool:
    """A UNet taking latents + mask + masked-image latents (9 channels for SD's 4-channel latents)."""
    return pipe.unet.config.in_channels == 2 * pipe.vae.config.latent_channels + 1


def build(base: Any, family: str, kind: str, scheduler: Any) -> Any:
    """A pipeline of `kind` sharing `base`'s modules, with its own scheduler."""
    cls = pipeline_class(family, kind)
    expected, optional = cls._get_signature_keys(cls)
    components = base.components
    kwargs: dict[str, Any] = {name: components.get(name) for name in expected}
    kwargs["scheduler"] = scheduler
    if "requires_safety_checker" in optional:
        kwargs["requires_safety_checker"] = False
    if "force_zeros_for_empty_prompt" in optional:
        kwargs["force_zeros_for_empty_prompt"] = bool(base.config.get("force_zeros_for_empty_prompt", True))
    if "add_watermarker" in optional:
        kwargs["add_watermarker"] = getattr(base, "watermark", None) is not None
    if "requires_aesthetics_score" in optional:
        kwargs["requires_aesthetics_score"] = bool(base.config.get("requires_aesthetics_score", False))
    pipe = cls(**kwargs)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def route_noise(pipe: Any, vary: Callable[[torch.Tensor], torch.Tensor]) -> None:
    """Make every use of the initial noise inside an img2img / inpaint pipeline go through `vary`.

    The pipelines draw the noise themselves (after VAE-encoding the init image with the same generators,
    an order that decides the image), then use it through `scheduler.add_noise` (img2img, inpainting with
    strength < 1 and the latent blend of 4-channel inpainting) or, for inpainting at strength 1, as the
    starting latents directly. Both uses are routed here, so a variation changes the noise and nothing else.
    """
    scheduler = pipe.scheduler
    add_noise = scheduler.add_noise

    @functools.wraps(add_noise)
    def varied_add_noise(original_samples, noise, timesteps):
        return add_noise(original_samples, vary(noise), timesteps)

    scheduler.add_noise = varied_add_noise
    if not isinstance(pipe, (diffusers.StableDiffusionInpaintPipeline, diffusers.StableDiffusionXLInpaintPipeline)):
        return
    prepare = pipe.prepare_latents

    @functools.wraps(prepare)
    def prepare_varied(*args, **kwargs):
        out = prepare(*args, **kwargs)
        if not kwargs.get("is_strength_max") or kwargs.get("add_noise") is False:
            return out
        # Strength 1: the latents are the noise itself; `noise` is returned for the latent blend, which
        # add_noise above varies.
        _latents, noise, *rest = out
        return (vary(noise) * pipe.scheduler.init_noise_sigma, noise, *rest)

    pipe.prepare_latents = prepare_varied


def paste_over(pipe: Any, mask: Any, original: Any, images: list[Any]) -> list[Any]:
    """Unmasked pixels from the original, masked ones from the result, through the (blurred) mask, as A1111
    does after a full-image inpaint: a VAE round trip would otherwise soften the kept area."""
    return [pipe.image_processor.apply_overlay(mask, original, image) for image in images]

"""SDXL through every pipeline kind: txt2img, img2img, inpainting (4- and 9-channel UNets) equal diffusers'
own SDXL pipelines given the same inputs and CPU generators."""

from __future__ import annotations

import diffusers
import numpy as np
import pytest
import torch
from PIL import Image

from aigc_desktop.core.jobs import DiffusionJob, ModelRef
from aigc_desktop.core.params import GenerationParams
from aigc_desktop.core.runner import EngineOptions
from aigc_desktop.engines.diffusion import images as mode_images
from aigc_desktop.engines.diffusion.engine import DiffusionEngine
from aigc_desktop.testing.tiny import tiny_family_pipeline

SEED, STEPS, CFG = 21, 2, 5.0
BASES: dict[str, object] = {}  # model folder -> the in-memory pipeline saved there (diffusers' reference)


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("sdxl")
    for name, inpaint in (("tiny-sdxl", False), ("tiny-sdxl-inpainting", True)):
        pipe = tiny_family_pipeline("sdxl", inpaint=inpaint)
        pipe.save_pretrained(str(folder / name))
        BASES[str(folder / name)] = pipe
    init = Image.radial_gradient("L").resize((64, 64)).convert("RGB")
    init.save(folder / "init.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (8, 24, 40, 56))
    mask.save(folder / "mask.png")
    return folder


@pytest.fixture(scope="module")
def engine():
    eng = DiffusionEngine(EngineOptions(device="cpu", threads=1))
    yield eng
    eng.close()


def ours(engine, path, **kwargs):
    params = GenerationParams(prompt="a red car", negative_prompt="rain", seed=SEED, steps=STEPS, cfg_scale=CFG,
                              width=64, height=64, scheduler="euler_a", **kwargs)
    spec = DiffusionJob(model=ModelRef(str(path)), params=params, device="cpu")
    spec.validate()
    return [np.asarray(im, dtype=np.int16) for im in engine.run(spec, lambda e: None, lambda: False).images]


def theirs(path, cls_name, n=1, **kwargs):
    base = BASES[str(path)]
    pipe = getattr(diffusers, cls_name)(**base.components, add_watermarker=False)
    pipe.scheduler = diffusers.EulerAncestralDiscreteScheduler.from_config(base.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(prompt=["a red car"] * n, negative_prompt=["rain"] * n, num_inference_steps=STEPS,
               guidance_scale=CFG, width=64, height=64,
               generator=[torch.Generator("cpu").manual_seed(SEED + i) for i in range(n)], **kwargs).images
    if "mask_image" in kwargs:
        out = [pipe.image_processor.apply_overlay(kwargs["mask_image"], kwargs["image"], im) for im in out]
    return [np.asarray(im, dtype=np.int16) for im in out]


def same(a, b, tolerance=0):
    return len(a) == len(b) and all(np.abs(x - y).max() <= tolerance for x, y in zip(a, b))


def test_sdxl_txt2img(engine, sdxl):
    (single,) = ours(engine, sdxl / "tiny-sdxl")
    assert same([single], theirs(sdxl / "tiny-sdxl", "StableDiffusionXLPipeline", 1)) and single.std() > 0
    # A batch: the prompts are encoded once and repeated, diffusers encodes a batch of prompts; the float
    # rounding of a batched text encoder may move a pixel by one level.
    assert same(ours(engine, sdxl / "tiny-sdxl", batch_size=2), theirs(sdxl / "tiny-sdxl", "StableDiffusionXLPipeline", 2),
                tolerance=1)


def test_sdxl_img2img(engine, sdxl):
    init = Image.open(sdxl / "init.png").convert("RGB")
    assert same(ours(engine, sdxl / "tiny-sdxl", mode="img2img", init_image=str(sdxl / "init.png"), strength=0.7),
                theirs(sdxl / "tiny-sdxl", "StableDiffusionXLImg2ImgPipeline", image=init, strength=0.7))


@pytest.mark.parametrize("model, strength", [("tiny-sdxl", 0.8), ("tiny-sdxl-inpainting", 1.0)])
def test_sdxl_inpaint(engine, sdxl, model, strength):
    init = Image.open(sdxl / "init.png").convert("RGB")
    blurred = mode_images.blur(Image.open(sdxl / "mask.png").convert("L"), 4)
    got = ours(engine, sdxl / model, mode="inpaint", init_image=str(sdxl / "init.png"), mask=str(sdxl / "mask.png"),
               strength=strength)
    assert same(got, theirs(sdxl / model, "StableDiffusionXLInpaintPipeline", image=init, mask_image=blurred,
                            strength=strength))

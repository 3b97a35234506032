"""SDXL through every pipeline kind: txt2img, img2img, inpainting (4- and 9-channel UNets) equal diffusers' own
SDXL pipelines given the same inputs and CPU generators.

diffusers' reference is loaded from the same folder as the engine's model: weights read from a file sit where
the file puts them (not 64-byte aligned), and the CPU kernels round differently for other alignments, so an
in-memory reference would be another computation (on AVX-512 that moved img2img pixels by a level). Loaded
alike, one image is the same computation on both sides and is compared exactly. A batch is not: the engine
encodes each prompt once and repeats it, diffusers encodes a batch of prompts; it is compared within
tests/image_compare.py's bound (measured: 0 to 1 level on at most a few values under default and AVX2)."""

from __future__ import annotations

import diffusers
import numpy as np
import pytest
import torch
from PIL import Image

from aigc_desktop.core.jobs import DiffusionJob, ModelRef
from aigc_desktop.core.params import GenerationParams
from aigc_desktop.engines.diffusion import images as mode_images
from aigc_desktop.testing.tiny import tiny_family_pipeline
from tests.image_compare import assert_images_close

SEED, STEPS, CFG = 21, 2, 5.0
BASES: dict[str, object] = {}  # model folder -> diffusers' pipeline loaded from it (the reference)


@pytest.fixture(scope="module")
def sdxl(tmp_path_factory):
    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("sdxl")
    for name, inpaint in (("tiny-sdxl", False), ("tiny-sdxl-inpainting", True)):
        pipe = tiny_family_pipeline("sdxl", inpaint=inpaint)
        pipe.save_pretrained(str(folder / name))
        BASES[str(folder / name)] = type(pipe).from_pretrained(str(folder / name), local_files_only=True)
    init = Image.radial_gradient("L").resize((64, 64)).convert("RGB")
    init.save(folder / "init.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (8, 24, 40, 56))
    mask.save(folder / "mask.png")
    return folder


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


def test_sdxl_txt2img(engine, sdxl):
    (single,) = ours(engine, sdxl / "tiny-sdxl")
    assert single.std() > 0
    assert np.array_equal(single, theirs(sdxl / "tiny-sdxl", "StableDiffusionXLPipeline", 1)[0])
    # A batch: the prompts are encoded once and repeated, diffusers encodes a batch of prompts.
    assert_images_close(ours(engine, sdxl / "tiny-sdxl", batch_size=2),
                        theirs(sdxl / "tiny-sdxl", "StableDiffusionXLPipeline", 2), what="SDXL txt2img batch")


def test_sdxl_img2img(engine, sdxl):
    init = Image.open(sdxl / "init.png").convert("RGB")
    (got,) = ours(engine, sdxl / "tiny-sdxl", mode="img2img", init_image=str(sdxl / "init.png"), strength=0.7)
    (expected,) = theirs(sdxl / "tiny-sdxl", "StableDiffusionXLImg2ImgPipeline", image=init, strength=0.7)
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("model, strength", [("tiny-sdxl", 0.8), ("tiny-sdxl-inpainting", 1.0)])
def test_sdxl_inpaint(engine, sdxl, model, strength):
    init = Image.open(sdxl / "init.png").convert("RGB")
    blurred = mode_images.blur(Image.open(sdxl / "mask.png").convert("L"), 4)
    got = ours(engine, sdxl / model, mode="inpaint", init_image=str(sdxl / "init.png"), mask=str(sdxl / "mask.png"),
               strength=strength)
    (expected,) = theirs(sdxl / model, "StableDiffusionXLInpaintPipeline", image=init, mask_image=blurred,
                         strength=strength)
    assert len(got) == 1 and np.array_equal(got[0], expected)

"""Every scheduler: built from the model's own config, and the engine's images equal diffusers' own pipeline."""

from __future__ import annotations

import diffusers
import numpy as np
import pytest
import torch

from aigc_desktop.core.errors import InvalidParameter
from aigc_desktop.core.jobs import DiffusionJob, ModelRef
from aigc_desktop.core.params import SCHEDULERS, GenerationParams
from aigc_desktop.engines.diffusion.schedulers import make_scheduler
from tests.image_compare import assert_images_close, assert_images_differ

# What each A1111 sampler is in diffusers, stated independently of the engine's table.
REFERENCE = {
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "dpmpp_2m": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "use_karras_sigmas": False}),
    "dpmpp_2m_karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "use_karras_sigmas": True}),
    "dpmpp_sde_karras": ("DPMSolverSDEScheduler", {"use_karras_sigmas": True}),
    "ddim": ("DDIMScheduler", {"clip_sample": False}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "lms": ("LMSDiscreteScheduler", {}),
    "heun": ("HeunDiscreteScheduler", {}),
    "lcm": ("LCMScheduler", {}),
}
STEPS, SEED, CFG = 3, 1234, 6.0
WIDTH, HEIGHT = 72, 64  # not square, so that a swapped width and height shows
SD2_CONFIG = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "num_train_timesteps": 1000,
              "steps_offset": 1, "prediction_type": "v_prediction", "timestep_spacing": "trailing",
              "set_alpha_to_one": False, "clip_sample": False}


@pytest.fixture(scope="module")
def reference(tiny_sd_path):
    torch.set_num_threads(1)
    pipe = diffusers.StableDiffusionPipeline.from_pretrained(str(tiny_sd_path), safety_checker=None,
                                                             requires_safety_checker=False, local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    pipe.model_config = dict(pipe.scheduler.config)  # the model's own config, before any swap
    return pipe


def engine_images(engine, path, **kwargs):
    params = GenerationParams(**{"prompt": "a cat", "negative_prompt": "dog", "seed": SEED, "steps": STEPS,
                                 "cfg_scale": CFG, "width": WIDTH, "height": HEIGHT, **kwargs})
    spec = DiffusionJob(model=ModelRef(str(path)), params=params, device="cpu")
    spec.validate()
    return [np.asarray(im, dtype=np.int16) for im in engine.run(spec, lambda e: None, lambda: False).images]


def diffusers_images(pipe, name, seeds):
    cls_name, extra = REFERENCE[name]
    if cls_name == "DPMSolverSDEScheduler":
        extra = {**extra, "noise_sampler_seed": list(seeds)}
    pipe.scheduler = getattr(diffusers, cls_name).from_config(pipe.model_config, **extra)
    out = pipe(prompt=["a cat"] * len(seeds), negative_prompt=["dog"] * len(seeds), num_inference_steps=STEPS,
               guidance_scale=CFG, width=WIDTH, height=HEIGHT,
               generator=[torch.Generator("cpu").manual_seed(s) for s in seeds])
    return [np.asarray(im, dtype=np.int16) for im in out.images]


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_engine_equals_diffusers_and_batch_equals_singles(engine, reference, tiny_sd_path, name):
    # One image: the engine and diffusers run the same computation (the same prompt encodings, the same
    # UNet batch of two CFG halves), so the pixels are the same.
    (alone,) = engine_images(engine, tiny_sd_path, scheduler=name, seed=SEED + 1)
    (single,) = diffusers_images(reference, name, [SEED + 1])
    assert np.array_equal(alone, single), f"{name}: differs from diffusers by {np.abs(alone - single).max()}"
    # A batch: the engine encodes the prompts once and repeats them, diffusers encodes a batch of prompts;
    # and image 1 of a batch is the image of seed + 1 made alone (CPU generators per image). Both are other
    # computations (other batch shapes): the same images within rounding.
    batch = engine_images(engine, tiny_sd_path, scheduler=name, batch_size=2)
    assert_images_close(batch, diffusers_images(reference, name, [SEED, SEED + 1]), what=f"{name} batch of 2")
    assert_images_close(batch[1], alone, what=f"{name} image 2 of a batch against its seed alone")
    assert_images_differ(batch[0], batch[1], what=f"{name} images of seeds {SEED} and {SEED + 1}")


@pytest.mark.parametrize("name", list(SCHEDULERS))
def test_model_config_is_kept(name):
    s = make_scheduler(name, SD2_CONFIG, seeds=[5])
    assert type(s).__name__ == REFERENCE[name][0]
    assert s.config.prediction_type == "v_prediction"
    assert s.config.beta_schedule == "scaled_linear"
    assert (s.config.beta_start, s.config.beta_end) == (0.00085, 0.012)
    assert s.config.timestep_spacing == "trailing"
    for key, value in REFERENCE[name][1].items():
        assert s.config[key] == value
    assert make_scheduler(name, SD2_CONFIG) is not make_scheduler(name, SD2_CONFIG)  # fresh per run


def test_sde_noise_is_seeded_per_image():
    a = make_scheduler("dpmpp_sde_karras", SD2_CONFIG, seeds=[7, 8])
    assert a.config.noise_sampler_seed == [7, 8]
    sample = torch.zeros(2, 4, 8, 8)
    draws = []
    for _ in range(2):
        s = make_scheduler("dpmpp_sde_karras", SD2_CONFIG, seeds=[7, 8])
        s.set_timesteps(4)
        noise_pred = torch.ones_like(sample)
        out = s.step(noise_pred, s.timesteps[0], sample).prev_sample
        draws.append(s.step(noise_pred, s.timesteps[1], out).prev_sample)
    assert torch.equal(draws[0], draws[1])


def test_lcm_with_a_few_steps_gives_a_sensible_image(engine, tiny_sd_path):
    (image,) = engine_images(engine, tiny_sd_path, scheduler="lcm")
    assert image.shape == (HEIGHT, WIDTH, 3) and image.std() > 0


def test_unknown_scheduler():
    with pytest.raises(InvalidParameter, match="Unknown scheduler 'fancy'"):
        make_scheduler("fancy", SD2_CONFIG)

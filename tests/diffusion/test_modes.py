"""img2img, inpainting (4- and 9-channel UNets, mask blur, only-masked), outpainting, variation seeds:
the engine's images equal diffusers' own pipelines given the same inputs and CPU generators.

Exactly where both sides run the same computation (one image: the same prompt encodings, the same UNet
batch); within tests/image_compare.py's bound for batches, where the engine encodes each prompt once and
repeats it while diffusers encodes a batch of prompts (the text encoder's kernels then block and round
differently, by CPU instruction set), and for image i of a batch against the same seed alone."""

from __future__ import annotations

import diffusers
import numpy as np
import pytest
import torch
from PIL import Image

from aigc_desktop.core.errors import UserError
from aigc_desktop.core.jobs import DiffusionJob, Failed, Finished, ModelRef, Progress
from aigc_desktop.core.params import GenerationParams
from aigc_desktop.core.runner import EngineOptions, Runner
from aigc_desktop.engines.diffusion import images as mode_images
from aigc_desktop.engines.diffusion import noise
from aigc_desktop.testing.tiny import save_tiny_sd
from tests.image_compare import assert_images_close

SEED, VSEED, STEPS, CFG = 77, 5, 4, 5.0
COMMON = dict(prompt="a house", negative_prompt="fog", steps=STEPS, cfg_scale=CFG, scheduler="euler_a")


@pytest.fixture(scope="module")
def inpaint_model_path(tmp_path_factory):
    return save_tiny_sd(tmp_path_factory.mktemp("models") / "tiny-sd-inpainting", in_channels=9)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    init = Image.effect_mandelbrot((64, 64), (-2.0, -1.5, 1.0, 1.5), 40).convert("RGB")
    init = Image.merge("RGB", (init.getchannel(0), init.getchannel(0).rotate(90), Image.linear_gradient("L").resize((64, 64))))
    init.save(folder / "init.png")
    mask = Image.new("L", (64, 64), 0)
    mask.paste(255, (20, 16, 44, 40))
    mask.save(folder / "mask.png")
    big = init.resize((96, 80))
    big.save(folder / "big.png")
    big_mask = Image.new("L", (96, 80), 0)
    big_mask.paste(255, (60, 44, 76, 60))
    big_mask.save(folder / "big_mask.png")
    return folder


def run(engine, path, **kwargs):
    params = GenerationParams(**{**COMMON, "seed": SEED, "width": 64, "height": 64, **kwargs})
    spec = DiffusionJob(model=ModelRef(str(path)), params=params, device="cpu")
    spec.validate()
    events = []
    result = engine.run(spec, events.append, lambda: False)
    return result, events


def arrays(images):
    return [np.asarray(im, dtype=np.int16) for im in images]


_bases: dict[str, diffusers.StableDiffusionPipeline] = {}


def reference(path, cls_name):
    """diffusers' own pipeline of the given class on the same folder, with Euler a from the model's config."""
    if str(path) not in _bases:
        _bases[str(path)] = diffusers.StableDiffusionPipeline.from_pretrained(
            str(path), safety_checker=None, requires_safety_checker=False, local_files_only=True)
    base = _bases[str(path)]
    pipe = getattr(diffusers, cls_name)(**base.components, requires_safety_checker=False)
    pipe.scheduler = diffusers.EulerAncestralDiscreteScheduler.from_config(base.scheduler.config)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def gens(*seeds):
    return [torch.Generator("cpu").manual_seed(s) for s in seeds]


def call(pipe, seeds, **kwargs):
    n = len(seeds)
    out = pipe(prompt=["a house"] * n, negative_prompt=["fog"] * n, num_inference_steps=STEPS, guidance_scale=CFG,
               generator=gens(*seeds), **{"width": 64, "height": 64, **kwargs})
    return list(out.images)


# ------------------------------------------------------------------------------------------ img2img


def test_img2img_equals_diffusers_and_batch_image_equals_single(engine, tiny_sd_path, files):
    result, events = run(engine, tiny_sd_path, mode="img2img", init_image=str(files / "init.png"), strength=0.6,
                         batch_size=2)
    init = Image.open(files / "init.png").convert("RGB")
    pipe = reference(tiny_sd_path, "StableDiffusionImg2ImgPipeline")
    expected = call(pipe, [SEED, SEED + 1], image=init, strength=0.6)
    assert_images_close(result.images, expected, what="img2img batch against diffusers' batch")
    single = call(pipe, [SEED + 1], image=init, strength=0.6)
    assert_images_close(result.images[1], single[0], what="img2img image 2 of a batch against its seed alone")
    steps = [e for e in events if isinstance(e, Progress)]
    assert steps[-1].step == steps[-1].total == int(STEPS * 0.6)
    assert result.records[0]["strength"] == 0.6 and result.records[0]["init_image"]["file"] == "init.png"


def test_an_init_image_of_another_size_is_resized_and_said(files):
    p = GenerationParams(mode="img2img", init_image=str(files / "init.png"), width=96, height=64)
    inputs = mode_images.mode_inputs(p, inpaint_model=False)
    assert inputs.image.size == (96, 64) and inputs.note == "Init image 64x64 resized to 96x64"
    assert mode_images.mode_inputs(GenerationParams(mode="img2img", init_image=str(files / "init.png"), width=64,
                                                    height=64), inpaint_model=False).note == ""


def test_png_bytes_give_the_same_image_as_a_path(engine, tiny_sd_path, files):
    by_path, _ = run(engine, tiny_sd_path, mode="img2img", init_image=str(files / "init.png"), strength=0.5)
    by_bytes, _ = run(engine, tiny_sd_path, mode="img2img", init_image=(files / "init.png").read_bytes(), strength=0.5)
    assert np.array_equal(arrays(by_path.images)[0], arrays(by_bytes.images)[0])


# ------------------------------------------------------------------------------------------ inpainting


@pytest.mark.parametrize("model, strength", [("plain", 1.0), ("plain", 0.7), ("inpaint", 1.0), ("inpaint", 0.7)])
def test_inpaint_equals_diffusers_and_keeps_the_unmasked_area(engine, tiny_sd_path, inpaint_model_path, files,
                                                              model, strength):
    path = tiny_sd_path if model == "plain" else inpaint_model_path
    result, _ = run(engine, path, mode="inpaint", init_image=str(files / "init.png"), mask=str(files / "mask.png"),
                    strength=strength, mask_blur=3, batch_size=2)
    init = Image.open(files / "init.png").convert("RGB")
    blurred = mode_images.blur(Image.open(files / "mask.png").convert("L"), 3)
    pipe = reference(path, "StableDiffusionInpaintPipeline")
    raw = call(pipe, [SEED, SEED + 1], image=init, mask_image=blurred, strength=strength)
    expected = [pipe.image_processor.apply_overlay(blurred, init, im) for im in raw]
    ours = arrays(result.images)
    assert_images_close(ours, arrays(expected), what=f"inpaint batch ({model}, strength {strength}) against diffusers")
    kept = np.asarray(blurred) == 0  # pasted from the init image: exact whatever the kernels
    assert np.array_equal(ours[0][kept], np.asarray(init, dtype=np.int16)[kept])
    assert not np.array_equal(ours[0][~kept], np.asarray(init, dtype=np.int16)[~kept])
    assert result.records[1]["mask"]["file"] == "mask.png" and result.records[1]["mask_blur"] == 3


def test_only_masked_inpaints_an_upscaled_crop_and_pastes_it_back(engine, tiny_sd_path, files):
    result, _ = run(engine, tiny_sd_path, mode="inpaint", init_image=str(files / "big.png"),
                    mask=str(files / "big_mask.png"), inpaint_only_masked=True, inpaint_padding=8, strength=0.9)
    (image,) = result.images
    assert image.size == (96, 80)  # the original's size; the crop ran at the job's 64x64
    big = Image.open(files / "big.png").convert("RGB")
    blurred = mode_images.blur(Image.open(files / "big_mask.png").convert("L"), 4)
    pipe = reference(tiny_sd_path, "StableDiffusionInpaintPipeline")
    (expected,) = call(pipe, [SEED], image=big, mask_image=blurred, strength=0.9, padding_mask_crop=8)
    assert np.array_equal(np.asarray(image), np.asarray(expected))
    far = np.zeros((80, 96), bool)
    far[:30, :40] = True  # well outside the masked box and its blur
    assert np.array_equal(np.asarray(image)[far], np.asarray(big)[far])


def test_inpainting_model_runs_txt2img_and_img2img(engine, inpaint_model_path, files):
    (txt,), _ = run(engine, inpaint_model_path)[0].images, None
    (img,) = run(engine, inpaint_model_path, mode="img2img", init_image=str(files / "init.png"), strength=0.5)[0].images
    assert txt.size == img.size == (64, 64)
    assert np.asarray(txt).std() > 0 and not np.array_equal(np.asarray(txt), np.asarray(img))


# ------------------------------------------------------------------------------------------ outpainting


def test_outpaint_canvas_prefill_and_mask():
    image = Image.new("RGB", (30, 20), (200, 40, 10))
    canvas, mask = mode_images.outpaint_canvas(image, (5, 0, 9, 3), seed=3)
    assert canvas.size == mask.size == (48, 24)  # 30+5+9=44 -> 48, 20+3=23 -> 24: multiples of 8
    m = np.asarray(mask)
    assert m[:20, 5:35].max() == 0 and m[:, :5].min() == 255 and m[:, 35:].min() == 255 and m[20:].min() == 255
    c = np.asarray(canvas, dtype=np.int16)
    assert np.array_equal(c[:20, 5:35], np.asarray(image, dtype=np.int16))
    new = c[m == 255]
    assert abs(new.mean(axis=0) - np.array([200, 40, 10])).max() < 12  # stretched border colour ...
    assert new.std(axis=0).min() > 5  # ... plus noise
    again, _ = mode_images.outpaint_canvas(image, (5, 0, 9, 3), seed=3)
    assert np.array_equal(np.asarray(again), np.asarray(canvas))


def test_outpaint_extends_the_image_and_keeps_it(engine, tiny_sd_path, files):
    result, _ = run(engine, tiny_sd_path, mode="outpaint", init_image=str(files / "init.png"), outpaint=(16, 0, 8, 8),
                    width=88, height=72, strength=1.0, mask_blur=2)
    (image,) = result.images
    assert image.size == (88, 72)
    init = Image.open(files / "init.png").convert("RGB")
    canvas, mask = mode_images.outpaint_canvas(init, (16, 0, 8, 8), seed=SEED)
    blurred = mode_images.blur(mask, 2)
    pipe = reference(tiny_sd_path, "StableDiffusionInpaintPipeline")
    (raw,) = call(pipe, [SEED], image=canvas, mask_image=blurred, strength=1.0, width=88, height=72)
    expected = pipe.image_processor.apply_overlay(blurred, canvas, raw)
    assert np.array_equal(np.asarray(image), np.asarray(expected))
    kept = np.asarray(blurred) == 0
    assert kept[:64, 16:80].sum() > 40 * 40
    assert np.array_equal(np.asarray(image)[kept], np.asarray(canvas)[kept])
    assert result.records[0]["outpaint"] == [16, 0, 8, 8]


# ------------------------------------------------------------------------------------------ variation seeds


def test_slerp_ends_and_middle():
    low, high = torch.randn(4, 8, 8, generator=gens(1)[0]), torch.randn(4, 8, 8, generator=gens(2)[0])
    assert torch.equal(noise.slerp(0.0, low, high), low) and torch.equal(noise.slerp(1.0, low, high), high)
    mid = noise.slerp(0.3, low, high)
    # One (channel, column) vector by hand: sin((1-t)w)/sin(w) * a + sin(tw)/sin(w) * b.
    a, b = low[2, :, 5].double(), high[2, :, 5].double()
    w = torch.acos((a / a.norm()) @ (b / b.norm()))
    by_hand = torch.sin(0.7 * w) / torch.sin(w) * a + torch.sin(0.3 * w) / torch.sin(w) * b
    assert torch.allclose(mid[2, :, 5].double(), by_hand, atol=1e-5)
    assert torch.allclose(noise.slerp(0.3, low, low), low)  # parallel: a straight line


def test_variation_strength_zero_and_one(engine, tiny_sd_path):
    plain, _ = run(engine, tiny_sd_path)
    zero, _ = run(engine, tiny_sd_path, variation_seed=VSEED, variation_strength=0.0)
    assert np.array_equal(arrays(plain.images)[0], arrays(zero.images)[0])
    assert "variation_seed" not in zero.records[0]
    one, _ = run(engine, tiny_sd_path, variation_seed=VSEED, variation_strength=1.0)
    # Strength 1: the starting noise is the variation seed's; the sampler's later noise still comes from
    # the main seed's generator, which has made its first draw.
    g = gens(SEED)[0]
    torch.randn((1, 4, 8, 8), generator=g)
    latents = torch.randn((1, 4, 8, 8), generator=gens(VSEED)[0])
    pipe = reference(tiny_sd_path, "StableDiffusionPipeline")
    out = pipe(prompt="a house", negative_prompt="fog", num_inference_steps=STEPS, guidance_scale=CFG, width=64,
               height=64, generator=[g], latents=latents).images[0]
    assert np.array_equal(arrays(one.images)[0], np.asarray(out, dtype=np.int16))


def test_variation_batch_keeps_the_seed_and_steps_the_variation_seed(engine, tiny_sd_path):
    result, _ = run(engine, tiny_sd_path, variation_seed=VSEED, variation_strength=0.3, batch_size=2, batch_count=2)
    assert [r["seed"] for r in result.records] == [SEED] * 4
    assert [r["variation_seed"] for r in result.records] == [VSEED, VSEED + 1, VSEED + 2, VSEED + 3]
    assert all(r["variation_strength"] == 0.3 for r in result.records)
    ims = arrays(result.images)
    plain = arrays(run(engine, tiny_sd_path)[0].images)[0]
    assert not np.array_equal(ims[0], ims[1])
    assert np.abs(ims[0] - plain).mean() < np.abs(arrays(run(engine, tiny_sd_path, seed=SEED + 9)[0].images)[0] - plain).mean()


def test_variation_in_inpainting_at_strength_one(engine, inpaint_model_path, files):
    kwargs = dict(mode="inpaint", init_image=str(files / "init.png"), mask=str(files / "mask.png"), strength=1.0)
    one, _ = run(engine, inpaint_model_path, variation_seed=VSEED, variation_strength=1.0, **kwargs)
    # 9-channel UNet at strength 1: noise first, then the masked image's encoding; latents replace the draw.
    g = gens(SEED)[0]
    torch.randn((1, 4, 8, 8), generator=g)
    latents = torch.randn((1, 4, 8, 8), generator=gens(VSEED)[0])
    init = Image.open(files / "init.png").convert("RGB")
    blurred = mode_images.blur(Image.open(files / "mask.png").convert("L"), 4)
    pipe = reference(inpaint_model_path, "StableDiffusionInpaintPipeline")
    raw = pipe(prompt="a house", negative_prompt="fog", num_inference_steps=STEPS, guidance_scale=CFG, width=64,
               height=64, generator=[g], latents=latents, image=init, mask_image=blurred, strength=1.0).images[0]
    expected = pipe.image_processor.apply_overlay(blurred, init, raw)
    assert np.array_equal(arrays(one.images)[0], np.asarray(expected, dtype=np.int16))


def test_variation_in_img2img_changes_only_the_noise(engine, tiny_sd_path, files):
    kwargs = dict(mode="img2img", init_image=str(files / "init.png"), strength=0.75)
    plain = arrays(run(engine, tiny_sd_path, **kwargs)[0].images)[0]
    zero = arrays(run(engine, tiny_sd_path, variation_seed=VSEED, variation_strength=0.0, **kwargs)[0].images)[0]
    a = arrays(run(engine, tiny_sd_path, variation_seed=VSEED, variation_strength=0.5, **kwargs)[0].images)[0]
    b = arrays(run(engine, tiny_sd_path, variation_seed=VSEED, variation_strength=0.5, **kwargs)[0].images)[0]
    assert np.array_equal(plain, zero) and np.array_equal(a, b) and not np.array_equal(a, plain)


# ------------------------------------------------------------------------------------------ bad inputs


def _bad_inputs(files, tmp):
    (tmp / "notes.txt").write_text("not an image")
    data = (files / "init.png").read_bytes()
    (tmp / "cut.png").write_bytes(data[: len(data) // 2])
    Image.new("L", (32, 32), 255).save(tmp / "small_mask.png")
    Image.new("L", (64, 64), 0).save(tmp / "black.png")
    init = str(files / "init.png")
    return [
        (dict(mode="img2img", init_image=str(tmp / "missing.png")), "init image was not found"),
        (dict(mode="img2img", init_image=str(tmp / "notes.txt")), "not an image file"),
        (dict(mode="img2img", init_image=str(tmp / "cut.png")), "damaged or truncated"),
        (dict(mode="img2img", init_image=b"\x89PNG garbage"), "init image cannot be read"),
        (dict(mode="inpaint", init_image=init, mask=str(tmp / "small_mask.png")), "mask is 32x32 but the init image is 64x64"),
        (dict(mode="inpaint", init_image=init, mask=str(tmp / "black.png")), "mask is empty"),
        (dict(mode="txt2img", init_image=init), "init image was given for txt2img"),
        (dict(mode="img2img", init_image=init, mask=str(files / "mask.png")), "mask was given for mode img2img"),
        (dict(mode="img2img", init_image=init, strength=0.1), "leaves no denoising step"),
    ]


def test_bad_inputs_fail_with_one_line_and_the_queue_goes_on(tiny_sd_path, files, tmp_path):
    runner = Runner(EngineOptions(device="cpu", threads=1))
    try:
        for kwargs, fragment in _bad_inputs(files, tmp_path):
            params = GenerationParams(**{**COMMON, "seed": 1, "width": 64, "height": 64, "steps": 2, **kwargs})
            end = runner.run(DiffusionJob(model=ModelRef(str(tiny_sd_path)), params=params, device="cpu"),
                             lambda e: None, lambda: False)
            assert isinstance(end, Failed), kwargs
            assert fragment in end.message and "\n" not in end.message, end.message
        ok = runner.run(DiffusionJob(model=ModelRef(str(tiny_sd_path)), device="cpu",
                                     params=GenerationParams(prompt="x", seed=1, steps=2, width=64, height=64)),
                        lambda e: None, lambda: False)
        assert isinstance(ok, Finished)
    finally:
        runner.close()


def test_mask_from_alpha_and_sixteen_bit_images(tmp_path):
    strokes = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    strokes.paste((0, 0, 0, 255), (4, 4, 8, 8))  # black strokes on a transparent layer
    assert mode_images.as_mask(strokes).getbbox() == (4, 4, 8, 8)
    deep = Image.fromarray(np.full((4, 4), 65535, np.uint16))
    assert np.asarray(mode_images.as_rgb(deep)).min() == 255
    with pytest.raises(UserError, match="folder"):
        mode_images.read_image(tmp_path, "init image")


# ------------------------------------------------------------------------------------------ parameters


def test_mode_parameters_seeds_and_canvas():
    from aigc_desktop.core.params import outpaint_size

    assert outpaint_size(64, 64, (0, 0, 0, 0)) == (64, 64, 0, 0, 0, 0)
    assert outpaint_size(70, 66, (8, 0, 8, 0)) == (88, 72, 8, 0, 10, 6)  # extra to right / bottom
    assert outpaint_size(70, 64, (5, 0, 0, 0)) == (80, 64, 10, 0, 0, 0)  # only the left grows: it takes the extra
    p = GenerationParams(seed=10, batch_size=2, batch_count=2, variation_seed=7, variation_strength=0.4)
    assert p.image_seeds() == [10] * 4 and p.variation_seeds() == [7, 8, 9, 10]
    off = GenerationParams(seed=10, batch_size=2, variation_seed=7, variation_strength=0.0)
    assert off.image_seeds() == [10, 11] and off.variation_seeds() is None
    assert GenerationParams(mode="img2img", steps=10, strength=0.35).denoising_steps == 3


@pytest.mark.parametrize("kwargs, fragment", [
    (dict(mode="img2img", init_image="a.png", mask="m.png"), "mask was given for mode img2img"),
    (dict(mode="img2img", init_image="a.png", outpaint=(8, 0, 0, 0)), "margins were given for mode img2img"),
    (dict(mode="outpaint", init_image="a.png", outpaint=(8, -1, 0, 0)), "four whole numbers"),
    (dict(mode="outpaint", init_image="a.png"), "at least one margin"),
    (dict(variation_strength=0.5), "needs a variation seed"),
    (dict(variation_seed=3, variation_strength=1.5), "Variation strength must be between 0 and 1"),
    (dict(mode="inpaint", init_image="a.png", mask="m.png", mask_blur=-1), "Mask blur"),
    (dict(mode="inpaint", init_image="a.png", mask="m.png", inpaint_padding=5000), "Inpaint padding"),
    (dict(scheduler="lcm", steps=60), "LCM samples at most 50 steps"),
])
def test_mode_parameter_errors_are_one_line(kwargs, fragment):
    from aigc_desktop.core.errors import InvalidParameter
    from aigc_desktop.core.params import validate

    with pytest.raises(InvalidParameter) as err:
        validate(GenerationParams(**kwargs))
    assert fragment in str(err.value) and "\n" not in str(err.value)

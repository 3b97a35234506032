"""The three travels through the runner: endpoints equal the keyframes' own images, frames arrive one by one
with previews and progress, cancel stops, exports read back."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from aigc_desktop.core import interpolate as ip
from aigc_desktop.core import jobs
from aigc_desktop.core.params import GenerationParams


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def run(runner, spec, cancel_after: int | None = None):
    events = []

    def cancelled():
        return cancel_after is not None and sum(isinstance(e, jobs.TravelFrame) for e in events) >= cancel_after

    end = runner.run(spec, events.append, cancelled)
    return end, events


def frames_of(events) -> dict[int, jobs.TravelFrame]:
    return {e.index: e for e in events if isinstance(e, jobs.TravelFrame)}


def timeline(keys, frames=4, **kw) -> dict:
    return ip.Timeline.uniform(keys, frames=frames, **kw).to_state()


# ------------------------------------------------------------------------------------------ VAE morph


def test_vae_morph_endpoints_are_the_keyframes_reconstructions(runner, morph_vae_path, key_images):
    from aigc_desktop.engines.vae_morph import load_morph_vae

    keys = [ip.Keyframe(label=str(i)) for i in range(3)]
    spec = jobs.TravelJob(travel="vae", model=jobs.ModelRef(str(morph_vae_path), kind="vae_morph"),
                          timeline=timeline(keys), images=tuple(key_images), device="cpu")
    end, events = run(runner, spec)
    assert isinstance(end, jobs.Finished), getattr(end, "message", "")
    got = frames_of(events)
    assert sorted(got) == list(range(9)) and all(e.image.size == (16, 16) for e in got.values())
    assert sum(isinstance(e, jobs.Preview) for e in events) == 9
    assert [e.step for e in events if isinstance(e, jobs.Progress)] == list(range(1, 10))
    # The reconstruction computed here on its own: center-crop 24x20 -> 20x20, resize to 16, mean, decode.
    vae = load_morph_vae(morph_vae_path)
    for index, image in ((0, key_images[0]), (4, key_images[1]), (8, key_images[2])):
        square = image.crop((2, 0, 22, 20)).resize((16, 16), Image.Resampling.LANCZOS)
        x = torch.from_numpy(np.asarray(square).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
        with torch.no_grad():
            y = vae.decode(vae.encode(x)[0])
        expected = ((y[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
        assert np.array_equal(pixels(got[index].image), expected.astype(np.int16)), index
    assert not np.array_equal(pixels(got[2].image), pixels(got[0].image))
    assert got[2].record["travel"]["t"] == 0.5 and got[2].record["engine"] == "vae_morph"


def test_vae_morph_renders_only_the_frames_asked_in_that_order(runner, morph_vae_path, key_images):
    keys = [ip.Keyframe(label=str(i), digest=ip.image_digest(im)) for i, im in enumerate(key_images[:2])]
    state = timeline(keys, frames=8)
    order = ip.progressive_order(9)
    spec = jobs.TravelJob(travel="vae", model=jobs.ModelRef(str(morph_vae_path)), timeline=state,
                          images=tuple(key_images[:2]), frames=tuple(order[:3]), device="cpu")
    end, events = run(runner, spec)
    assert isinstance(end, jobs.Finished) and end.images == ()
    assert [e.index for e in events if isinstance(e, jobs.TravelFrame)] == [0, 4, 8]
    keys_sent = [e.key for e in events if isinstance(e, jobs.TravelFrame)]
    assert keys_sent == [ip.plan(ip.Timeline.from_state(state), spec.render_context)[i].key for i in (0, 4, 8)]


def test_vae_that_does_not_fit_fails_with_one_line(runner, morph_vae_path, key_images, stylegan_path):
    keys = [ip.Keyframe(), ip.Keyframe()]
    spec = jobs.TravelJob(travel="vae", model=jobs.ModelRef(str(morph_vae_path)), timeline=timeline(keys),
                          images=tuple(key_images[:2]), size=32, device="cpu")
    end, _ = run(runner, spec)
    assert isinstance(end, jobs.Failed) and "16x16" in end.message and "\n" not in end.message
    spec = jobs.TravelJob(travel="vae", model=jobs.ModelRef(str(stylegan_path)), timeline=timeline(keys),
                          images=tuple(key_images[:2]), device="cpu")
    end, _ = run(runner, spec)
    assert isinstance(end, jobs.Failed) and "not a VAE" in end.message


def test_sd_vae_morph_uses_the_latent_mean(runner, tiny_sd_path, key_images):
    from diffusers import AutoencoderKL

    keys = [ip.Keyframe(), ip.Keyframe()]
    spec = jobs.TravelJob(travel="vae", model=jobs.ModelRef(str(tiny_sd_path)), timeline=timeline(keys, frames=2),
                          images=tuple(key_images[:2]), size=16, device="cpu")
    end, events = run(runner, spec)
    assert isinstance(end, jobs.Finished), getattr(end, "message", "")
    got = frames_of(events)
    vae = AutoencoderKL.from_pretrained(str(tiny_sd_path), subfolder="vae").eval()
    square = key_images[1].crop((2, 0, 22, 20)).resize((16, 16), Image.Resampling.LANCZOS)
    x = torch.from_numpy(np.asarray(square).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1
    with torch.no_grad():
        y = vae.decode(vae.encode(x).latent_dist.mean).sample
    expected = ((y[0].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    assert np.array_equal(pixels(got[2].image), expected.astype(np.int16))


# ------------------------------------------------------------------------------------------ diffusion


def diffusion_params(**kw) -> GenerationParams:
    return GenerationParams(**{"steps": 3, "width": 64, "height": 64, "cfg_scale": 5.0, "scheduler": "euler_a",
                               "negative_prompt": "blurry", **kw})


def test_diffusion_travel_endpoints_equal_plain_generations(runner, tiny_sd_path):
    """Same pipeline, embeddings, noise and generator state: a keyframe's frame IS the plain image (exact),
    even with an ancestral sampler."""
    keys = [ip.Keyframe(prompt="a (red:1.3) boat", seed=3), ip.Keyframe(prompt="a green tree", seed=11)]
    spec = jobs.TravelJob(travel="diffusion", model=jobs.ModelRef(str(tiny_sd_path)),
                          timeline=timeline(keys, frames=2), params=diffusion_params(), device="cpu")
    end, events = run(runner, spec)
    assert isinstance(end, jobs.Finished), getattr(end, "message", "")
    got = frames_of(events)
    assert sorted(got) == [0, 1, 2]
    for index, k in ((0, keys[0]), (2, keys[1])):
        plain = jobs.DiffusionJob(model=jobs.ModelRef(str(tiny_sd_path)),
                                  params=diffusion_params(prompt=k.prompt, seed=k.seed), device="cpu")
        ref = runner.run(plain, lambda e: None, lambda: False)
        assert isinstance(ref, jobs.Finished)
        assert np.array_equal(pixels(got[index].image), pixels(ref.images[0])), index
        assert got[index].record["prompt"] == k.prompt and got[index].record["seed"] == k.seed
    mid = pixels(got[1].image)
    assert not np.array_equal(mid, pixels(got[0].image)) and not np.array_equal(mid, pixels(got[2].image))


def test_diffusion_travel_strength_ties_frames_and_cancel_stops(runner, tiny_sd_path):
    keys = [ip.Keyframe(prompt="a boat", seed=1), ip.Keyframe(prompt="a tree", seed=2)]
    base = dict(travel="diffusion", model=jobs.ModelRef(str(tiny_sd_path)), timeline=timeline(keys, frames=2),
                params=diffusion_params(scheduler="euler", steps=4), device="cpu")
    free = frames_of(run(runner, jobs.TravelJob(**base))[1])
    tied = frames_of(run(runner, jobs.TravelJob(**base, strength=0.5))[1])
    again = frames_of(run(runner, jobs.TravelJob(**base, strength=0.5))[1])
    for i in (0, 2):  # keyframes stay plain generations
        assert np.array_equal(pixels(free[i].image), pixels(tied[i].image))
    # the in-between frame starts from the keyframes' cross-fade instead: another picture, the same every run
    assert not np.array_equal(pixels(free[1].image), pixels(tied[1].image))
    assert np.array_equal(pixels(tied[1].image), pixels(again[1].image))
    assert tied[1].key != free[1].key  # strength is part of the frame's inputs
    end, events = run(runner, jobs.TravelJob(**base), cancel_after=1)
    assert isinstance(end, jobs.Cancelled) and len(frames_of(events)) == 1


# ------------------------------------------------------------------------------------------ StyleGAN


@pytest.mark.parametrize("mode", ["slerp", "lerp"])
def test_stylegan_travel_endpoints_equal_the_seeds_images(runner, stylegan_path, mode):
    keys = [ip.Keyframe(seed=4), ip.Keyframe(seed=9, truncation_psi=0.5)]
    spec = jobs.TravelJob(travel="stylegan", model=jobs.ModelRef(str(stylegan_path), kind="stylegan"),
                          timeline=timeline(keys, frames=3, mode=mode), stylegan=(("truncation_psi", 0.8),),
                          device="cpu")
    end, events = run(runner, spec)
    assert isinstance(end, jobs.Finished), getattr(end, "message", "")
    got = frames_of(events)
    for index, seed, psi in ((0, 4, 0.8), (3, 9, 0.5)):
        plain = runner.run(jobs.StyleGANJob(model=jobs.ModelRef(str(stylegan_path)), seeds=(seed,),
                                            truncation_psi=psi, device="cpu"), lambda e: None, lambda: False)
        assert np.array_equal(pixels(got[index].image), pixels(plain.images[0])), index
        assert got[index].record["seed"] == seed and got[index].record["truncation_psi"] == psi
    assert not np.array_equal(pixels(got[1].image), pixels(got[0].image))


def test_exported_travel_reads_back(runner, stylegan_path, tmp_path):
    import av

    keys = [ip.Keyframe(seed=s) for s in (1, 2, 3)]
    state = ip.Timeline.uniform(keys, frames=3, hold=1, fps=8, pingpong=True).to_state()
    out = tmp_path / "t.mp4"
    spec = jobs.TravelJob(travel="stylegan", model=jobs.ModelRef(str(stylegan_path)), timeline=state,
                          out=str(out), scale=2, device="cpu")
    end, events = run(runner, spec)
    assert isinstance(end, jobs.Finished), getattr(end, "message", "")
    n = len(ip.plan(ip.Timeline.from_state(state)))
    assert n == (6 + 1 + 3) + 8  # frames + holds, then back without repeating the ends
    assert len(frames_of(events)) == 7  # one render per distinct picture
    assert end.records[0]["travel"]["output"] == str(out) and end.records[0]["travel"]["frames"] == n
    with av.open(str(out)) as c:
        s = c.streams.video[0]
        assert (s.width, s.height) == (64, 64) and float(s.average_rate) == 8
        assert sum(1 for _ in c.decode(video=0)) == n


@pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute")
def test_diffusion_travel_keeps_the_jobs_loras_applied(runner, tiny_sd_path, tmp_path):
    """LoRAs change the UNet: they stay applied while the frames render, so a keyframe's frame still equals
    the plain generation with those LoRAs; keyframes with different LoRA tags are refused in one line."""
    from aigc_desktop.core.params import LoraRef
    from aigc_desktop.testing.tiny import tiny_sd_components
    from aigc_desktop.testing.tiny_lora import lora_deltas, save_kohya_lora

    comps = tiny_sd_components()
    lora = save_kohya_lora(tmp_path / "style.safetensors", lora_deltas(comps["unet"], comps["text_encoder"],
                                                                       rank=4, seed=1), alpha=2.0)
    params = diffusion_params(scheduler="euler", loras=(LoraRef(str(lora), 1.0),))
    keys = [ip.Keyframe(prompt="a cat", seed=7), ip.Keyframe(prompt="a dog", seed=8)]
    spec = jobs.TravelJob(travel="diffusion", model=jobs.ModelRef(str(tiny_sd_path)),
                          timeline=timeline(keys, frames=1), params=params, device="cpu")
    end, events = run(runner, spec)
    assert isinstance(end, jobs.Finished), getattr(end, "message", "")
    got = frames_of(events)
    for index, k in ((0, keys[0]), (1, keys[1])):
        with_lora = runner.run(jobs.DiffusionJob(model=jobs.ModelRef(str(tiny_sd_path)), device="cpu",
                                                 params=replace(params, prompt=k.prompt, seed=k.seed)),
                               lambda e: None, lambda: False)
        assert np.array_equal(pixels(got[index].image), pixels(with_lora.images[0])), index
    assert got[0].record["loras"] and got[0].record["loras"][0]["file"] == "style.safetensors"
    mixed = [ip.Keyframe(prompt="a cat <lora:style:1>", seed=1), ip.Keyframe(prompt="a dog", seed=2)]
    end, _ = run(runner, replace(spec, timeline=timeline(mixed, frames=1), params=diffusion_params()))
    assert isinstance(end, jobs.Failed) and "different LoRA tags" in end.message


def test_diffusion_travel_between_prompts_of_different_lengths(runner, tiny_sd_path):
    """A prompt over 75 tokens takes two chunks: the short keyframe is padded with an empty chunk (as A1111
    pads a prompt to its negative), and the long keyframe's frame is still exactly its plain generation."""
    long_prompt = ", ".join(["a red boat on a lake"] * 8)  # the byte-level test tokenizer: > 75 tokens
    keys = [ip.Keyframe(prompt=long_prompt, seed=3), ip.Keyframe(prompt="a tree", seed=4)]
    spec = jobs.TravelJob(travel="diffusion", model=jobs.ModelRef(str(tiny_sd_path)),
                          timeline=timeline(keys, frames=2), params=diffusion_params(steps=2), device="cpu")
    end, events = run(runner, spec)
    assert isinstance(end, jobs.Finished), getattr(end, "message", "")
    got = frames_of(events)
    plain = runner.run(jobs.DiffusionJob(model=jobs.ModelRef(str(tiny_sd_path)), device="cpu",
                                         params=diffusion_params(steps=2, prompt=long_prompt, seed=3)),
                       lambda e: None, lambda: False)
    assert np.array_equal(pixels(got[0].image), pixels(plain.images[0]))
    assert sorted(got) == [0, 1, 2]


def test_prompt_editing_in_a_keyframe_is_one_line(runner, tiny_sd_path):
    keys = [ip.Keyframe(prompt="a [boat:tree:2]", seed=1), ip.Keyframe(prompt="a cat", seed=2)]
    spec = jobs.TravelJob(travel="diffusion", model=jobs.ModelRef(str(tiny_sd_path)),
                          timeline=timeline(keys, frames=1), params=diffusion_params(), device="cpu")
    end, _ = run(runner, spec)
    assert isinstance(end, jobs.Failed) and "Keyframe 1: prompt editing" in end.message

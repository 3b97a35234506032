"""Prompt editing and alternation through the engine: the text embeddings the UNet receives change at the
steps A1111's schedules say, in every sampler, for SD and SDXL, in batches, for the negative prompt too,
with LoRA tags and embeddings inside; a scheduled run equals a run whose embeddings are switched by hand.

Every check compares tensors of one computation on both sides (the engine's own encoding of a plain text
against what the UNet received), so they are exact."""

from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from aigc_desktop.core import paths
from aigc_desktop.core.jobs import DiffusionJob, ModelRef
from aigc_desktop.core.params import SCHEDULERS, GenerationParams
from aigc_desktop.engines.diffusion import conditioning
from aigc_desktop.testing.tiny import tiny_family_pipeline, tiny_sd_components
from aigc_desktop.testing.tiny_lora import lora_deltas, save_kohya_lora

pytestmark = pytest.mark.filterwarnings("ignore:Already found a `peft_config` attribute")


def spec(path, **kwargs) -> DiffusionJob:
    params = GenerationParams(**{"prompt": "a cat", "seed": 5, "steps": 4, "width": 64, "height": 64,
                                 "cfg_scale": 6.0, **kwargs})
    job = DiffusionJob(model=ModelRef(str(path)), params=params, device="cpu")
    job.validate()
    return job


@contextmanager
def unet_inputs(unet):
    """Records, per UNet call, the text embeddings it is given (and SDXL's pooled ones)."""
    calls: list[dict[str, torch.Tensor]] = []
    original = unet.forward

    def forward(sample, timestep, encoder_hidden_states=None, *args, added_cond_kwargs=None, **kwargs):
        seen = {"hidden": encoder_hidden_states.detach().clone()}
        if added_cond_kwargs and "text_embeds" in added_cond_kwargs:
            seen["pooled"] = added_cond_kwargs["text_embeds"].detach().clone()
        calls.append(seen)
        return original(sample, timestep, encoder_hidden_states, *args, added_cond_kwargs=added_cond_kwargs, **kwargs)

    unet.forward = forward
    try:
        yield calls
    finally:
        unet.forward = original


def run(engine, job):
    model = engine.model(job)
    with unet_inputs(model.pipe.unet) as calls:
        result = engine.run(job, lambda e: None, lambda: False)
    return result, calls


def plain_embeds(engine, job, prompt: str, negative: str = "") -> dict[str, torch.Tensor]:
    """The engine's own encoding of fixed texts (the reference each step must equal)."""
    params = GenerationParams(prompt=prompt, negative_prompt=negative, steps=job.params.steps)
    with conditioning.prepared(engine.model(job), params) as cond:
        return cond.embeds


def halves(call, n=1):
    """(negative, positive) parts of a guided UNet call's text embeddings."""
    return call["hidden"][:n], call["hidden"][n:]


# ------------------------------------------------------------------------------------------ conditioning


def test_each_step_gets_its_texts():
    assert conditioning.step_pairs("a [cat:dog:0.5]", "[ugly::1]", 4) == [
        ("a cat", "ugly"), ("a cat", ""), ("a dog", ""), ("a dog", "")]
    assert conditioning.step_pairs("[cat|dog]", "x", 3) == [("cat", "x"), ("dog", "x"), ("cat", "x")]


# ------------------------------------------------------------------------------------------ samplers


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_edit_switches_after_its_step_in_every_sampler(engine, tiny_sd_path, scheduler):
    job = spec(tiny_sd_path, prompt="a [cat:dog:2]", scheduler=scheduler)
    _, calls = run(engine, job)
    cat = plain_embeds(engine, job, "a cat")["prompt_embeds"]
    dog = plain_embeds(engine, job, "a dog")["prompt_embeds"]
    order = 2 if scheduler in ("heun", "dpmpp_sde_karras") else 1
    assert len(calls) == 4 * order - (order - 1)  # Heun / DPM++ SDE: two calls a step, one for the last
    for c, call in enumerate(calls):
        step = c // order + 1
        negative, positive = halves(call)
        assert torch.equal(positive, cat if step <= 2 else dog), (c, step)
        assert torch.equal(negative, plain_embeds(engine, job, "a cat")["negative_prompt_embeds"])


def test_alternation_switches_every_step_for_each_image_of_a_batch(engine, tiny_sd_path):
    job = spec(tiny_sd_path, prompt="[cat|dog|fox] face", batch_size=2)
    _, calls = run(engine, job)
    refs = [plain_embeds(engine, job, f"{w} face")["prompt_embeds"] for w in ("cat", "dog", "fox", "cat")]
    assert len(calls) == 4
    for call, ref in zip(calls, refs):
        negative, positive = halves(call, n=2)
        assert positive.shape[0] == 2 and torch.equal(positive[0:1], ref) and torch.equal(positive[1:2], ref)


def test_negative_prompt_is_scheduled_too(engine, tiny_sd_path):
    job = spec(tiny_sd_path, prompt="a cat", negative_prompt="[ugly, blurry::0.5]")
    _, calls = run(engine, job)
    ugly = plain_embeds(engine, job, "a cat", "ugly, blurry")
    empty = plain_embeds(engine, job, "a cat", "")
    for c, call in enumerate(calls):
        negative, positive = halves(call)
        assert torch.equal(positive, ugly["prompt_embeds"])
        assert torch.equal(negative, (ugly if c < 2 else empty)["negative_prompt_embeds"])


def test_without_guidance_only_the_positive_is_passed_and_switched(engine, tiny_sd_path):
    job = spec(tiny_sd_path, prompt="[cat::1] face", cfg_scale=1.0)
    _, calls = run(engine, job)
    assert [c["hidden"].shape[0] for c in calls] == [1] * 4
    assert torch.equal(calls[0]["hidden"], plain_embeds(engine, job, "cat face")["prompt_embeds"])
    assert all(torch.equal(c["hidden"], plain_embeds(engine, job, " face")["prompt_embeds"]) for c in calls[1:])


def test_texts_of_different_lengths_switch_chunk_counts(engine, tiny_sd_path):
    long = "abcde " * 20  # 100 byte tokens: two chunks
    job = spec(tiny_sd_path, prompt=f"[cat:{long}:1]", negative_prompt="blurry")
    _, calls = run(engine, job)
    assert [c["hidden"].shape[1] for c in calls] == [77, 154, 154, 154]
    second = plain_embeds(engine, job, long, "blurry")
    negative, positive = halves(calls[1])
    assert torch.equal(positive, second["prompt_embeds"])
    assert torch.equal(negative, second["negative_prompt_embeds"])  # padded to two chunks as well


def test_img2img_schedules_over_the_steps_that_run(engine, tiny_sd_path, tmp_path):
    init = tmp_path / "init.png"
    Image.radial_gradient("L").resize((64, 64)).convert("RGB").save(init)
    # 8 steps at strength 0.5 run 4: [cat:dog:0.5] is cat for two of them, dog for the other two.
    job = spec(tiny_sd_path, prompt="[cat:dog:0.5]", mode="img2img", init_image=str(init), strength=0.5, steps=8)
    _, calls = run(engine, job)
    cat = plain_embeds(engine, job, "cat")["prompt_embeds"]
    dog = plain_embeds(engine, job, "dog")["prompt_embeds"]
    assert [torch.equal(halves(c)[1], cat) for c in calls] == [True, True, False, False]
    assert all(torch.equal(halves(c)[1], dog) for c in calls[2:])


# ------------------------------------------------------------------------------------------ images


def test_scheduled_run_equals_switching_embeddings_by_hand_and_regenerates_exactly(engine, tiny_sd_path):
    job = spec(tiny_sd_path, prompt="[cat:dog:0.5] in a field", scheduler="euler_a")
    first = engine.run(job, lambda e: None, lambda: False)
    again = engine.run(job, lambda e: None, lambda: False)
    assert np.array_equal(np.asarray(first.images[0]), np.asarray(again.images[0]))
    assert first.records[0]["prompt"] == "[cat:dog:0.5] in a field"  # the record keeps the prompt as written

    # By hand: the plain "cat" job, with the UNet handed "dog" from the third call on.
    plain = spec(tiny_sd_path, prompt="cat in a field", scheduler="euler_a")
    dog = plain_embeds(engine, plain, "dog in a field")
    swapped = torch.cat([dog["negative_prompt_embeds"], dog["prompt_embeds"]])
    unet = engine.model(plain).pipe.unet
    original, count = unet.forward, [0]

    def forward(sample, timestep, encoder_hidden_states=None, *args, **kwargs):
        count[0] += 1
        if count[0] > 2:
            encoder_hidden_states = swapped
        return original(sample, timestep, encoder_hidden_states, *args, **kwargs)

    unet.forward = forward
    try:
        by_hand = engine.run(plain, lambda e: None, lambda: False)
    finally:
        unet.forward = original
    cat_only = engine.run(plain, lambda e: None, lambda: False)
    assert np.array_equal(np.asarray(first.images[0]), np.asarray(by_hand.images[0]))
    assert not np.array_equal(np.asarray(first.images[0]), np.asarray(cat_only.images[0]))


# ------------------------------------------------------------------------------------------ LoRA, embeddings


def test_lora_tag_and_embedding_inside_a_schedule(engine, tiny_sd_path):
    comps = tiny_sd_components()
    lora_dir = paths.default_models_dir() / "Lora"
    lora_dir.mkdir(parents=True, exist_ok=True)
    save_kohya_lora(lora_dir / "inkstyle.safetensors", lora_deltas(comps["unet"], comps["text_encoder"], seed=3))
    emb_dir = paths.default_models_dir() / "embeddings"
    emb_dir.mkdir(parents=True, exist_ok=True)
    job = spec(tiny_sd_path)
    tok = engine.model(job).pipe.tokenizer
    ids = tok("cat", add_special_tokens=False).input_ids
    with torch.no_grad():
        vectors = engine.model(job).pipe.text_encoder.get_input_embeddings()(torch.tensor(ids)).clone()
    save_file({"emb_params": vectors}, str(emb_dir / "felis.safetensors"))  # an embedding meaning "cat"

    job = spec(tiny_sd_path, prompt="a [felis <lora:inkstyle:0.8>:dog:1]")
    result, calls = run(engine, job)
    assert [r["name"] for r in result.records[0]["loras"]] == ["inkstyle"]  # for the whole image
    assert [e["name"] for e in result.records[0]["embeddings"]] == ["felis"]
    # The tag is out of the text; the LoRA (on the text encoder too) is applied for every step's text.
    with_lora = GenerationParams(prompt="a cat <lora:inkstyle:0.8>", steps=4)
    with conditioning.prepared(engine.model(job), with_lora) as cond:
        cat = cond.embeds["prompt_embeds"]
    with_lora = GenerationParams(prompt="a dog <lora:inkstyle:0.8>", steps=4)
    with conditioning.prepared(engine.model(job), with_lora) as cond:
        dog = cond.embeds["prompt_embeds"]
    assert torch.allclose(halves(calls[0])[1], cat, atol=1e-6)  # embedding vectors == the token's vectors
    assert all(torch.equal(halves(c)[1], dog) for c in calls[1:])
    assert not torch.allclose(dog, plain_embeds(engine, job, "a dog")["prompt_embeds"])


def test_embedding_in_a_later_chunk(engine, tiny_sd_path):
    emb_dir = paths.default_models_dir() / "embeddings"
    emb_dir.mkdir(parents=True, exist_ok=True)
    job = spec(tiny_sd_path)
    pipe = engine.model(job).pipe
    with torch.no_grad():
        vectors = pipe.text_encoder.get_input_embeddings()(
            torch.tensor(pipe.tokenizer("dog", add_special_tokens=False).input_ids)).clone()
    save_file({"emb_params": vectors}, str(emb_dir / "canis.safetensors"))
    filler = "x" * 80
    got = plain_embeds(engine, job, f"{filler} canis")["prompt_embeds"]
    expected = plain_embeds(engine, job, f"{filler} dog")["prompt_embeds"]
    assert got.shape[1] == 154 and torch.allclose(got, expected, atol=1e-6)


# ------------------------------------------------------------------------------------------ SDXL


@pytest.fixture(scope="module")
def sdxl_path(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sdxl") / "tiny-sdxl"
    tiny_family_pipeline("sdxl").save_pretrained(str(folder))
    return folder


def test_sdxl_switches_both_encoders_and_the_pooled_embeddings(engine, sdxl_path):
    job = spec(sdxl_path, prompt="[cat|dog] face", negative_prompt="", steps=3, batch_size=2)
    _, calls = run(engine, job)
    refs = [plain_embeds(engine, job, f"{w} face") for w in ("cat", "dog", "cat")]
    assert len(calls) == 3
    for call, ref in zip(calls, refs):
        negative, positive = halves(call, n=2)
        assert torch.equal(positive, torch.cat([ref["prompt_embeds"]] * 2))
        assert torch.equal(negative, torch.zeros_like(negative))  # empty negative: zeros (force_zeros_for_empty_prompt)
        assert torch.equal(call["pooled"][2:], torch.cat([ref["pooled_prompt_embeds"]] * 2))
        assert torch.equal(call["pooled"][:2], torch.zeros_like(call["pooled"][:2]))
    assert not torch.equal(refs[0]["pooled_prompt_embeds"], refs[1]["pooled_prompt_embeds"])



def test_sd2_switches_like_sd1():
    # SD 2.x differs from SD 1.x only in its text encoder: the switch itself, on diffusers' own pipeline.
    pipe = tiny_family_pipeline("sd2")
    pipe.set_progress_bar_config(disable=True)
    model = SimpleNamespace(pipe=pipe, family="sd2", device=torch.device("cpu"))

    def embeds(prompt):
        with conditioning.prepared(model, GenerationParams(prompt=prompt, steps=3)) as cond:
            return cond.embeds["prompt_embeds"]

    with conditioning.prepared(model, GenerationParams(prompt="a [cat:dog:1]", steps=3)) as cond:
        switch = cond.step_switch(1)
        with unet_inputs(pipe.unet) as calls:
            pipe(**cond.pipeline_kwargs(1), num_inference_steps=3, guidance_scale=5.0, height=64, width=64,
                 generator=torch.Generator().manual_seed(1), output_type="latent",
                 callback_on_step_end=lambda p, i, t, kw: (switch(p, i, kw), kw)[1],
                 callback_on_step_end_tensor_inputs=switch.tensor_inputs)
    cat, dog = embeds("a cat"), embeds("a dog")
    assert [torch.equal(halves(c)[1], cat) for c in calls] == [True, False, False]
    assert all(torch.equal(halves(c)[1], dog) for c in calls[1:])

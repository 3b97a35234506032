"""Prompt encoding per family with the real CLIP vocabulary: SD 2.x pad token, SDXL's two encoders."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from aigc_desktop.core import paths
from aigc_desktop.core.params import GenerationParams
from aigc_desktop.engines.diffusion import conditioning
from aigc_desktop.testing.tiny import tiny_family_pipeline

LONG = ", ".join(f"a {c}olourful picture of thing number {i}" for i, c in enumerate("abcdefghijklmnopqrst"))


@pytest.fixture(scope="module")
def pipes():
    torch.set_num_threads(1)
    return {}


def pipe_of(pipes, family):
    if family not in pipes:
        pipes[family] = tiny_family_pipeline(family)
    return pipes[family]


def encode(pipe, family, prompt, negative="", **params):
    model = SimpleNamespace(pipe=pipe, family=family, device=torch.device("cpu"))
    with conditioning.prepared(model, GenerationParams(prompt=prompt, negative_prompt=negative, **params)) as cond:
        return cond.pipeline_kwargs(1), cond


@pytest.mark.parametrize("family", ["sd1", "sd2"])
def test_plain_prompt_matches_diffusers(pipes, family):
    pipe = pipe_of(pipes, family)
    kwargs, _ = encode(pipe, family, "a photo of a cat, best quality", "blurry")
    with torch.no_grad():
        ref, neg = pipe.encode_prompt("a photo of a cat, best quality", "cpu", 1, True, "blurry")
    assert torch.equal(kwargs["prompt_embeds"], ref) and torch.equal(kwargs["negative_prompt_embeds"], neg)


def test_sd2_pads_with_its_own_pad_token_after_eos(pipes):
    pipe = pipe_of(pipes, "sd2")
    assert pipe.tokenizer.pad_token_id == 0  # "!"
    enc = conditioning.encoders_of(pipe)[0]
    ids, _ = conditioning._token_rows([conditioning.Chunk([320, 2368], [1.0, 1.0])], enc)
    assert ids[0, :4].tolist() == [49406, 320, 2368, 49407] and set(ids[0, 4:].tolist()) == {0}


def test_sdxl_plain_prompt_matches_diffusers(pipes):
    pipe = pipe_of(pipes, "sdxl")
    kwargs, _ = encode(pipe, "sdxl", "a photo of a cat", "blurry")
    with torch.no_grad():
        ref = pipe.encode_prompt("a photo of a cat", device="cpu", num_images_per_prompt=1,
                                 do_classifier_free_guidance=True, negative_prompt="blurry")
    names = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds")
    for name, value in zip(names, ref):
        assert torch.equal(kwargs[name], value), name
    assert kwargs["prompt_embeds"].shape == (1, 77, 96) and kwargs["pooled_prompt_embeds"].shape == (1, 48)
    # As in A1111, CLIP skip is an SD 1.x setting: SDXL always takes the penultimate layers.
    skipped, _ = encode(pipe, "sdxl", "a photo of a cat", "blurry", clip_skip=2)
    assert all(torch.equal(skipped[k], kwargs[k]) for k in kwargs)


def test_sdxl_empty_negative_is_zeros_and_same_image_as_diffusers(pipes):
    pipe = pipe_of(pipes, "sdxl")
    kwargs, _ = encode(pipe, "sdxl", "a red apple")
    assert not kwargs["negative_prompt_embeds"].any() and not kwargs["negative_pooled_prompt_embeds"].any()

    def image(**call):
        return pipe(**call, num_inference_steps=2, height=64, width=64, output_type="np",
                    generator=torch.Generator().manual_seed(1)).images[0]

    assert np.array_equal(image(**kwargs), image(prompt="a red apple"))  # diffusers zeros a None negative


def test_sdxl_long_prompt_chunks_both_encoders_pooled_from_first_chunk(pipes):
    pipe = pipe_of(pipes, "sdxl")
    kwargs, cond = encode(pipe, "sdxl", LONG, "blurry")
    tokens = len(pipe.tokenizer(LONG, add_special_tokens=False).input_ids)
    assert tokens > 150 and cond.chunks == 3
    assert kwargs["prompt_embeds"].shape == (1, 3 * 77, 96)
    assert kwargs["negative_prompt_embeds"].shape == (1, 3 * 77, 96)
    # Chunk 1 ends at a comma (A1111's backtrack), so it is the text before that comma encoded alone.
    enc = conditioning.encoders_of(pipe)[1]
    first = conditioning.build_chunks(conditioning.prompt_syntax.parse_attention(LONG), enc.tokenize,
                                      75, enc.comma())[0]
    assert first.tokens[-1] == enc.comma() and len(first.tokens) <= 75
    head = pipe.tokenizer.decode(first.tokens)
    with torch.no_grad():
        ref = pipe.encode_prompt(head, device="cpu", do_classifier_free_guidance=False)
    assert torch.allclose(kwargs["prompt_embeds"][:, :77], ref[0], atol=1e-5)
    assert torch.allclose(kwargs["pooled_prompt_embeds"], ref[2], atol=1e-5)


def test_sdxl_embedding_uses_clip_l_and_clip_g_vectors(pipes):
    pipe = pipe_of(pipes, "sdxl")
    ids = pipe.tokenizer("cat", add_special_tokens=False).input_ids
    with torch.no_grad():
        l = pipe.text_encoder.get_input_embeddings()(torch.tensor(ids))
        g = pipe.text_encoder_2.get_input_embeddings()(torch.tensor(ids))
    folder = paths.default_models_dir() / "embeddings"
    folder.mkdir(parents=True)
    save_file({"clip_l": l.clone(), "clip_g": g.clone()}, str(folder / "fluffy_thing.safetensors"))
    a, cond = encode(pipe, "sdxl", "a fluffy_thing on a mat")
    b, _ = encode(pipe, "sdxl", "a cat on a mat")
    for name in ("prompt_embeds", "pooled_prompt_embeds"):
        assert torch.allclose(a[name], b[name], atol=1e-5), name
    assert [e["name"] for e in cond.record()["embeddings"]] == ["fluffy_thing"]


def test_unusual_unicode_with_the_real_vocabulary(pipes):
    pipe = pipe_of(pipes, "sd1")
    for prompt in ("猫 (🐱\u200d👤:1.2) e\u0301 \u200b \x00 \U0010ffff", "שלום مرحبا"):
        kwargs, _ = encode(pipe, "sd1", prompt)
        assert torch.isfinite(kwargs["prompt_embeds"]).all()
    # A lone surrogate (broken paste, odd metadata) cannot be tokenised: it stands for U+FFFD.
    broken, _ = encode(pipe, "sd1", "a \ud800 cat")
    replaced, _ = encode(pipe, "sd1", "a \ufffd cat")
    assert torch.equal(broken["prompt_embeds"], replaced["prompt_embeds"])

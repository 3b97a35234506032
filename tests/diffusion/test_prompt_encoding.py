"""Prompt encoding: exact diffusers parity for plain prompts, A1111 weights, chunks, BREAK, embeddings."""

from __future__ import annotations

import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from aigc_desktop.core import paths
from aigc_desktop.core.errors import ModelLoadError, UserError
from aigc_desktop.core.params import GenerationParams
from aigc_desktop.engines.diffusion import conditioning
from aigc_desktop.engines.diffusion.conditioning import build_chunks
from aigc_desktop.core.prompt_syntax import Fragment
from aigc_desktop.testing.tiny import tiny_sd_pipeline


@pytest.fixture(scope="module")
def pipe():
    torch.set_num_threads(1)
    pipe = tiny_sd_pipeline()
    # A fresh LayerNorm (weight 1, bias 0) gives hidden states of mean ~0, where A1111's mean restoration
    # divides by ~0; trained CLIP encoders have a clearly non-zero mean. Give the tiny one a trained-like bias.
    with torch.no_grad():
        pipe.text_encoder.final_layer_norm.bias.copy_(torch.linspace(-0.5, 1.0, 32))
    return pipe


def model_of(pipe):
    return SimpleNamespace(pipe=pipe, family="sd1", device=torch.device("cpu"))


def encode(pipe, prompt, negative="", **kwargs):
    params = GenerationParams(prompt=prompt, negative_prompt=negative, **kwargs)
    with conditioning.prepared(model_of(pipe), params) as cond:
        return cond.pipeline_kwargs(1), cond


def plain(pipe, prompt, negative=""):
    with torch.no_grad():
        return pipe.encode_prompt(prompt, "cpu", 1, True, negative)


def image(pipe, **call):
    out = pipe(**call, num_inference_steps=2, height=64, width=64, guidance_scale=7.0,
               generator=torch.Generator().manual_seed(3), output_type="np")
    return out.images[0]


# ------------------------------------------------------------------------------------------ plain prompts


@pytest.mark.parametrize("prompt, negative", [
    ("a photo of a cat, high quality", "blurry, low quality"),
    ("", ""),
    ("猫 🐱‍👤 e\u0301 \u200b", "שלום"),
    ("x" * 75, "y"),  # exactly one full chunk
])
def test_plain_prompt_encodes_exactly_like_diffusers(pipe, prompt, negative):
    kwargs, cond = encode(pipe, prompt, negative)
    ref, neg_ref = plain(pipe, prompt, negative)
    assert torch.equal(kwargs["prompt_embeds"], ref)
    assert torch.equal(kwargs["negative_prompt_embeds"], neg_ref)
    assert cond.chunks == 1


def test_plain_prompt_gives_the_same_image_as_the_strings(pipe):
    prompt, negative = "a red apple on a table", "blurry"
    kwargs, _ = encode(pipe, prompt, negative)
    a = image(pipe, prompt=prompt, negative_prompt=negative)
    b = image(pipe, **kwargs)
    assert np.array_equal(a, b)


def test_batch_repeats_the_embedding(pipe):
    _, cond = encode(pipe, "a cat")
    kw = cond.pipeline_kwargs(3)
    assert kw["prompt_embeds"].shape[0] == 3 and torch.equal(kw["prompt_embeds"][2], kw["prompt_embeds"][0])


# ------------------------------------------------------------------------------------------ weights


def test_weight_one_equals_plain(pipe):
    a, _ = encode(pipe, "a (photo:1.0) of a cat")
    b, _ = encode(pipe, "a photo of a cat")
    assert torch.equal(a["prompt_embeds"], b["prompt_embeds"])


def test_weight_scales_exactly_the_weighted_tokens_then_restores_the_mean(pipe):
    base, _ = encode(pipe, "a photo of a cat")
    weighted, _ = encode(pipe, "a (photo:1.5) of a cat")
    z, zw = base["prompt_embeds"][0], weighted["prompt_embeds"][0]
    # Byte-level tiny tokenizer: BOS, "a</w>", then p h o t o</w> at positions 2..6.
    scale = z.mean() / (z * _weights(77, {range(2, 7): 1.5})[:, None]).mean()
    expected = z * _weights(77, {range(2, 7): 1.5})[:, None] * scale
    assert torch.allclose(zw, expected, atol=1e-5, rtol=1e-5)
    assert torch.allclose(zw.mean(), z.mean(), atol=1e-6)
    ratio = zw / z
    assert torch.allclose(ratio[2:7], ratio[0] * 1.5, rtol=1e-4)
    assert torch.allclose(ratio[7:], ratio[0].expand_as(ratio[7:]), rtol=1e-4)


def _weights(n, ranges):
    w = torch.ones(n)
    for r, value in ranges.items():
        w[list(r)] = value
    return w


def test_bracket_forms_match_explicit_weights(pipe):
    a, _ = encode(pipe, "a ((cat)) [dog]")
    b, _ = encode(pipe, f"a (cat:{1.1 * 1.1}) (dog:{1 / 1.1})")
    assert torch.allclose(a["prompt_embeds"], b["prompt_embeds"], atol=1e-6)
    c, _ = encode(pipe, "a cat dog")
    assert not torch.allclose(a["prompt_embeds"], c["prompt_embeds"])


def test_negative_prompt_is_weighted_too(pipe):
    a, _ = encode(pipe, "a cat", "(blurry:1.4)")
    b, _ = encode(pipe, "a cat", "blurry")
    assert torch.equal(a["prompt_embeds"], b["prompt_embeds"])
    assert not torch.allclose(a["negative_prompt_embeds"], b["negative_prompt_embeds"])


def test_clip_skip_uses_an_earlier_layer_with_the_final_norm(pipe):
    kwargs, _ = encode(pipe, "a cat", clip_skip=2)
    ids = pipe.tokenizer("a cat", padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        hidden = pipe.text_encoder(ids, output_hidden_states=True).hidden_states[-2]
        expected = pipe.text_encoder.final_layer_norm(hidden)
    assert torch.equal(kwargs["prompt_embeds"], expected)
    assert not torch.equal(kwargs["prompt_embeds"], encode(pipe, "a cat")[0]["prompt_embeds"])


# ------------------------------------------------------------------------------------------ chunks


def test_long_prompt_makes_three_chunks_and_is_not_cut(pipe):
    prompt = "abcde " * 40  # 200 byte tokens
    kwargs, cond = encode(pipe, prompt, "short negative")
    assert cond.chunks == 3
    assert kwargs["prompt_embeds"].shape == (1, 3 * 77, 32)
    assert kwargs["negative_prompt_embeds"].shape == (1, 3 * 77, 32)  # padded to the same chunk count
    # The negative's extra chunks are empty-prompt chunks.
    empty = plain(pipe, "")[0]
    assert torch.equal(kwargs["negative_prompt_embeds"][:, 77:154], empty)
    assert torch.equal(kwargs["negative_prompt_embeds"][:, 154:], empty)
    # The first chunk is exactly the first 75 tokens encoded alone.
    first = plain(pipe, "abcde " * 15)[0]
    assert torch.equal(kwargs["prompt_embeds"][:, :77], first)
    truncated = image(pipe, prompt=prompt, negative_prompt="short negative")  # diffusers cuts at 77 tokens
    assert not np.array_equal(image(pipe, **kwargs), truncated)


def test_break_starts_a_new_chunk(pipe):
    kwargs, cond = encode(pipe, "a red cat BREAK a blue dog")
    assert cond.chunks == 2
    assert torch.equal(kwargs["prompt_embeds"][:, :77], plain(pipe, "a red cat")[0])
    assert torch.equal(kwargs["prompt_embeds"][:, 77:], plain(pipe, "a blue dog")[0])


def _tok(text):
    return [ord(c) for c in text if c != " "]


def test_chunking_rules():
    frags = [Fragment("x" * 80)]
    chunks = build_chunks(frags, _tok, 75)
    assert [len(c.tokens) for c in chunks] == [75, 5]
    # A comma within 20 tokens of the end moves the words after it to the next chunk.
    frags = [Fragment("x" * 60 + "," + "y" * 20)]
    chunks = build_chunks(frags, _tok, 75, comma=ord(","))
    assert [len(c.tokens) for c in chunks] == [61, 20] and chunks[1].tokens == [ord("y")] * 20
    # ...but not when the comma is further back.
    frags = [Fragment("x" * 50 + "," + "y" * 30)]
    assert [len(c.tokens) for c in build_chunks(frags, _tok, 75, comma=ord(","))] == [75, 6]
    # Weights follow their tokens; BREAK closes a chunk even when it is empty; nothing gives one empty chunk.
    chunks = build_chunks([Fragment("ab", 1.5), Fragment("", 1.0, True), Fragment("", 1.0, True),
                           Fragment("c")], _tok, 75)
    assert [c.tokens for c in chunks] == [[97, 98], [], [99]] and chunks[0].weights == [1.5, 1.5]
    assert [c.tokens for c in build_chunks([Fragment("")], _tok, 75)] == [[]]


# ------------------------------------------------------------------------------------------ embeddings


def _embeddings_dir():
    folder = paths.default_models_dir() / "embeddings"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _token_vectors(pipe, word):
    ids = pipe.tokenizer(word, add_special_tokens=False).input_ids
    with torch.no_grad():
        return pipe.text_encoder.get_input_embeddings()(torch.tensor(ids)).clone()


@pytest.mark.parametrize("layout", ["a1111_pt", "emb_params", "concept_bin", "parameter_dict"])
def test_embedding_by_file_stem_replaces_its_token_vectors(pipe, layout):
    vectors = _token_vectors(pipe, "cat")  # an embedding that means exactly "cat"
    folder = _embeddings_dir()
    if layout == "a1111_pt":
        path = folder / "mystyle.pt"
        torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": vectors}, "name": "mystyle",
                    "step": 100}, path)
    elif layout == "emb_params":
        path = folder / "mystyle.safetensors"
        save_file({"emb_params": vectors}, str(path))
    elif layout == "concept_bin":
        path = folder / "mystyle.bin"
        torch.save({"<my-style>": _token_vectors(pipe, "x")[0]}, path)  # one vector, as diffusers saves it
    else:
        path = folder / "mystyle.pt"
        torch.save({"string_to_param": torch.nn.ParameterDict({"*": torch.nn.Parameter(vectors)})}, path)
    kwargs, cond = encode(pipe, "a MyStyle photo")
    if layout == "concept_bin":
        expected = encode(pipe, "a x photo")[0]
    else:
        expected = encode(pipe, "a cat photo")[0]
    assert torch.allclose(kwargs["prompt_embeds"], expected["prompt_embeds"], atol=1e-6)
    assert not torch.allclose(kwargs["prompt_embeds"], plain(pipe, "a MyStyle photo")[0])
    (record,) = cond.record()["embeddings"]
    assert record["name"] == "mystyle" and record["file"] == path.name and len(record["sha256"]) == 64


def test_embedding_is_weighted_and_by_explicit_path(pipe, tmp_path):
    path = tmp_path / "elsewhere" / "glow.safetensors"
    path.parent.mkdir()
    save_file({"emb_params": _token_vectors(pipe, "dog")}, str(path))
    extra = (("embeddings", (str(path),)),)
    a, _ = encode(pipe, "a (glow:1.3)", extra=extra)
    b, _ = encode(pipe, "a (dog:1.3)")
    assert torch.allclose(a["prompt_embeds"], b["prompt_embeds"], atol=1e-6)
    c, _ = encode(pipe, "a glow")  # not available without the path
    assert torch.equal(c["prompt_embeds"], plain(pipe, "a glow")[0])


def test_embedding_of_another_width_is_a_clear_error(pipe):
    save_file({"emb_params": torch.randn(2, 768)}, str(_embeddings_dir() / "sd15thing.safetensors"))
    with pytest.raises(UserError, match=r"Embedding 'sd15thing' is for SD 1.x \(width 768\).*width 32"):
        encode(pipe, "a sd15thing picture")
    save_file({"clip_l": torch.randn(2, 768), "clip_g": torch.randn(2, 1280)},
              str(_embeddings_dir() / "xlthing.safetensors"))
    with pytest.raises(UserError, match="is for SDXL"):
        encode(pipe, "a picture", "xlthing")
    encode(pipe, "a picture")  # unused embeddings are never loaded or checked


def test_unsafe_embedding_pickle_is_refused_not_run(pipe, tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = _embeddings_dir() / "evil.pt"
    with open(path, "wb") as fh:
        pickle.dump({"string_to_param": {"*": Evil()}}, fh, protocol=2)
    with pytest.raises(ModelLoadError, match="Could not read embedding evil.pt"):
        encode(pipe, "an evil cat")
    assert not marker.exists()


def test_hypernetwork_and_unknown_tags_are_reported(pipe):
    with pytest.raises(UserError, match=r"Hypernetworks are not supported: remove <hypernet:x:1>"):
        encode(pipe, "a cat <hypernet:x:1>")
    with pytest.raises(UserError, match=r"Unknown extra network <foo:bar>"):
        encode(pipe, "a cat <foo:bar>")

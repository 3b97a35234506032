"""Prompt conditioning for a job: A1111 prompt text -> the embeddings the pipeline call takes.

`prepared(model, params)` is entered once per job. It takes `<lora:...>` tags out of the prompts, applies
those LoRAs and the job's own (removed again on exit), and encodes both prompts the way A1111 does:

- each weighted fragment is tokenised on its own; tokens go into chunks of 75 (BOS + 75 + EOS/pad = 77),
  a BREAK or a full chunk starts the next one (a chunk that fills up moves the words after its last comma,
  when that comma is at most 20 tokens back, to the next chunk: A1111's "comma padding backtrack");
- textual-inversion embeddings named by file stem replace their placeholder tokens' input vectors;
- every chunk is encoded separately; per-token weights multiply the hidden states and the chunk's original
  mean is restored (A1111's default "emphasis"); chunks are concatenated along the sequence, never cut;
- positive and negative get the same number of chunks (padded with empty-prompt chunks);
- CLIP skip N (SD 1.x only, as in A1111) takes the N-th layer from the end, then the final layer norm;
- SDXL: both encoders' penultimate hidden states side by side, the pooled output from the second encoder's
  first chunk, and zeros for an empty negative prompt when the model says `force_zeros_for_empty_prompt`.

A prompt with no special syntax and at most 75 tokens encodes exactly as diffusers encodes the string.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

import torch

from aigc_desktop.core import hashing, prompt_syntax
from aigc_desktop.core.errors import UserError
from aigc_desktop.core.params import GenerationParams
from aigc_desktop.core.prompt_syntax import Fragment
from aigc_desktop.engines.diffusion import embeddings as ti
from aigc_desktop.engines.diffusion import lora

COMMA_BACKTRACK = 20
LORA_KINDS = ("lora", "lyco")  # A1111 reads the old LyCORIS extension's tag as a LoRA too


# ------------------------------------------------------------------------------------------ chunks


@dataclass
class Chunk:
    """Up to 75 content tokens with their weights; `fixes` place embedding vectors at content offsets."""

    tokens: list[int] = field(default_factory=list)
    weights: list[float] = field(default_factory=list)
    fixes: list[tuple[int, ti.Embedding]] = field(default_factory=list)


class EmbeddingMatcher:
    """Finds textual-inversion names in a token sequence (token by token, longest name first, as A1111)."""

    def __init__(self, tokenize: Callable[[str], list[int]], files: dict[str, Path], text: str) -> None:
        low = text.lower()
        self._by_first: dict[int, list[tuple[list[int], str]]] = {}
        self._files = files
        self.used: dict[str, ti.Embedding] = {}
        for name in files:
            if name.lower() not in low:
                continue  # only names that can occur are tokenised
            ids = tokenize(name)
            if ids:
                self._by_first.setdefault(ids[0], []).append((ids, name))
        for entries in self._by_first.values():
            entries.sort(key=lambda e: -len(e[0]))

    def match(self, ids: list[int], pos: int) -> tuple[ti.Embedding, int] | None:
        for name_ids, name in self._by_first.get(ids[pos], ()):
            if ids[pos:pos + len(name_ids)] == name_ids:
                emb = self.used.get(name) or ti.load_cached(self._files[name], name)
                self.used[name] = emb
                return emb, len(name_ids)
        return None


def build_chunks(fragments: list[Fragment], tokenize: Callable[[str], list[int]], length: int,
                 comma: int | None = None, matcher: EmbeddingMatcher | None = None,
                 backtrack: int = COMMA_BACKTRACK) -> list[Chunk]:
    chunks: list[Chunk] = []
    cur = Chunk()
    last_comma = -1

    def close() -> None:
        nonlocal cur, last_comma
        chunks.append(cur)
        cur = Chunk()
        last_comma = -1

    for frag in fragments:
        if frag.is_break:
            close()
            continue
        ids = tokenize(frag.text)
        pos = 0
        while pos < len(ids):
            token = ids[pos]
            if token == comma:
                last_comma = len(cur.tokens)
            elif (backtrack and len(cur.tokens) == length and last_comma != -1
                  and length - last_comma <= backtrack):
                # Move the words after the last comma to the next chunk, so a phrase is not split.
                cut = last_comma + 1
                moved = Chunk(cur.tokens[cut:], cur.weights[cut:], [(o - cut, e) for o, e in cur.fixes if o >= cut])
                cur.tokens, cur.weights = cur.tokens[:cut], cur.weights[:cut]
                cur.fixes = [(o, e) for o, e in cur.fixes if o < cut]
                close()
                cur = moved
            if len(cur.tokens) == length:
                close()
            found = matcher.match(ids, pos) if matcher else None
            if found is None:
                cur.tokens.append(token)
                cur.weights.append(frag.weight)
                pos += 1
                continue
            emb, consumed = found
            if emb.count > length:
                raise UserError(f"Embedding '{emb.name}' has {emb.count} vectors; at most {length} fit in a prompt chunk")
            if len(cur.tokens) + emb.count > length:
                close()
            cur.fixes.append((len(cur.tokens), emb))
            cur.tokens += [0] * emb.count
            cur.weights += [frag.weight] * emb.count
            pos += consumed
    if cur.tokens or not chunks:
        close()
    return chunks


# ------------------------------------------------------------------------------------------ encoding


@dataclass
class Encoder:
    tokenizer: Any
    model: Any
    vectors_key: str  # which vectors of a textual-inversion embedding this encoder takes
    sdxl: bool  # SDXL layer choice (penultimate, no final norm) and pooled output from text_encoder_2

    @property
    def chunk_length(self) -> int:
        return int(self.tokenizer.model_max_length) - 2

    def tokenize(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False, truncation=False)["input_ids"])

    def comma(self) -> int | None:
        return self.tokenizer.get_vocab().get(",</w>")

    @property
    def width(self) -> int:
        return int(self.model.get_input_embeddings().embedding_dim)


def encoders_of(pipe: Any) -> list[Encoder]:
    if getattr(pipe, "text_encoder_2", None) is not None:
        return [Encoder(pipe.tokenizer, pipe.text_encoder, "clip_l", True),
                Encoder(pipe.tokenizer_2, pipe.text_encoder_2, "clip_g", True)]
    return [Encoder(pipe.tokenizer, pipe.text_encoder, ti.SINGLE, False)]


def _token_rows(chunks: list[Chunk], enc: Encoder) -> tuple[torch.Tensor, torch.Tensor]:
    tok = enc.tokenizer
    length = enc.chunk_length
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    ids, weights = [], []
    for c in chunks:
        filler = length - len(c.tokens)
        ids.append([tok.bos_token_id] + c.tokens + [tok.eos_token_id] + [pad] * filler)
        weights.append([1.0] + c.weights + [1.0] * (filler + 1))
    return torch.tensor(ids, dtype=torch.long), torch.tensor(weights, dtype=torch.float32)


@contextmanager
def _vectors_placed(enc: Encoder, chunks: list[Chunk]) -> Iterator[None]:
    """Replace the placeholder tokens' input vectors with the embeddings' (A1111's "EmbeddingsWithFixes")."""
    fixes = [(row, 1 + offset, emb.for_encoder(enc.vectors_key, enc.width))
             for row, c in enumerate(chunks) for offset, emb in c.fixes]
    if not fixes:
        yield
        return

    def place(module, inputs, output):
        output = output.clone()
        for row, start, vectors in fixes:
            output[row, start:start + vectors.shape[0]] = vectors.to(output.device, output.dtype)
        return output

    handle = enc.model.get_input_embeddings().register_forward_hook(place)
    try:
        yield
    finally:
        handle.remove()


def encode_chunks(enc: Encoder, chunks: list[Chunk], device: torch.device,
                  clip_skip: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(1, 77 * chunks, width) hidden states and, for SDXL's second encoder, the first chunk's pooled output."""
    ids, weights = _token_rows(chunks, enc)
    model = enc.model
    layers = int(model.config.num_hidden_layers)
    hidden: list[torch.Tensor] = []
    pooled = None
    with _vectors_placed(enc, chunks):
        for row in range(len(chunks)):  # one chunk at a time: exactly what encoding that text alone gives
            row_ids = ids[row:row + 1].to(device)
            if enc.sdxl:
                out = model(row_ids, output_hidden_states=True)
                z = out.hidden_states[-min(clip_skip + 1, layers + 1)]
                if row == 0 and getattr(out, "text_embeds", None) is not None:
                    pooled = out.text_embeds
            elif clip_skip <= 1:
                z = model(row_ids)[0]
            else:
                out = model(row_ids, output_hidden_states=True)
                text_model = getattr(model, "text_model", model)
                z = text_model.final_layer_norm(out.hidden_states[-min(clip_skip, layers + 1)])
            w = weights[row:row + 1]
            if not torch.all(w == 1.0):
                z = _emphasis(z, w.to(z.device))
            hidden.append(z)
    return torch.cat(hidden, dim=1).to(model.dtype), pooled


def _emphasis(z: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Multiply each token's hidden state by its weight, then restore the chunk's original mean."""
    original = z.float()
    weighted = original * weights[..., None]
    ratio = original.mean() / weighted.mean()
    if not torch.isfinite(ratio):  # all weights 0, or a degenerate encoder: keep the plain weighting
        return weighted.to(z.dtype)
    return (weighted * ratio).to(z.dtype)


# ------------------------------------------------------------------------------------------ job


@dataclass
class PromptPlan:
    """A prompt parsed and split into chunks for each text encoder."""

    chunks: list[list[Chunk]]  # per encoder

    def pad_to(self, count: int) -> None:
        for per_encoder in self.chunks:
            per_encoder.extend(Chunk() for _ in range(count - len(per_encoder)))

    @property
    def chunk_count(self) -> int:
        return max(len(c) for c in self.chunks)


@dataclass
class Conditioning:
    prompt: str
    negative_prompt: str
    embeds: dict[str, torch.Tensor] = field(default_factory=dict)
    loras: list[dict[str, Any]] = field(default_factory=list)
    embeddings: list[dict[str, Any]] = field(default_factory=list)
    chunks: int = 1

    def pipeline_kwargs(self, n: int) -> dict[str, Any]:
        """Keyword arguments for a pipeline call making `n` images."""
        return {k: v.repeat(n, *([1] * (v.dim() - 1))) for k, v in self.embeds.items()}

    def record(self) -> dict[str, Any]:
        """What the image record adds: LoRAs and embeddings with their hashes."""
        return {"loras": list(self.loras), "embeddings": list(self.embeddings)}


def _encodable(text: str) -> str:
    """Text the tokenizer accepts: a lone UTF-16 surrogate (from broken paste or metadata) becomes U+FFFD."""
    return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _search_dirs() -> list[Path]:
    from aigc_desktop.core.settings import Settings

    return Settings.load().model_search_dirs()


def _lora_uses(params: GenerationParams, networks: list[prompt_syntax.ExtraNetwork],
               dirs: list[Path]) -> list[lora.LoraUse]:
    uses = [lora.LoraUse(lora.find_lora(r.path, dirs), float(r.weight), float(r.weight), "params")
            for r in params.loras]
    for net in networks:
        if net.kind in LORA_KINDS:
            te, unet = prompt_syntax.lora_weights(net)
            uses.append(lora.LoraUse(lora.find_lora(net.name, dirs), te, unet, "prompt"))
        elif net.kind in ("hypernet", "hypernetwork"):
            raise UserError(f"Hypernetworks are not supported: remove {net.tag} from the prompt")
        else:
            raise UserError(f"Unknown extra network {net.tag}: only <lora:name:weight> is supported")
    return lora.merge_uses(uses)


def _plan(text: str, encoders: list[Encoder], files: dict[str, Path],
          used: dict[str, ti.Embedding]) -> PromptPlan:
    fragments = prompt_syntax.parse_attention(text)
    chunks = []
    for enc in encoders:
        matcher = EmbeddingMatcher(enc.tokenize, files, text) if files else None
        chunks.append(build_chunks(fragments, enc.tokenize, enc.chunk_length, enc.comma(), matcher))
        if matcher:
            used.update(matcher.used)
    plan = PromptPlan(chunks)
    plan.pad_to(plan.chunk_count)
    return plan


def _device(pipe: Any, fallback: torch.device) -> torch.device:
    encoder = getattr(pipe, "text_encoder", None) or getattr(pipe, "text_encoder_2", None)
    if isinstance(encoder, torch.nn.Module) and getattr(encoder, "_hf_hook", None) is None:
        # No offload hook: the encoder runs where its weights are. Cheap, unlike _execution_device,
        # which walks every module of the pipeline (~20 ms per job on a tiny model, more on SD).
        param = next(encoder.parameters(), None)
        if param is not None:
            return param.device
    try:
        return pipe._execution_device  # honours CPU-offload hooks
    except (AttributeError, RuntimeError):
        return fallback


def encode(pipe: Any, positive: PromptPlan, negative: PromptPlan, device: torch.device, clip_skip: int,
           zero_negative: bool) -> dict[str, torch.Tensor]:
    count = max(positive.chunk_count, negative.chunk_count)
    positive.pad_to(count)
    negative.pad_to(count)
    encoders = encoders_of(pipe)
    out: dict[str, torch.Tensor] = {}
    for key, plan in (("prompt_embeds", positive), ("negative_prompt_embeds", negative)):
        pooled_key = key.replace("prompt_embeds", "pooled_prompt_embeds")
        if key.startswith("negative") and zero_negative:
            out[key] = torch.zeros_like(out["prompt_embeds"])
            out[pooled_key] = torch.zeros_like(out["pooled_prompt_embeds"])
            continue
        hidden, pooled = [], None
        for enc, chunks in zip(encoders, plan.chunks):
            z, p = encode_chunks(enc, chunks, device, clip_skip)
            hidden.append(z)
            pooled = p if p is not None else pooled
        out[key] = torch.cat(hidden, dim=-1)
        if pooled is not None:
            out[pooled_key] = pooled
    return out


@contextmanager
def prepared(model: Any, params: GenerationParams) -> Iterator[Conditioning]:
    """Parse, apply LoRAs, encode: the job's conditioning, valid until the block exits (LoRAs removed)."""
    pipe = model.pipe
    pos_text, pos_nets = prompt_syntax.extract_networks(_encodable(params.prompt))
    neg_text, neg_nets = prompt_syntax.extract_networks(_encodable(params.negative_prompt))
    dirs = _search_dirs()
    uses = _lora_uses(params, list(pos_nets) + list(neg_nets), dirs)
    files = ti.available(dirs, dict(params.extra).get("embeddings", ()))
    # CLIP skip is an SD 1.x setting: A1111 always takes SD 2.x's and SDXL's penultimate layer.
    clip_skip = params.clip_skip if model.family not in ("sd2", "sdxl") else 1
    with lora.applied(pipe, model.family, uses) as lora_records:
        encoders = encoders_of(pipe)
        used: dict[str, ti.Embedding] = {}
        positive = _plan(pos_text, encoders, files, used)
        negative = _plan(neg_text, encoders, files, used)
        zero_negative = (len(encoders) == 2 and params.negative_prompt == ""
                         and bool(getattr(pipe.config, "force_zeros_for_empty_prompt", False)))
        with torch.no_grad():
            embeds = encode(pipe, positive, negative, _device(pipe, model.device), clip_skip, zero_negative)
        records = [{"name": e.name, "file": Path(e.path).name, "sha256": hashing.sha256_file(e.path)}
                   for e in used.values()]
        yield Conditioning(params.prompt, params.negative_prompt, embeds, lora_records, records,
                           positive.chunk_count)

"""Prompt conditioning for a job: A1111 prompt text -> the embeddings the pipeline call takes.

`prepared(model, params)` is entered once per job. It takes `<lora:...>` tags out of the prompts, applies
those LoRAs and the job's own (removed again on exit), reads prompt editing and alternation into one
(positive, negative) text per step (core.prompt_syntax), and encodes each distinct text once, the way A1111
does; the engine's step callback swaps the embeddings when the step's texts change (`StepSwitch`):

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
def _vectors_placed(enc: Encoder, chunk: Chunk) -> Iterator[None]:
    """Replace the placeholder tokens' input vectors of one chunk with the embeddings' (A1111's
    "EmbeddingsWithFixes"), while that chunk is encoded."""
    fixes = [(1 + offset, emb.for_encoder(enc.vectors_key, enc.width)) for offset, emb in chunk.fixes]
    if not fixes:
        yield
        return

    def place(module, inputs, output):
        output = output.clone()
        for start, vectors in fixes:
            output[:, start:start + vectors.shape[0]] = vectors.to(output.device, output.dtype)
        return output

    handle = enc.model.get_input_embeddings().register_forward_hook(place)
    try:
        yield
    finally:
        handle.remove()


def encode_chunks(enc: Encoder, chunks: list[Chunk], device: torch.device,
                  clip_skip: int) -> tuple[list[torch.Tensor], torch.Tensor | None]:
    """Each chunk's (1, 77, width) hidden states and, for SDXL's second encoder, the first chunk's pooled output."""
    ids, weights = _token_rows(chunks, enc)
    model = enc.model
    layers = int(model.config.num_hidden_layers)
    hidden: list[torch.Tensor] = []
    pooled = None
    for row in range(len(chunks)):  # one chunk at a time: exactly what encoding that text alone gives
        row_ids = ids[row:row + 1].to(device)
        with _vectors_placed(enc, chunks[row]):
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
    return hidden, pooled


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
class Encoded:
    """One prompt text encoded: per text encoder, the (1, 77, width) hidden states of each chunk (all
    encoders padded to the same count), and SDXL's pooled output."""

    chunks: list[list[torch.Tensor]]
    pooled: torch.Tensor | None

    @property
    def count(self) -> int:
        return max(len(c) for c in self.chunks)


class TextEncodings:
    """Each distinct prompt text encoded once (a schedule repeats texts, batches repeat prompts).

    Encoding a text always runs the same computation, so a text gives the same tensors whenever and in
    whatever order it is asked for. Open only while the job's LoRAs are applied (see `prepared`)."""

    def __init__(self, pipe: Any, files: dict[str, Path], device: torch.device, clip_skip: int) -> None:
        self.encoders = encoders_of(pipe)
        self.files = files
        self.device = device
        self.clip_skip = clip_skip
        self.used: dict[str, ti.Embedding] = {}  # textual-inversion embeddings met in any text
        self.open = True
        self._done: dict[str, Encoded] = {}
        self._empty: list[torch.Tensor] = []

    def empty_chunk(self, index: int) -> torch.Tensor:
        """Encoder `index`'s empty chunk (BOS, EOS, padding): what shorter prompts are padded with."""
        if not self._empty:
            with torch.no_grad():
                    self._empty = [encode_chunks(enc, [Chunk()], self.device, self.clip_skip)[0][0]
                               for enc in self.encoders]
        return self._empty[index]

    def get(self, text: str) -> Encoded:
        found = self._done.get(text)
        if found is None:
            if not self.open:
                raise RuntimeError("The job's conditioning is closed: its LoRAs are no longer applied")
            with torch.no_grad():
                found = self._done[text] = self._encode(text)
        return found

    def _encode(self, text: str) -> Encoded:
        fragments = prompt_syntax.parse_attention(text)
        per_encoder, pooled = [], None
        for enc in self.encoders:
            matcher = EmbeddingMatcher(enc.tokenize, self.files, text) if self.files else None
            chunks = build_chunks(fragments, enc.tokenize, enc.chunk_length, enc.comma(), matcher)
            if matcher:
                self.used.update(matcher.used)
            hidden, p = encode_chunks(enc, chunks, self.device, self.clip_skip)
            per_encoder.append(hidden)
            pooled = p if p is not None else pooled
        return Encoded(per_encoder, pooled)

    def joined(self, encoded: Encoded, count: int) -> torch.Tensor:
        """(1, 77 * count, width): the text's chunks, padded with empty chunks, encoders side by side."""
        parts = []
        for i, (enc, chunks) in enumerate(zip(self.encoders, encoded.chunks)):
            padded = chunks + [self.empty_chunk(i)] * (count - len(chunks))
            parts.append(torch.cat(padded, dim=1).to(enc.model.dtype))
        return torch.cat(parts, dim=-1)

    def pair(self, positive: str, negative: str, zero_negative: bool) -> dict[str, torch.Tensor]:
        """Pipeline embeddings for one positive and one negative text, padded to the same chunk count."""
        pos, neg = self.get(positive), self.get(negative)
        count = max(pos.count, neg.count)
        out = {"prompt_embeds": self.joined(pos, count)}
        if pos.pooled is not None:
            out["pooled_prompt_embeds"] = pos.pooled
        if zero_negative:
            out["negative_prompt_embeds"] = torch.zeros_like(out["prompt_embeds"])
            if pos.pooled is not None:
                out["negative_pooled_prompt_embeds"] = torch.zeros_like(pos.pooled)
        else:
            out["negative_prompt_embeds"] = self.joined(neg, count)
            if neg.pooled is not None:
                out["negative_pooled_prompt_embeds"] = neg.pooled
        return out


def _repeat(t: torch.Tensor, n: int) -> torch.Tensor:
    return t.repeat(n, *([1] * (t.dim() - 1)))


@dataclass
class Conditioning:
    """A job's prompts, read for prompt editing and alternation and encoded for every step.

    `steps` is the number of steps the sampler runs (with an init image and strength < 1, fewer than the
    job's steps): the schedules are computed over these. Step s (1-based) uses the texts the schedules give
    for step s: `[a:b:5]` is "a" for steps 1-5 and "b" from step 6, as A1111 documents it."""

    prompt: str
    negative_prompt: str
    steps: int
    texts: TextEncodings
    pairs: list[tuple[str, str]]  # (positive, negative) text of each step, steps 1..steps
    zero_negative: bool = False
    loras: list[dict[str, Any]] = field(default_factory=list)
    embeddings: list[dict[str, Any]] = field(default_factory=list)

    def embeds_at(self, step: int) -> dict[str, torch.Tensor]:
        positive, negative = self.pairs[min(max(step, 1), len(self.pairs)) - 1]
        return self.texts.pair(positive, negative, self.zero_negative)

    @property
    def embeds(self) -> dict[str, torch.Tensor]:
        """The first step's embeddings."""
        return self.embeds_at(1)

    @property
    def chunks(self) -> int:
        """Chunks of 75 tokens in the first step's embeddings."""
        return self.embeds["prompt_embeds"].shape[1] // (self.texts.encoders[0].chunk_length + 2)

    @property
    def is_static(self) -> bool:
        """True when every step uses the same texts (no prompt editing or alternation takes effect)."""
        return len(set(self.pairs)) == 1

    def pipeline_kwargs(self, n: int) -> dict[str, Any]:
        """Keyword arguments for a pipeline call making `n` images (the first step's embeddings)."""
        return {k: _repeat(v, n) for k, v in self.embeds.items()}

    def step_switch(self, n: int) -> StepSwitch | None:
        """What the step callback calls to change the embeddings between steps; None when they never change."""
        return None if self.is_static else StepSwitch(self, n)

    def record(self) -> dict[str, Any]:
        """What the image record adds: LoRAs and embeddings with their hashes."""
        return {"loras": list(self.loras), "embeddings": list(self.embeddings)}


class StepSwitch:
    """Swaps the pipeline's text embeddings between UNet calls, from `callback_on_step_end`.

    diffusers' SD and SDXL pipelines (txt2img, img2img, inpaint) hand the callback the tensors named in
    `tensor_inputs` and use the returned ones from the next UNet call on. Under classifier-free guidance
    their `prompt_embeds` is negative and positive concatenated along the batch ([neg] * n + [pos] * n);
    SDXL's pooled embeddings travel the same way as `add_text_embeds`. A second-order sampler (Heun,
    DPM++ SDE) makes two UNet calls per step (`scheduler.order` = 2): call c belongs to step c // order + 1,
    so both calls of a step see that step's prompt."""

    def __init__(self, cond: Conditioning, n: int) -> None:
        self.cond = cond
        self.n = n
        self.current = cond.pairs[0]
        sdxl = len(cond.texts.encoders) == 2
        self.tensor_inputs = ["latents", "prompt_embeds"] + (["add_text_embeds"] if sdxl else [])

    def step_of_call(self, pipe: Any, call: int) -> int:
        order = max(1, int(getattr(pipe.scheduler, "order", 1)))
        return min(len(self.cond.pairs), call // order + 1)

    def __call__(self, pipe: Any, i: int, kwargs: dict[str, Any]) -> None:
        """After UNet call `i`: put the embeddings of the next call's step into `kwargs`."""
        if i + 1 >= int(getattr(pipe, "num_timesteps", i + 2)):
            return  # that was the last call
        pair = self.cond.pairs[self.step_of_call(pipe, i + 1) - 1]
        if pair == self.current:
            return
        self.current = pair
        embeds = self.cond.texts.pair(*pair, self.cond.zero_negative)
        guided = bool(getattr(pipe, "do_classifier_free_guidance", True))

        def batch(positive: str, negative: str) -> torch.Tensor:
            pos = _repeat(embeds[positive], self.n)
            return torch.cat([_repeat(embeds[negative], self.n), pos]) if guided else pos

        old = kwargs["prompt_embeds"]
        kwargs["prompt_embeds"] = batch("prompt_embeds", "negative_prompt_embeds").to(old.device, old.dtype)
        if "add_text_embeds" in kwargs:
            old = kwargs["add_text_embeds"]
            kwargs["add_text_embeds"] = batch("pooled_prompt_embeds",
                                              "negative_pooled_prompt_embeds").to(old.device, old.dtype)


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


def step_pairs(positive: str, negative: str, steps: int) -> list[tuple[str, str]]:
    """The (positive, negative) prompt text of each step 1..steps, from A1111's schedules."""
    pos = prompt_syntax.parse_editing(positive)
    neg = prompt_syntax.parse_editing(negative)
    return [(pos.text_at(s, steps), neg.text_at(s, steps)) for s in range(1, steps + 1)]


@contextmanager
def prepared(model: Any, params: GenerationParams) -> Iterator[Conditioning]:
    """Parse, apply LoRAs, encode every step's texts: the job's conditioning, valid until the block exits
    (LoRAs removed).

    `<lora:...>` tags are taken out of the prompts before the schedules are read, as A1111 does, so a tag
    inside a prompt-editing bracket applies to the whole image (LoRA weights are not scheduled)."""
    pipe = model.pipe
    pos_text, pos_nets = prompt_syntax.extract_networks(_encodable(params.prompt))
    neg_text, neg_nets = prompt_syntax.extract_networks(_encodable(params.negative_prompt))
    dirs = _search_dirs()
    uses = _lora_uses(params, list(pos_nets) + list(neg_nets), dirs)
    files = ti.available(dirs, dict(params.extra).get("embeddings", ()))
    # CLIP skip is an SD 1.x setting: A1111 always takes SD 2.x's and SDXL's penultimate layer.
    clip_skip = params.clip_skip if model.family not in ("sd2", "sdxl") else 1
    steps = max(1, params.denoising_steps)
    pairs = step_pairs(pos_text, neg_text, steps)
    with lora.applied(pipe, model.family, uses) as lora_records:
        texts = TextEncodings(pipe, files, _device(pipe, model.device), clip_skip)
        zero_negative = (len(texts.encoders) == 2 and params.negative_prompt == ""
                         and bool(getattr(pipe.config, "force_zeros_for_empty_prompt", False)))
        for text in dict.fromkeys(t for pair in pairs for t in pair):
            texts.get(text)  # all now, while the LoRAs are applied
        records = [{"name": e.name, "file": Path(e.path).name, "sha256": hashing.sha256_file(e.path)}
                   for e in texts.used.values()]
        try:
            yield Conditioning(params.prompt, params.negative_prompt, steps, texts, pairs, zero_negative,
                               lora_records, records)
        finally:
            texts.open = False

"""A1111 / Forge infotext: the prompt, `Negative prompt: ...`, then one line of `Key: value` pairs.

The settings line is split by a hand-written scanner, not a regular expression: it runs in one pass
whatever the text holds (a 10 MB line of colons, quotes or spaces included), and follows A1111's rules:
a value is a JSON string (when it holds `,` `:` or a newline), a `{...}` object (Civitai's `Hashes`), or
runs to the next comma; a key starts with a letter.
"""

from __future__ import annotations

import json
import re

from aigc_desktop.core.metadata.samplers import a1111_scheduler
from aigc_desktop.core.metadata.types import ImageMetadata, LoraUse, json_dict, to_float, to_int

_LORA_TAG = re.compile(r"<(?:lora|lyco):[^<>]{1,1000}>", re.I)
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_ -/+.()")
_MAX_KEY = 100  # "Hires negative prompt" is the longest A1111 writes; longer is prose, not a key

# Keys that describe, rather than change, the image (or are read elsewhere).
_QUIET = {"Version", "Hashes", "VAE hash", "TI hashes", "Lora hashes", "Model hash", "Emphasis",
          "Schedule type", "Sampler", "Steps", "CFG scale", "Seed", "Size", "Model", "Denoising strength",
          "Variation seed", "Variation seed strength", "Clip skip", "VAE", "Mask blur", "Inpaint area",
          "Masked area padding", "Masked content", "Downcast alphas_cumprod", "Pad conds", "RNG",
          "Token merging ratio", "NGMS", "Engine", "Civitai metadata"}
_FEATURES = (("Hires", "hires fix"), ("Refiner", "refiner"), ("ADetailer", "ADetailer"),
             ("ControlNet", "ControlNet"), ("Face restoration", "face restoration"),
             ("Seed resize from", "seed resize"), ("Tiled Diffusion", "tiled diffusion"),
             ("Dynamic thresholding", "dynamic thresholding"), ("Image CFG scale", "image CFG scale"))


def _key_before(line: str, start: int, colon: int) -> str:
    """The key that ends at `colon`: the longest run of key characters before it that starts with a letter."""
    i = colon
    while i > start and colon - i < _MAX_KEY and line[i - 1] in _KEY_CHARS:
        i -= 1
    while i < colon and not (line[i].isascii() and line[i].isalpha()):
        i += 1
    return line[i:colon].strip()


_MAX_ITEMS = 1000  # A1111 writes about a hundred keys at most; a line with more items is not a settings line
_MAX_VALUE = 32 * 1024  # a quoted value (ADetailer / wildcard prompts) or {...} object is at most this long
# The rest of a JSON string after its opening quote, up to the closing one: one unambiguous pass, bounded.
_STRING_REST = re.compile(r'(?:[^"\\]|\\.){0,%d}"' % _MAX_VALUE)


def _value_end(line: str, j: int) -> int:
    """The index after a quoted value (`"..."`), a `{...}` object (Civitai's flat `Hashes`) or a `[...]` list
    (its `Civitai resources`, a list of flat objects) that opens at `j`, or -1; none is looked for past
    _MAX_VALUE characters."""
    if line[j] == '"':
        m = _STRING_REST.match(line, j + 1)
        return m.end() if m else -1
    close = line.find("}" if line[j] == "{" else "]", j, j + _MAX_VALUE)
    return close + 1 if close >= 0 else -1


def settings_pairs(line: str) -> list[tuple[str, str]]:
    """A1111's `Key: value, Key: "quoted, value", ...` line as (key, raw value) pairs, in one pass."""
    pairs: list[tuple[str, str]] = []
    i, n = 0, len(line)
    for _ in range(_MAX_ITEMS):
        if i >= n:
            break
        colon = line.find(":", i)
        if colon < 0:
            break
        comma = line.rfind(",", i, colon)  # text without a colon before a comma is not a pair
        key = _key_before(line, comma + 1 if comma >= 0 else i, colon)
        j = colon + 1
        while j < n and line[j] in " \t":
            j += 1
        end = -1
        if j < n and line[j] in '"{[':
            end = _value_end(line, j)
            if end >= 0:
                k = end
                while k < n and line[k] in " \t":
                    k += 1
                if k < n and line[k] != ",":
                    end = -1  # `"a" b,`: not a quoted value after all; runs to the comma like any other
                else:
                    value, i = line[j:end], k + 1
        if end < 0:
            stop = line.find(",", j)
            stop = n if stop < 0 else stop
            value, i = line[j:stop].strip(), stop + 1
        if key:
            pairs.append((key, value))
    return pairs


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            decoded = json.loads(value)
            return decoded if isinstance(decoded, str) else value
        except (ValueError, RecursionError):
            return value
    return value


def split_a1111(text: str) -> tuple[str, str, dict[str, str]]:
    """(prompt, negative prompt, {key: value}) of an A1111 infotext."""
    lines = text.strip().split("\n")
    settings: dict[str, str] = {}
    if lines:
        pairs = settings_pairs(lines[-1])
        if len(pairs) >= 3:  # A1111's own test for a settings line
            lines.pop()
            for key, value in pairs:
                settings.setdefault(key, _unquote(value))
    prompt_lines, negative_lines, in_negative = [], [], False
    for line in lines:
        if line.startswith("Negative prompt:"):
            in_negative = True
            line = line[len("Negative prompt:"):].lstrip()
        (negative_lines if in_negative else prompt_lines).append(line)
    return "\n".join(prompt_lines).strip(), "\n".join(negative_lines).strip(), settings


def _size(text: str) -> tuple[int, int] | None:
    w, sep, h = text.strip().partition("x")
    w, h = w.strip(), h.strip()
    if sep and w.isascii() and w.isdigit() and h.isascii() and h.isdigit() and len(w) < 7 and len(h) < 7:
        return int(w), int(h)
    return None


def _hash_list(text: str) -> dict[str, str]:
    """ "name: hash, name2: hash2" -> {name: hash} (names may hold colons; the hash is the last field)."""
    out = {}
    for item in text.split(","):
        name, sep, value = item.rpartition(":")
        if sep and name.strip():
            out[name.strip()] = value.strip()
    return out


def loras_in_prompt(prompt: str) -> list[LoraUse]:
    """`<lora:name:weight>` tags of an A1111-syntax prompt (for display; the prompt keeps them)."""
    from aigc_desktop.core.prompt_syntax import PromptSyntaxError, extract_networks, lora_weights

    # The tags are picked out first with a bounded pattern (one pass, a tag is at most 1000 characters),
    # and only they go to the full parser: its pattern would rescan a huge prompt at every "<".
    tags = " ".join(_LORA_TAG.findall(prompt or ""))
    out = []
    for net in extract_networks(tags)[1] if tags else ():
        if net.kind in ("lora", "lyco"):
            try:
                weight: float | None = lora_weights(net)[1]
            except PromptSyntaxError:
                weight = None
            out.append(LoraUse(net.name, weight))
    return out


def parse_a1111(text: str) -> ImageMetadata | None:
    prompt, negative, s = split_a1111(text)
    if not s:
        if not prompt:
            return None
        meta = ImageMetadata(source="A1111", prompt=prompt, negative_prompt=negative)
        meta.note("settings line (only the prompt was found)")
        return meta
    meta = ImageMetadata(source="A1111", prompt=prompt, negative_prompt=negative,
                         seed=to_int(s.get("Seed")), steps=to_int(s.get("Steps")),
                         cfg_scale=to_float(s.get("CFG scale")),
                         model_name=s.get("Model") or None, model_hash=s.get("Model hash") or None,
                         clip_skip=to_int(s.get("Clip skip")), vae=s.get("VAE") or None)
    if s.get("Version", "").startswith("aigc-desktop"):
        meta.source = "aigc-desktop (A1111 text)"
    elif "Civitai resources" in s or "Civitai metadata" in s:
        meta.source = "Civitai (A1111 text)"  # Civitai's generator in A1111 format, resources listed
    size = _size(s.get("Size", ""))
    if size:
        meta.width, meta.height = size
    if s.get("Sampler"):
        meta.sampler = s["Sampler"] + (f" / {s['Schedule type']}" if s.get("Schedule type") else "")
        meta.scheduler, note = a1111_scheduler(s["Sampler"], s.get("Schedule type"))
        meta.note(note or "")
    if "Variation seed" in s and to_float(s.get("Variation seed strength")):
        meta.variation_seed = to_int(s["Variation seed"])
        meta.variation_strength = to_float(s.get("Variation seed strength"))
    hires = any(k.startswith("Hires") for k in s)
    if "Denoising strength" in s and not hires:  # txt2img writes it only for the hires pass
        meta.mode = "inpaint" if ("Mask blur" in s or "Inpaint area" in s) else "img2img"
        meta.strength = to_float(s["Denoising strength"])
        meta.note("init image (not stored in the image)")
    hashes = _hash_list(s.get("Lora hashes", ""))
    extra_hashes = json_dict(s.get("Hashes", ""), "the Hashes of the A1111 text", meta.unreadable)
    if not meta.model_hash and isinstance(extra_hashes.get("model"), str):
        meta.model_hash = extra_hashes["model"]
    for lora in loras_in_prompt(prompt):
        found = hashes.get(lora.name) or extra_hashes.get(f"lora:{lora.name}")
        lora.hash = found if isinstance(found, str) else None
        meta.loras.append(lora)
    for key in ("Seed", "Steps", "CFG scale", "Size", "Clip skip"):
        if key in s and not _read_ok(meta, key):
            meta.cannot_read(f"{key} '{s[key][:40]}' is not a number")
    _note_extras(meta, s)
    return meta


def _read_ok(meta: ImageMetadata, key: str) -> bool:
    return {"Seed": meta.seed, "Steps": meta.steps, "CFG scale": meta.cfg_scale, "Size": meta.width,
            "Clip skip": meta.clip_skip}[key] is not None


def _note_extras(meta: ImageMetadata, s: dict[str, str]) -> None:
    features = set()
    for key, value in s.items():
        if key in _QUIET:
            continue
        feature = next((label for prefix, label in _FEATURES if key.startswith(prefix)), None)
        if feature:
            if feature == "hires fix" and "Hires upscale" in s:
                feature = f"hires fix (x{s['Hires upscale']})"
            features.add(feature)
        elif key == "ENSD" and value.strip() not in ("0", ""):
            meta.note(f"ENSD {value} (A1111 noise seed delta)")
        else:
            meta.extra[key] = value
    for feature in sorted(features):
        meta.note(feature)
    if s.get("RNG") and s["RNG"] != "CPU":
        meta.note(f"{s['RNG']} RNG (A1111 noise differs from ours; the same seed gives another image)")


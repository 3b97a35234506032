"""A1111 prompt syntax, parsed in plain Python (no torch): attention weights, BREAK and extra networks.

Behaviour follows AUTOMATIC1111's web UI, so a prompt copied from there means the same here:

    (word)          weight x1.1          ((word))   x1.21          [word]   /1.1
    (word:1.3)      weight x1.3 (nested brackets multiply)
    \\( \\) \\[ \\] \\\\  literal bracket / backslash; a backslash before anything else is dropped
    BREAK           (upper case, a word of its own) ends the current 75-token chunk
    <lora:name:0.8> extra network: taken out of the text; <lora:name> = 1.0, <lora:name:te:unet> and
                    <lora:name:te=0.5:unet=1> set the text-encoder and U-Net weights separately

Unbalanced brackets are lenient, as in A1111: a closing bracket with nothing open is literal text, and a
bracket left open weights everything after it. `(word:abc)` has no valid weight, so `:abc` is literal text
and `)` closes the round bracket (x1.1).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from aigc_desktop.core.errors import InvalidParameter

ROUND = 1.1
SQUARE = 1 / 1.1
_EXTRA_NETWORK = re.compile(r"<(\w+):([^>]+)>")
_BREAK = re.compile(r"\s*\bBREAK\b\s*")
# ':' + number + ')' ends a round bracket with an explicit weight.
_WEIGHT = re.compile(r":\s*([+-]?[.\d]+)\s*\)")
_TEXT = re.compile(r"[^\\()\[\]:]+")


@dataclass(frozen=True)
class Fragment:
    """A run of prompt text with one attention weight; `is_break` marks a BREAK (text is empty)."""

    text: str
    weight: float = 1.0
    is_break: bool = False


@dataclass(frozen=True)
class ExtraNetwork:
    """An `<kind:name:args...>` tag taken out of the prompt."""

    kind: str
    name: str
    positional: tuple[str, ...] = ()  # the arguments after the name
    named: tuple[tuple[str, str], ...] = ()  # key=value arguments
    tag: str = ""  # the tag as written

    def arg(self, key: str, index: int) -> str | None:
        """The named argument `key`, else positional argument `index` (0 = first after the name)."""
        named = dict(self.named)
        if key in named:
            return named[key]
        return self.positional[index] if index < len(self.positional) else None


@dataclass(frozen=True)
class ParsedPrompt:
    text: str  # the prompt without extra-network tags
    fragments: tuple[Fragment, ...]
    networks: tuple[ExtraNetwork, ...] = field(default=())

    @property
    def is_plain(self) -> bool:
        """True when the text has no weights and no BREAK (it encodes exactly like a plain string)."""
        return all(f.weight == 1.0 and not f.is_break for f in self.fragments)


class PromptSyntaxError(InvalidParameter):
    """An extra-network tag whose arguments cannot be read (e.g. a weight that is not a number)."""


def _split_tag_args(body: str) -> tuple[str, list[str], list[tuple[str, str]]]:
    parts = body.split(":")
    # A Windows path as the name: "C:\loras\x.safetensors" was split at the drive colon.
    if len(parts) > 1 and len(parts[0]) == 1 and parts[0].isalpha() and parts[1][:1] in ("\\", "/"):
        parts = [parts[0] + ":" + parts[1]] + parts[2:]
    name, rest = parts[0].strip(), parts[1:]
    positional: list[str] = []
    named: list[tuple[str, str]] = []
    for item in rest:
        if "=" in item:
            key, _, value = item.partition("=")
            named.append((key.strip(), value.strip()))
        else:
            positional.append(item.strip())
    return name, positional, named


def extract_networks(prompt: str) -> tuple[str, tuple[ExtraNetwork, ...]]:
    """The prompt with every `<kind:...>` tag removed, and the tags in order."""
    found: list[ExtraNetwork] = []

    def take(m: re.Match[str]) -> str:
        name, positional, named = _split_tag_args(m.group(2))
        found.append(ExtraNetwork(m.group(1).lower(), name, tuple(positional), tuple(named), m.group(0)))
        return ""

    return _EXTRA_NETWORK.sub(take, prompt), tuple(found)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def parse_attention(text: str) -> list[Fragment]:
    """Split text into fragments with attention weights (A1111's rules, see the module docstring)."""
    parts: list[list] = []  # [text, weight, is_break], weights multiplied in place as brackets close
    round_open: list[int] = []
    square_open: list[int] = []

    def scale(start: int, factor: float) -> None:
        for part in parts[start:]:
            part[1] *= factor

    def add_text(chunk: str) -> None:
        for i, piece in enumerate(_BREAK.split(chunk)):
            if i:
                parts.append(["", 1.0, True])
            parts.append([piece, 1.0, False])

    pos = 0
    while pos < len(text):
        ch = text[pos]
        if ch == "\\":
            nxt = text[pos + 1:pos + 2]
            if nxt in ("(", ")", "[", "]", "\\"):
                parts.append([nxt, 1.0, False])
                pos += 2
            else:  # A1111 drops a backslash that escapes nothing
                pos += 1
            continue
        if ch == "(":
            round_open.append(len(parts))
        elif ch == "[":
            square_open.append(len(parts))
        elif ch == ")" and round_open:
            scale(round_open.pop(), ROUND)
        elif ch == "]" and square_open:
            scale(square_open.pop(), SQUARE)
        elif ch == ":":
            m = _WEIGHT.match(text, pos)
            weight = _number(m.group(1)) if m else None
            if m and weight is not None and round_open:
                scale(round_open.pop(), weight)
                pos = m.end()
                continue
            parts.append([":", 1.0, False])
        elif ch in ")]":
            parts.append([ch, 1.0, False])
        else:
            m = _TEXT.match(text, pos)
            add_text(m.group(0))
            pos = m.end()
            continue
        pos += 1

    for start in round_open:
        scale(start, ROUND)
    for start in square_open:
        scale(start, SQUARE)

    merged: list[Fragment] = []
    for piece, weight, is_break in parts:
        if is_break:
            merged.append(Fragment("", 1.0, True))
        elif merged and not merged[-1].is_break and merged[-1].weight == weight:
            merged[-1] = Fragment(merged[-1].text + piece, weight)
        else:
            merged.append(Fragment(piece, weight))
    return merged or [Fragment("", 1.0)]


def parse(prompt: str) -> ParsedPrompt:
    """Extra networks out, then attention weights and BREAKs."""
    text, networks = extract_networks(prompt)
    return ParsedPrompt(text, tuple(parse_attention(text)), networks)


def lora_weights(net: ExtraNetwork) -> tuple[float, float]:
    """(text-encoder weight, U-Net weight) of a `<lora:...>` tag; PromptSyntaxError for a non-number."""
    def value(raw: str | None, default: float) -> float:
        if raw is None or raw == "":
            return default
        number = _number(raw)
        if number is None:
            raise PromptSyntaxError(f"LoRA weight in {net.tag} is not a number: '{raw}'")
        return number

    te = value(net.arg("te", 0), 1.0)
    unet = value(net.arg("unet", 1), te)
    return te, unet

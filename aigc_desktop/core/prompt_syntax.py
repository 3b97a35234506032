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
and `)` closes the round bracket (x1.1); so does a malformed number: `(word:1.2.3)` is the text "word:1.2.3"
at x1.1 (A1111 raises an error there).

BREAK is a chunk break wherever it stands, inside brackets too: `(a BREAK b:1.2)` is "a" and "b" at x1.2 in
two chunks. (A1111 breaks only outside brackets; inside, an accident of its parser encodes the literal word
"BREAK" at a negative weight, which no one means.)

Prompt editing and alternation (A1111's `get_learned_conditioning_prompt_schedules`) come first and turn one
prompt into a schedule of plain prompts, each of which is then read for weights as above:

    [from:to:when]  "from" up to step `when`, "to" after it      [to:when]  nothing, then "to"
    [from::when]    "from", then nothing                          [a|b|c]    a, b, c, a, ... one per step
    when:           a number with a decimal point is a fraction of the steps ([a:b:0.25], [a:b:1.5] = never
                    switches), a number without one is a step ([a:b:5]); both are clamped to the steps

They nest (`a[b:[c:d:2]:1]e`), hold weights, embeddings and BREAK, and follow A1111's grammar to the letter:
square brackets that do not form one of these, or round ones holding more than one colon, are text; stray
brackets right next to a construct are read as A1111's parser reads them (`_EditParser.parse`); a prompt
the grammar rejects as a whole (a `|` outside square brackets, a backslash at the very end or before a
line break) is used as written, schedules included, exactly as A1111 does. `schedule(steps)` gives A1111's
(last step, prompt) list; step s (1-based) uses the first entry ending at or after s (`text_at_step`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterator

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


# ------------------------------------------------------------------------------------------ prompt editing


@dataclass(frozen=True)
class Edit:
    """`[before:after:when]`; `before` is None for `[after:when]` (nothing before the switch)."""

    before: tuple[Node, ...] | None
    after: tuple[Node, ...]
    when: str  # the number as written: "5" is a step, "0.5" a fraction of the steps
    space: tuple[str, str] = ("", "")  # whitespace written around the number

    def switch_step(self, steps: int) -> int:
        """The last step that uses `before` (A1111's rule; at most `steps`, below 1 = never)."""
        value = float(self.when)
        if "." in self.when:
            value *= steps
        if not math.isfinite(value):  # "1e999": A1111 overflows; any huge number means "never switch"
            return steps if value > 0 else 0
        return min(steps, int(value))


@dataclass(frozen=True)
class Alternate:
    """`[a|b|c]`: option (step - 1) mod n at each step."""

    options: tuple[tuple[Node, ...], ...]


Node = str | Edit | Alternate  # a str is text, passed on as written (brackets of weights included)

_PLAIN_RUN = re.compile(r"(?:[^\\\[\]():|]|\\.)+")  # text: no brackets, colon or bar; a backslash escapes one char
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_SPACE = re.compile(r"\s*")
_STRAY = "[]():"  # characters the grammar takes as text where they form nothing


@dataclass(frozen=True)
class EditedPrompt:
    """A prompt read for prompt editing and alternation: text, `Edit` and `Alternate` nodes in order."""

    nodes: tuple[Node, ...]
    literal: bool = False  # A1111's grammar rejects the prompt: it is used as written, with no schedule

    def unparse(self) -> str:
        """The prompt as written (every character is kept in the nodes)."""
        out: list[str] = []
        stack: list[Any] = [iter(self.nodes)]
        while stack:  # a loop, not recursion: nesting depth is unlimited
            node = next(stack[-1], None)
            if node is None:
                stack.pop()
            elif isinstance(node, str):
                out.append(node)
            elif isinstance(node, Edit):
                parts: list[Any] = ["["]
                if node.before is not None:
                    parts += [iter(node.before), ":"]
                parts += [iter(node.after), ":", node.space[0], node.when, node.space[1], "]"]
                stack.append(iter(parts))
            elif isinstance(node, Alternate):
                parts = ["["]
                for i, option in enumerate(node.options):
                    parts += (["|"] if i else []) + [iter(option)]
                stack.append(iter(parts + ["]"]))
            else:  # an iterator queued by the branches above
                stack.append(node)
        return "".join(out)

    def _walk(self) -> Iterator[Node]:
        stack = [iter(self.nodes)]
        while stack:
            node = next(stack[-1], None)
            if node is None:
                stack.pop()
                continue
            yield node
            if isinstance(node, Edit):
                stack += [iter(node.after)] + ([iter(node.before)] if node.before else [])
            elif isinstance(node, Alternate):
                stack += [iter(o) for o in node.options]

    @property
    def is_static(self) -> bool:
        """True when the prompt is the same at every step."""
        return all(isinstance(n, str) for n in self.nodes)

    def text_at(self, step: int, steps: int) -> str:
        """The prompt used at `step` (1-based) of `steps`."""
        out: list[str] = []
        stack = [iter(self.nodes)]
        while stack:
            node = next(stack[-1], None)
            if node is None:
                stack.pop()
            elif isinstance(node, str):
                out.append(node)
            elif isinstance(node, Edit):
                stack.append(iter((node.before or ()) if step <= node.switch_step(steps) else node.after))
            else:
                stack.append(iter(node.options[(step - 1) % len(node.options)]))
        return "".join(out)

    def schedule(self, steps: int) -> list[tuple[int, str]]:
        """A1111's schedule: (last step, prompt) pairs, ascending, the last ending at `steps`."""
        ends = {steps}
        for node in self._walk():
            if isinstance(node, Edit):
                end = node.switch_step(steps)
                if end >= 1:
                    ends.add(end)
            elif isinstance(node, Alternate):
                ends.update(range(1, steps + 1))
        return [(end, self.text_at(end, steps)) for end in sorted(ends)]


class _EditParser:
    """A1111's schedule grammar, read without a parser generator:

        start:      (prompt | any of "[]():")*          strays are text at the top level only
        prompt:     (emphasized | edit | alternate | text)*
        emphasized: "(" prompt ")" | "(" prompt ":" prompt ")" | "[" prompt "]"      (kept as text)
        edit:       "[" [prompt ":"] prompt ":" space? NUMBER space? "]"
        alternate:  "[" prompt ("|" prompt)+ "]"

    Inside constructs the reading is unique; at the top level see `parse`. The construct starting at each
    bracket is found once, right to left, so inner ones are known when an outer one is read: no recursion,
    any length and depth."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.found: dict[int, tuple[list[Node], int] | None] = {}
        self.parity: dict[int, int] = {}  # per construct, see `parse`
        for pos in range(len(text) - 1, -1, -1):
            if text[pos] in "([":
                self.found[pos] = self._construct(pos)
                self.parity[pos] = self.last_parity

    def _prompt(self, pos: int) -> tuple[list[Node], int] | None:
        """Items up to the next `)]:|` that is not inside a construct; None when something cannot be read.
        Sets self.last_parity: the parity of the last item when it is an edit or emphasis brackets, else None."""
        text, nodes = self.text, []
        self.last_parity: int | None = None
        while pos < len(text):
            ch = text[pos]
            if ch in "([":
                inner = self.found[pos]
                if inner is None:
                    return None
                nodes += inner[0]
                self.last_parity = None if isinstance(inner[0][0], Alternate) else self.parity[pos]
                pos = inner[1]
            elif ch in ")]:|":
                break
            else:
                m = _PLAIN_RUN.match(text, pos)
                if m is None:  # a backslash with nothing (or a line break) after it
                    return None
                nodes.append(m.group(0))
                self.last_parity = None
                pos = m.end()
        return nodes, pos

    def _when(self, pos: int) -> tuple[tuple[str, str, str], int] | None:
        """`space? NUMBER space? ]` at pos: ((space, number, space), end after "]")."""
        text = self.text
        a = _SPACE.match(text, pos)
        n = _NUMBER.match(text, a.end())
        if n is None:
            return None
        b = _SPACE.match(text, n.end())
        if text[b.end():b.end() + 1] != "]":
            return None
        return (a.group(0), n.group(0), b.group(0)), b.end() + 1

    def _construct(self, pos: int) -> tuple[list[Node], int] | None:
        text = self.text
        first = self._prompt(pos + 1)
        if first is None:
            return None
        nodes, end = first
        nxt = text[end:end + 1]
        if text[pos] == "(":
            if nxt == ":":
                second = self._prompt(end + 1)
                if second is None:
                    return None
                nodes = nodes + [":"] + second[0]
                end, nxt = second[1], text[second[1]:second[1] + 1]
            self.last_parity = 0 if self.last_parity is None else 1 - self.last_parity
            return (["("] + nodes + [")"], end + 1) if nxt == ")" else None
        if nxt == "]":
            self.last_parity = 0 if self.last_parity is None else 1 - self.last_parity
            return ["["] + nodes + ["]"], end + 1
        if nxt == "|":
            options = [_merge_text(nodes)]
            while text[end:end + 1] == "|":
                option = self._prompt(end + 1)
                if option is None:
                    return None
                options.append(_merge_text(option[0]))
                end = option[1]
            self.last_parity = 0  # unused: an alternation is never read as characters
            return ([Alternate(tuple(options))], end + 1) if text[end:end + 1] == "]" else None
        if nxt != ":":
            return None
        when = self._when(end + 1)
        if when is not None:  # [to:when]
            (s1, number, s2), stop = when
            self.last_parity = 0
            return [Edit(None, _merge_text(nodes), number, (s1, s2))], stop
        second = self._prompt(end + 1)
        if second is None or text[second[1]:second[1] + 1] != ":":
            return None
        when = self._when(second[1] + 1)
        if when is None:
            return None
        (s1, number, s2), stop = when
        self.last_parity = 0
        return [Edit(_merge_text(nodes), _merge_text(second[0]), number, (s1, s2))], stop

    def _tokens(self, start: int, stop: int) -> list[tuple[str, Any]] | None:
        """Top-level tokens of text[start:stop], left to right: ("construct", pos), ("stray", ch), ("text", s);
        None where the grammar fails ("|" outside square brackets, a lone backslash)."""
        text, tokens, pos = self.text, [], start
        while pos < stop:
            inner = self.found.get(pos)
            if inner is not None and inner[1] <= stop:
                tokens.append(("construct", pos))
                pos = inner[1]
            elif text[pos] in _STRAY:
                tokens.append(("stray", text[pos]))
                pos += 1
            else:
                m = _PLAIN_RUN.match(text, pos, stop)
                if m is None:
                    return None
                tokens.append(("text", m.group(0)))
                pos = m.end()
        return tokens

    def parse(self) -> list[Node] | None:
        """The top level, where the grammar is ambiguous: a bracket can open a construct or be a stray
        character. A1111's parser generator settles it by its internal order; measured against it on
        thousands of adversarial prompts, it reads a construct directly followed by k >= 1 stray characters
        as plain characters when
            k + parity is even        "[a:2]::", "[a:2][(" (but not "[a:2]:" or "[a:2]:::"), "([a:2]):"
        where an edit's parity is 0 and emphasis brackets' is 1 - that of their last item when it is an edit or
        emphasis brackets, else 0; an alternation is never read as characters. A construct read as characters
        has its inside read again at the top level. Decided from the right, since what follows a construct can
        itself be read as characters."""
        tokens = self._tokens(0, len(self.text))
        if tokens is None:
            return None
        out: list[Node] = []  # reversed
        strays = 0  # stray characters directly after the current position
        while tokens:
            kind, value = tokens.pop()
            if kind != "construct":
                out.append(value)
                strays = strays + 1 if kind == "stray" else 0
                continue
            nodes, end = self.found[value]
            alternation = len(nodes) == 1 and isinstance(nodes[0], Alternate)
            dissolve = not alternation and strays > 0 and (strays + self.parity[value]) % 2 == 0
            if not dissolve:
                out.extend(reversed(nodes))
                strays = 0
                continue
            inner = self._tokens(value + 1, end)
            if inner is None:
                return None
            tokens += [("stray", self.text[value])] + inner
        return out[::-1]


def _merge_text(nodes: list[Node]) -> tuple[Node, ...]:
    out: list[Node] = []
    for node in nodes:
        if isinstance(node, str) and out and isinstance(out[-1], str):
            out[-1] += node
        else:
            out.append(node)
    return tuple(out)


def parse_editing(prompt: str) -> EditedPrompt:
    """Read prompt editing and alternation (see the module docstring); never fails."""
    if "[" not in prompt:  # nothing can be scheduled: the text is the prompt at every step
        return EditedPrompt((prompt,) if prompt else (), literal=False)
    nodes = _EditParser(prompt).parse()
    if nodes is None:
        return EditedPrompt((prompt,), literal=True)
    return EditedPrompt(_merge_text(nodes))


def prompt_schedule(prompt: str, steps: int) -> list[tuple[int, str]]:
    """A1111's `get_learned_conditioning_prompt_schedules([prompt], steps)[0]`, as (end step, prompt) pairs."""
    return parse_editing(prompt).schedule(steps)


def text_at_step(schedule: list[tuple[int, str]], step: int) -> str:
    """The prompt of a schedule at `step` (1-based): the first entry ending at or after it."""
    for end, text in schedule:
        if step <= end:
            return text
    return schedule[-1][1]

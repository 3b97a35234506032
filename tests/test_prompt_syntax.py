"""A1111 prompt syntax: attention weights, escapes, BREAK, extra-network tags, prompt editing and
alternation (pure Python)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aigc_desktop.core.prompt_syntax import (Alternate, Edit, EditedPrompt, ExtraNetwork, Fragment,
                                             PromptSyntaxError, extract_networks, lora_weights, parse,
                                             parse_attention, parse_editing, prompt_schedule, text_at_step)


def weights(text: str) -> list[tuple[str, float]]:
    return [("BREAK" if f.is_break else f.text, round(f.weight, 6)) for f in parse_attention(text)]


@pytest.mark.parametrize("text, expected", [
    # The examples A1111 documents for its parser: the doctests of parse_prompt_attention in
    # AUTOMATIC1111/stable-diffusion-webui, modules/prompt_parser.py, written out by hand.
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    (r"\(literal\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
     [("a ", 1.0), ("house", 1.573), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55), (", sun, ", 1.1),
      ("sky", 1.4641), (".", 1.1)]),
    # Weights.
    ("(word:1.3)", [("word", 1.3)]),
    ("((word))", [("word", 1.21)]),
    ("[word]", [("word", round(1 / 1.1, 6))]),
    ("[[word]]", [("word", round(1 / 1.21, 6))]),
    ("(word: 1.25 )", [("word", 1.25)]),
    ("(word:0)", [("word", 0.0)]),
    ("(word:-0.5)", [("word", -0.5)]),
    ("(word:.5)", [("word", 0.5)]),
    ("((a:1.5) b)", [("a", 1.65), (" b", 1.1)]),
    ("[(a:2)]", [("a", round(2 / 1.1, 6))]),
    ("(a [b] c)", [("a ", 1.1), ("b", 1.0), (" c", 1.1)]),
    ("()", [("", 1.0)]),
    # Not weights: the text stays, a bracket still closes.
    ("(word:abc)", [("word:abc", 1.1)]),
    ("(word:1.2.3)", [("word:1.2.3", 1.1)]),
    ("(word:1e3)", [("word:1e3", 1.1)]),
    ("a:1.5) b", [("a:1.5) b", 1.0)]),
    ("time: 12:30", [("time: 12:30", 1.0)]),
    # Unbalanced brackets: closers with nothing open are text; an opener left open weights the rest.
    ("a) b] c", [("a) b] c", 1.0)]),
    (")(", [(")", 1.0)]),
    ("[a", [("a", round(1 / 1.1, 6))]),
    ("a (b [c", [("a ", 1.0), ("b ", 1.1), ("c", 1.0)]),
    ("(a]", [("a]", 1.1)]),
    # Escapes.
    (r"\(a\)", [("(a)", 1.0)]),
    (r"\[a\]", [("[a]", 1.0)]),
    (r"a\\b", [("a\\b", 1.0)]),
    (r"(\(a\):1.2)", [("(a)", 1.2)]),
    (r"a\b", [("ab", 1.0)]),  # A1111 drops a backslash that escapes nothing
    ("", [("", 1.0)]),
])
def test_attention(text, expected):
    got = weights(text)
    assert [t for t, _ in got] == [t for t, _ in expected]
    assert [w for _, w in got] == pytest.approx([w for _, w in expected])


def test_nested_weights_multiply_in_order():
    # The same float operations as A1111, so the weights (and the images) match exactly.
    assert parse_attention("((house:1.3))")[0].weight == 1.3 * 1.1
    assert parse_attention("(((sky)))")[0].weight == 1.1 * 1.1 * 1.1


@pytest.mark.parametrize("text, expected", [
    ("a BREAK b", [("a", 1.0), ("BREAK", 1.0), ("b", 1.0)]),
    ("a\nBREAK\nb", [("a", 1.0), ("BREAK", 1.0), ("b", 1.0)]),
    ("BREAK a", [("", 1.0), ("BREAK", 1.0), ("a", 1.0)]),
    ("a BREAK BREAK b", [("a", 1.0), ("BREAK", 1.0), ("", 1.0), ("BREAK", 1.0), ("b", 1.0)]),
    ("(a BREAK b:1.2)", [("a", 1.2), ("BREAK", 1.0), ("b", 1.2)]),
    ("breakfast BREAKING break", [("breakfast BREAKING break", 1.0)]),
])
def test_break(text, expected):
    assert weights(text) == expected


@pytest.mark.parametrize("text", [
    "日本語の猫 (可愛い:1.2) と [犬]",
    "emoji 🐱‍👤 (👩‍💻:1.3) 🏳️‍🌈 👍🏽",
    "combining: e\u0301 n\u0303, zero width:\u200b\u200d\ufeff end",
    "right to left: שלום (مرحبا:0.8)",
    "fullwidth （word） and ［x］ are not brackets",
    "control \x00\x07 chars and \U0010ffff",
    "\ud800 lone surrogate",
])
def test_unusual_unicode_passes_through(text):
    frags = parse_attention(text)
    joined = "".join(f.text for f in frags)
    # Only the ASCII bracket syntax is consumed; every other character survives in order.
    assert joined == text.replace("(", "").replace(")", "").replace("[", "").replace("]", "") \
        .replace(":1.2", "").replace(":1.3", "").replace(":0.8", "")


def test_emoji_weight():
    assert weights("(🐱:1.5) cat") == [("🐱", 1.5), (" cat", 1.0)]


def test_long_and_deep_prompts_are_fine():
    deep = "(" * 200 + "x" + ")" * 200
    assert parse_attention(deep)[0].weight == pytest.approx(1.1 ** 200)
    long = ", ".join(f"(word{i}:1.{i % 10})" for i in range(2000))
    frags = parse_attention(long)  # a loop, no recursion: any length works
    assert "".join(f.text for f in frags) == ", ".join(f"word{i}" for i in range(2000))
    assert [f.weight for f in frags if f.text == "word1999"] == [1.9]


# ------------------------------------------------------------------------------------------ extra networks


def test_extract_networks():
    text, nets = extract_networks("a cat <lora:style_v2:0.8>, <lora:Detail Tweaker> <hypernet:old:1> end")
    assert text == "a cat ,   end"
    assert [(n.kind, n.name, n.positional) for n in nets] == [
        ("lora", "style_v2", ("0.8",)), ("lora", "Detail Tweaker", ()), ("hypernet", "old", ("1",))]
    assert nets[0].tag == "<lora:style_v2:0.8>"


def test_extract_keeps_what_is_not_a_tag():
    for text in ("a < b > c", "<lora>", "<:x>", "<lora:x", "x > y <"):
        assert extract_networks(text) == (text, ())


def test_tag_kind_is_case_insensitive_and_windows_paths_survive():
    _, nets = extract_networks(r"<LORA:C:\loras\my:style.safetensors:0.5>")
    assert nets[0].kind == "lora"
    assert nets[0].name == r"C:\loras\my"  # a colon inside a file name cannot be told from an argument
    _, nets = extract_networks(r"<lora:C:\loras\style.safetensors:0.5>")
    assert nets[0].name == r"C:\loras\style.safetensors" and nets[0].positional == ("0.5",)
    _, nets = extract_networks("<lora:/home/u/loras/style.safetensors:0.7>")
    assert nets[0].name == "/home/u/loras/style.safetensors" and nets[0].positional == ("0.7",)


@pytest.mark.parametrize("tag, expected", [
    ("<lora:x>", (1.0, 1.0)),
    ("<lora:x:0.8>", (0.8, 0.8)),
    ("<lora:x:0.5:1.2>", (0.5, 1.2)),
    ("<lora:x:te=0.3:unet=0.9>", (0.3, 0.9)),
    ("<lora:x:0.7:unet=0.2>", (0.7, 0.2)),
    ("<lora:x:unet=0.2>", (1.0, 0.2)),
    ("<lora:x:te=0.4>", (0.4, 0.4)),
    ("<lora:x:-1>", (-1.0, -1.0)),
    ("<lora:x: 0.6 >", (0.6, 0.6)),
])
def test_lora_weights(tag, expected):
    _, (net,) = extract_networks(tag)
    assert lora_weights(net) == pytest.approx(expected)


@pytest.mark.parametrize("tag", ["<lora:x:strong>", "<lora:x:0.5:lots>", "<lora:x:te=a>", "<lora:x:inf>"])
def test_bad_lora_weight_is_a_clear_error(tag):
    _, (net,) = extract_networks(tag)
    with pytest.raises(PromptSyntaxError, match="not a number"):
        lora_weights(net)


def test_parse_combines_everything():
    p = parse("a (cat:1.2) <lora:x:0.5> BREAK dog")
    assert p.text == "a (cat:1.2)  BREAK dog"
    assert p.networks == (ExtraNetwork("lora", "x", ("0.5",), (), "<lora:x:0.5>"),)
    assert p.fragments == (Fragment("a ", 1.0), Fragment("cat", 1.2), Fragment("", 1.0), Fragment("", 1.0, True),
                           Fragment("dog", 1.0))
    assert not p.is_plain
    assert parse("just words, nothing else <lora:y>").is_plain
    assert parse("(x:1.0)").is_plain


# ------------------------------------------------------------------------------------------ prompt editing

# The doctests of get_learned_conditioning_prompt_schedules (10 steps) in AUTOMATIC1111/stable-diffusion-webui,
# modules/prompt_parser.py, written out by hand as (last step, prompt) pairs.
A1111_SCHEDULES = [
    ("test", [(10, "test")]),
    ("a [b:3]", [(3, "a "), (10, "a b")]),
    ("a [b: 3]", [(3, "a "), (10, "a b")]),
    ("a [[[b]]:2]", [(2, "a "), (10, "a [[b]]")]),
    ("[(a:2):3]", [(3, ""), (10, "(a:2)")]),
    ("a [b : c : 1] d", [(1, "a b  d"), (10, "a  c  d")]),
    ("a[b:[c:d:2]:1]e", [(1, "abe"), (2, "ace"), (10, "ade")]),
    ("a [unbalanced", [(10, "a [unbalanced")]),
    ("a [b:.5] c", [(5, "a  c"), (10, "a b c")]),
    ("((a][:b:c [d:3]", [(3, "((a][:b:c "), (10, "((a][:b:c d")]),
    ("[a|(b:1.1)]", [(s, "a" if s % 2 else "(b:1.1)") for s in range(1, 11)]),
    ("[fe|]male", [(s, "female" if s % 2 else "male") for s in range(1, 11)]),
    ("[fe|||]male", [(s, "female" if s % 4 == 1 else "male") for s in range(1, 11)]),
    # The docstring's "a [{b|d{:.5] c" is marked "not handling this right now" there, and A1111's parser
    # indeed rejects it (a "|" outside any alternation) and uses the prompt as written: so do we.
    ("a [{b|d{:.5] c", [(10, "a [{b|d{:.5] c")]),
    # get_learned_conditioning's docstring example (its steps are 10 here too).
    ("a [blue:green:5] jeweled crown", [(5, "a blue jeweled crown"), (10, "a green jeweled crown")]),
]
# (The docstring's last two cases pass hires-fix steps, which this app does not have.)


@pytest.mark.parametrize("prompt, expected", A1111_SCHEDULES)
def test_a1111_schedule_examples(prompt, expected):
    assert prompt_schedule(prompt, 10) == expected


def test_a1111_file_comment_example():
    # The example in the comment at the top of A1111's modules/prompt_parser.py (100 steps).
    prompt = ("fantasy landscape with a [mountain:lake:0.25] and [an oak:a christmas tree:0.75][ in foreground::0.6]"
              "[ in background:0.25] [shoddy:masterful:0.5]")
    assert prompt_schedule(prompt, 100) == [
        (25, "fantasy landscape with a mountain and an oak in foreground shoddy"),
        (50, "fantasy landscape with a lake and an oak in foreground in background shoddy"),
        (60, "fantasy landscape with a lake and an oak in foreground in background masterful"),
        (75, "fantasy landscape with a lake and an oak in background masterful"),
        (100, "fantasy landscape with a lake and a christmas tree in background masterful"),
    ]


def test_edit_is_no_longer_read_as_weighted_text():
    # It used to be the text "b:3" at 1 / 1.1.
    schedule = prompt_schedule("a [b:3]", 10)
    assert [parse_attention(text) for _, text in schedule] == [[Fragment("a ", 1.0)], [Fragment("a b", 1.0)]]


@pytest.mark.parametrize("prompt, steps, expected", [
    # when: a decimal point makes a fraction of the steps, otherwise a step; clamped to the steps
    ("[a:b:5]", 10, [(5, "a"), (10, "b")]),
    ("[a:b:0.5]", 10, [(5, "a"), (10, "b")]),
    ("[a:b:0.55]", 10, [(5, "a"), (10, "b")]),  # int(5.5)
    ("[a:b:5.]", 10, [(10, "a")]),  # 5.0 of the steps: never switches (A1111 since 1.6)
    ("[a:b:1.5]", 10, [(10, "a")]),
    ("[a:b:1]", 10, [(1, "a"), (10, "b")]),
    ("[a:b:1.0]", 10, [(10, "a")]),
    ("[a:b:12]", 10, [(10, "a")]),
    ("[a:b:0]", 10, [(10, "b")]),
    ("[a:b:-1]", 10, [(10, "b")]),
    ("[a:b:+3]", 10, [(3, "a"), (10, "b")]),
    ("[a:b:1e1]", 10, [(10, "a")]),  # no decimal point: a step number, 10
    ("[a:b:2.5e-1]", 10, [(2, "a"), (10, "b")]),
    ("[a:b:1e999]", 10, [(10, "a")]),  # A1111 overflows here; it is "never"
    ("[a:b: 3 ]", 10, [(3, "a"), (10, "b")]),
    ("[a::3]", 10, [(3, "a"), (10, "")]),
    ("[:b:3]", 10, [(3, ""), (10, "b")]),
    ("[a:3:5]", 10, [(5, "a"), (10, "3")]),
    ("[a:b c:3]", 4, [(3, "a"), (4, "b c")]),
    # alternation: option (step - 1) mod n, counted from the first step of the whole image
    ("[a|b|c]", 4, [(1, "a"), (2, "b"), (3, "c"), (4, "a")]),
    ("[|x]", 2, [(1, ""), (2, "x")]),
    ("[a:[b|c]:2]", 4, [(1, "a"), (2, "a"), (3, "b"), (4, "c")]),
    ("[[a|b]:c:2]", 3, [(1, "a"), (2, "b"), (3, "c")]),
    # weights, embeddings and BREAK are text to the schedule: read afterwards for each step
    ("(a [b:(c:1.2):2]:0.9)", 4, [(2, "(a b:0.9)"), (4, "(a (c:1.2):0.9)")]),
    ("[x BREAK y:z:1]", 2, [(1, "x BREAK y"), (2, "z")]),
    ("an \\[escaped:2\\]", 4, [(4, "an \\[escaped:2\\]")]),
    # forms the grammar does not take: the brackets are text
    ("[a:b:c:3]", 10, [(10, "[a:b:c:3]")]),
    ("[a:b]", 10, [(10, "[a:b]")]),
    ("[a:b:3x]", 10, [(10, "[a:b:3x]")]),
    ("[a:(b:c:d):3]", 10, [(10, "[a:(b:c:d):3]")]),
    ("(a:b:c) [d:1]", 2, [(1, "(a:b:c) "), (2, "(a:b:c) d")]),
    # prompts the grammar rejects as a whole are used as written, as in A1111
    ("a | b [c:d:1]", 2, [(2, "a | b [c:d:1]")]),
    ("[a|b:3]", 10, [(10, "[a|b:3]")]),
    ("[a:b:1] end\\", 2, [(2, "[a:b:1] end\\")]),
    ("[a:b:1] \\\nx", 2, [(2, "[a:b:1] \\\nx")]),
    ("", 3, [(3, "")]),
])
def test_schedules(prompt, steps, expected):
    assert prompt_schedule(prompt, steps) == expected


@pytest.mark.parametrize("prompt, expected", [
    # Stray brackets next to a construct: the grammar can read them either way; these are A1111's own readings
    # (its parser run on each, 3 steps), which our reading reproduces (see _EditParser.parse).
    ("[a:2]:", [(2, ":"), (3, "a:")]),
    ("[a:2]::", [(3, "[a:2]::")]),
    ("[a:2]:::", [(2, ":::"), (3, "a:::")]),
    ("[b:2][:3", [(3, "[b:2][:3")]),
    ("[a:2][a:2]::x y", [(2, "[a:2]::x y"), (3, "a[a:2]::x y")]),
    ("[a|b]::", [(1, "a::"), (2, "b::"), (3, "a::")]),
    ("([a:2]):", [(3, "([a:2]):")]),
    ("([a:2])::", [(2, "()::"), (3, "(a)::")]),
    ("[a:2]](a)]", [(2, "](a)]"), (3, "a](a)]")]),
    ("[(a):2][(a)])", [(3, "[(a):2][(a)])")]),
])
def test_stray_brackets_next_to_constructs_read_as_a1111_reads_them(prompt, expected):
    assert prompt_schedule(prompt, 3) == expected


def test_text_at_step_follows_the_documented_steps():
    # "[from:to:16]": from for steps 1-16, to from step 17 on (A1111's wiki, steps counted from 1).
    schedule = prompt_schedule("a [fantasy:cyberpunk:16] landscape", 20)
    texts = [text_at_step(schedule, s) for s in range(1, 21)]
    assert texts == ["a fantasy landscape"] * 16 + ["a cyberpunk landscape"] * 4
    alternating = prompt_schedule("[cow|horse] in a field", 4)
    assert [text_at_step(alternating, s) for s in range(1, 5)] == [
        "cow in a field", "horse in a field", "cow in a field", "horse in a field"]


def test_parse_tree():
    tree = parse_editing("a [b:[c|d]:0.5] e")
    assert tree.nodes == ("a ", Edit(("b",), (Alternate((("c",), ("d",))),), "0.5"), " e")
    assert not tree.is_static and not tree.literal
    assert parse_editing("a (b:1.2) [c]").is_static
    assert parse_editing("a | [b:1]") == EditedPrompt(("a | [b:1]",), literal=True)


def test_deep_and_long_prompts_are_fine():
    deep = "[" * 3000 + "a:b:1" + "]" * 3000  # no recursion: any depth
    assert parse_editing(deep).unparse() == deep
    assert prompt_schedule("[" * 2999 + "[a:b:1]" + "]" * 2999, 2) == [
        (1, "[" * 2999 + "a" + "]" * 2999), (2, "[" * 2999 + "b" + "]" * 2999)]
    long = " ".join(f"[w{i}:v{i}:{i % 7 + 1}]" for i in range(500))
    schedule = prompt_schedule(long, 8)
    assert [end for end, _ in schedule] == list(range(1, 9))
    assert schedule[-1][1] == " ".join(f"v{i}" for i in range(500))


# ------------------------------------------------------------------------------------------ properties

SYNTAX = st.sampled_from(["[", "]", "(", ")", ":", "|", "\\", " ", "\n", "a", "b c", "0.5", "3", "-1", "1e2",
                          "BREAK", "<lora:x:0.5>", "é", "🐱", ","])
PROMPTS = st.lists(SYNTAX | st.text(max_size=3), max_size=24).map("".join)


@settings(max_examples=300, deadline=None)
@given(PROMPTS, st.integers(1, 40))
def test_any_prompt_parses_round_trips_and_schedules(prompt, steps):
    tree = parse_editing(prompt)
    assert tree.unparse() == prompt
    schedule = tree.schedule(steps)
    ends = [end for end, _ in schedule]
    assert ends == sorted(set(ends)) and ends[-1] == steps and ends[0] >= 1
    for _, text in schedule:
        parse_attention(text)
    if tree.is_static:
        assert schedule == [(steps, prompt)]


WORD = st.text(alphabet="abc xyz,.!é🐱", min_size=1, max_size=4)
WHEN = st.sampled_from(["1", "3", "12", "0.5", ".25", "1.5", "-1", "+2", "1e1", "2.5e-1"])
SPACE = st.sampled_from(["", " ", "  "])


def _nodes(children):
    return st.lists(WORD | children | st.builds(lambda x: ("(", x, ")"), WORD), max_size=3)


TREES = st.recursive(
    WORD,
    lambda inner: st.one_of(
        st.builds(lambda b, a, w, s1, s2: Edit(b, a, w, (s1, s2)),
                  st.none() | _nodes(inner).map(tuple), _nodes(inner).map(tuple), WHEN, SPACE, SPACE),
        st.builds(lambda opts: Alternate(tuple(opts)), st.lists(_nodes(inner).map(tuple), min_size=2, max_size=3)),
    ),
    max_leaves=6,
)


def _flat(nodes):
    """Nodes in canonical form: tuples of emphasized text flattened, adjacent text merged."""
    out = []
    for node in nodes:
        if isinstance(node, tuple):
            parts = list(node)
        else:
            parts = [node]
        for part in parts:
            if isinstance(part, Edit):
                part = Edit(None if part.before is None else _flat(part.before), _flat(part.after), part.when,
                            part.space)
            elif isinstance(part, Alternate):
                part = Alternate(tuple(_flat(o) for o in part.options))
            if isinstance(part, str) and out and isinstance(out[-1], str):
                out[-1] += part
            elif part != "":
                out.append(part)
    return tuple(out)


@settings(max_examples=200, deadline=None)
@given(st.lists(TREES, min_size=1, max_size=4))
def test_structured_prompts_round_trip_through_the_tree(parts):
    tree = EditedPrompt(_flat(parts))
    text = tree.unparse()
    assert parse_editing(text).nodes == tree.nodes

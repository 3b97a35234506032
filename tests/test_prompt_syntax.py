"""A1111 prompt syntax: attention weights, escapes, BREAK, extra-network tags (pure Python)."""

from __future__ import annotations

import pytest

from aigc_desktop.core.prompt_syntax import (ExtraNetwork, Fragment, PromptSyntaxError, extract_networks,
                                             lora_weights, parse, parse_attention)


def weights(text: str) -> list[tuple[str, float]]:
    return [("BREAK" if f.is_break else f.text, round(f.weight, 6)) for f in parse_attention(text)]


@pytest.mark.parametrize("text, expected", [
    # The examples A1111 documents for its parser.
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

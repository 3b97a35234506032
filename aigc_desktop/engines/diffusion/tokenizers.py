"""Tokenizers built in code: the GPT-2 / CLIP byte-to-symbol table and a byte-level CLIP tokenizer.

The byte-level tokenizer needs no vocabulary file: `aigc-desktop train diffusion --set tokenizer=bytes`
trains with it, and the tiny test models (aigc_desktop/testing) use it too. The real CLIP BPE vocabulary
ships in resources/tokenizer (built from these same byte symbols by resources/tokenizer/build.py).
"""

from __future__ import annotations


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2 / CLIP byte-to-symbol table: every byte as a printable unicode character."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def byte_level_tokenizer(pad_token: str = "<|endoftext|>"):
    """A CLIP tokenizer over bytes: 256 byte symbols, the same with </w>, BOS, EOS (514 tokens), no merges.

    It tokenizes any prompt (any unicode) without a vocabulary file."""
    from transformers import CLIPTokenizer

    symbols = list(bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for s in symbols:
        vocab[s] = len(vocab)
    for s in symbols:
        vocab[s + "</w>"] = len(vocab)
    vocab["<|startoftext|>"] = len(vocab)
    vocab["<|endoftext|>"] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77, pad_token=pad_token)

"""Rebuild vocab.json and merges.txt from OpenAI's CLIP BPE file (bpe_simple_vocab_16e6.txt.gz, MIT).

    python resources/tokenizer/build.py path/to/bpe_simple_vocab_16e6.txt.gz

The file ships inside the open_clip_torch wheel (`pip download --no-deps open_clip_torch`). The vocabulary
is built as CLIP's SimpleTokenizer builds it: the 256 byte symbols, the same with "</w>", the joined
merges (lines 1..48894 of the file), then <|startoftext|> and <|endoftext|>: 49,408 tokens.
"""

from __future__ import annotations

import gzip
import json
import sys
from pathlib import Path

N_MERGES = 49152 - 256 - 2  # 48,894: what CLIP uses of the file


def bytes_to_unicode() -> dict[int, str]:
    # The GPT-2 / CLIP table that maps every byte to a printable symbol.
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, [chr(c) for c in cs]))


def build(bpe_gz: Path, out: Path) -> None:
    lines = gzip.open(bpe_gz).read().decode("utf-8").split("\n")
    merges = [tuple(line.split()) for line in lines[1:N_MERGES + 1]]
    symbols = list(bytes_to_unicode().values())
    tokens = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == 49408, len(vocab)
    (out / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False, separators=(",", ":")), encoding="utf-8")
    (out / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n",
                                    encoding="utf-8")


if __name__ == "__main__":
    build(Path(sys.argv[1]), Path(__file__).resolve().parent)

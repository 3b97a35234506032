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

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repository root

from aigc_desktop.engines.diffusion.tokenizers import bytes_to_unicode  # noqa: E402 - the GPT-2 / CLIP byte table

N_MERGES = 49152 - 256 - 2  # 48,894: what CLIP uses of the file


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

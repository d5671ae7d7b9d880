"""A CLIP BPE tokenizer built offline from the demo captions' vocabulary.

A tiny BPE is learned on the caption words so that every word the generator writes becomes a
single token; any other text still tokenizes (into single characters), like CLIP's own tokenizer.
Files are written in CLIP's format (vocab.json + merges.txt) and loaded with `CLIPTokenizer`.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from sdstudio.core import atomic

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
PUNCTUATION = list(",.;:!?'\"-()")


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable unicode char table."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    bs += list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, map(chr, cs), strict=True))


def learn_merges(words: list[str]) -> list[tuple[str, str]]:
    """Greedy BPE on a word list until every word is one symbol (ties broken alphabetically)."""
    seqs = [tuple(w[:-1]) + (w[-1] + "</w>",) for w in words if w]
    merges: list[tuple[str, str]] = []
    while True:
        pairs: Counter[tuple[str, str]] = Counter()
        for s in seqs:
            pairs.update(zip(s, s[1:], strict=False))
        if not pairs:
            return merges
        best = max(pairs.items(), key=lambda kv: (kv[1], tuple(-ord(c) for c in "".join(kv[0]))))[0]
        merges.append(best)
        seqs = [_apply(s, best) for s in seqs]


def _apply(seq: tuple[str, ...], pair: tuple[str, str]) -> tuple[str, ...]:
    out: list[str] = []
    i = 0
    while i < len(seq):
        if i + 1 < len(seq) and (seq[i], seq[i + 1]) == pair:
            out.append(seq[i] + seq[i + 1])
            i += 2
        else:
            out.append(seq[i])
            i += 1
    return tuple(out)


def write_vocab_files(words: list[str], folder: Path) -> tuple[Path, Path]:
    """vocab.json and merges.txt in CLIP's layout: bytes, bytes</w>, merges, then BOS/EOS."""
    folder.mkdir(parents=True, exist_ok=True)
    chars = list(bytes_to_unicode().values())
    vocab_list = chars + [c + "</w>" for c in chars]
    merges = learn_merges(sorted(set(words)) + PUNCTUATION)
    vocab_list += ["".join(m) for m in merges if "".join(m) not in vocab_list]
    vocab_list += [BOS, EOS]
    vocab = {tok: i for i, tok in enumerate(dict.fromkeys(vocab_list))}
    vocab_path, merges_path = folder / "vocab.json", folder / "merges.txt"
    atomic.write_text(vocab_path, json.dumps(vocab, ensure_ascii=False))
    atomic.write_text(merges_path, "#version: 0.2\n" + "\n".join(f"{a} {b}" for a, b in merges) + "\n")
    return vocab_path, merges_path


def build_tokenizer(words: list[str], folder: Path, max_length: int = 77):
    """Write the vocabulary files to `folder` and return a `CLIPTokenizer` that reads them."""
    from transformers import CLIPTokenizer

    vocab_path, merges_path = write_vocab_files(words, folder)
    return CLIPTokenizer(str(vocab_path), str(merges_path), pad_token=EOS,
                         model_max_length=max_length)

"""A1111's prompt token counter ("12/75"), without torch: only a model's tokenizer files.

The window counts as you type; loading a tokenizer imports transformers (about a second), so
the caller loads it once off its GUI thread with `load_tokenizer` and counts with `counter_text`.
"""

from __future__ import annotations

import os
import threading
from functools import lru_cache
from pathlib import Path

from sdstudio.core.conditioning.chunks import chunk_length, token_counts
from sdstudio.core.paths import demo_model_dir, resources_dir


def tokenizer_folder(model: str | os.PathLike[str]) -> Path:
    """The tokenizer files a model's prompt is counted with: the model's own tokenizer folder,
    else (a single file, a hub id) the shipped CLIP tokenizer all SD families share for counting."""
    folder = demo_model_dir() if str(model) == "demo" else Path(model).expanduser()
    own = folder / "tokenizer"
    if (own / "vocab.json").is_file():
        return own
    return resources_dir() / "configs" / "clip-tokenizer"


_LOADING = threading.Lock()


def load_tokenizer(folder: Path):
    """The CLIP tokenizer in `folder` (cached). Thread-safe: transformers' lazy top-level module
    can fail ("cannot import name") when two threads resolve names in it at once, so the class
    is imported from its own module, one load at a time."""
    with _LOADING:
        return _load(folder)


@lru_cache(maxsize=4)
def _load(folder: Path):
    from transformers.models.clip.tokenization_clip import CLIPTokenizer

    return CLIPTokenizer.from_pretrained(str(folder))


def counter_text(tokenizer, text: str) -> str:
    """"12/75", or "80/150 · 2 chunks" once the prompt fills more than one chunk."""
    used, available = token_counts(tokenizer, text)
    chunks = available // chunk_length(tokenizer)
    return f"{used}/{available}" + (f" · {chunks} chunks" if chunks > 1 else "")

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
from sdstudio.core.conditioning.extra_networks import parse_extra_networks
from sdstudio.core.conditioning.schedules import schedule
from sdstudio.core.defaults import DEFAULT_STEPS
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


def counter_text(tokenizer, text: str, steps: int = DEFAULT_STEPS) -> str:
    """"12/75", or "80/150 · 2 chunks" once the prompt fills more than one chunk.

    As A1111's counter (modules/ui.py `update_token_counter`): <lora:...> tags are taken out, and
    a prompt that changes during the steps ([a:b:0.5], [a|b]) counts its longest text.
    """
    text, _ = parse_extra_networks(text)
    try:
        texts = [t for _, t in schedule(text, steps)]
    except Exception:  # noqa: BLE001 - a half-typed bracket counts as plain text
        texts = [text]
    used, available = max((token_counts(tokenizer, t) for t in texts), key=lambda c: c[0])
    chunks = available // chunk_length(tokenizer)
    return f"{used}/{available}" + (f" · {chunks} chunks" if chunks > 1 else "")

"""Errors a user can cause. Their message is one clear sentence, shown as is by the CLI and UI.

`describe(exc)` is the one place that turns any exception into that sentence, out of memory on
any device included, so the window, the CLI and a cluster worker say the same thing.
"""

from __future__ import annotations

import sys
from typing import Any


class UserError(Exception):
    """A mistake in the user's input or files: show `str(err)`, never a traceback."""


class ModelLoadError(UserError):
    """A model path or file that cannot be opened as a Stable Diffusion model."""


class GenerationCancelled(Exception):
    """Raised inside the denoising loop when the cancel flag is set."""


# How allocators other than CUDA's word running out (MPS, the CPU allocator, XPU).
_OOM_WORDS = ("out of memory", "not enough memory", "can't allocate memory",
              "cannot allocate memory")


def is_out_of_memory(exc: BaseException) -> bool:
    """torch.OutOfMemoryError on any device, Python's MemoryError, or an allocator's own wording."""
    if isinstance(exc, MemoryError):
        return True
    torch: Any = sys.modules.get("torch")  # never import torch just to look at an error
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    if oom is not None and isinstance(exc, oom):
        return True
    return isinstance(exc, RuntimeError) and any(w in str(exc).lower() for w in _OOM_WORDS)


def is_user_caused(exc: BaseException) -> bool:
    """Errors the user can act on: their own input, their files, the size of the job."""
    return isinstance(exc, UserError) or is_out_of_memory(exc)


def sentence(text: str) -> str:
    """One line, ending with a full stop."""
    text = " ".join(text.split())
    return text if text.endswith((".", "!", "?")) else text + "."


def describe(exc: BaseException, width: int | None = None, height: int | None = None) -> str:
    """One sentence for the user, whatever went wrong (the traceback belongs in the log)."""
    if isinstance(exc, UserError):
        return sentence(str(exc) or type(exc).__name__)
    if isinstance(exc, GenerationCancelled):
        return "Cancelled."
    if is_out_of_memory(exc):
        size = f" at {width}×{height}" if width and height else ""
        return (f"Out of memory{size}: the model was unloaded to free memory; lower the size or "
                "the batch, or use fp16 on a GPU, then generate again.")
    return f"Something went wrong: {type(exc).__name__}: {sentence(str(exc) or 'no details')}"

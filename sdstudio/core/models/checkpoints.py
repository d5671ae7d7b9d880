"""Opening weight files safely: check safetensors headers, never run code from a pickle."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from sdstudio.core.errors import ModelLoadError

SAFETENSORS = {".safetensors"}
PICKLES = {".ckpt", ".pt", ".pth", ".bin"}


def check_safetensors(path: Path) -> dict[str, tuple[int, ...]]:
    """Read the header (no tensor data) and return {key: shape}; refuse truncated/corrupt files."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118
    except Exception as exc:  # safetensors raises its own SafetensorError, OSError, ...
        raise ModelLoadError(
            f"{path.name} is not a valid .safetensors file (truncated or corrupt: {_first_line(exc)})."
        ) from None


def load_pickle_weights(path: Path) -> dict:
    """Load a .ckpt/.pt state dict with `weights_only=True`: a pickle that carries code is refused."""
    try:
        try:
            return torch.load(str(path), map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError as exc:  # legacy (non-zip) files cannot be memory-mapped
            if "mmap" not in str(exc):
                raise
            return torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ModelLoadError(
            f"{path.name} contains code, not only weights, and was refused; "
            "use a .safetensors version of this model."
        ) from None
    except Exception as exc:
        raise ModelLoadError(
            f"{path.name} cannot be read as a checkpoint ({_first_line(exc)})."
        ) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0].rstrip(".") if text else type(exc).__name__

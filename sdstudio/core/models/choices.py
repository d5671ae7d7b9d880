"""Per-model choices the user made once and expects kept: SD 2.x prediction type, separate VAE.

One small JSON file in the user's config folder, {model: {"prediction": ..., "vae": ...}},
keyed by the model's resolved path (or its id for the demo and hub models), written atomically.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from sdstudio.core.models.jsonstore import read_json, write_json
from sdstudio.core.paths import config_dir

_LOCK = threading.Lock()


def _file() -> Path:
    return config_dir() / "model_choices.json"


def model_key(model: str | os.PathLike[str]) -> str:
    if model == "demo":  # request.DEMO_MODEL (not imported: it would import torch)
        return "demo"
    path = Path(model).expanduser()
    return str(path.resolve()) if path.exists() else str(model)


def _read() -> dict:
    return read_json(_file())


def recall(model: str | os.PathLike[str]) -> dict[str, Any]:
    entry = _read().get(model_key(model))
    return dict(entry) if isinstance(entry, dict) else {}


def remember(model: str | os.PathLike[str], **values: Any) -> None:
    """Store `values` for `model`; a value of None forgets that choice."""
    with _LOCK:
        data = _read()
        entry = {**data.get(model_key(model), {}), **values}
        entry = {k: v for k, v in entry.items() if v is not None}
        if entry:
            data[model_key(model)] = entry
        else:
            data.pop(model_key(model), None)
        write_json(_file(), data)

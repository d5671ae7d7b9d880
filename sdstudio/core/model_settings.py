"""A model folder's own settings, `sdstudio.json` beside `model_index.json`: {"guidance": 3.0}.

Torch-free on purpose: the window reads it the moment a model is chosen, before the worker has
loaded anything, so even a Generate pressed during the first load uses the model's own scale.
"""

from __future__ import annotations

import json
from pathlib import Path

from sdstudio.core import atomic
from sdstudio.core.paths import demo_model_dir

MODEL_SETTINGS_FILE = "sdstudio.json"
DEFAULT_GUIDANCE = 7.5  # SD's usual CFG scale


def save_model_settings(folder: Path, guidance: float) -> None:
    atomic.write_text(folder / MODEL_SETTINGS_FILE, json.dumps({"guidance": guidance}) + "\n")


def recommended_guidance(folder: Path) -> float:
    """The CFG scale a model folder recommends (small models over-saturate at SD's 7.5);
    anything missing or odd gives the default."""
    try:
        value = float(json.loads((folder / MODEL_SETTINGS_FILE).read_text("utf-8"))["guidance"])
    except (OSError, ValueError, KeyError, TypeError):
        return DEFAULT_GUIDANCE
    return value if 0.0 <= value <= 30.0 else DEFAULT_GUIDANCE


def recommended_guidance_for(model: str) -> float:
    """Likewise for a model id as the UI and CLI hold it: "demo", a folder, or anything else
    (a single checkpoint file or a hub id: the default)."""
    if model == "demo":  # request.DEMO_MODEL, not imported: request.py imports diffusers
        return recommended_guidance(demo_model_dir())
    path = Path(model).expanduser()
    return recommended_guidance(path) if path.is_dir() else DEFAULT_GUIDANCE

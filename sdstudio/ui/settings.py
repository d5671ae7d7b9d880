"""QSettings in one INI file under `config_dir()` (so `SDSTUDIO_HOME` moves it), plus defaults."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSettings

from sdstudio.core.model_settings import DEFAULT_GUIDANCE
from sdstudio.core.paths import config_dir, default_models_dir

# UI defaults; they mirror GenerationRequest's defaults without importing the core (fast start).
DEFAULT_PARAMS: dict[str, Any] = {
    "prompt": "a red circle on a blue background",
    "negative_prompt": "",
    "seed": 0,
    "seed_random": True,
    "steps": 20,
    "guidance": DEFAULT_GUIDANCE,
    "scheduler": "Euler a",
    "width": 128,  # the demo model's native size; a loaded model's own size replaces it
    "height": 128,
    "batch_size": 1,
    "init_image": None,
    "strength": 0.75,
    "mask": None,
    "model": "demo",
    "device": "auto",
    "dtype": "auto",
}


def settings_path() -> Path:
    return config_dir() / "sdstudio.ini"


def open_settings() -> QSettings:
    path = settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return QSettings(str(path), QSettings.Format.IniFormat)


def load_params(settings: QSettings) -> dict[str, Any]:
    """Last parameters (JSON in one key: types survive the INI round trip), over the defaults."""
    params = dict(DEFAULT_PARAMS)
    raw = settings.value("generation/params", "")
    if isinstance(raw, str) and raw:
        try:
            saved = json.loads(raw)
        except ValueError:
            saved = {}
        if isinstance(saved, dict):
            params.update({k: v for k, v in saved.items() if k in DEFAULT_PARAMS})
    return params


def save_params(settings: QSettings, params: dict[str, Any]) -> None:
    settings.setValue("generation/params", json.dumps(params, ensure_ascii=False, sort_keys=True))


def models_folder(settings: QSettings) -> Path:
    raw = settings.value("models/folder", "")
    return Path(raw) if isinstance(raw, str) and raw else default_models_dir()


def set_models_folder(settings: QSettings, folder: Path) -> None:
    settings.setValue("models/folder", str(folder))


def opened_models(settings: QSettings) -> list[str]:
    raw = settings.value("models/opened", "")
    try:
        items = json.loads(raw) if isinstance(raw, str) and raw else []
    except ValueError:
        items = []
    return [str(x) for x in items if isinstance(x, str)]


def set_opened_models(settings: QSettings, models: list[str]) -> None:
    settings.setValue("models/opened", json.dumps(models[-10:]))

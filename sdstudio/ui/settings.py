"""Settings: every persisted key of the app, typed, with its default and its validation.

One INI file under `config_dir()` (so `SDSTUDIO_HOME` moves it). Nothing else in the UI reads or
writes QSettings keys: a key that is not here does not exist. A value that is missing, of the
wrong type or out of range reads as its default, so a hand-edited or stale file never breaks the
window.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, QSettings

from sdstudio.core import defaults as d
from sdstudio.core.errors import UserError
from sdstudio.core.paths import config_dir, default_gallery_dir, default_models_dir
from sdstudio.core.request import GenerationRequest

# The generation fields the window restores (GenerationRequest's names, plus `seed_random`, a
# UI-only choice). The window starts at the demo model's size; a loaded model's size replaces it.
DEFAULT_PARAMS: dict[str, Any] = {
    "prompt": d.DEFAULT_PROMPT,
    "negative_prompt": "",
    "seed": 0,
    "seed_random": True,
    "steps": d.DEFAULT_STEPS,
    "guidance": d.DEFAULT_GUIDANCE,
    "scheduler": d.DEFAULT_SAMPLER,
    "width": d.DEMO_SIZE,
    "height": d.DEMO_SIZE,
    "batch_size": 1,
    "clip_skip": 1,
    "init_image": None,
    "strength": d.DEFAULT_STRENGTH,
    "mask": None,
    "model": d.DEMO_MODEL,
    "device": "auto",
    "dtype": "auto",
    "memory": "auto",  # the memory ladder's first rung (Settings dialog)
    "compile": False,  # torch.compile the UNet and VAE decoder (Settings dialog)
    # the canvas (inpaint options, hires fix), as GenerationRequest's defaults
    "inpaint_area": "whole",
    "inpaint_padding": 32,
    "masked_content": "original",
    "mask_blur": 0,
    "hires_scale": 1.0,
    "hires_steps": 0,
    "hires_strength": 0.5,
    "hires_upscaler": "Latent",
}
MAX_OPENED_MODELS = 10


def settings_path() -> Path:
    return config_dir() / "sdstudio.ini"


def _valid(name: str, value: Any) -> bool:
    """Whether a saved parameter may be restored (else its default is used)."""
    default = DEFAULT_PARAMS[name]
    if name in ("init_image", "mask"):
        return value is None or isinstance(value, str)
    if name == "device":
        return value in d.DEVICES
    if name == "dtype":
        return value in d.DTYPES
    if name == "memory":
        return value in d.MEMORY_MODES
    if name in ("inpaint_area", "masked_content"):
        return value in (d.INPAINT_AREAS if name == "inpaint_area" else d.MASKED_CONTENTS)
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        limits = {"seed": (0, d.MAX_SEED), "steps": (1, d.MAX_STEPS),
                  "width": (8, d.MAX_SIDE), "height": (8, d.MAX_SIDE),
                  "batch_size": (1, d.MAX_BATCH), "clip_skip": (1, 12), "inpaint_padding": (0, d.MAX_SIDE),
                  "mask_blur": (0, d.MAX_MASK_BLUR), "hires_steps": (0, d.MAX_STEPS)}[name]
        return (isinstance(value, int) and not isinstance(value, bool)
                and limits[0] <= value <= limits[1])
    if isinstance(default, float):
        hi = {"guidance": d.MAX_GUIDANCE, "hires_scale": d.MAX_HIRES_SCALE}.get(name, 1.0)
        return (isinstance(value, int | float) and not isinstance(value, bool)
                and math.isfinite(value) and 0 <= value <= hi)
    return isinstance(value, str)


class Settings:
    """The app's settings over one QSettings. Tests pass a QSettings on a temporary file."""

    PARAMS = "generation/params"  # JSON in one key: types survive the INI round trip
    MODELS_FOLDER = "models/folder"
    OPENED_MODELS = "models/opened"
    GALLERY_FOLDER = "gallery/folder"
    GEOMETRY = "window/geometry"
    STATE = "window/state"
    QUEUE = "queue/saved"  # the jobs kept for the next start, as request JSON
    PREVIEW_SOURCE = "preview/source"  # 0: the predicted image (x0), 1: the noisy latent (x_t)
    PREVIEW_SMOOTH = "preview/smooth"  # smooth scaling of small images (else pixel-exact)
    GALLERY_SORT = "gallery/sort"  # the gallery's sort box index: 0 newest first, 1 oldest
    GALLERY_SEARCH = "gallery/search"

    def __init__(self, qsettings: QSettings | None = None) -> None:
        if qsettings is None:
            path = settings_path()
            path.parent.mkdir(parents=True, exist_ok=True)
            qsettings = QSettings(str(path), QSettings.Format.IniFormat)
        self.qsettings = qsettings

    # --- generation parameters -------------------------------------------------------------
    def has_params(self) -> bool:
        """False on the very first start (nothing saved yet)."""
        return self.qsettings.contains(self.PARAMS)

    def params(self) -> dict[str, Any]:
        """The last parameters, each valid one over its default."""
        params = dict(DEFAULT_PARAMS)
        saved = self._json(self.PARAMS, {})
        if isinstance(saved, dict):
            params.update({k: v for k, v in saved.items() if k in params and _valid(k, v)})
        return params

    def set_params(self, params: dict[str, Any]) -> None:
        known = {k: v for k, v in params.items() if k in DEFAULT_PARAMS}
        self.qsettings.setValue(self.PARAMS, json.dumps(known, ensure_ascii=False, sort_keys=True))

    # --- folders and models ----------------------------------------------------------------
    def models_folder(self) -> Path:
        return self._path(self.MODELS_FOLDER) or default_models_dir()

    def set_models_folder(self, folder: str | Path) -> None:
        self.qsettings.setValue(self.MODELS_FOLDER, str(folder))

    def gallery_folder(self) -> Path:
        return self._path(self.GALLERY_FOLDER) or default_gallery_dir()

    def set_gallery_folder(self, folder: str | Path) -> None:
        self.qsettings.setValue(self.GALLERY_FOLDER, str(folder))

    def opened_models(self) -> list[str]:
        items = self._json(self.OPENED_MODELS, [])
        return [x for x in items if isinstance(x, str)] if isinstance(items, list) else []

    def set_opened_models(self, models: list[str]) -> None:
        self.qsettings.setValue(self.OPENED_MODELS, json.dumps(models[-MAX_OPENED_MODELS:]))

    # --- preview and gallery view ----------------------------------------------------------
    def preview_source(self) -> int:
        return self._choice(self.PREVIEW_SOURCE, 2)

    def set_preview_source(self, index: int) -> None:
        self.qsettings.setValue(self.PREVIEW_SOURCE, json.dumps(int(index)))

    def preview_smooth(self) -> bool:
        return self._json(self.PREVIEW_SMOOTH, False) is True

    def set_preview_smooth(self, smooth: bool) -> None:
        self.qsettings.setValue(self.PREVIEW_SMOOTH, json.dumps(bool(smooth)))

    def gallery_sort(self) -> int:
        return self._choice(self.GALLERY_SORT, 2)

    def set_gallery_sort(self, index: int) -> None:
        self.qsettings.setValue(self.GALLERY_SORT, json.dumps(int(index)))

    def gallery_search(self) -> str:
        raw = self._json(self.GALLERY_SEARCH, "")
        return raw if isinstance(raw, str) else ""

    def set_gallery_search(self, text: str) -> None:
        self.qsettings.setValue(self.GALLERY_SEARCH, json.dumps(text, ensure_ascii=False))

    # --- window ------------------------------------------------------------------------------
    def geometry(self) -> QByteArray | None:
        return self._bytes(self.GEOMETRY)

    def window_state(self) -> QByteArray | None:
        return self._bytes(self.STATE)

    def set_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.qsettings.setValue(self.GEOMETRY, geometry)
        self.qsettings.setValue(self.STATE, state)

    # --- the queue kept for the next start -------------------------------------------------
    def saved_queue(self) -> list[GenerationRequest]:
        """The requests kept at the last close; one that no longer validates is dropped."""
        items = self._json(self.QUEUE, [])
        kept = []
        for item in items if isinstance(items, list) else []:
            try:
                kept.append(GenerationRequest.from_dict(item).validate())
            except (UserError, TypeError, AttributeError, ValueError):
                continue
        return kept

    def set_saved_queue(self, requests: list[GenerationRequest]) -> None:
        if requests:
            self.qsettings.setValue(self.QUEUE, json.dumps([r.to_dict() for r in requests],
                                                           ensure_ascii=False))
        else:
            self.qsettings.remove(self.QUEUE)

    def sync(self) -> None:
        self.qsettings.sync()

    # --- reading ------------------------------------------------------------------------------
    def _json(self, key: str, default: Any) -> Any:
        raw = self.qsettings.value(key, "")
        if not isinstance(raw, str) or not raw:
            return default
        try:
            return json.loads(raw)
        except ValueError:
            return default

    def _choice(self, key: str, count: int) -> int:
        """An index in 0..count-1, 0 where missing or out of range."""
        raw = self._json(key, 0)
        ok = isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < count
        return raw if ok else 0

    def _path(self, key: str) -> Path | None:
        raw = self.qsettings.value(key, "")
        return Path(raw) if isinstance(raw, str) and raw else None

    def _bytes(self, key: str) -> QByteArray | None:
        raw = self.qsettings.value(key)
        return raw if isinstance(raw, QByteArray) else None

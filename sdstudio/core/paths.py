"""Where sdstudio keeps things. `SDSTUDIO_HOME` (used by the tests) puts everything under one folder."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

APP = "sdstudio"
RESOURCES = Path(__file__).resolve().parent.parent.parent / "resources"


def resources_dir() -> Path:
    """The shipped data folder (the repo's resources/, or the packaged app's copy)."""
    override = os.environ.get("SDSTUDIO_RESOURCES")
    if override:
        return Path(override)
    import sys

    frozen = getattr(sys, "_MEIPASS", None)  # PyInstaller bundle
    return Path(frozen) / "resources" if frozen else RESOURCES


def demo_model_dir() -> Path:
    return resources_dir() / "models" / "demo"


def _home() -> Path | None:
    h = os.environ.get("SDSTUDIO_HOME")
    return Path(h) if h else None


def config_dir() -> Path:
    h = _home()
    return h / "config" if h else Path(platformdirs.user_config_dir(APP))


def data_dir() -> Path:
    h = _home()
    return h / "data" if h else Path(platformdirs.user_data_dir(APP))


def cache_dir() -> Path:
    h = _home()
    return h / "cache" if h else Path(platformdirs.user_cache_dir(APP))


def default_gallery_dir() -> Path:
    h = _home()
    if h:
        return h / "gallery"
    return Path(platformdirs.user_pictures_dir()) / APP


def default_models_dir() -> Path:
    return data_dir() / "models"


def runtime_dir() -> Path:
    """Per-session state of running processes (the engine registry of core/threads.py)."""
    h = _home()
    if h:
        return h / "run"
    import warnings

    with warnings.catch_warnings():  # no XDG_RUNTIME_DIR (containers): platformdirs' /tmp folder
        warnings.simplefilter("ignore")
        return Path(platformdirs.user_runtime_dir(APP))

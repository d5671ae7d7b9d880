"""Other tools' folders (A1111's outputs/, ComfyUI's output/, any folder) as read-only sources.

A source is indexed and searched like the gallery, but nothing is ever written inside it: its
index, thumbnails and favourites live in the cache folder (see `Gallery(read_only=True)`). The
list is one small JSON file in the config folder, shared by the window and the CLI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sdstudio.core import atomic
from sdstudio.core.errors import UserError
from sdstudio.core.gallery.store import Gallery
from sdstudio.core.paths import config_dir

SOURCES_FILE = "gallery_sources.json"
MAX_SOURCES = 100


def sources_path() -> Path:
    return config_dir() / SOURCES_FILE


def load_sources(path: Path | None = None) -> list[Path]:
    """The saved source folders (a missing or damaged file: none; odd entries are left out)."""
    try:
        data = json.loads((path or sources_path()).read_text("utf-8"))
        entries = data["sources"]
    except (OSError, ValueError, KeyError, TypeError):
        return []
    if not isinstance(entries, list):
        return []
    return [Path(e) for e in entries[:MAX_SOURCES] if isinstance(e, str) and e and "\x00" not in e]


def _save(folders: list[Path], path: Path | None) -> None:
    target = path or sources_path()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(target, json.dumps({"sources": [str(f) for f in folders]}, indent=1))
    except OSError as exc:
        raise UserError(f"Could not save the list of gallery sources in {target} "
                        f"({exc.strerror or exc}).") from exc


def add_source(folder: str | os.PathLike[str], path: Path | None = None) -> Path:
    """Add `folder` to the list (once); returns it resolved. Raises UserError if not a folder."""
    resolved = Path(folder).expanduser().resolve()
    if not resolved.is_dir():
        raise UserError(f"{resolved} is not a folder: only a folder can be a gallery source.")
    folders = load_sources(path)
    if resolved not in folders:
        if len(folders) >= MAX_SOURCES:
            raise UserError(f"There are already {MAX_SOURCES} gallery sources; remove one first.")
        _save([*folders, resolved], path)
    return resolved


def remove_source(folder: str | os.PathLike[str], path: Path | None = None) -> Path:
    """Take `folder` off the list (its files are not touched). Raises UserError if not listed."""
    folders = load_sources(path)
    wanted = {Path(folder).expanduser(), Path(folder).expanduser().resolve()}
    kept = [f for f in folders if f not in wanted]
    if len(kept) == len(folders):
        raise UserError(f"{folder} is not a gallery source (see `sdstudio gallery sources list`).")
    _save(kept, path)
    return next(f for f in folders if f in wanted)


def open_source(folder: str | os.PathLike[str], *, sync: bool = True) -> Gallery:
    """The source's gallery, read-only: saving, deleting and the favourites file are refused or
    kept in the index, and no temporary file inside it is ever removed."""
    return Gallery(folder, sync=sync, create=False, read_only=True)

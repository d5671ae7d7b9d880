"""Small JSON files of the model code (choices, hash cache): read leniently, write atomically."""

from __future__ import annotations

import json
from pathlib import Path

from sdstudio.core import atomic


def read_json(path: Path) -> dict:
    """The file's object, or {} when it is missing or damaged (a cache must never fail a load)."""
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: dict) -> None:
    """Through the one atomic write: a crash leaves the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps(data, indent=1, sort_keys=True))

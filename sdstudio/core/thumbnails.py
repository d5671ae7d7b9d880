"""Small JPEG thumbnails of gallery images, cached on disk by (path, size, mtime)."""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path

from PIL import Image

from sdstudio.core.paths import cache_dir

THUMB_SIDE = 160


def thumbnails_dir() -> Path:
    return cache_dir() / "thumbnails"


def thumbnail_path(src: Path, side: int = THUMB_SIDE, root: Path | None = None) -> Path:
    """Where the thumbnail of `src` lives; a changed file gets a new name (stat in the key)."""
    st = src.stat()
    key = f"{src.resolve()}|{st.st_size}|{st.st_mtime_ns}|{side}".encode()
    digest = hashlib.sha1(key, usedforsecurity=False).hexdigest()
    return (root or thumbnails_dir()) / digest[:2] / f"{digest}.jpg"


def ensure_thumbnail(
    src: str | os.PathLike[str], side: int = THUMB_SIDE, root: Path | None = None
) -> Path:
    """Return the cached thumbnail of `src`, making it first if needed (safe from any thread).
    Threads should pass `root` (read where the settings live) rather than read it themselves."""
    src = Path(src)
    dest = thumbnail_path(src, side, root)
    if dest.exists():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(src) as im:
        im.draft("RGB", (side, side))
        im.thumbnail((side, side), Image.Resampling.BILINEAR)
        rgb = im.convert("RGB")
    tmp = dest.with_name(f".{os.getpid()}-{threading.get_ident()}-{dest.name}")
    rgb.save(tmp, "JPEG", quality=85)
    os.replace(tmp, dest)  # atomic: readers never see half a thumbnail
    return dest

"""Small JPEG thumbnails of gallery images, cached on disk by (path, size, mtime).

Decoding is bounded: JPEGs decode reduced (`draft`); other images above MAX_PIXELS are refused
before any pixel is decoded, and those above BIG_PIXELS decode one at a time, so a few small
files that declare huge sizes cannot take gigabytes between the loader's threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
from pathlib import Path

from PIL import Image

from sdstudio.core import atomic
from sdstudio.core.errors import UserError
from sdstudio.core.paths import cache_dir
from sdstudio.core.png import display_name

THUMB_SIDE = 160
# Pillow keeps 4 bytes per pixel for RGB(A), and shrinking makes one full-size copy (RGBA is
# premultiplied first): a thumbnail peaks near 8 bytes per pixel, 256 MB at the cap (measured in
# stress/memory_big_pngs.py).
MAX_PIXELS = 32_000_000  # about 5650 x 5650, or 8000 x 4000
BIG_PIXELS = 8_000_000  # above this, one decode at a time (two pool threads)
_BIG = threading.Lock()


class ThumbnailError(UserError):
    """An image that gets no thumbnail (too large, or unreadable)."""


def thumbnails_dir() -> Path:
    return cache_dir() / "thumbnails"


def thumbnail_path(src: Path, side: int = THUMB_SIDE, root: Path | None = None) -> Path:
    """Where the thumbnail of `src` lives; a changed file gets a new name (stat in the key)."""
    st = src.stat()
    key = f"{src.resolve()}|{st.st_size}|{st.st_mtime_ns}|{side}".encode("utf-8", "surrogateescape")
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
    rgb = _reduced(src, side)
    atomic.write_atomic(dest, lambda f: rgb.save(f, "JPEG", quality=85), durable=False)
    return dest


def _reduced(src: Path, side: int) -> Image.Image:
    with Image.open(src) as im:
        im.draft("RGB", (side, side))  # JPEG: decode at 1/2, 1/4 or 1/8 scale
        w, h = im.size
        if w * h > MAX_PIXELS:
            raise ThumbnailError(f"{display_name(src)} is {w}x{h}: too large for a thumbnail.")
        lock = _BIG if w * h > BIG_PIXELS else contextlib.nullcontext()
        with lock:
            im.thumbnail((side, side), Image.Resampling.BILINEAR)
            return im.convert("RGB")

"""The metadata texts of an opened image, as one dict for the readers.

PNG text chunks come as they are; JPEG/WebP carry A1111, SwarmUI and Fooocus data in the EXIF
UserComment (key "UserComment"); Draw Things writes XMP. Stealth data (A1111's stealth PNG
info, NovelAI) hides in the lowest bit of the alpha (or RGB) channel and is only read on request,
because it means decoding the pixels.
"""

from __future__ import annotations

import gzip
import zlib
from typing import Any

from PIL import Image

from sdstudio.core.png.readers.drawthings import XMP_KEY
from sdstudio.core.png.readers.values import MAX_TEXT

_EXIF_IFD, _USER_COMMENT, _MAKER_NOTE, _SOFTWARE = 0x8769, 0x9286, 0x927C, 0x0131
MAX_STEALTH_PIXELS = 40_000_000


def image_chunks(im: Image.Image, *, stealth: bool = False) -> dict[str, str]:
    """Every metadata text of `im` by name; never raises for odd files."""
    chunks = {str(k): v for k, v in im.info.items() if isinstance(v, str) and len(v) <= MAX_TEXT}
    xmp = im.info.get("xmp")
    if isinstance(xmp, (bytes, str)) and XMP_KEY not in chunks:
        chunks[XMP_KEY] = xmp.decode("utf-8", "replace") if isinstance(xmp, bytes) else xmp
    try:
        exif = im.getexif()
        ifd = exif.get_ifd(_EXIF_IFD)
        comment = decode_user_comment(ifd.get(_USER_COMMENT))
        if comment:
            chunks.setdefault("UserComment", comment)
        note = ifd.get(_MAKER_NOTE)
        if isinstance(note, bytes) and note.strip(b"\0") in (b"fooocus", b"a1111"):
            chunks.setdefault("fooocus_scheme", note.strip(b"\0").decode())
        software = exif.get(_SOFTWARE)
        if isinstance(software, str):
            chunks.setdefault("Software", software)
    except Exception:  # Pillow raises many kinds on damaged EXIF; there is simply none then
        pass
    if stealth and not chunks:
        chunks.update(read_stealth(im) or {})
    return chunks


def decode_user_comment(raw: Any) -> str:
    """EXIF UserComment: an 8-byte charset prefix, then the text (UTF-16 for UNICODE)."""
    if isinstance(raw, str):
        return raw.strip("\0")
    if not isinstance(raw, bytes) or len(raw) > MAX_TEXT * 2:
        return ""
    prefix, body = raw[:8], raw[8:]
    if prefix == b"UNICODE\0":
        big = len(body) >= 2 and body[0] == 0 and body[1] != 0
        little = len(body) >= 2 and body[1] == 0 and body[0] != 0
        if body[:2] in (b"\xfe\xff", b"\xff\xfe"):
            text = body.decode("utf-16", "replace")
        else:
            text = body.decode("utf-16-le" if little and not big else "utf-16-be", "replace")
    elif prefix in (b"ASCII\0\0\0", b"\0" * 8):
        text = body.decode("utf-8", "replace")
    else:
        text = raw.decode("utf-8", "replace")
    return text.strip("\0").strip()


_SIGNATURES = {b"stealth_pnginfo": ("alpha", False), b"stealth_pngcomp": ("alpha", True),
               b"stealth_rgbinfo": ("rgb", False), b"stealth_rgbcomp": ("rgb", True)}


def read_stealth(im: Image.Image) -> dict[str, str] | None:
    """A1111's stealth PNG info / NovelAI's: bits in the pixels' lowest bit, column by column.

    After the signature come a 32-bit length (in bits) and the data, gzipped for the "comp"
    kinds: A1111 text (returned as `parameters`) or NovelAI's JSON of its usual chunks.
    """
    import numpy as np

    w, h = im.size
    if w * h > MAX_STEALTH_PIXELS or im.mode not in ("RGBA", "RGB", "LA", "P"):
        return None
    try:
        pixels = np.asarray(im.convert("RGBA"))
    except (OSError, ValueError):
        return None
    for mode in ("alpha", "rgb"):
        bits = (pixels[..., 3:4] if mode == "alpha" else pixels[..., :3]) & 1
        flat = bits.transpose(1, 0, 2).reshape(-1)  # column-major, channels in order
        sig_len = len(b"stealth_pnginfo") * 8
        if flat.size < sig_len + 32:
            continue
        sig = np.packbits(flat[:sig_len]).tobytes()
        kind = _SIGNATURES.get(sig)
        if kind is None or kind[0] != mode:
            continue
        n = int("".join(map(str, flat[sig_len: sig_len + 32].tolist())), 2)
        if n <= 0 or n % 8 or sig_len + 32 + n > flat.size or n // 8 > MAX_TEXT:
            return None
        data = np.packbits(flat[sig_len + 32: sig_len + 32 + n]).tobytes()
        text = _gunzip(data) if kind[1] else data.decode("utf-8", "replace")
        return _stealth_chunks(text) if text else None
    return None


def _gunzip(data: bytes) -> str | None:
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(data, MAX_TEXT)  # a bomb stops at the cap
    except (zlib.error, gzip.BadGzipFile, EOFError):
        return None
    return out.decode("utf-8", "replace")


def _stealth_chunks(text: str) -> dict[str, str]:
    from sdstudio.core.png.readers.values import load_object

    data = load_object(text) if text.lstrip().startswith("{") else None
    if data is not None and ("Comment" in data or "Software" in data):  # NovelAI's chunks
        return {str(k): v if isinstance(v, str) else _dump(v) for k, v in data.items()}
    return {"parameters": text}


def _dump(value: Any) -> str:
    import json

    try:
        return json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        return ""

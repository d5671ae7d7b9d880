"""Hostile and odd PNG files, for the tests and the stress scripts: each kind once broke a gallery.

`write_bad_files(folder)` writes one file of every kind and returns {file name: kind}. The kinds
in READABLE must be listed (their odd values dropped); every other kind must be named, once, as
unreadable, while the gallery lists everything else.
"""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

from PIL import Image, PngImagePlugin

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Kinds whose file is a sound PNG with odd parameters: listed, with the odd values left out.
# Other tools' junk metadata (a ComfyUI graph too deep to parse) reads as "no parameters", and a
# JPEG is read through its EXIF whatever its name: both images are listed.
READABLE = {"seed-over-int64", "seed-infinity", "created-nan", "negative-list", "lone-surrogate",
            "deep-json-ours", "huge-settings-line", "quoted-backslashes",
            "size-overflow", "a1111-1e999-cfg", "declared-13300-square",
            "deep-json-comfyui", "jpeg-named-png"}


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, texts: dict[str, bytes] | None = None,
            idat: bytes | None = None, end: bool = True) -> bytes:
    """A PNG built chunk by chunk: any declared size, any text bytes, any (even bogus) pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    out = PNG_SIGNATURE + chunk(b"IHDR", ihdr)
    for key, value in (texts or {}).items():
        out += chunk(b"tEXt", key.encode("latin-1") + b"\0" + value)
    if idat is None:
        idat = zlib.compress(b"\0" + b"\0" * (3 * width)) if width * height <= 64 else b""
    out += chunk(b"IDAT", idat)
    return out + (chunk(b"IEND", b"") if end else b"")


def png_with_text(**chunks: str) -> bytes:
    """A real 8x8 PNG (Pillow-written) with the given text chunks."""
    import io

    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), "gray").save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def _ours(**fields: object) -> str:
    data: dict[str, object] = {"request": {"prompt": "ours", "negative_prompt": ""}, "seed": 1,
                               "created": 1.0, "record": {}}
    data.update(fields)
    return json.dumps(data)  # allow_nan: writes Infinity and NaN as JavaScript does


def bad_files() -> dict[str, bytes]:
    """{kind: file bytes} for every kind of hostile or odd PNG."""
    a1111 = "Steps: 20, Sampler: Euler a, CFG scale: 7"
    good = png_with_text(parameters="ok\n" + a1111 + ", Seed: 1")
    return {
        "bomb-400-megapixels": raw_png(20000, 20000),
        "declared-13300-square": raw_png(13300, 13300, idat=b"x"),  # under the bomb limit
        "seed-over-int64": png_with_text(parameters=f"p\n{a1111}, Seed: {2**64}, Size: 8x8"),
        "size-overflow": png_with_text(parameters=f"p\n{a1111}, Size: 99999999999x99999999999"),
        "a1111-1e999-cfg": png_with_text(parameters="p\nSteps: 2, CFG scale: 1e999, Seed: 3"),
        "seed-infinity": png_with_text(sdstudio=_ours(seed=float("inf"))),
        "created-nan": png_with_text(sdstudio=_ours(created=float("nan"))),
        "negative-list": png_with_text(sdstudio=_ours(request={"prompt": "p",
                                                               "negative_prompt": ["a", "b"]})),
        "lone-surrogate": png_with_text(sdstudio='{"request": {"prompt": "x\\ud800y"}, "seed": 2}'),
        "deep-json-ours": png_with_text(sdstudio="[" * 200_000),
        "deep-json-comfyui": png_with_text(prompt="{\"a\":" * 100_000),
        "huge-settings-line": png_with_text(parameters="word " * 200_000),
        "quoted-backslashes": png_with_text(parameters='k: "' + "\\\\" * 200_000),
        "text-over-cap": raw_png(8, 8, {"parameters": b"a" * (3 << 20)}),
        "truncated": good[: len(good) // 2],
        "no-iend": good[: -12],
        "empty": b"",
        "not-a-png": b"this is a text file, named .png",
        "jpeg-named-png": _jpeg(),
        "garbage-after-signature": PNG_SIGNATURE + b"\0garbage" * 10,
        "bad-crc": good[:29] + b"\0\0\0\0" + good[33:],
    }


def _jpeg() -> bytes:
    import io

    buf = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buf, "JPEG")
    return buf.getvalue()


def write_bad_files(folder: Path) -> dict[str, str]:
    """Write every kind into `folder`, plus a folder named like a PNG and a file whose name is not
    UTF-8 (POSIX). Returns {file name: kind} of the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    names: dict[str, str] = {}
    for kind, data in bad_files().items():
        (folder / f"bad-{kind}.png").write_bytes(data)
        names[f"bad-{kind}.png"] = kind
    (folder / "folder-named.png").mkdir(exist_ok=True)
    if os.name == "posix":
        name = os.fsdecode(b"bad-name-\xff\xfe.png")
        try:
            (folder / name).write_bytes(png_with_text(parameters="p"))
            names[name] = "non-utf8-name"
        except (OSError, UnicodeEncodeError):  # a file system that refuses such names
            pass
    return names

"""Reading and writing PNG files with generation parameters.

`parameters_from_info` is the one place where a PNG's text chunks become `Parameters`: our own
record first, then A1111's text, then other tools' chunks (`other_tools.parameters_from_other_tools`,
the seam where the readers of other tools' formats plug in). Every reader of PNG metadata (gallery
index, viewer, drops, `gallery show`, reuse) goes through it. Reading never decodes pixels, caps
what it reads, and raises only MetadataError, whatever the file holds.
"""

from __future__ import annotations

import errno
import os
import warnings
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from PIL import Image

from sdstudio.core import atomic
from sdstudio.core.errors import UserError
from sdstudio.core.png import other_tools
from sdstudio.core.png.a1111 import PARAMETERS_KEY, parse_parameters
from sdstudio.core.png.parameters import MetadataError, Parameters, clean_text
from sdstudio.core.png.record import SDSTUDIO_KEY, build_pnginfo, parse_record

if TYPE_CHECKING:
    from sdstudio.core.request import GenerationRequest

MAX_TEXT_CHUNK = 2 << 20  # characters; prompts are kilobytes, big ComfyUI graphs a few hundred
_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"
_TAIL = 1 << 16  # how far from the end an IEND chunk is looked for (some tools append bytes)
# Reading never decodes pixels and decoding has its own caps (thumbnails.MAX_PIXELS), so Pillow's
# "could be a decompression bomb" warning for a size it still opens is noise on the command line.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def display_name(path: str | os.PathLike[str]) -> str:
    """A file's name fit to print, even when it is not valid UTF-8."""
    name = Path(path).name
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def parameters_from_info(info: dict[str, Any]) -> Parameters | None:
    """Parameters from a PNG's text chunks, preferring our exact record; None if there are none."""
    for key, value in info.items():
        if isinstance(value, str) and len(value) > MAX_TEXT_CHUNK:
            raise MetadataError(f"The image holds a {len(value) >> 20} MB text chunk "
                                f"'{clean_text(str(key)[:40])}', more than the "
                                f"{MAX_TEXT_CHUNK >> 20} MB sdstudio reads.")
    p = _parameters_from_info(info)
    return p.cleaned() if p is not None else None


def _parameters_from_info(info: dict[str, Any]) -> Parameters | None:
    ours = info.get(SDSTUDIO_KEY)
    text = info.get(PARAMETERS_KEY)
    if isinstance(ours, str):
        p = parse_record(ours, text)
        if p is not None:
            return p
    if isinstance(text, str):
        return parse_parameters(text)
    return other_tools.parameters_from_other_tools(info)


def read_info(path: str | os.PathLike[str]) -> tuple[dict[str, Any], tuple[int, int]]:
    """The text chunks and size of a PNG, without decoding its pixels. Raises only MetadataError."""
    name = display_name(path)
    try:
        with open(path, "rb") as f:
            return _read_info(f, name)
    except MetadataError:
        raise
    except FileNotFoundError as exc:
        raise MetadataError(f"{name} does not exist.") from exc
    except IsADirectoryError as exc:
        raise MetadataError(f"{name} is a folder, not a PNG file.") from exc
    except PermissionError as exc:
        raise MetadataError(f"{name} cannot be read: permission denied.") from exc
    except Image.DecompressionBombError as exc:
        raise MetadataError(f"{name} declares more pixels than Pillow's limit for a safe open "
                            f"({exc}).") from exc
    except Exception as exc:  # whatever a hostile file makes Pillow raise: still one sentence
        raise MetadataError(f"{name} is a damaged PNG file ({exc}).") from exc


def _read_info(f: IO[bytes], name: str) -> tuple[dict[str, Any], tuple[int, int]]:
    try:
        im = Image.open(f)
    except Image.UnidentifiedImageError as exc:
        raise MetadataError(f"{name} is not an image, or is too damaged to read.") from exc
    with im:
        if im.format != "PNG":
            raise MetadataError(f"{name} is a {im.format} image, not a PNG.")
        info: dict[str, Any] = {str(k): v for k, v in im.info.items()}
        size = im.size
    if not _has_end(f):
        raise MetadataError(f"{name} is cut short (the PNG has no end): it was not fully written.")
    return info, size


def _has_end(f: IO[bytes]) -> bool:
    end = f.seek(0, os.SEEK_END)
    f.seek(max(0, end - 12))
    if f.read(12) == _IEND:
        return True
    f.seek(max(0, end - _TAIL))
    return _IEND in f.read(_TAIL)


def read_png(path: str | os.PathLike[str]) -> Parameters | None:
    """Generation parameters of a PNG; None for a PNG without any. Raises only MetadataError."""
    return read_png_and_size(path)[0]


def read_png_and_size(path: str | os.PathLike[str]) -> tuple[Parameters | None, tuple[int, int]]:
    """Parameters and pixel size of a PNG; an error names the file."""
    info, size = read_info(path)
    try:
        return parameters_from_info(info), size
    except MetadataError as exc:
        name = display_name(path)
        if name in str(exc):
            raise
        raise MetadataError(f"{name}: {exc}") from exc


def request_from_png(path: str | os.PathLike[str]) -> GenerationRequest:
    """The request stored in a PNG, or one clear sentence why there is none."""
    params = read_png(path)
    if params is None:
        raise MetadataError(f"{display_name(path)} has no generation parameters to reuse.")
    return params.to_request()


def describe_os_error(exc: OSError, target: Path, what: str = "folder") -> str:
    """One sentence for the OS errors saving can meet; `what` names the folder for the front end
    ("gallery folder", "output folder")."""
    folder = target.parent
    if exc.errno == errno.ENOSPC or exc.errno == getattr(errno, "EDQUOT", -1):
        return f"The disk holding {folder} is full: free some space and generate again."
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"The {what} {folder} is read-only: choose another {what}."
    if exc.errno == errno.ENOENT:
        return f"The folder {folder} does not exist or was removed."
    return f"Could not write {display_name(target)} in {folder}: {exc.strerror or exc}."


def write_png(
    path: str | os.PathLike[str],
    image: Image.Image,
    request: GenerationRequest,
    seed: int,
    extra: dict[str, Any] | None = None,
    *,
    overwrite: bool = True,
    what: str = "folder",
) -> Path:
    """Write `image` with its metadata atomically (see `core.atomic`).

    With overwrite=False an existing file raises FileExistsError. Disk errors become UserError
    with one sentence.
    """
    final = Path(path)
    info = build_pnginfo(request, seed, extra)
    try:
        return atomic.write_atomic(
            final, lambda f: image.save(f, format="PNG", pnginfo=info, compress_level=4),
            overwrite=overwrite)
    except FileExistsError:
        raise
    except OSError as exc:
        raise UserError(describe_os_error(exc, final, what)) from exc

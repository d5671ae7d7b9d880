"""The labelled grid image of a sweep, one per Z value, and its metadata (the sweep, to rerun it).

Laid out as A1111's `draw_grid_annotations`: X labels centred above the columns, Y labels to the
left of the rows, black text on white, the font sized from the cell size; the Z value, when
there is a Z axis, is a title line above. The font is Pillow's own (no font file is shipped).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from sdstudio.core import atomic
from sdstudio.core.errors import UserError
from sdstudio.core.grid import Sweep
from sdstudio.core.png.a1111 import PARAMETERS_KEY, format_parameters, format_settings
from sdstudio.core.png.io import describe_os_error, display_name, read_info

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont
    from PIL.ImageFont import ImageFont as BitmapFont

GRID_KEY = "sdstudio_grid"  # PNG text chunk: the sweep as JSON (Sweep.to_dict + z index)
MAX_GRID_PIXELS = 256_000_000
NAME_TRIES = 10_000


def _font(size: int) -> FreeTypeFont | BitmapFont:
    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1, with FreeType
    except (TypeError, OSError):  # older Pillow or no FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _wrap(draw: ImageDraw.ImageDraw, text: str, font: FreeTypeFont | BitmapFont,
          width: float) -> list[str]:
    """Words on lines no wider than `width` (a word longer than that gets a line of its own)."""
    lines: list[str] = []
    for word in text.split(" "):
        if lines and draw.textlength(f"{lines[-1]} {word}", font=font) <= width:
            lines[-1] += f" {word}"
        else:
            lines.append(word)
    return lines or [""]


def draw_grid(cells: Sequence[Image.Image | None], nx: int, ny: int,
              x_labels: Sequence[str] = (), y_labels: Sequence[str] = (),
              title: str = "") -> Image.Image:
    """Cells (row-major, X across, Y down; None: a blank cell) with their axis labels."""
    first = next((c for c in cells if c is not None), None)
    w, h = first.size if first is not None else (64, 64)
    if nx * ny * w * h > MAX_GRID_PIXELS:
        raise UserError(f"The grid would be {nx * w}×{ny * h} pixels, too large to draw.")
    size = max(12, (w + h) // 25)
    font, spacing = _font(size), size // 2
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))

    def block(lines: list[str]) -> tuple[float, float]:
        widths = [probe.textlength(line, font=font) for line in lines]
        return max(widths, default=0), len(lines) * (size + spacing // 2)

    cols = [_wrap(probe, t, font, w) for t in x_labels] if any(x_labels) else []
    rows = [_wrap(probe, t, font, max(w * 3 // 4, 4 * size)) for t in y_labels] if any(
        y_labels) else []
    heads = [_wrap(probe, title, font, max(nx * w, 8 * size))] if title else []
    pad_left = int(max([w * 3 // 4, *(block(r)[0] + 2 * spacing for r in rows)])) if rows else 0
    col_h = max((block(c)[1] for c in cols), default=0)
    pad_top = int(col_h + 2 * spacing) if cols else 0
    title_h = int(block(heads[0])[1] + 2 * spacing) if heads else 0
    out = Image.new("RGB", (pad_left + nx * w, title_h + pad_top + ny * h), "white")
    for i, cell in enumerate(cells[:nx * ny]):
        if cell is not None:
            out.paste(cell.convert("RGB"), (pad_left + (i % nx) * w, title_h + pad_top + (i // nx) * h))
    draw = ImageDraw.Draw(out)

    def text(lines: list[str], cx: float, cy: float) -> None:
        _, bh = block(lines)
        y = cy - bh / 2
        for line in lines:
            draw.text((cx - probe.textlength(line, font=font) / 2, y), line, fill="black", font=font)
            y += size + spacing // 2

    if heads:
        text(heads[0], out.width / 2, title_h / 2)
    for i, lines in enumerate(cols):
        text(lines, pad_left + i * w + w / 2, title_h + pad_top / 2)
    for j, lines in enumerate(rows):
        text(lines, pad_left / 2, title_h + pad_top + j * h + h / 2)
    return out


def draw_sweep_grid(sweep: Sweep, iz: int, images: dict[int, Image.Image]) -> Image.Image:
    """The grid of Z value `iz` from the finished cells (`images` by cell index)."""
    nx, ny, _ = sweep.shape
    base = iz * nx * ny
    return draw_grid([images.get(base + i) for i in range(nx * ny)], nx, ny,
                     sweep.x.labels() if sweep.x else (), sweep.y.labels() if sweep.y else (),
                     sweep.z.labels()[iz] if sweep.z else "")


def grid_pnginfo(sweep: Sweep, iz: int, cell_files: Sequence[str] = ()) -> PngImagePlugin.PngInfo:
    """A1111's parameters text (the first cell's, with the script's X/Y/Z items) and our sweep."""
    nx, ny, _ = sweep.shape
    first = sweep.request_at(0, 0, iz)
    text = format_parameters(first, first.seed) + ", " + format_settings(sweep.a1111_settings())
    info = PngImagePlugin.PngInfo()
    info.add_text(PARAMETERS_KEY, text)
    record = {**sweep.to_dict(), "z_index": iz, "cells": list(cell_files)}
    info.add_text(GRID_KEY, json.dumps(record, ensure_ascii=False))
    return info


def save_grid(folder: Path, image: Image.Image, sweep: Sweep, iz: int,
              cell_files: Sequence[str] = ()) -> Path:
    """`grid-NNNNN.png` in `folder`, NNNNN one past the highest there, never over a file."""
    numbers = [int(p.name[5:10]) for p in folder.glob("grid-[0-9][0-9][0-9][0-9][0-9].png")]
    n = max(numbers, default=-1) + 1
    info = grid_pnginfo(sweep, iz, cell_files)
    for _ in range(NAME_TRIES):
        target = folder / f"grid-{n:05d}.png"
        try:
            return atomic.write_atomic(
                target, lambda f: image.save(f, format="PNG", pnginfo=info, compress_level=4),
                overwrite=False)
        except FileExistsError:
            n += 1
        except OSError as exc:
            raise UserError(describe_os_error(exc, target, "output folder")) from exc
    raise UserError(f"Could not find a free file name for the grid in {folder}.")


def read_sweep(path: str | os.PathLike[str]) -> Sweep:
    """The sweep a grid PNG records, or one sentence why there is none."""
    info, _size = read_info(path)
    text = info.get(GRID_KEY)
    if not isinstance(text, str):
        raise UserError(f"{display_name(path)} is not an sdstudio grid (it records no sweep).")
    try:
        data = json.loads(text)
    except ValueError:
        raise UserError(f"{display_name(path)}'s sweep record is damaged.") from None
    if not isinstance(data, dict):
        raise UserError(f"{display_name(path)}'s sweep record is damaged.")
    return Sweep.from_dict(data)

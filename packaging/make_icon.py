"""Draw the sdstudio icon: noise on the left resolving into a sun over hills on the right.

The same shapes are written as SVG (scalable, for the .desktop entry) and drawn with Pillow
into PNGs (256 px for Linux and the window icon) and a multi-size .ico for a Windows build.
Run from the repository root: `python packaging/make_icon.py`; outputs go to resources/icons/.
"""

from __future__ import annotations

import random
from pathlib import Path

from PIL import Image, ImageDraw

SIZE = 256
BG_TOP, BG_BOTTOM = (32, 40, 92), (92, 44, 120)
SUN, HILL_BACK, HILL_FRONT = (255, 176, 59), (60, 150, 140), (38, 110, 104)
OUT = Path(__file__).resolve().parent.parent / "resources" / "icons"


def _noise_cells(seed: int = 7) -> list[tuple[int, int, int, tuple[int, int, int]]]:
    """Square 'noise' pixels, dense at the left edge and thinning out to the right."""
    rng = random.Random(seed)
    cells = []
    cell = 16
    for y in range(24, 232, cell):
        for x in range(24, 168, cell):
            if rng.random() < (168 - x) / 150:
                grey = rng.randint(120, 255)
                colour = (grey, rng.randint(90, grey), rng.randint(140, 255))
                cells.append((x, y, cell - 3, colour))
    return cells


def _hex(c: tuple[int, int, int]) -> str:
    return "#{:02x}{:02x}{:02x}".format(*c)


def _hills() -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    back = [(24, 196), (90, 150), (150, 176), (232, 132), (232, 232), (24, 232)]
    front = [(24, 214), (120, 178), (232, 206), (232, 232), (24, 232)]
    return back, front


def svg() -> str:
    back, front = _hills()
    pts = lambda p: " ".join(f"{x},{y}" for x, y in p)  # noqa: E731
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{SIZE}" height="{SIZE}" viewBox="0 0 {SIZE} {SIZE}">',
        '<defs><linearGradient id="bg" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="{_hex(BG_TOP)}"/><stop offset="1" stop-color="{_hex(BG_BOTTOM)}"/>'
        "</linearGradient></defs>",
        '<rect x="8" y="8" width="240" height="240" rx="48" fill="url(#bg)"/>',
        f'<circle cx="170" cy="104" r="52" fill="{_hex(SUN)}"/>',
        f'<polygon points="{pts(back)}" fill="{_hex(HILL_BACK)}"/>',
        f'<polygon points="{pts(front)}" fill="{_hex(HILL_FRONT)}"/>',
    ]
    for x, y, s, c in _noise_cells():
        parts.append(f'<rect x="{x}" y="{y}" width="{s}" height="{s}" rx="2" fill="{_hex(c)}"/>')
    parts += ["</svg>", ""]
    return "\n".join(parts)


def png(size: int = SIZE) -> Image.Image:
    scale = 4  # draw big, then downsample: cheap anti-aliasing
    big = SIZE * scale
    img = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    bg = Image.new("RGBA", (big, big))
    draw_bg = ImageDraw.Draw(bg)
    for y in range(big):
        t = y / (big - 1)
        draw_bg.line([(0, y), (big, y)], fill=tuple(round(a + (b - a) * t) for a, b in zip(BG_TOP, BG_BOTTOM, strict=True)))
    d = ImageDraw.Draw(bg)
    s = lambda p: [(x * scale, y * scale) for x, y in p]  # noqa: E731
    d.ellipse([(170 - 52) * scale, (104 - 52) * scale, (170 + 52) * scale, (104 + 52) * scale], fill=SUN)
    back, front = _hills()
    d.polygon(s(back), fill=HILL_BACK)
    d.polygon(s(front), fill=HILL_FRONT)
    for x, y, w, c in _noise_cells():
        d.rounded_rectangle([x * scale, y * scale, (x + w) * scale, (y + w) * scale], 2 * scale, fill=c)
    mask = Image.new("L", (big, big), 0)
    ImageDraw.Draw(mask).rounded_rectangle([8 * scale, 8 * scale, 248 * scale, 248 * scale], 48 * scale, fill=255)
    img.paste(bg, (0, 0), mask)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "sdstudio.svg").write_text(svg(), encoding="utf-8")
    icon = png(SIZE)
    icon.save(OUT / "sdstudio.png", optimize=True)
    icon.save(OUT / "sdstudio.ico", sizes=[(16, 16), (32, 32), (48, 48), (64, 64), (128, 128), (256, 256)])
    print(f"wrote {OUT}/sdstudio.svg, sdstudio.png, sdstudio.ico")


if __name__ == "__main__":
    main()

"""Procedural, seeded data set for the demo model: coloured shapes on plain backgrounds, captioned.

Every sample is a pure function of `(seed, index)`, so the same seed gives the same data set on
every machine, and nothing has to be stored: `make_sample(seed, i)` draws image and caption.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SIZE = 128
SUPERSAMPLE = 4  # shapes are drawn 4x larger and downsampled: anti-aliased edges

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 35),
    "orange": (250, 140, 20),
    "yellow": (245, 225, 40),
    "green": (40, 175, 65),
    "cyan": (40, 210, 225),
    "blue": (40, 90, 245),
    "purple": (145, 50, 200),
    "pink": (250, 125, 195),
}
BACKGROUNDS: dict[str, tuple[int, int, int]] = {
    "white": (242, 242, 238),
    "black": (22, 22, 26),
    "gray": (125, 125, 128),
    "beige": (225, 205, 165),
    "navy": (25, 35, 95),
}
BACKGROUND_WORDS: dict[str, tuple[str, ...]] = {
    "white": ("white",),
    "black": ("black",),
    "gray": ("gray", "grey"),
    "beige": ("beige",),
    "navy": ("navy", "dark blue", "blue"),  # "a red circle on a blue background"
}
SHAPES = ("circle", "square", "triangle", "star", "cross")
SIZES = {"small": 13.0, "large": 26.0}  # half-extent in pixels at 128x128
SIZE_WORDS = {"small": ("small", "little", "tiny"), "large": ("large", "big")}

# 3x3 grid of positions; (column, row) in 0..2
POSITIONS: dict[str, tuple[int, int]] = {
    "top left": (0, 0), "top": (1, 0), "top right": (2, 0),
    "left": (0, 1), "centre": (1, 1), "right": (2, 1),
    "bottom left": (0, 2), "bottom": (1, 2), "bottom right": (2, 2),
}
GRID = (28.0, 64.0, 100.0)  # pixel coordinate of column/row 0, 1, 2
JITTER = 4.0

# Colour x shape pairs never drawn in training (the evaluation asks for them).
HELD_OUT: frozenset[tuple[str, str]] = frozenset(
    {("red", "star"), ("green", "cross"), ("blue", "triangle"), ("yellow", "circle"),
     ("purple", "square"), ("cyan", "star")}
)


@dataclass(frozen=True)
class Obj:
    colour: str
    shape: str
    size: str
    position: str


@dataclass(frozen=True)
class Scene:
    background: str
    objects: tuple[Obj, ...]
    relation: str | None = None  # "left of" / "above" for two-object scenes


@dataclass(frozen=True)
class Sample:
    image: Image.Image
    caption: str
    scene: Scene


# ---------------------------------------------------------------- drawing
def shape_polygon(shape: str, cx: float, cy: float, r: float) -> list[tuple[float, float]]:
    """Outline of an upright shape of half-extent `r` centred on (cx, cy)."""
    if shape == "circle":
        pts = [(math.cos(t), math.sin(t)) for t in np.linspace(0, 2 * math.pi, 96, endpoint=False)]
    elif shape == "square":
        k = 0.86
        pts = [(-k, -k), (k, -k), (k, k), (-k, k)]
    elif shape == "triangle":
        pts = [(0.0, -1.0), (1.0, 0.8), (-1.0, 0.8)]
    elif shape == "star":
        pts = []
        for i in range(10):
            rad = 1.0 if i % 2 == 0 else 0.42
            t = -math.pi / 2 + i * math.pi / 5
            pts.append((rad * math.cos(t), rad * math.sin(t) + 0.08))
    elif shape == "cross":
        a, w = 0.95, 0.32
        pts = [(-w, -a), (w, -a), (w, -w), (a, -w), (a, w), (w, w), (w, a), (-w, a),
               (-w, w), (-a, w), (-a, -w), (-w, -w)]
    else:
        raise ValueError(f"unknown shape {shape!r}")
    return [(cx + r * x, cy + r * y) for x, y in pts]


def _jitter(rgb: tuple[int, int, int], rng: random.Random, amount: int) -> tuple[int, int, int]:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in rgb)  # type: ignore[return-value]


def render(scene: Scene, rng: random.Random, centres: list[tuple[float, float]]) -> Image.Image:
    s = SUPERSAMPLE
    img = Image.new("RGB", (SIZE * s, SIZE * s), _jitter(BACKGROUNDS[scene.background], rng, 4))
    draw = ImageDraw.Draw(img)
    for obj, (cx, cy) in zip(scene.objects, centres, strict=True):
        poly = shape_polygon(obj.shape, cx * s, cy * s, SIZES[obj.size] * s)
        draw.polygon(poly, fill=_jitter(COLOURS[obj.colour], rng, 8))
    return img.resize((SIZE, SIZE), Image.Resampling.BOX)


def object_centre(position: str, rng: random.Random) -> tuple[float, float]:
    col, row = POSITIONS[position]
    return (GRID[col] + rng.uniform(-JITTER, JITTER), GRID[row] + rng.uniform(-JITTER, JITTER))


# ---------------------------------------------------------------- scenes
def _pick_obj(rng: random.Random, background: str, position: str, allow_held_out: bool) -> Obj:
    while True:
        colour, shape = rng.choice(list(COLOURS)), rng.choice(SHAPES)
        if not allow_held_out and (colour, shape) in HELD_OUT:
            continue
        if background == "navy" and colour == "blue":
            continue
        return Obj(colour, shape, rng.choice(list(SIZES)), position)


def random_scene(rng: random.Random, two_objects: bool, allow_held_out: bool = False) -> Scene:
    background = rng.choice(list(BACKGROUNDS))
    if not two_objects:
        return Scene(background, (_pick_obj(rng, background, rng.choice(list(POSITIONS)), allow_held_out),))
    if rng.random() < 0.5:  # side by side: "left of"
        row = rng.choice(("top", "", "bottom"))
        pos = [f"{row} left".strip(), f"{row} right".strip()]
        relation = "left of"
    else:  # one above the other
        col = rng.choice(("left", "", "right"))
        pos = [f"top {col}".strip(), f"bottom {col}".strip()]
        relation = "above"
    pos = ["centre" if p == "" else p for p in pos]
    a = _pick_obj(rng, background, pos[0], allow_held_out)
    while True:
        b = _pick_obj(rng, background, pos[1], allow_held_out)
        if (b.colour, b.shape) != (a.colour, a.shape):
            break
    return Scene(background, (a, b), relation)


# ---------------------------------------------------------------- captions
def _pos_phrase(position: str, rng: random.Random) -> str:
    word = position
    if position == "centre":
        word = rng.choice(("centre", "center", "middle"))
        return rng.choice((f"in the {word}", f"at the {word}"))
    if " " in position:  # corner
        return rng.choice((f"in the {word}", f"in the {word} corner", f"at the {word}"))
    if position in ("left", "right"):
        return rng.choice((f"on the {word}", f"at the {word}", f"{word} side"))
    return rng.choice((f"at the {word}", f"on the {word}", f"near the {word}"))


def _bg_phrase(background: str, rng: random.Random) -> str:
    word = rng.choice(BACKGROUND_WORDS[background])
    return rng.choice((f"on a {word} background", f"on {word}", f"{word} background"))


def _object_phrase(obj: Obj, rng: random.Random, with_size: bool) -> str:
    size = rng.choice(SIZE_WORDS[obj.size])
    if with_size:
        return f"a {size} {obj.colour} {obj.shape}"
    return f"a {obj.colour} {obj.shape}"


def caption_single(scene: Scene, rng: random.Random) -> str:
    obj = scene.objects[0]
    keep_size, keep_pos, keep_bg = (rng.random() > 0.15 for _ in range(3))
    if rng.random() < 0.3:  # terse tag style: "green triangle, small, top left corner, white background"
        parts = [f"{obj.colour} {obj.shape}"]
        if keep_size:
            parts.append(rng.choice(SIZE_WORDS[obj.size]))
        if keep_pos:
            parts.append(obj.position + (" corner" if " " in obj.position else ""))
        if keep_bg:
            parts.append(f"{rng.choice(BACKGROUND_WORDS[scene.background])} background")
        return ", ".join(parts)
    parts = [_object_phrase(obj, rng, keep_size)]
    if keep_pos:
        parts.append(_pos_phrase(obj.position, rng))
    if keep_bg:
        parts.append(_bg_phrase(scene.background, rng))
    return " ".join(parts)


def caption_pair(scene: Scene, rng: random.Random) -> str:
    a, b = scene.objects
    pa, pb = _object_phrase(a, rng, rng.random() < 0.5), _object_phrase(b, rng, rng.random() < 0.5)
    if scene.relation == "left of":
        text = f"{pa} left of {pb}" if rng.random() < 0.6 else f"{pb} right of {pa}"
    else:
        text = f"{pa} above {pb}" if rng.random() < 0.6 else f"{pb} below {pa}"
    if rng.random() > 0.15:
        text += " " + _bg_phrase(scene.background, rng)
    return text


def caption(scene: Scene, rng: random.Random) -> str:
    return caption_single(scene, rng) if len(scene.objects) == 1 else caption_pair(scene, rng)


def canonical_caption(scene: Scene) -> str:
    """The full, plain wording used by the evaluation: 'a small red circle in the top left on a white background'."""
    obj = scene.objects[0]
    pos = "in the centre" if obj.position == "centre" else (
        f"in the {obj.position}" if " " in obj.position else f"on the {obj.position}"
        if obj.position in ("left", "right") else f"at the {obj.position}")
    bg = BACKGROUND_WORDS[scene.background][0]
    return f"a {obj.size} {obj.colour} {obj.shape} {pos} on a {bg} background"


# ---------------------------------------------------------------- samples
def make_sample(seed: int, index: int, two_object_rate: float = 0.25,
                allow_held_out: bool = False) -> Sample:
    rng = random.Random(seed * 1_000_003 + index)
    scene = random_scene(rng, rng.random() < two_object_rate, allow_held_out)
    return draw_scene(scene, rng)


def draw_scene(scene: Scene, rng: random.Random) -> Sample:
    centres = [object_centre(o.position, rng) for o in scene.objects]
    return Sample(render(scene, rng, centres), caption(scene, rng), scene)


def make_dense_image(seed: int, index: int) -> Image.Image:
    """A busier picture for training the VAE: 3-7 shapes of any colour, size and place."""
    rng = random.Random(seed * 999_983 + index)
    bg = rng.choice(list(BACKGROUNDS))
    s = SUPERSAMPLE
    img = Image.new("RGB", (SIZE * s, SIZE * s), _jitter(BACKGROUNDS[bg], rng, 4))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.randint(3, 7)):
        cx, cy, r = rng.uniform(0, SIZE), rng.uniform(0, SIZE), rng.uniform(8, 30)
        poly = shape_polygon(rng.choice(SHAPES), cx * s, cy * s, r * s)
        draw.polygon(poly, fill=_jitter(COLOURS[rng.choice(list(COLOURS))], rng, 8))
    return img.resize((SIZE, SIZE), Image.Resampling.BOX)


def to_tensor_array(image: Image.Image) -> np.ndarray:
    """PIL RGB -> float32 CHW in [-1, 1], the VAE's input range."""
    arr = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
    return arr.transpose(2, 0, 1)


def vocabulary() -> list[str]:
    """Every word the generator can write (the tokenizer gives each one its own token)."""
    words: set[str] = set(COLOURS) | set(SHAPES) | set(POSITIONS) | {"corner", "center", "middle"}
    for ws in BACKGROUND_WORDS.values():
        words.update(ws)
    for ws in SIZE_WORDS.values():
        words.update(ws)
    words.update("a an the in at on of near side background left right above below top bottom "
                 "and with".split())
    out: set[str] = set()
    for w in words:
        out.update(w.split())
    return sorted(out)

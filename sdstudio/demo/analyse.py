"""Programmatic analyser of demo-model images: background, objects, colour, shape, size, position.

Background = the median colour of the image border, snapped to the nearest named background.
Objects = connected regions that differ from it. For each: the mean colour of its interior ->
nearest named colour; its centroid -> nearest cell of the 3x3 position grid; its extent -> size;
its shape from geometric features, classified by nearest neighbours among masks drawn by the
data set generator itself (so the analyser and the training data share one definition).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image
from scipy import ndimage
from scipy.spatial import ConvexHull, QhullError

from sdstudio.demo import dataset

MIN_AREA = 25  # pixels at 128x128; smaller blobs are noise
BG_DISTANCE = 60.0  # RGB distance from the background that counts as "object"


@dataclass(frozen=True)
class Found:
    colour: str
    shape: str
    size: str
    position: str
    centroid: tuple[float, float]  # (x, y) in 128x128 pixels
    area: int
    rgb: tuple[int, int, int]


@dataclass(frozen=True)
class Analysis:
    background: str
    objects: tuple[Found, ...]  # largest first

    @property
    def main(self) -> Found | None:
        return self.objects[0] if self.objects else None


def _nearest(rgb: np.ndarray, palette: dict[str, tuple[int, int, int]]) -> str:
    names = list(palette)
    dists = [float(np.linalg.norm(rgb - np.asarray(palette[n], dtype=np.float32))) for n in names]
    return names[int(np.argmin(dists))]


def _to_array(image: Image.Image) -> np.ndarray:
    img = image.convert("RGB")
    if img.size != (dataset.SIZE, dataset.SIZE):
        img = img.resize((dataset.SIZE, dataset.SIZE), Image.Resampling.BILINEAR)
    return np.asarray(img, dtype=np.float32)


def background_colour(arr: np.ndarray) -> np.ndarray:
    border = np.concatenate([arr[:2].reshape(-1, 3), arr[-2:].reshape(-1, 3),
                             arr[:, :2].reshape(-1, 3), arr[:, -2:].reshape(-1, 3)])
    return np.median(border, axis=0)


def object_masks(arr: np.ndarray, bg: np.ndarray) -> list[np.ndarray]:
    diff = np.linalg.norm(arr - bg, axis=2) > BG_DISTANCE
    diff = ndimage.binary_opening(diff, iterations=1)
    labels, n = ndimage.label(diff)
    masks = [labels == i for i in range(1, n + 1)]
    masks = [m for m in masks if m.sum() >= MIN_AREA]
    return sorted(masks, key=lambda m: -int(m.sum()))


# ---------------------------------------------------------------- shape features
def shape_features(mask: np.ndarray) -> np.ndarray:
    """extent, solidity, share of area in the top half, fill of the bbox corners, aspect."""
    ys, xs = np.nonzero(mask)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    h, w = y1 - y0, x1 - x0
    area = float(mask.sum())
    box = mask[y0:y1, x0:x1]
    ch, cw = max(1, h // 4), max(1, w // 4)
    corners = np.concatenate([box[:ch, :cw].ravel(), box[:ch, -cw:].ravel(),
                              box[-ch:, :cw].ravel(), box[-ch:, -cw:].ravel()])
    return np.array([area / (h * w), area / _hull_area(xs, ys), box[: h // 2].sum() / area,
                     corners.mean(), w / h], dtype=np.float32)


def _hull_area(xs: np.ndarray, ys: np.ndarray) -> float:
    pts = np.concatenate([np.stack([xs + dx, ys + dy], 1) for dx in (0, 1) for dy in (0, 1)])
    try:
        return float(ConvexHull(pts).volume)
    except QhullError:
        return float(len(xs))


@lru_cache(maxsize=1)
def _reference() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Features of generator-drawn shapes (all sizes, positions, jitter): the kNN's training set."""
    rng = random.Random(1234)
    feats, labels = [], []
    for i in range(400):
        shape = dataset.SHAPES[i % len(dataset.SHAPES)]
        obj = dataset.Obj("red", shape, rng.choice(list(dataset.SIZES)),
                          rng.choice(list(dataset.POSITIONS)))
        scene = dataset.Scene("white", (obj,))
        img = dataset.render(scene, rng, [dataset.object_centre(obj.position, rng)])
        arr = _to_array(img)
        masks = object_masks(arr, background_colour(arr))
        if masks:
            feats.append(shape_features(masks[0]))
            labels.append(shape)
    x = np.stack(feats)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    return (x - mu) / sd, mu, sd, labels


def classify_shape(mask: np.ndarray, k: int = 5) -> str:
    ref, mu, sd, labels = _reference()
    f = (shape_features(mask) - mu) / sd
    nearest = np.argsort(np.linalg.norm(ref - f, axis=1))[:k]
    votes: dict[str, int] = {}
    for j in nearest:
        votes[labels[j]] = votes.get(labels[j], 0) + 1
    return max(votes, key=lambda s: votes[s])


# ---------------------------------------------------------------- objects
def position_of(cx: float, cy: float) -> str:
    col = int(np.argmin([abs(cx - g) for g in dataset.GRID]))
    row = int(np.argmin([abs(cy - g) for g in dataset.GRID]))
    return next(name for name, cr in dataset.POSITIONS.items() if cr == (col, row))


def size_of(mask: np.ndarray) -> str:
    ys, xs = np.nonzero(mask)
    half = max(ys.max() - ys.min() + 1, xs.max() - xs.min() + 1) / 2
    mid = (dataset.SIZES["small"] + dataset.SIZES["large"]) / 2
    return "small" if half < mid else "large"


def describe(arr: np.ndarray, mask: np.ndarray) -> Found:
    inner = ndimage.binary_erosion(mask, iterations=1)
    pix = arr[inner] if inner.sum() >= 5 else arr[mask]
    rgb = np.median(pix, axis=0)
    ys, xs = np.nonzero(mask)
    cx, cy = float(xs.mean()) + 0.5, float(ys.mean()) + 0.5
    return Found(colour=_nearest(rgb, dataset.COLOURS), shape=classify_shape(mask),
                 size=size_of(mask), position=position_of(cx, cy), centroid=(cx, cy),
                 area=int(mask.sum()), rgb=tuple(int(c) for c in rgb))  # type: ignore[arg-type]


def analyse(image: Image.Image) -> Analysis:
    arr = _to_array(image)
    bg = background_colour(arr)
    objects = tuple(describe(arr, m) for m in object_masks(arr, bg))
    return Analysis(background=_nearest(bg, dataset.BACKGROUNDS), objects=objects)

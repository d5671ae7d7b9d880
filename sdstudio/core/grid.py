"""X/Y/Z grids: axes, their values as A1111's X/Y/Z plot writes them, and the cells of a sweep.

Torch-free (the window counts cells and checks values as they are typed). A sweep is a base
`GenerationRequest` and up to three axes; `Sweep.cells()` lists one request per cell, in the
order A1111 runs them (the costliest axis, a model change, outermost; else Z, then Y, then X),
and one grid is drawn per Z value. Values are comma-separated (CSV: quote a value that holds a
comma) and integer / number axes take ranges:

    1-8          1, 2, ..., 8            (numbers: 1, 2, ...; the step is 1 unless given)
    1-8 (+2)     1, 3, 5, 7              (a step)
    0.5-1.0 [5]  0.5, 0.625, ..., 1.0    (a count, evenly spaced; integers are truncated)

To add an axis, append an `AxisKind` to `AXES` (a request field and its type is enough).
"""

from __future__ import annotations

import csv
import io
import math
import os
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sdstudio.core.errors import UserError
from sdstudio.core.request import GenerationRequest

MAX_CELLS = 4096  # a sweep larger than this is a typo (an extra digit in a range)
MAX_VALUES = 1024  # values of one axis
GRID_FORMAT_VERSION = 1

Value = int | float | str


class GridError(UserError):
    """A sweep that cannot run; `problems` holds one sentence per bad axis or value."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(" ".join(self.problems))


# --- axis kinds ---------------------------------------------------------------------------------
def _set(name: str) -> Callable[[GenerationRequest, Value, Sequence[Value]], GenerationRequest]:
    def apply(request: GenerationRequest, value: Value, _values: Sequence[Value]) -> GenerationRequest:
        changes: dict[str, Any] = {name: value}
        return replace(request, **changes)

    return apply


def _prompt_sr(request: GenerationRequest, value: Value,
               values: Sequence[Value]) -> GenerationRequest:
    """A1111's Prompt S/R: the first value is searched for and replaced by each value in turn."""
    search = str(values[0])
    return replace(request, prompt=request.prompt.replace(search, str(value)),
                   negative_prompt=request.negative_prompt.replace(search, str(value)))


def _label_value(value: Value) -> str:
    if isinstance(value, float):
        value = round(value, 8)
        return f"{value:g}" if abs(value) < 1e15 else str(value)
    return str(value)


@dataclass(frozen=True)
class AxisKind:
    name: str  # what the CLI takes: --x "seed=1,2"
    label: str  # A1111's "X Type" label, also the grid's label prefix
    type: type  # int, float or str: how values are read and ranges expanded
    fields: tuple[str, ...]  # the request fields it sets (they count as chosen by the user)
    apply: Callable[[GenerationRequest, Value, Sequence[Value]], GenerationRequest]
    cost: float = 0.0  # > 0: slow to change between cells (a model load), so run it outermost
    aliases: tuple[str, ...] = ()
    show_name: bool = True  # the label reads "Seed: 3"; False: just the value (A1111 for S/R)
    check: Callable[[GenerationRequest, Sequence[Value]], str | None] | None = None

    def label_for(self, value: Value) -> str:
        if self.name == "model":  # a path's last part, as A1111's format_remove_path
            text = os.path.basename(str(value).rstrip("/\\")) or str(value)
        else:
            text = _label_value(value)
        return f"{self.label}: {text}" if self.show_name else text


def _check_prompt_sr(base: GenerationRequest, values: Sequence[Value]) -> str | None:
    search = str(values[0])
    if search not in base.prompt and search not in base.negative_prompt:
        return (f"Prompt S/R did not find {search!r} (its first value) in the prompt or the "
                "negative prompt.")
    return None


def _check_strength(base: GenerationRequest, _values: Sequence[Value]) -> str | None:
    return None if base.init_image else "The strength axis needs an init image (img2img)."


def _check_model(_base: GenerationRequest, values: Sequence[Value]) -> str | None:
    for v in values:
        text = str(v)
        looks_like_path = os.sep in text or text.startswith((".", "~")) or text.lower().endswith(
            (".safetensors", ".ckpt"))
        if looks_like_path and not os.path.exists(os.path.expanduser(text)):
            return f"The model {text} does not exist."
    return None


AXES: tuple[AxisKind, ...] = (
    AxisKind("seed", "Seed", int, ("seed",), _set("seed")),
    AxisKind("steps", "Steps", int, ("steps",), _set("steps")),
    AxisKind("cfg", "CFG Scale", float, ("guidance",), _set("guidance"),
             aliases=("guidance", "cfg scale", "cfg_scale")),
    AxisKind("sampler", "Sampler", str, ("scheduler",), _set("scheduler"),
             aliases=("scheduler",), show_name=False),
    AxisKind("prompt", "Prompt S/R", str, (), _prompt_sr,
             aliases=("prompt s/r", "prompt_sr", "sr"), show_name=False, check=_check_prompt_sr),
    AxisKind("width", "Width", int, ("width",), _set("width")),
    AxisKind("height", "Height", int, ("height",), _set("height")),
    AxisKind("strength", "Denoising", float, ("strength",), _set("strength"),
             aliases=("denoising",), check=_check_strength),
    AxisKind("model", "Checkpoint name", str, ("model",), _set("model"), cost=1.0,
             aliases=("checkpoint", "checkpoint name"), show_name=False, check=_check_model),
    AxisKind("clip_skip", "Clip skip", int, ("clip_skip",), _set("clip_skip"),
             aliases=("clip skip", "clip-skip")),
    AxisKind("hires_strength", "Hires denoising", float, ("hires_strength",),
             _set("hires_strength"), aliases=("hires strength", "hires-strength", "hires denoise")),
    AxisKind("hires_steps", "Hires steps", int, ("hires_steps",), _set("hires_steps"),
             aliases=("hires steps", "hires-steps")),
)
# A LoRA's weight is swept as A1111 users do it, with Prompt S/R over its tag:
#   --x "prompt=<lora:style:0.4>,<lora:style:0.8>,<lora:style:1.2>"


def axis_kind(name: str) -> AxisKind:
    key = name.strip().lower()
    for kind in AXES:
        if key in (kind.name, kind.label.lower(), *kind.aliases):
            return kind
    raise UserError(f"Unknown grid axis {name.strip()!r}; choose one of: "
                    f"{', '.join(k.name for k in AXES)}.")


# --- values -------------------------------------------------------------------------------------
_INT = r"[+-]?\s*\d+"
_NUM = r"[+-]?\s*\d+(?:\.\d*)?"
_INT_STEP = re.compile(rf"\s*({_INT})\s*-\s*({_INT})(?:\s*\(([+-]\d+)\s*\))?\s*")
_INT_COUNT = re.compile(rf"\s*({_INT})\s*-\s*({_INT})(?:\s*\[(\d+)\s*\])?\s*")
_NUM_STEP = re.compile(rf"\s*({_NUM})\s*-\s*({_NUM})(?:\s*\(([+-]\d+(?:\.\d*)?)\s*\))?\s*")
_NUM_COUNT = re.compile(rf"\s*({_NUM})\s*-\s*({_NUM})(?:\s*\[(\d+)\s*\])?\s*")


def split_values(text: str) -> list[str]:
    """Comma-separated values, CSV-quoted where a value holds a comma, each stripped."""
    rows = csv.reader(io.StringIO(text), skipinitialspace=True)
    return [v.strip() for row in rows for v in row if v.strip()]


def _num(text: str) -> float:
    return float(text.replace(" ", ""))


def _linspace(start: float, stop: float, num: int) -> list[float]:
    import numpy as np

    return [float(v) for v in np.linspace(start, stop, num)]


def _count(m: re.Match[str]) -> int:
    num = int(m[3]) if m[3] else 1
    if num > MAX_VALUES:
        raise ValueError(TOO_MANY)
    return num


TOO_MANY = "more values than an axis takes"


def _expand(kind: AxisKind, item: str) -> list[Value]:
    """One comma-separated item: a range expands, anything else is one value of the axis type."""
    if kind.type is int:
        if m := _INT_STEP.fullmatch(item):
            step = int(m[3]) if m[3] else 1
            if step == 0:
                raise ValueError("a step of 0")
            span = range(int(_num(m[1])), int(_num(m[2])) + 1, step)
            if len(span) > MAX_VALUES:
                raise ValueError(TOO_MANY)
            return list(span)
        if m := _INT_COUNT.fullmatch(item):
            return [int(v) for v in _linspace(_num(m[1]), _num(m[2]), _count(m))]
    elif kind.type is float:
        if m := _NUM_STEP.fullmatch(item):
            start, stop = _num(m[1]), _num(m[2])
            fstep = float(m[3]) if m[3] else 1.0
            if fstep == 0:
                raise ValueError("a step of 0")
            import numpy as np  # np.arange's floating steps, as A1111 (1.0 may come out 0.9999)

            if (stop + fstep - start) / fstep > MAX_VALUES:
                raise ValueError(TOO_MANY)
            return [float(v) for v in np.arange(start, stop + fstep, fstep)]
        if m := _NUM_COUNT.fullmatch(item):
            return list(_linspace(_num(m[1]), _num(m[2]), _count(m)))
    return [kind.type(item)]


def parse_values(kind: AxisKind, text: str) -> tuple[Value, ...]:
    """The values of an axis from its text; one sentence naming the bad item."""
    items = split_values(text)
    if not items:
        raise UserError(f"The {kind.name} axis has no values.")
    out: list[Value] = []
    for item in items:
        try:
            values = _expand(kind, item)
        except ValueError as exc:
            what = "a whole number" if kind.type is int else "a number"
            reason = str(exc) if str(exc) in ("a step of 0", TOO_MANY) else (
                f"not {what} or a range like 1-8, 1-8 (+2) or 1-8 [5]")
            raise UserError(f"The {kind.name} axis value {item!r} is {reason}.") from None
        if not values:
            raise UserError(f"The {kind.name} axis range {item!r} gives no values.")
        if any(isinstance(v, float) and not math.isfinite(v) for v in values):
            raise UserError(f"The {kind.name} axis value {item!r} is not a finite number.")
        out += values
        if len(out) > MAX_VALUES:
            raise UserError(f"The {kind.name} axis has more than {MAX_VALUES} values.")
    return tuple(out)


# --- axes and sweeps ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Axis:
    kind: AxisKind
    text: str  # the values as typed (what the grid's metadata keeps, as A1111's "X Values")
    values: tuple[Value, ...]

    @classmethod
    def parse(cls, spec: str) -> Axis:
        """`name=values`, e.g. `seed=1-4`, `cfg=2,7.5`, `sampler=Euler a,DPM++ 2M`."""
        name, sep, text = spec.partition("=")
        if not sep:
            raise UserError(f"A grid axis is written name=values (e.g. seed=1,2), got {spec!r}.")
        return cls.make(name, text)

    @classmethod
    def make(cls, name: str, text: str) -> Axis:
        kind = axis_kind(name)
        return cls(kind, text.strip(), parse_values(kind, text))

    def spec(self) -> str:
        return f"{self.kind.name}={self.text}"

    def labels(self) -> list[str]:
        return [self.kind.label_for(v) for v in self.values]


@dataclass(frozen=True)
class Cell:
    index: int  # place in the grids: ix + iy * nx + iz * nx * ny (A1111's index)
    ix: int
    iy: int
    iz: int
    request: GenerationRequest


@dataclass(frozen=True)
class Sweep:
    base: GenerationRequest
    x: Axis | None = None
    y: Axis | None = None
    z: Axis | None = None
    chosen: frozenset[str] = field(default_factory=frozenset)  # fields the user set (see engine)

    @property
    def axes(self) -> tuple[Axis | None, Axis | None, Axis | None]:
        return (self.x, self.y, self.z)

    @property
    def shape(self) -> tuple[int, int, int]:
        nx, ny, nz = (len(a.values) if a else 1 for a in self.axes)
        return nx, ny, nz

    def __len__(self) -> int:
        nx, ny, nz = self.shape
        return nx * ny * nz

    def cell_chosen(self) -> frozenset[str]:
        """Fields a cell's request fixes: the user's, plus every field an axis sets."""
        return self.chosen | {f for a in self.axes if a for f in a.kind.fields}

    def _order(self) -> str:
        """Which axis is looped outermost, then second, A1111's rule: by cost, else z, y."""
        cost = {n: (a.kind.cost if a else 0.0) for n, a in zip("xyz", self.axes, strict=True)}
        first = next((n for n in "xyz" if all(cost[n] > cost[o] for o in "xyz" if o != n)), "z")
        if first == "z":
            second = "x" if cost["x"] > cost["y"] else "y"
        elif first == "x":
            second = "y" if cost["y"] > cost["z"] else "z"
        else:
            second = "x" if cost["x"] > cost["z"] else "z"
        return first + second + next(n for n in "xyz" if n not in (first, second))

    def positions(self) -> Iterator[tuple[int, int, int]]:
        """(ix, iy, iz) in the order the cells run."""
        nx, ny, nz = self.shape
        sizes = {"x": nx, "y": ny, "z": nz}
        order = self._order()
        for a in range(sizes[order[0]]):
            for b in range(sizes[order[1]]):
                for c in range(sizes[order[2]]):
                    at = dict(zip(order, (a, b, c), strict=True))
                    yield at["x"], at["y"], at["z"]

    def request_at(self, ix: int, iy: int, iz: int) -> GenerationRequest:
        request = self.base
        for axis, i in zip(self.axes, (ix, iy, iz), strict=True):
            if axis is not None:
                request = axis.kind.apply(request, axis.values[i], axis.values)
        return request

    def cells(self) -> list[Cell]:
        nx, ny, _ = self.shape
        return [Cell(ix + iy * nx + iz * nx * ny, ix, iy, iz, self.request_at(ix, iy, iz))
                for ix, iy, iz in self.positions()]

    def validate(self) -> Sweep:
        """Every cell checked before any runs; GridError lists one sentence per bad value."""
        problems: list[str] = []
        try:
            base = self.base.validate()
        except UserError as exc:
            raise GridError([str(exc)]) from None
        if base.batch_size != 1:
            problems.append(f"A grid cell is one image: the batch size must be 1, "
                            f"got {base.batch_size}.")
        names = [a.kind.name for a in self.axes if a]
        for name in {n for n in names if names.count(n) > 1}:
            problems.append(f"The {name} axis is used twice.")
        if len(self) > MAX_CELLS:
            problems.append(f"The grid has {len(self)} cells, more than the {MAX_CELLS} a sweep "
                            "may have.")
        for letter, axis in zip("XYZ", self.axes, strict=True):
            if axis is None:
                continue
            if axis.kind.check and (msg := axis.kind.check(base, axis.values)):
                problems.append(f"{letter} axis: {msg}")
                continue
            for value in dict.fromkeys(axis.values):
                req = axis.kind.apply(base, value, axis.values)
                try:
                    req.validate()
                except UserError as exc:
                    problems.append(f"{letter} axis ({axis.kind.name}) value "
                                    f"{_label_value(value)}: {exc}")
        if problems:
            raise GridError(problems)
        return self

    # --- time -------------------------------------------------------------------------------
    def work(self) -> float:
        """Denoising steps times megapixels over all cells: what the time grows with."""
        total = 0.0
        for cell in self.cells():
            r = cell.request
            steps = r.steps * (r.strength if r.init_image else 1.0)
            total += max(1, int(steps)) * r.width * r.height / 1e6
        return total

    def estimate_seconds(self, seconds_per_work: float) -> float:
        """The sweep's time at a measured rate (seconds per step-megapixel, see `rate`)."""
        return self.work() * seconds_per_work

    def summary(self, seconds_per_work: float | None = None) -> str:
        nx, ny, nz = self.shape
        grids = f"{nz} grids of {nx}×{ny}" if nz > 1 else f"a {nx}×{ny} grid"
        text = f"{len(self)} cells ({grids})"
        if seconds_per_work:
            text += f", about {format_duration(self.estimate_seconds(seconds_per_work))}"
        return text

    # --- metadata ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {"version": GRID_FORMAT_VERSION, "base": self.base.to_dict(),
                "chosen": sorted(self.chosen),
                **{n: a.spec() for n, a in zip("xyz", self.axes, strict=True) if a}}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sweep:
        try:
            base = GenerationRequest.from_dict(dict(data["base"]))
            axes = {n: Axis.parse(str(data[n])) for n in "xyz" if data.get(n)}
            return cls(base, chosen=frozenset(map(str, data.get("chosen", ()))), **axes)
        except UserError:
            raise
        except Exception as exc:  # noqa: BLE001 - a hand-edited or damaged record
            raise UserError(f"The grid's sweep record cannot be read ({exc}).") from None

    def a1111_settings(self) -> dict[str, str]:
        """The script items A1111 adds to a grid's parameters text."""
        items = {"Script": "X/Y/Z plot"}
        for letter, axis in zip("XYZ", self.axes, strict=True):
            if axis:
                items[f"{letter} Type"] = axis.kind.label
                items[f"{letter} Values"] = axis.text
        return items


def rate(seconds: float, request: GenerationRequest) -> float:
    """Seconds per step-megapixel measured from one finished image (for `estimate_seconds`)."""
    steps = request.steps * (request.strength if request.init_image else 1.0)
    return seconds / max(1e-9, max(1, int(steps)) * request.width * request.height / 1e6)


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

"""Running a sweep's cells through the engine, here or elsewhere, and collecting them into grids.

`run_cell` is the one way a cell becomes an image: the same `Engine` calls as `sdstudio
generate` (load, the model's defaults for what the user left open, generate), so a cell is the
image `generate` makes with the same settings, pixel for pixel. The local loop and the Ray actors
(sdstudio.cluster) both call it; `GridAssembler` takes finished cells in any order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sdstudio.core.errors import GenerationCancelled
from sdstudio.core.grid import Cell, Sweep

if TYPE_CHECKING:
    from PIL import Image

    from sdstudio.core.engine import Engine
    from sdstudio.core.events import StepEvent
    from sdstudio.core.request import GenerationRequest


@dataclass
class CellResult:
    index: int  # the cell's place (Cell.index)
    image: Image.Image
    request: GenerationRequest  # as run: the model's defaults applied
    seed: int
    record: dict[str, Any]  # the model's reproducibility record, as every saved image has
    seconds: float
    notices: list[str] = field(default_factory=list)
    worker: str = ""  # where it ran (a Ray node), "" here


def run_cell(engine: Engine, cell: Cell, chosen: Collection[str],
             on_step: Callable[[StepEvent], None] | None = None,
             should_cancel: Callable[[], bool] | None = None) -> CellResult:
    """One cell through the engine, exactly as `sdstudio generate` runs one image."""
    request = cell.request.validate()
    engine.load(request.model, request.device, request.dtype)
    request = engine.with_model_defaults(request, chosen)
    t0 = time.monotonic()
    result = engine.generate(request, on_step=on_step, should_cancel=should_cancel)
    event = result.images[0]
    return CellResult(cell.index, event.image, event.request, event.seed, dict(event.record),
                      time.monotonic() - t0, [*result.notices, *event.notices])


def run_local(engine: Engine, sweep: Sweep,
              should_cancel: Callable[[], bool] = lambda: False,
              on_step: Callable[[StepEvent], None] | None = None) -> Iterator[CellResult]:
    """The cells one after another on this machine, in the sweep's order."""
    chosen = sweep.cell_chosen()
    for cell in sweep.cells():
        if should_cancel():
            raise GenerationCancelled()
        yield run_cell(engine, cell, chosen, on_step=on_step, should_cancel=should_cancel)


class GridAssembler:
    """Finished cells, in any order; `add` says which Z grids it completed."""

    def __init__(self, sweep: Sweep) -> None:
        self.sweep = sweep
        self.images: dict[int, Image.Image] = {}
        self.files: dict[int, str] = {}  # cell index -> saved file name (for the grid's record)
        nx, ny, nz = sweep.shape
        self._per_grid = nx * ny
        self._left = [self._per_grid] * nz

    def add(self, index: int, image: Image.Image, file_name: str = "") -> list[int]:
        if index in self.images:
            return []
        self.images[index] = image
        if file_name:
            self.files[index] = file_name
        iz = index // self._per_grid
        self._left[iz] -= 1
        return [iz] if self._left[iz] == 0 else []

    def done(self) -> bool:
        return not any(self._left)

    def grid(self, iz: int) -> Image.Image:
        from sdstudio.core.grid_image import draw_sweep_grid

        return draw_sweep_grid(self.sweep, iz, self.images)

    def cell_files(self, iz: int) -> list[str]:
        base = iz * self._per_grid
        return [self.files.get(base + i, "") for i in range(self._per_grid)]

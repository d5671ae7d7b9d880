"""The Grid panel: an X/Y/Z sweep through the window's normal queue.

Pick up to three axes and type their values (as A1111 writes them: `1-8`, `2,7.5`, ...); the
panel shows the cell count and an estimated time (from the jobs this session ran) before it
starts, or one sentence naming a bad value. Start queues one ordinary job per cell, so every
cell is saved to the gallery with its parameters like any image; the grid fills in as cells
finish and each finished Z grid is saved as `grid-NNNNN.png` (recording the sweep) in the
gallery folder's `grids` folder. Cancel stops the running cell and drops the waiting ones.

"Run on" sends the cells to Ray instead (a local instance, the cluster `ray start` joined, or an
address): a thread drives `sdstudio.cluster.ray_runner.run_on_ray` and each cell that comes back
is saved to the gallery here, as the CLI does. Ray is imported only then.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QThread, Signal, Slot
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from sdstudio.core.errors import GenerationCancelled, UserError, describe
from sdstudio.core.events import EngineEvent, EventKind
from sdstudio.core.grid import AXES, Axis, Sweep, rate
from sdstudio.core.grid_run import CellResult, GridAssembler
from sdstudio.core.request import GenerationRequest
from sdstudio.ui.imaging import pil_to_qimage

if TYPE_CHECKING:
    from sdstudio.ui.jobs import JobQueue
    from sdstudio.ui.main_window import MainWindow

NOTHING = "Nothing"
PLACEHOLDERS = {"seed": "1-4", "steps": "10-30 (+10)", "cfg": "2,7.5", "sampler": "Euler a,DDIM",
                "prompt": "red,green (the first is searched for)", "width": "64,128",
                "height": "64,128", "strength": "0.3-0.9 [3]", "model": "demo,/path/to/model"}
RUN_ON = (("This machine (the queue)", ""), ("Ray: a local instance", "local"),
          ("Ray: the cluster (auto)", "auto"), ("Ray: address…", "address"))


class RayRun(QThread):
    """Drives a sweep on Ray in its own thread; each finished cell comes back as a signal."""

    cellDone = Signal(object)  # CellResult
    ended = Signal(object, str)  # EventKind, one sentence when it failed

    def __init__(self, sweep: Sweep, address: str) -> None:
        super().__init__()
        self.sweep, self.address, self.cancelled = sweep, address, False

    def run(self) -> None:
        try:
            from sdstudio.cluster.ray_runner import run_on_ray

            for result in run_on_ray(self.sweep, self.address,
                                     should_cancel=lambda: self.cancelled):
                self.cellDone.emit(result)
        except GenerationCancelled:
            self.ended.emit(EventKind.CANCELLED, "")
        except Exception as exc:  # noqa: BLE001 - one sentence, never a dead panel
            self.ended.emit(EventKind.FAILED, describe(exc))
        else:
            self.ended.emit(EventKind.FINISHED, "")


class GridPanel(QWidget):
    gridSaved = Signal(str)  # the path of a finished Z grid
    sweepEnded = Signal(object)  # EventKind: FINISHED, CANCELLED or FAILED
    cellShown = Signal(int)  # cells finished so far

    def __init__(self, jobs: JobQueue, base: Callable[[bool], GenerationRequest],
                 grids_folder: Callable[[], Path],
                 save_cell: Callable[[CellResult], None] | None = None,
                 parent: QWidget | None = None) -> None:
        """`base(new_seed)`: the window's request as its fields stand (with the next seed when
        `new_seed`: a random seed is drawn once per sweep); `grids_folder`: where grids go;
        `save_cell`: saves a cell that came back from Ray (queued cells are the window's)."""
        super().__init__(parent)
        self._jobs, self._base, self._grids_folder = jobs, base, grids_folder
        self._save_cell = save_cell
        self.ray_run: RayRun | None = None
        self._pixmap: QPixmap | None = None  # the grid as it stands, unscaled
        self._rate: float | None = None  # seconds per step-megapixel, measured this session
        self._started: dict[int, tuple[float, GenerationRequest]] = {}  # job id -> when, what
        self._cells: dict[int, int] = {}  # job id -> cell index, of the sweep running
        self._sweep: Sweep | None = None
        self._assembler: GridAssembler | None = None
        self._outcome = EventKind.FINISHED
        self.saved: list[Path] = []
        self._build()
        jobs.engineEvent.connect(self._on_event)
        self.update_summary()

    def _build(self) -> None:
        form = QGridLayout()
        self.kinds: list[QComboBox] = []
        self.values: list[QLineEdit] = []
        for row, letter in enumerate("XYZ"):
            kind = QComboBox()
            kind.setObjectName(f"grid_{letter.lower()}_axis")
            kind.addItem(NOTHING, "")
            for axis in AXES:
                kind.addItem(axis.label, axis.name)
            values = QLineEdit()
            values.setObjectName(f"grid_{letter.lower()}_values")
            kind.currentIndexChanged.connect(lambda _i, k=kind, v=values: self._kind_changed(k, v))
            values.textChanged.connect(self.update_summary)
            form.addWidget(QLabel(f"{letter}:"), row, 0)
            form.addWidget(kind, row, 1)
            form.addWidget(values, row, 2)
            self.kinds.append(kind)
            self.values.append(values)
        form.setColumnStretch(2, 1)
        self.where = QComboBox()
        self.where.setObjectName("grid_run_on")
        for text, data in RUN_ON:
            self.where.addItem(text, data)
        self.address = QLineEdit()
        self.address.setObjectName("grid_ray_address")
        self.address.setPlaceholderText("HEAD_ADDRESS:6379")
        self.address.setVisible(False)
        self.where.currentIndexChanged.connect(
            lambda _i: self.address.setVisible(self.where.currentData() == "address"))
        where = QHBoxLayout()
        where.addWidget(QLabel("Run on:"))
        where.addWidget(self.where)
        where.addWidget(self.address, 1)
        self.summary = QLabel()
        self.summary.setObjectName("grid_summary")
        self.summary.setWordWrap(True)
        self.start_button = QPushButton("Start grid")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(self.cancel)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        self.progress = QLabel("")
        self.progress.setObjectName("grid_progress")
        self.view = QLabel("The grid appears here as its cells finish.")
        self.view.setObjectName("grid_view")
        self.view.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.view.setMinimumSize(160, 240)  # the panel scrolls: the dock never grows the window
        self.view.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(where)
        layout.addWidget(self.summary)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.view, 1)

    # --- the sweep --------------------------------------------------------------------------
    def set_axis(self, letter: str, name: str, values: str) -> None:
        """Choose an axis ("" for none) and its values, as a user would."""
        i = "XYZ".index(letter.upper())
        self.kinds[i].setCurrentIndex(max(0, self.kinds[i].findData(name)))
        self.values[i].setText(values)

    def _kind_changed(self, kind: QComboBox, values: QLineEdit) -> None:
        values.setPlaceholderText(PLACEHOLDERS.get(kind.currentData(), ""))
        self.update_summary()

    def sweep(self, new_seed: bool = False) -> Sweep:
        """The sweep the fields describe, validated (UserError: one sentence per problem)."""
        axes: dict[str, Axis] = {}
        for letter, kind, values in zip("xyz", self.kinds, self.values, strict=True):
            if kind.currentData():
                axes[letter] = Axis.make(kind.currentData(), values.text())
        if not axes:
            raise UserError("Choose at least one axis and its values.")
        base = self._base(new_seed)
        if not base.prompt:
            raise UserError("Type a prompt first.")
        chosen = frozenset(("width", "height", "guidance"))  # the window always sets these
        return Sweep(base, chosen=chosen, **axes).validate()

    @Slot()
    def update_summary(self) -> None:
        try:
            sweep = self.sweep()
        except UserError as exc:
            self.summary.setText(str(exc))
            self.start_button.setEnabled(False)
            return
        except Exception as exc:  # noqa: BLE001 - a half-typed value must never break the panel
            self.summary.setText(f"Cannot read the grid: {exc}")
            self.start_button.setEnabled(False)
            return
        text = sweep.summary(self._rate)
        if self._rate is None:
            text += "; the time is estimated after the first image of this session"
        self.summary.setText(text + ".")
        self.start_button.setEnabled(not self.running())

    def running(self) -> bool:
        return bool(self._cells) or self.ray_run is not None

    def ray_address(self) -> str:
        """"" (the queue), or the Ray address the sweep goes to."""
        where = self.where.currentData()
        return self.address.text().strip() if where == "address" else where

    @Slot()
    def start(self) -> bool:
        """Queue every cell as an ordinary job; False (and the reason shown) when it cannot."""
        if self.running():
            return False
        try:
            sweep = self.sweep(new_seed=True)
        except UserError as exc:
            self.summary.setText(str(exc))
            return False
        address = self.ray_address()
        if self.where.currentData() == "address" and not address:
            self.summary.setText("Type the Ray cluster's address (HOST:PORT).")
            return False
        self._sweep, self._assembler = sweep, GridAssembler(sweep)
        self._outcome, self.saved = EventKind.FINISHED, []
        n = len(sweep)
        if address:
            self.ray_run = RayRun(sweep, address)
            self.ray_run.cellDone.connect(self._on_ray_cell)
            self.ray_run.ended.connect(self._on_ray_ended)
            self.ray_run.start()
        else:
            for cell in sweep.cells():
                job = self._jobs.submit(cell.request, f"grid cell {cell.index + 1}/{n}")
                self._cells[job] = cell.index
        self.start_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.progress.setText(f"0 of {n} cells" + (f" on Ray ({address})" if address else ""))
        return True

    @Slot()
    def cancel(self) -> None:
        if self.ray_run is not None:
            self.ray_run.cancelled = True  # the thread stops at the next cell and kills the actors
        elif self.running():
            self._outcome = EventKind.CANCELLED
            self._jobs.cancel_all()

    def wait(self) -> None:
        """The window is closing (docks.FinishOnClose calls this): a Ray sweep is stopped and
        its thread joined, so no thread outlives the panel."""
        if self.ray_run is not None:
            self.ray_run.cancelled = True
            self.ray_run.wait()

    def _on_ray_cell(self, result: CellResult) -> None:
        if self._save_cell is not None:
            self._save_cell(result)
        self._on_cell(result.index, result.image)

    def _on_ray_ended(self, outcome: EventKind, message: str) -> None:
        if self.ray_run is not None:
            self.ray_run.wait()
        self.ray_run = None
        self._outcome = outcome
        if message:
            self.summary.setText(message)
        self._end()

    # --- events -----------------------------------------------------------------------------
    @Slot(object)
    def _on_event(self, ev: EngineEvent) -> None:
        if ev.kind is EventKind.STARTED:  # every job of the session measures the rate
            self._started = {ev.job_id: (time.monotonic(), ev.payload)}
        elif ev.kind is EventKind.FINISHED and ev.job_id in self._started:
            t0, request = self._started.pop(ev.job_id)
            self._rate = rate(time.monotonic() - t0, request)
        if ev.job_id not in self._cells:
            return
        if ev.kind is EventKind.IMAGE and self._assembler is not None:
            self._on_cell(self._cells[ev.job_id], ev.payload.event.image)
        elif ev.kind.ends_job:
            del self._cells[ev.job_id]
            if ev.kind is EventKind.FAILED:
                self._outcome = EventKind.FAILED
            if not self._cells:
                self._end()

    def _on_cell(self, index: int, image: object) -> None:
        assert self._assembler is not None and self._sweep is not None
        for iz in self._assembler.add(index, image):  # type: ignore[arg-type]
            self._save(iz)
        nx, ny, _ = self._sweep.shape
        grid = self._assembler.grid(index // (nx * ny))
        self._pixmap = QPixmap.fromImage(pil_to_qimage(grid))
        self._show_pixmap()
        done = len(self._assembler.images)
        self.progress.setText(f"{done} of {len(self._sweep)} cells")
        self.cellShown.emit(done)

    def _show_pixmap(self) -> None:
        if self._pixmap is not None:
            self.view.setPixmap(self._pixmap.scaled(
                self.view.size(), Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation))

    def _save(self, iz: int) -> None:
        from sdstudio.core.grid_image import save_grid

        assert self._assembler is not None and self._sweep is not None
        try:
            folder = self._grids_folder()
            folder.mkdir(parents=True, exist_ok=True)
            path = save_grid(folder, self._assembler.grid(iz), self._sweep, iz)
        except (UserError, OSError) as exc:
            self.progress.setText(f"The grid could not be saved: {exc}")
            return
        self.saved.append(path)
        self.gridSaved.emit(str(path))

    def _end(self) -> None:
        self.cancel_button.setEnabled(False)
        done = len(self._assembler.images) if self._assembler else 0
        total = len(self._sweep) if self._sweep else 0
        words = {EventKind.FINISHED: "Done", EventKind.CANCELLED: "Cancelled",
                 EventKind.FAILED: "Stopped by an error"}
        self.progress.setText(f"{words[self._outcome]}: {done} of {total} cells.")
        if self._outcome is not EventKind.FAILED:
            self.update_summary()
        else:
            self.start_button.setEnabled(True)
        self.sweepEnded.emit(self._outcome)


def add_grid_dock(w: MainWindow) -> None:
    """The Grid panel as `w.grid_panel` in `w.grid_dock`, tabbed with the parameters."""
    from sdstudio.ui.gallery_panel import gallery_folder
    from sdstudio.ui.panels.docks import FinishOnClose, _scrolled

    def base(new_seed: bool) -> GenerationRequest:
        prompt, negative = w.prompt_panel.texts()
        if new_seed:
            return w.params_panel.request(prompt, negative)
        params = w.params_panel.params()
        params.pop("seed_random", None)
        return GenerationRequest(prompt=prompt, negative_prompt=negative, **params)

    def save_cell(r: CellResult) -> None:  # a cell from Ray: into the gallery like any image
        w.session_gallery.add_image(pil_to_qimage(r.image), r.request, r.seed)
        w.gallery_panel.save_image(r.image, r.request, r.seed, r.record)

    w.grid_panel = GridPanel(w.jobs, base, lambda: gallery_folder(w.settings) / "grids",
                             save_cell)
    w._grid_close_filter = FinishOnClose(w, [w.grid_panel])
    w.installEventFilter(w._grid_close_filter)
    w.grid_dock = w._dock("Grid", "grid_dock", _scrolled(w.grid_panel),  # never grows the window
                          Qt.DockWidgetArea.LeftDockWidgetArea)
    w.tabifyDockWidget(w.params_dock, w.grid_dock)
    w.params_dock.raise_()
    w.grid_panel.sweepEnded.connect(
        lambda _outcome: w.statusBar().showMessage(w.grid_panel.progress.text()))
    p = w.params_panel  # the count, the checks and the estimate follow the base request
    for signal in (w.prompt_panel.prompt.textChanged, w.prompt_panel.negative.textChanged,
                   p.steps.valueChanged, p.width_.valueChanged, p.height_.valueChanged,
                   p.init_image.changed):
        signal.connect(w.grid_panel.update_summary)

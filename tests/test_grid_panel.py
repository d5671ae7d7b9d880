"""The Grid panel in the window: the count and estimate before it starts, one ordinary job per
cell through the queue (each saved to the gallery), the grid filling in, cancel. The engine is
the scripted FakeWorker here; one 3x3 sweep runs on the tiny model."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from sdstudio.core.events import EventKind
from sdstudio.core.grid_image import read_sweep
from sdstudio.testing.fake_worker import FakeWorker
from sdstudio.ui.main_window import MainWindow

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def started(qtbot):
    """started(worker, x, y): a window on `worker` with the grid's X and Y axes set, its engine
    started; closed after the test."""
    windows: list[MainWindow] = []

    def make(worker, x: str, y: str) -> MainWindow:
        w = _window(qtbot, worker)
        windows.append(w)
        w.grid_panel.set_axis("X", *x.split("=", 1))
        w.grid_panel.set_axis("Y", *y.split("=", 1))
        w.start_engine()
        return w

    yield make
    for w in windows:
        w.close()


def _window(qtbot, worker) -> MainWindow:
    w = MainWindow(worker=worker)
    qtbot.addWidget(w)
    w.params_panel.set_params({"steps": 2, "width": 64, "height": 64, "seed_random": False,
                               "seed": 5, "batch_size": 1, "scheduler": "Euler a"})
    w.prompt_panel.set_texts("a red circle on a blue background", "")
    w.show()
    return w


def test_summary_counts_cells_and_names_bad_values(qtbot):
    w = _window(qtbot, FakeWorker())
    try:
        panel = w.grid_panel
        panel.set_axis("X", "seed", "1-3")
        panel.set_axis("Y", "cfg", "1,5,7")
        assert panel.summary.text().startswith("9 cells (a 3×3 grid)")
        assert panel.start_button.isEnabled()
        panel.set_axis("Y", "steps", "0,3")
        assert panel.summary.text().startswith("Y axis (steps) value 0: Steps must be between 1")
        assert not panel.start_button.isEnabled()
        panel.set_axis("Y", "prompt", "purple,green")
        assert "did not find 'purple'" in panel.summary.text()
        w.prompt_panel.set_texts("a purple circle", "")  # the check follows the prompt
        assert panel.summary.text().startswith("6 cells")
    finally:
        w.close()


def test_a_3x3_grid_runs_through_the_queue_and_is_saved(qtbot, started):
    worker = FakeWorker()
    w = started(worker, "seed=1-3", "cfg=1,5,7")
    panel = w.grid_panel
    with qtbot.waitSignal(panel.sweepEnded, timeout=30_000) as ended:
        assert panel.start()
    assert ended.args == [EventKind.FINISHED]
    got = [(r.seed, r.guidance) for r in worker.requests]
    assert got == [(s, g) for g in (1.0, 5.0, 7.0) for s in (1, 2, 3)]
    assert panel.progress.text() == "Done: 9 of 9 cells."
    assert not panel.view.pixmap().isNull()
    (path,) = panel.saved
    assert path.name == "grid-00000.png" and path.parent.name == "grids"
    sweep = read_sweep(path)
    assert sweep.x.spec() == "seed=1-3" and sweep.y.spec() == "cfg=1,5,7"
    assert Image.open(path).width > 3 * 64
    qtbot.waitUntil(lambda: w.gallery_panel.pending_saves() == 0, timeout=10_000)
    saved = list(Path(path.parent.parent).glob("*.png"))
    assert len(saved) == 9  # every cell is an ordinary image in the gallery
    assert panel.summary.text().startswith("9 cells (a 3×3 grid), about ")  # measured now


def test_cancel_stops_the_sweep(qtbot, started):
    panel = started(FakeWorker(step_delay=0.05), "seed=1-6", "steps=4,5").grid_panel
    with qtbot.waitSignal(panel.sweepEnded, timeout=30_000) as ended:
        panel.start()
        qtbot.waitSignal(panel.cellShown, timeout=10_000).wait()
        panel.cancel()
    assert ended.args == [EventKind.CANCELLED]
    assert panel.progress.text().startswith("Cancelled: ")
    assert int(panel.progress.text().split()[1]) < 12
    assert not panel.saved and not panel.cancel_button.isEnabled()
    assert panel.start_button.isEnabled()


def test_a_3x3_grid_on_the_tiny_model(qtbot, tiny_model_dir):
    w = MainWindow()
    qtbot.addWidget(w)
    w.params_panel.set_params({"model": str(tiny_model_dir), "steps": 1, "width": 32,
                               "height": 32, "seed_random": False, "seed": 1, "batch_size": 1,
                               "scheduler": "Euler", "device": "cpu", "dtype": "fp32"})
    w.prompt_panel.set_texts("a photo of a cat", "")
    w.show()
    try:
        with qtbot.waitSignal(w.modelReady, timeout=120_000):
            w.start_engine()
        panel = w.grid_panel
        panel.set_axis("X", "seed", "1-3")
        panel.set_axis("Y", "sampler", "Euler,DDIM,Heun")
        with qtbot.waitSignal(panel.sweepEnded, timeout=120_000) as ended:
            assert panel.start()
        assert ended.args == [EventKind.FINISHED], w.last_error
        assert len(panel.saved) == 1
        w.grid_dock.raise_()
        w.grab().save(str(Path(panel.saved[0]).parent / "window.png"))
    finally:
        w.close()

"""A grid on a local Ray instance (2 CPUs, tiny model): the cells come back from the actors
pixel-identical to the same cells run here. Ray is an optional extra: skipped without it."""

from __future__ import annotations

import numpy as np
import pytest

from sdstudio.core.grid import Axis, Sweep
from sdstudio.core.request import GenerationRequest

ray = pytest.importorskip("ray", reason="Ray is an optional extra (sdstudio[cluster])")


@pytest.mark.ray
@pytest.mark.timeout(240)
def test_ray_cells_equal_local_cells(tiny_model_dir):
    from sdstudio.cluster.ray_runner import run_on_ray
    from sdstudio.core.engine import Engine
    from sdstudio.core.grid_run import run_local

    base = GenerationRequest("a photo of a cat", steps=2, model=str(tiny_model_dir))
    sweep = Sweep(base, Axis.parse("seed=1,2"), Axis.parse("cfg=1,5")).validate()
    local = {r.index: r for r in run_local(Engine(), sweep)}
    remote = {r.index: r for r in run_on_ray(sweep, "local", actors=2)}
    assert sorted(remote) == sorted(local) == [0, 1, 2, 3]
    assert not ray.is_initialized()  # the instance it started is shut down
    for i, r in remote.items():
        assert r.worker  # made by an actor, which says where
        assert r.request == local[i].request and r.seed == local[i].seed
        assert r.record["scheduler_config"] == local[i].record["scheduler_config"]
        assert np.array_equal(np.asarray(r.image), np.asarray(local[i].image)), i


def test_a_model_missing_on_a_worker_names_the_worker_and_path(tmp_path):
    from sdstudio.cluster.ray_runner import CellWorker

    missing = str(tmp_path / "models" / "nowhere.safetensors")
    out = CellWorker().run(0, GenerationRequest("x", model=missing).to_dict(), [])
    assert out["error"].startswith(f"The model {missing} is missing on worker ")


@pytest.mark.ray
@pytest.mark.timeout(240)
def test_the_window_runs_a_grid_on_ray_into_the_gallery(qtbot, tiny_model_dir):
    from sdstudio.core.events import EventKind
    from sdstudio.testing.fake_worker import FakeWorker
    from sdstudio.ui.main_window import MainWindow

    w = MainWindow(worker=FakeWorker())  # the queue is not used: the cells go to Ray
    qtbot.addWidget(w)
    try:
        w.params_panel.set_params({"model": str(tiny_model_dir), "steps": 1, "width": 32,
                                   "height": 32, "seed_random": False, "seed": 1,
                                   "scheduler": "Euler", "batch_size": 1})
        w.prompt_panel.set_texts("a photo of a cat", "")
        panel = w.grid_panel
        panel.set_axis("X", "seed", "1,2")
        panel.where.setCurrentIndex(panel.where.findData("local"))
        with qtbot.waitSignal(panel.sweepEnded, timeout=200_000) as ended:
            assert panel.start()
        assert ended.args == [EventKind.FINISHED], panel.summary.text()
        assert panel.progress.text() == "Done: 2 of 2 cells."
        assert len(panel.saved) == 1 and not ray.is_initialized()
        qtbot.waitUntil(lambda: w.gallery_panel.pending_saves() == 0, timeout=10_000)
        assert len(list(panel.saved[0].parent.parent.glob("*.png"))) == 2  # in the gallery
        assert w.session_gallery.count() == 2
    finally:
        w.close()

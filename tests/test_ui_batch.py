"""Batches in the window: the preview shows the whole batch as it forms, and picking one image
(in the preview's grid or the session gallery) shows its image, channels, seed and details."""

from __future__ import annotations

import pytest
import torch

from sdstudio.core.events import StepEvent
from sdstudio.testing.fake_worker import FakeWorker, started_window
from sdstudio.ui import main_window as mw
from sdstudio.ui.main_window import MainWindow
from sdstudio.ui.preview_panel import tile
from sdstudio.ui.worker import GenerationWorker

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _close_discards(monkeypatch):
    monkeypatch.setattr(MainWindow, "ask_close", lambda _self: mw.CLOSE_DISCARD)


def _run_batch(qtbot, n: int = 3) -> MainWindow:
    w = started_window(qtbot, FakeWorker())
    w.params_panel.set_params({"batch_size": n})
    with qtbot.waitSignal(w.jobFinished, timeout=10_000):
        w.generate()
    qtbot.wait(20)
    return w


def test_the_worker_sends_every_image_of_a_batch_and_their_last_channels(qapp):
    worker = GenerationWorker(preview_interval=0.0)
    latents = torch.randn(3, 4, 8, 8)
    latents[1] *= 5  # image 2 has its own range
    for step, total in ((1, 2), (2, 2)):
        ev = StepEvent(step, total, 1.0, latents, 0.1, denoised=latents * 0.5)
        sp = worker.make_preview(ev)
        from sdstudio.ui.worker import with_batch

        sp = with_batch(sp, ev)
        assert len(sp.batch) == 3 and len(sp.batch_denoised) == 3
        assert sp.batch[0].size().width() == 8
        assert sp.batch[0] != sp.batch[1]
    assert len(sp.batch_channels) == 3  # the last step: each image's own channels
    assert sp.batch_channels[1][0].high > sp.batch_channels[0][0].high
    assert sp.batch_channels[0][0].high == pytest.approx(float(latents[0, 0].max()))
    one = with_batch(worker.make_preview(StepEvent(2, 2, 1.0, latents[:1], 0.1)),
                     StepEvent(2, 2, 1.0, latents[:1], 0.1))
    assert one.batch == () and len(one.batch_channels) == 1  # one image: no grid


def test_a_batch_of_three_shows_three_cells_and_a_tiled_preview(qtbot):
    w = _run_batch(qtbot, 3)
    panel = w.preview_panel
    assert panel.batch_count() == 3 and panel.batch_grid.isVisibleTo(w)
    assert [panel.batch_grid.item(i).text() for i in range(3)] == ["seed 3", "seed 4", "seed 5"]
    steps = [e for e in panel._history if e[1]]
    grid = steps[-1][2]  # the last step's preview: three 8 px cells, 2 x 2
    assert (grid.width(), grid.height()) == (18, 18)
    assert grid.pixelColor(0, 0).name() == "#800080"  # image 1 purple
    assert grid.pixelColor(10, 0).name() == "#008080"  # image 2 teal
    assert grid.pixelColor(0, 10).name() == "#808000"  # image 3 olive
    w.close()


def test_picking_image_two_switches_preview_channels_and_seed(qtbot):
    w = _run_batch(qtbot, 3)
    assert "seed 3" in w.preview_panel.caption.text()
    assert "-1.00" in w.channels_panel.labels[0].text()
    w.preview_panel.imagePicked.emit(1)
    assert "Image 2/3 · seed 4" in w.preview_panel.caption.text()
    assert "64×64" in w.preview_panel.caption.text()
    assert "-2.00 … +2.00" in w.channels_panel.labels[0].text()
    # the session gallery (newest first): its last item is image 1 of the batch
    gallery = w.session_gallery
    gallery.itemClicked.emit(gallery.item(gallery.count() - 1))
    assert "Image 1/3 · seed 3" in w.preview_panel.caption.text()
    assert "-1.00 … +1.00" in w.channels_panel.labels[0].text()
    gallery.itemClicked.emit(gallery.item(0))
    assert "seed 5" in w.preview_panel.caption.text()
    assert "-3.00" in w.channels_panel.labels[0].text()
    w.close()


def test_a_single_image_run_has_no_grid(qtbot):
    w = _run_batch(qtbot, 1)
    assert not w.preview_panel.batch_grid.isVisibleTo(w)
    assert w.preview_panel.caption.text().startswith("Final image · seed 3")
    w.close()


def test_tile_is_near_square(qapp):
    from PySide6.QtGui import QImage

    images = [QImage(4, 4, QImage.Format.Format_RGB32) for _ in range(5)]
    out = tile(images)
    assert (out.width(), out.height()) == (3 * 4 + 2 * 2, 2 * 4 + 2)


def test_a_long_step_label_is_elided_and_never_squeezes_the_scrubber(qtbot):
    from sdstudio.ui.preview_panel import SCRUB_LABEL_W, PreviewPanel

    panel = PreviewPanel()
    qtbot.addWidget(panel)
    caption = "Image 3/4 · seed 5 · 128×128 · 12 steps · Euler a · CFG 3 · a very long prompt"
    panel._set_scrub_label(caption)
    assert panel.scrub_label.toolTip() == caption
    assert panel.scrub_label.text().endswith("…") and panel.scrub_label.text() != caption
    assert panel.scrub_label.maximumWidth() == SCRUB_LABEL_W

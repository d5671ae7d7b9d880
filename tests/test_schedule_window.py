"""In the window: the preview shows x0 by default (toggle to x_t), and the step scrubber moves the
preview, the latent channels and the noise schedule's highlighted step together."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")
from PySide6.QtGui import QImage  # noqa: E402

from sdstudio.core.events import EventKind  # noqa: E402
from sdstudio.ui.main_window import MainWindow  # noqa: E402
from sdstudio.ui.preview_panel import NOISY, PREDICTED  # noqa: E402
from sdstudio.ui.worker import GenerationWorker  # noqa: E402

WAIT_MS = 180_000


def _rgb(image: QImage) -> QImage:
    return image.convertToFormat(QImage.Format.Format_RGB888)


def test_x0_preview_and_scrubbing_follow_one_step(qtbot, tiny_model_dir):
    w = MainWindow(worker=GenerationWorker(preview_interval=0.0))  # every step reaches the GUI
    qtbot.addWidget(w)
    w.params_panel.set_params({
        "model": str(tiny_model_dir), "steps": 4, "width": 32, "height": 32,
        "scheduler": "Euler", "seed_random": False, "seed": 1, "batch_size": 1,
        "device": "cpu", "dtype": "fp32",
    })
    w.show()
    with qtbot.waitSignal(w.modelReady, timeout=WAIT_MS):
        w.start_engine()
    qtbot.waitUntil(lambda: w.schedule_panel.schedule is not None
                    and w.schedule_panel.schedule.sampler == "Euler"
                    and w.schedule_panel.schedule.steps == 4, timeout=60_000)
    w.prompt_panel.prompt.setPlainText("a red circle")
    steps: list = []
    w.jobs.engineEvent.connect(
        lambda ev: steps.append(ev.payload) if ev.kind is EventKind.PROGRESS else None)
    with qtbot.waitSignal(w.jobFinished, timeout=WAIT_MS) as blocker:
        w.generate()
    assert blocker.args[1] is EventKind.FINISHED, w.last_error
    assert [sp.step for sp in steps] == [1, 2, 3, 4]
    assert all(sp.denoised is not None for sp in steps)
    preview = w.preview_panel
    assert preview.source.currentIndex() == PREDICTED  # x0 is the default

    preview.scrubber.setValue(0)  # step 1
    assert preview.scrub_label.text() == "step 1"
    assert _rgb(preview.shown_image()) == _rgb(steps[0].denoised)
    preview.source.setCurrentIndex(NOISY)
    assert _rgb(preview.shown_image()) == _rgb(steps[0].preview)
    assert _rgb(steps[0].preview) != _rgb(steps[0].denoised)  # x_t at sigma_max is not x0
    # The channels and the schedule show step 1 too.
    first = steps[0].channels[0]
    assert w.channels_panel.labels[0].text().endswith(f"{first.low:+.2f} … {first.high:+.2f}")
    assert w.schedule_panel.numbers.text().startswith("Step 1/4")
    assert w.schedule_panel.step_plot.highlight == 1

    preview.scrubber.setValue(3)  # step 4: Euler's last x0 is its final latent
    assert _rgb(steps[3].preview) == _rgb(steps[3].denoised)
    last = steps[3].channels[0]
    assert w.channels_panel.labels[0].text().endswith(f"{last.low:+.2f} … {last.high:+.2f}")
    assert w.schedule_panel.numbers.text().startswith("Step 4/4")
    preview.scrubber.setValue(4)  # the final image: no step highlighted
    assert w.schedule_panel.step_plot.highlight is None
    w.close()

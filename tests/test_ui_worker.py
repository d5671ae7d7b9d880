"""The worker's pieces without a thread: throttled previews, error sentences, PIL -> QImage."""

from __future__ import annotations

import pytest

pytest.importorskip("pytestqt")
torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402

from sdstudio.core.errors import ModelLoadError  # noqa: E402
from sdstudio.core.events import StepEvent  # noqa: E402
from sdstudio.ui.imaging import pil_to_qimage  # noqa: E402
from sdstudio.ui.worker import GenerationWorker, StepPreview  # noqa: E402


def test_previews_are_throttled_and_the_last_step_always_sent(qtbot):
    worker = GenerationWorker(preview_interval=10.0)
    sent: list[StepPreview] = []
    worker.step.connect(sent.append)
    on_step = worker._step_callback(job_id=7)
    latents = torch.randn(2, 4, 8, 8)
    for i in range(1, 21):
        on_step(StepEvent(i, 20, 999.0 - i, latents, 0.01 * i))
    assert [p.step for p in sent] == [1, 20]
    last = sent[-1]
    assert last.job_id == 7 and last.total == 20
    assert (last.preview.width(), last.preview.height()) == (8, 8)
    assert len(last.channels) == 4
    assert all(c.low <= c.high for c in last.channels)
    assert all(c.image.isGrayscale() for c in last.channels)


def test_errors_become_one_sentence():
    worker = GenerationWorker()
    assert worker._describe(ModelLoadError("No model at /x")) == "No model at /x."
    oom = RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
    msg = worker._describe(oom, {"width": 1024, "height": 1024})
    assert "Out of memory at 1024×1024" in msg and "smaller size" in msg and "\n" not in msg
    other = worker._describe(ValueError("bad\nthing"))
    assert "\n" not in other and "ValueError" in other


def test_pil_to_qimage_copies_pixels():
    img = Image.new("RGB", (5, 3), (255, 0, 0))
    q = pil_to_qimage(img)
    assert (q.width(), q.height()) == (5, 3)
    assert q.pixelColor(4, 2).red() == 255 and q.pixelColor(4, 2).blue() == 0
    grey = pil_to_qimage(Image.new("L", (4, 4), 128))
    assert grey.isGrayscale() and grey.pixelColor(0, 0).red() == 128

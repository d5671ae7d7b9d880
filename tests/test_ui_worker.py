"""The worker's pieces without a thread: throttled previews, Qt-ready payloads, PIL -> QImage."""

from __future__ import annotations

import torch
from PIL import Image

from sdstudio.core.events import EngineEvent, EventKind, ImageEvent, StepEvent
from sdstudio.core.request import GenerationRequest
from sdstudio.ui.imaging import pil_to_qimage
from sdstudio.ui.worker import FinishedImage, GenerationWorker, StepPreview


def test_previews_are_throttled_and_the_last_step_always_sent(qtbot):
    worker = GenerationWorker(preview_interval=10.0)
    sent: list[EngineEvent] = []
    worker.engineEvent.connect(sent.append)
    forward = worker._forward(job_id=7)
    latents = torch.randn(2, 4, 8, 8)
    for i in range(1, 21):
        forward(EngineEvent(EventKind.PROGRESS, 7, StepEvent(i, 20, 999.0 - i, latents, 0.01 * i)))
    assert [e.payload.step for e in sent] == [1, 20]
    assert {e.kind for e in sent} == {EventKind.PROGRESS} and {e.job_id for e in sent} == {7}
    last: StepPreview = sent[-1].payload
    assert last.total == 20
    assert (last.preview.width(), last.preview.height()) == (8, 8)
    assert len(last.channels) == 4
    assert all(c.low <= c.high for c in last.channels)
    assert all(c.image.isGrayscale() for c in last.channels)


def test_finished_images_cross_as_qimage_with_the_core_event(qtbot):
    worker = GenerationWorker()
    sent: list[EngineEvent] = []
    worker.engineEvent.connect(sent.append)
    request = GenerationRequest("cat", width=16, height=8)
    core = ImageEvent(0, 5, Image.new("RGB", (16, 8), "red"), request, record={"device": "cpu"})
    worker._forward(3)(EngineEvent(EventKind.IMAGE, 3, core))
    (ev,) = sent
    payload: FinishedImage = ev.payload
    assert (ev.kind, ev.job_id) == (EventKind.IMAGE, 3)
    assert (payload.image.width(), payload.image.height()) == (16, 8)
    assert payload.event is core and payload.request is request and payload.seed == 5


def test_a_broken_model_is_one_failed_event(qtbot, tmp_path):
    worker = GenerationWorker()
    sent: list[EngineEvent] = []
    worker.engineEvent.connect(sent.append)
    worker.load_model(str(tmp_path / "nowhere"), "cpu", "fp32")
    failed = [e for e in sent if e.kind is EventKind.FAILED]
    assert len(failed) == 1 and "does not exist" in failed[0].payload
    assert "\n" not in failed[0].payload


def test_pil_to_qimage_copies_pixels():
    img = Image.new("RGB", (5, 3), (255, 0, 0))
    q = pil_to_qimage(img)
    assert (q.width(), q.height()) == (5, 3)
    assert q.pixelColor(4, 2).red() == 255 and q.pixelColor(4, 2).blue() == 0
    grey = pil_to_qimage(Image.new("L", (4, 4), 128))
    assert grey.isGrayscale() and grey.pixelColor(0, 0).red() == 128


def test_an_engine_that_cannot_start_fails_each_job_with_the_reason(qtbot, monkeypatch):
    import sys

    import sdstudio.core
    from sdstudio.ui.worker import Job

    monkeypatch.setitem(sys.modules, "sdstudio.core.pipeline", None)  # a frozen build without it
    monkeypatch.delattr(sdstudio.core, "pipeline", raising=False)
    worker = GenerationWorker()
    sent: list[EngineEvent] = []
    worker.engineEvent.connect(sent.append)
    worker.run_job(Job(4, GenerationRequest("cat")))
    assert [(e.kind, e.job_id) for e in sent][-2:] == [(EventKind.FAILED, 0), (EventKind.FAILED, 4)]
    assert sent[-1].payload.startswith("The engine could not start: ")
    assert "sdstudio.core.pipeline" in sent[-1].payload

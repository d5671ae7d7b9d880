"""The window <-> worker protocol with a scripted FakeWorker (no torch): one event type, a typed
request validated before it is queued, receivers in the GUI thread, typed settings."""

from __future__ import annotations

import threading

import pytest
from PySide6.QtCore import QSettings

from sdstudio.core.events import EngineEvent, EventKind
from sdstudio.core.request import GenerationRequest
from sdstudio.testing.fake_worker import FAKE_RECORD, FakeWorker, started_window
from sdstudio.ui.jobs import JobQueue
from sdstudio.ui.main_window import MainWindow
from sdstudio.ui.settings import DEFAULT_PARAMS, Settings

pytestmark = pytest.mark.timeout(60)


_window = started_window


def test_signal_to_signal_receivers_run_in_the_gui_thread(qtbot):
    worker = FakeWorker(steps=3)
    jobs = JobQueue(worker)
    seen: list[tuple[EventKind, bool]] = []
    jobs.engineEvent.connect(lambda ev: seen.append(
        (ev.kind, threading.current_thread() is threading.main_thread())))
    jobs.start()
    try:
        with qtbot.waitSignal(jobs.engineEvent, timeout=10_000,
                              check_params_cb=lambda ev: ev.kind is EventKind.FINISHED):
            jobs.submit(GenerationRequest("x", width=16, height=16, steps=3))
    finally:
        assert jobs.shutdown(5_000)
    kinds = [k for k, _ in seen]
    assert EventKind.READY in kinds  # the warm-up runs in the worker thread, at its own pace
    assert [k for k in kinds if k is not EventKind.READY] == [
        EventKind.QUEUED, EventKind.STARTED, *[EventKind.PROGRESS] * 3, EventKind.IMAGE,
        EventKind.FINISHED]
    assert all(in_gui for _, in_gui in seen)
    assert worker.threads and threading.main_thread().ident not in worker.threads
    assert not jobs.busy() and jobs.running is None


def test_the_request_crosses_the_thread_as_the_validated_object(qtbot):
    worker = FakeWorker()
    w = _window(qtbot, worker)
    with qtbot.waitSignal(w.jobFinished, timeout=10_000) as done:
        job = w.generate()
    assert done.args == [job, EventKind.FINISHED]
    (request,) = worker.requests
    assert isinstance(request, GenerationRequest)
    assert (request.prompt, request.seed, request.steps, request.width) == ("a red circle", 3, 4, 64)
    assert request == request.validate()
    w.close()


def test_a_bad_request_is_refused_before_it_is_queued(qtbot):
    worker = FakeWorker()
    w = _window(qtbot, worker)
    w.params_panel.set_params({"seed": 2**63 - 1, "batch_size": 2})
    with qtbot.waitSignal(w.errorShown, timeout=5_000) as shown:
        assert w.generate() is None
    assert "runs past 2^63-1" in shown.args[0]
    qtbot.wait(50)
    assert worker.requests == [] and not w.jobs.busy()
    w.close()


def test_images_are_saved_with_the_engine_s_record(qtbot):
    w = _window(qtbot, FakeWorker())
    with qtbot.waitSignal(w.gallery_panel.imageSaved, timeout=10_000) as saved:
        w.generate()
    from sdstudio.core.png.io import read_png

    record = read_png(saved.args[0]).record
    assert {k: record[k] for k in FAKE_RECORD} == FAKE_RECORD
    w.close()


def test_a_failing_job_is_one_sentence_and_the_next_one_runs(qtbot):
    worker = FakeWorker(fail="Out of memory at 64×64: lower the size.")
    w = _window(qtbot, worker)
    with qtbot.waitSignal(w.jobFinished, timeout=10_000) as done:
        w.generate()
    assert done.args[1] is EventKind.FAILED
    assert w.last_error == "Out of memory at 64×64: lower the size."
    w.last_error_dialog.close()
    worker.fail = None
    with qtbot.waitSignal(w.jobFinished, timeout=10_000) as done:
        w.generate()
    assert done.args[1] is EventKind.FINISHED and w.session_gallery.count() == 1
    w.close()


def test_the_model_s_size_and_guidance_come_from_the_loaded_model(qtbot):
    w = MainWindow(worker=FakeWorker(native_size=96, guidance=4.0))
    qtbot.addWidget(w)
    with qtbot.waitSignal(w.modelReady, timeout=10_000) as ready:
        w.start_engine()
    assert ready.args[0].native_size == 96
    p = w.params_panel.params()
    assert (p["width"], p["height"], p["guidance"]) == (96, 96, 4.0)  # a first start follows
    w.close()


def test_renamed_attributes_no_longer_hide_qt_s_own(qtbot):
    w = MainWindow(worker=FakeWorker())
    qtbot.addWidget(w)
    # QWidget.mask(), QObject.thread() and QObject.event() are Qt's own again
    assert callable(w.params_panel.mask) and callable(w.jobs.thread)
    assert callable(w.jobs.event) and callable(w.jobs.worker.event)
    assert w.jobs.thread() is not w.jobs.worker_thread
    w.close()


def test_settings_are_typed_and_bad_values_read_as_defaults(tmp_path):
    q = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    s = Settings(q)
    assert not s.has_params() and s.params() == DEFAULT_PARAMS
    s.set_params({**DEFAULT_PARAMS, "steps": 7, "guidance": 3.5, "unknown": 1})
    q.sync()
    again = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    assert again.has_params() and again.params()["steps"] == 7 and "unknown" not in again.params()
    q.setValue(Settings.PARAMS, '{"steps": -4, "guidance": "NaN", "width": 1e9, "device": "tpu",'
                                ' "seed_random": 1, "batch_size": 2}')
    p = s.params()
    assert (p["steps"], p["guidance"], p["width"], p["device"], p["seed_random"]) == (
        DEFAULT_PARAMS["steps"], DEFAULT_PARAMS["guidance"], DEFAULT_PARAMS["width"], "auto", True)
    assert p["batch_size"] == 2
    q.setValue(Settings.PARAMS, "{not json")
    q.setValue(Settings.OPENED_MODELS, '["a", 3, "b"]')
    assert s.params() == DEFAULT_PARAMS and s.opened_models() == ["a", "b"]
    s.set_gallery_folder(tmp_path / "g")
    assert s.gallery_folder() == tmp_path / "g"


def test_engine_events_are_plain_data():
    ev = EngineEvent(EventKind.NOTICE, 0, "hello")
    assert ev.kind.value == "notice" and not ev.kind.ends_job
    assert {k for k in EventKind if k.ends_job} == {
        EventKind.FINISHED, EventKind.CANCELLED, EventKind.FAILED}

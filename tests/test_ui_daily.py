"""The window for daily use, with the scripted FakeWorker (no torch): notices that stay, a queue
you control, nothing lost on close, a first window that fits the screen, size warnings."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QScreen
from PySide6.QtWidgets import QApplication

from sdstudio.core.events import EventKind
from sdstudio.core.request import GenerationRequest
from sdstudio.testing.fake_worker import FakeWorker, started_window
from sdstudio.ui import main_window as mw
from sdstudio.ui.jobs import JobQueue
from sdstudio.ui.main_window import MainWindow, fit_rect
from sdstudio.ui.params_panel import presets_for, size_warning

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _close_discards(monkeypatch):
    """A failed test must not leave a modal close dialog waiting on a busy queue."""
    monkeypatch.setattr(MainWindow, "ask_close", lambda _self: mw.CLOSE_DISCARD)


NOTICE = "The prompt was cut to 32 tokens: 'second half' was dropped."


_window = started_window


# --- notices ----------------------------------------------------------------------------------
def test_a_run_s_notice_stays_under_its_image_and_in_the_list(qtbot):
    w = _window(qtbot, FakeWorker(notices=[NOTICE]))
    with qtbot.waitSignal(w.jobFinished, timeout=10_000):
        job = w.generate()
    qtbot.wait(20)
    notice = NOTICE
    assert w.preview_panel.notice_texts() == [notice]
    assert w.preview_panel.notices.isVisibleTo(w)
    assert w.notices_panel.texts() == [notice]
    assert f"job #{job}" in w.notices_panel.list.item(0).text()
    assert w.notices_button.text() == "Notices (1)"
    assert "1 notice under the image" in w.statusBar().currentMessage()  # "Done" does not hide it
    w.statusBar().showMessage("something else")
    assert w.preview_panel.notice_texts() == [notice]
    w.close()


def test_notices_are_cleared_when_the_next_run_begins(qtbot):
    w = _window(qtbot, FakeWorker(notices=[NOTICE]))
    with qtbot.waitSignal(w.jobFinished, timeout=10_000):
        w.generate()
    assert w.preview_panel.notice_texts()
    w.preview_panel.begin("Job #2")
    assert w.preview_panel.notice_texts() == [] and not w.preview_panel.notices.isVisibleTo(w)
    assert len(w.notices_panel.texts()) == 1  # the list keeps it
    w.close()


# --- the queue --------------------------------------------------------------------------------
def test_cancel_stops_only_the_running_job(qtbot):
    worker = FakeWorker(step_delay=0.02, steps=200)
    w = _window(qtbot, worker)
    finished: list[tuple[int, EventKind]] = []
    w.jobFinished.connect(lambda job, outcome: finished.append((job, outcome)))
    with qtbot.waitSignal(w.stepShown, timeout=10_000):
        first = w.generate()
    worker.steps = 2
    second, third = w.generate(), w.generate()
    w.cancel()
    assert w.statusBar().currentMessage() == "Cancelling…"
    assert w.queue_panel.list.item(0).text().startswith(f"#{first} cancelling")
    qtbot.waitUntil(lambda: len(finished) == 3, timeout=10_000)
    assert finished == [(first, EventKind.CANCELLED), (second, EventKind.FINISHED),
                        (third, EventKind.FINISHED)]
    w.close()


def test_cancel_one_of_three_waiting_jobs_by_delete_key(qtbot):
    worker = FakeWorker(step_delay=0.02, steps=100)
    w = _window(qtbot, worker)
    finished: list[tuple[int, EventKind]] = []
    w.jobFinished.connect(lambda job, outcome: finished.append((job, outcome)))
    w.jobs.set_paused(True)
    jobs = [w.generate() for _ in range(3)]
    assert w.queue_panel.list.count() == 3 and "(paused)" in w.queue_panel.label.text()
    w.queue_panel.list.item(1).setSelected(True)
    qtbot.keyClick(w.queue_panel.list, Qt.Key.Key_Delete)
    assert finished == [(jobs[1], EventKind.CANCELLED)]
    assert [j.job_id for j in w.jobs.waiting] == [jobs[0], jobs[2]]
    worker.steps = 1
    w.queue_panel.pause.setChecked(False)
    qtbot.waitUntil(lambda: len(finished) == 3, timeout=10_000)
    assert finished[1:] == [(jobs[0], EventKind.FINISHED), (jobs[2], EventKind.FINISHED)]
    assert len(worker.requests) == 2  # the removed one never reached the worker
    w.close()


def test_context_menu_moves_duplicates_and_removes(qtbot):
    w = _window(qtbot, FakeWorker())
    w.jobs.set_paused(True)
    a, b = w.generate(), w.generate()
    menu = w.queue_panel.list.context_menu(b)
    labels = [action.text() for action in menu.actions()]
    assert labels == ["Remove from queue", "Move up", "Move down", "Duplicate"]
    menu.actions()[1].trigger()  # move b up
    assert [j.job_id for j in w.jobs.waiting] == [b, a]
    copy = w.jobs.duplicate(b)
    assert [j.job_id for j in w.jobs.waiting] == [b, copy, a]
    assert w.jobs.waiting[1].request == w.jobs.waiting[0].request
    w.queue_panel.list.context_menu(a).actions()[0].trigger()
    assert [j.job_id for j in w.jobs.waiting] == [b, copy]
    w.queue_panel.clear.click()
    assert not w.jobs.busy() and w.queue_panel.label.text() == "Queue: empty (paused)"
    w.close()


def test_reorder_keeps_unnamed_jobs_at_the_end(qtbot):
    jobs = JobQueue(FakeWorker())
    jobs.set_paused(True)
    ids = [jobs.submit(GenerationRequest(f"p{i}", width=16, height=16)) for i in range(4)]
    jobs.reorder([ids[2], ids[0]])
    assert [j.job_id for j in jobs.waiting] == [ids[2], ids[0], ids[1], ids[3]]
    jobs.move(ids[3], -10)
    assert jobs.waiting[0].job_id == ids[3]
    assert jobs.shutdown(5_000)


# --- closing ----------------------------------------------------------------------------------
def test_close_with_a_queued_job_keeps_it_for_next_time(qtbot, monkeypatch):
    w = _window(qtbot, FakeWorker(step_delay=0.02, steps=500))
    with qtbot.waitSignal(w.stepShown, timeout=10_000):
        w.generate()
    w.params_panel.set_params({"seed": 77})
    w.generate()
    monkeypatch.setattr(w, "ask_close", lambda: mw.CLOSE_KEEP)
    w.close()
    assert not w.jobs.worker_thread.isRunning()

    w2 = MainWindow(worker=FakeWorker())
    qtbot.addWidget(w2)
    assert [j.request.seed for j in w2.jobs.waiting] == [3, 77]  # running one first, then waiting
    assert w2.jobs.paused and "kept from last time" in w2.notices_panel.texts()[0]
    w2.show()
    finished: list[int] = []
    w2.jobFinished.connect(lambda job, _o: finished.append(job))
    w2.start_engine()
    w2.jobs.worker.steps = 1
    w2.pause_action.setChecked(False)
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=10_000)
    w2.close()
    w3 = MainWindow(worker=FakeWorker())  # kept once: not restored again
    qtbot.addWidget(w3)
    assert not w3.jobs.busy()
    w3.close()


def test_close_can_be_refused_and_waits_when_asked(qtbot, monkeypatch):
    w = _window(qtbot, FakeWorker(step_delay=0.01, steps=30))
    with qtbot.waitSignal(w.stepShown, timeout=10_000):
        w.generate()
    monkeypatch.setattr(w, "ask_close", lambda: mw.CLOSE_STAY)
    assert not w.close() and w.isVisible() and w.jobs.busy()
    monkeypatch.setattr(w, "ask_close", lambda: mw.CLOSE_WAIT)
    assert not w.close()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=10_000)  # quit once the job finished
    assert w.session_gallery.count() == 1 and not w.jobs.worker_thread.isRunning()


def test_close_dialog_offers_the_three_choices(qtbot, monkeypatch):
    w = _window(qtbot, FakeWorker(step_delay=0.02, steps=500))
    monkeypatch.undo()  # the real dialog
    with qtbot.waitSignal(w.stepShown, timeout=10_000):
        w.generate()
    seen: list[str] = []

    def answer() -> None:
        box = QApplication.activeModalWidget()
        seen.extend(b.text() for b in box.buttons())
        next(b for b in box.buttons() if b.text() == "Discard and quit").click()

    from PySide6.QtCore import QTimer

    QTimer.singleShot(100, answer)
    assert w.close()
    assert {"Finish, then quit", "Keep the queue for next time", "Discard and quit"} <= set(seen)
    assert not w.jobs.worker_thread.isRunning()


# --- geometry and layout ----------------------------------------------------------------------
def test_fit_rect_shrinks_and_moves_onto_the_screen():
    screen = QRect(0, 0, 1366, 728)
    assert fit_rect(QRect(100, 100, 1280, 800), screen) == QRect(86, 0, 1280, 728)
    assert fit_rect(QRect(-3000, 5000, 400, 300), screen) == QRect(0, 428, 400, 300)


@pytest.mark.parametrize("size", [(1366, 768), (1067, 667), (800, 600)])
def test_the_first_window_never_exceeds_the_screen(qtbot, monkeypatch, size):
    available = QRect(0, 0, *size)
    monkeypatch.setattr(QScreen, "availableGeometry", lambda _self: available)
    w = MainWindow(worker=FakeWorker())
    qtbot.addWidget(w)
    w.show()
    qtbot.wait(20)
    assert available.contains(w.geometry())
    assert w.width() <= size[0] and w.height() <= size[1]
    w.close()


def test_a_saved_geometry_from_a_bigger_screen_is_brought_back(qtbot, monkeypatch):
    w = MainWindow(worker=FakeWorker())
    qtbot.addWidget(w)
    w.show()
    w.setGeometry(QRect(1500, 900, 1280, 800))
    w.close()
    available = QRect(0, 0, 1024, 700)
    monkeypatch.setattr(QScreen, "availableGeometry", lambda _self: available)
    w2 = MainWindow(worker=FakeWorker())
    qtbot.addWidget(w2)
    assert available.contains(w2.geometry())
    w2.close()


def test_preview_is_the_largest_area_and_reset_layout_brings_docks_back(qtbot):
    w = MainWindow(worker=FakeWorker())
    qtbot.addWidget(w)
    w.resize(1600, 1000)
    w.show()
    qtbot.waitUntil(lambda: w._split_width > 0, timeout=5_000)
    qtbot.wait(50)

    def widest() -> bool:
        pw = w.preview_dock.width()
        return all(pw > d.width() for d in (w.prompt_dock, w.channels_dock, w.gallery_dock))

    assert widest()
    w.prompt_dock.close()
    w.queue_dock.close()
    w.channels_dock.setFloating(True)
    assert w.generate_action in w.toolbar.actions()  # Generate stays reachable
    assert not w.toolbar.toggleViewAction().isEnabled()
    w.reset_layout()
    qtbot.wait(50)
    assert w.prompt_dock.isVisible() and w.queue_dock.isVisible()
    assert not w.channels_dock.isFloating()
    assert widest()
    w.close()


# --- sizes ------------------------------------------------------------------------------------
def test_presets_come_from_the_native_size():
    assert presets_for(128)[:5] == [(64, 64), (96, 96), (128, 128), (192, 192), (256, 256)]
    assert (512, 512) in presets_for(512) and (1024, 1024) in presets_for(512)
    assert all(w <= 256 and h <= 256 for w, h in presets_for(128))


def test_size_warning_thresholds():
    assert size_warning(256, 256, 128) is None
    assert "tile" in size_warning(264, 128, 128)
    assert size_warning(2048, 2048, 512) is None
    assert "native 512×512" in size_warning(4096, 2048, 512)
    assert size_warning(4096, 4096, 0) is None  # no model loaded yet: nothing known


def test_a_huge_size_asks_once_with_an_estimate(qtbot, monkeypatch):
    w = _window(qtbot, FakeWorker(native_size=128))
    w._seconds_per_mpx_step = 2.0
    asked: list[str] = []
    monkeypatch.setattr(w, "confirm_size", lambda text: asked.append(text) or False)
    w.params_panel.set_params({"width": 1024, "height": 1024, "steps": 10})
    assert w.generate() is None and not w.jobs.busy()
    assert "tile" in asked[0] and "Estimated time: at least 21 s" in asked[0]
    assert [w.params_panel.size_preset.itemText(i) for i in range(1, 4)] == [
        "64×64", "96×96", "128×128 (native)"]
    monkeypatch.setattr(w, "confirm_size", lambda text: asked.append(text) or True)
    with qtbot.waitSignal(w.jobFinished, timeout=10_000):
        assert w.generate() is not None
    with qtbot.waitSignal(w.jobFinished, timeout=10_000):
        assert w.generate() is not None  # asked once for this size
    assert len(asked) == 2
    w.close()


# --- state that surprises no one, looks ---------------------------------------------------------
def test_the_init_image_is_not_restored_after_a_restart(qtbot, tmp_path):
    from PIL import Image

    init = tmp_path / "init.png"
    Image.new("RGB", (16, 16), "red").save(init)
    w = MainWindow(worker=FakeWorker())
    qtbot.addWidget(w)
    w.set_init_image(init)
    assert w.params_panel.params()["init_image"] == str(init)
    w.close()
    w2 = MainWindow(worker=FakeWorker())
    qtbot.addWidget(w2)
    assert w2.params_panel.params()["init_image"] is None  # the next Generate is txt2img
    w2.close()


def test_preview_is_pixel_exact_unless_smooth_is_chosen(qtbot):
    from PySide6.QtGui import QColor, QImage

    w = MainWindow(worker=FakeWorker())
    qtbot.addWidget(w)
    view = w.preview_panel.view
    view.resize(64, 64)
    image = QImage(2, 2, QImage.Format.Format_RGB32)
    for x, y, c in ((0, 0, "red"), (1, 0, "blue"), (0, 1, "blue"), (1, 1, "red")):
        image.setPixelColor(x, y, QColor(c))
    view.set_image(image)
    shown = view.pixmap().toImage()
    assert shown.pixelColor(31, 10) == QColor("red")  # nearest: hard edges, no blend
    w.smooth_action.setChecked(True)
    assert view.pixmap().toImage().pixelColor(31, 10) != QColor("red")
    w.close()


def test_a_dropped_image_without_parameters_asks_what_it_is_for(qtbot, tmp_path, monkeypatch):
    from PIL import Image

    plain = tmp_path / "plain.png"
    Image.new("RGB", (16, 16), "white").save(plain)
    w = MainWindow(worker=FakeWorker())
    qtbot.addWidget(w)
    monkeypatch.setattr(w, "ask_plain_drop", lambda _path: "cancel")
    w._handle_drop(str(plain))
    assert w.params_panel.params()["init_image"] is None  # nothing silently becomes img2img
    monkeypatch.setattr(w, "ask_plain_drop", lambda _path: "mask")
    w._handle_drop(str(plain))
    assert w.params_panel.params()["mask"] == str(plain) and "Mask: plain.png" in (
        w.statusBar().currentMessage())
    w.close()


def test_reused_parameters_say_what_was_loaded(qtbot):
    w = MainWindow(worker=FakeWorker())
    qtbot.addWidget(w)
    w.apply_request(GenerationRequest("a blue square", seed=99, width=48, height=40, steps=5))
    assert w.statusBar().currentMessage() == (
        "Parameters loaded: “a blue square”, seed 99, 48×40, 5 steps.")
    w.close()


def test_placeholder_text_is_readable():
    from sdstudio.ui.imaging import VIEW_BACKGROUND, VIEW_TEXT

    def luminance(hex_colour: str) -> float:
        channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        lin = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
        return 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]

    hi, lo = sorted((luminance(VIEW_TEXT), luminance(VIEW_BACKGROUND)), reverse=True)
    assert (hi + 0.05) / (lo + 0.05) >= 4.5

"""The studio window end to end with the tiny model: generate, cancel, errors, close, settings."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from sdstudio.core.events import EventKind
from sdstudio.ui.main_window import MainWindow

WAIT_MS = 180_000  # the first job imports torch and loads the model in the worker thread


@pytest.fixture(autouse=True)
def _close_discards(monkeypatch):
    """A failed test must not leave a modal close dialog waiting on a busy queue."""
    from sdstudio.ui.main_window import CLOSE_DISCARD

    monkeypatch.setattr(MainWindow, "ask_close", lambda _self: CLOSE_DISCARD)


@pytest.fixture
def window(qtbot, tiny_model_dir):
    """A window whose engine has started and preloaded the tiny model (no startup races)."""
    w = MainWindow()
    qtbot.addWidget(w)
    _use_tiny(w, tiny_model_dir)
    w.show()
    with qtbot.waitSignal(w.modelReady, timeout=WAIT_MS):
        w.start_engine()
    assert w.params_panel.scheduler.count() > 1  # sampler names arrived from the engine
    yield w
    w.close()
    assert not w.jobs.worker_thread.isRunning()


def _use_tiny(w: MainWindow, model_dir: Path, steps: int = 3, size: int = 32) -> None:
    w.params_panel.set_params({
        "model": str(model_dir), "steps": steps, "width": size, "height": size,
        "scheduler": "Euler", "seed_random": False, "seed": 1, "batch_size": 1,
        "device": "cpu", "dtype": "fp32",
    })


def _generate(qtbot, w: MainWindow) -> list:
    with qtbot.waitSignal(w.jobFinished, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(w.prompt_panel.generate_button, Qt.MouseButton.LeftButton)
    return blocker.args


def test_generate_shows_final_image_and_four_channels(window, qtbot, tiny_model_dir):
    _use_tiny(window, tiny_model_dir, steps=3)
    threads: set[bool] = set()  # a lambda on the JobQueue's signals runs in the GUI thread
    window.jobs.engineEvent.connect(lambda _ev: threads.add(threading.current_thread() is
                                                      threading.main_thread()))
    window.prompt_panel.prompt.clear()
    qtbot.keyClicks(window.prompt_panel.prompt, "a red circle on a blue background")
    assert _generate(qtbot, window)[1] is EventKind.FINISHED, window.last_error
    assert window.preview_panel.view.has_image()
    assert window.channels_panel.shown_count() == 4
    assert all("…" in label.text() for label in window.channels_panel.labels)
    assert window.session_gallery.count() == 1
    labels = window.preview_panel.history_labels()
    assert labels[-2] == "step 3" and labels[-1].startswith("Final image")  # last step always sent
    assert window.preview_panel.progress.value() == window.preview_panel.progress.maximum()
    assert not window.prompt_panel.cancel_button.isEnabled()
    assert threads == {True}


def test_ctrl_enter_generates(window, qtbot, tiny_model_dir):
    _use_tiny(window, tiny_model_dir, steps=1)
    with qtbot.waitSignal(window.jobFinished, timeout=WAIT_MS) as blocker:
        qtbot.keyClick(window.prompt_panel.prompt, Qt.Key.Key_Return,
                       Qt.KeyboardModifier.ControlModifier)
    assert blocker.args[1] is EventKind.FINISHED
    assert window.prompt_panel.prompt.toPlainText().count("\n") == 0


def test_cancel_mid_run_then_generate_again(window, qtbot, tiny_model_dir):
    _use_tiny(window, tiny_model_dir, steps=400)
    with qtbot.waitSignal(window.stepShown, timeout=WAIT_MS):
        first = window.generate()
    second = window.generate()  # waits in the visible queue
    assert window.queue_panel.list.count() == 2
    assert "1 running, 1 waiting" in window.queue_panel.label.text()
    finished: list[tuple[int, str]] = []
    window.jobFinished.connect(lambda job, outcome: finished.append((job, outcome)))
    steps: list[tuple[int, int]] = []  # (job, step) of every preview
    window.jobs.engineEvent.connect(lambda ev: steps.append((ev.job_id, ev.payload.step))
                                    if ev.kind is EventKind.PROGRESS else None)
    qtbot.keyClick(window.prompt_panel.prompt, Qt.Key.Key_Escape)  # the running job only
    qtbot.waitUntil(lambda: len(finished) == 1, timeout=30_000)
    assert finished == [(first, EventKind.CANCELLED)]
    assert max([step for job, step in steps if job == first], default=0) < 400
    qtbot.waitUntil(lambda: window.jobs.running is not None
                    and window.jobs.running.job_id == second, timeout=30_000)
    qtbot.keyClick(window.prompt_panel.prompt, Qt.Key.Key_Escape,
                   Qt.KeyboardModifier.ShiftModifier)  # cancel all
    qtbot.waitUntil(lambda: len(finished) == 2, timeout=30_000)
    assert finished[1] == (second, EventKind.CANCELLED)
    assert window.queue_panel.list.count() == 0
    _use_tiny(window, tiny_model_dir, steps=2)
    assert _generate(qtbot, window)[1] is EventKind.FINISHED


def test_broken_model_shows_one_sentence_and_app_still_works(window, qtbot, tmp_path,
                                                             tiny_model_dir):
    broken = tmp_path / "broken_model"
    broken.mkdir()
    (broken / "model_index.json").write_text("{not json")
    _use_tiny(window, broken)
    shown: list[str] = []
    window.statusBar().messageChanged.connect(shown.append)
    with qtbot.waitSignal(window.errorShown, timeout=WAIT_MS) as failed:
        assert _generate(qtbot, window)[1] is EventKind.FAILED
    message = failed.args[0]
    assert message and "Traceback" not in message and "\n" not in message
    assert "broken_model" in message
    assert message in shown  # the status bar said it
    assert window.last_error_dialog is not None and window.last_error_dialog.isVisible()
    assert window.last_error_dialog.text() == message
    window.last_error_dialog.close()
    _use_tiny(window, tiny_model_dir, steps=2)
    assert _generate(qtbot, window)[1] is EventKind.FINISHED


def test_close_during_run_joins_the_worker_thread(qtbot, tiny_model_dir, qtlog):
    w = MainWindow()  # the close dialog answers "Discard and quit" (_close_discards)
    qtbot.addWidget(w)
    w.show()
    w.start_engine()
    _use_tiny(w, tiny_model_dir, steps=1000)
    with qtbot.waitSignal(w.stepShown, timeout=WAIT_MS):
        w.generate()
    w.close()
    assert not w.jobs.worker_thread.isRunning()
    assert w.jobs.worker_thread.isFinished()
    assert not any("Destroyed while thread" in r.message for r in qtlog.records)
    assert not any("another thread" in r.message for r in qtlog.records)


def test_settings_survive_a_restart(qtbot, tmp_path):
    w1 = MainWindow()
    qtbot.addWidget(w1)
    w1.show()
    w1.resize(760, 620)
    w1.prompt_panel.set_texts("a green square", "blurry")
    w1.params_panel.set_params({"steps": 7, "width": 64, "height": 96, "seed": 1234,
                                "seed_random": False, "guidance": 3.5, "scheduler": "DDIM",
                                "batch_size": 2, "model": str(tmp_path / "some_model"),
                                "dtype": "fp32"})
    w1.params_panel.model.set_models_folder(tmp_path)
    w1.params_panel.model.folderChosen.emit(str(tmp_path))
    w1.channels_dock.hide()
    w1.close()

    w2 = MainWindow()
    qtbot.addWidget(w2)
    w2.show()
    assert w2.prompt_panel.texts() == ("a green square", "blurry")
    p = w2.params_panel.params()
    assert (p["steps"], p["width"], p["height"], p["seed"], p["seed_random"]) == (
        7, 64, 96, 1234, False)
    assert (p["guidance"], p["scheduler"], p["batch_size"], p["dtype"]) == (
        3.5, "DDIM", 2, "fp32")
    assert p["model"] == str(tmp_path / "some_model")
    assert w2.params_panel.model.models_folder() == tmp_path
    assert (w2.width(), w2.height()) == (760, 620)
    assert w2.channels_dock.isHidden()
    w2.close()


def test_window_module_does_not_import_torch():
    code = ("import sys; from PySide6.QtWidgets import QApplication; app = QApplication([]); "
            "from sdstudio.ui.main_window import MainWindow; w = MainWindow(); w.show(); "
            "app.processEvents(); print('torch' in sys.modules, 'diffusers' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]


def test_batch_img2img_scrubber_and_reuse(window, qtbot, tiny_model_dir, tmp_path):
    from PIL import Image

    from sdstudio.core.request import GenerationRequest

    init = tmp_path / "init.png"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(init)
    _use_tiny(window, tiny_model_dir, steps=4)
    window.set_init_image(init)
    window.params_panel.set_params({"batch_size": 2, "strength": 0.5})
    assert window.params_panel.params()["init_image"] == str(init)
    assert _generate(qtbot, window)[1] is EventKind.FINISHED, window.last_error
    assert window.session_gallery.count() == 2
    scrubber = window.preview_panel.scrubber
    assert scrubber.isEnabled() and scrubber.maximum() >= 1
    scrubber.setValue(0)
    assert window.preview_panel.scrub_label.text().startswith("step")

    request = GenerationRequest(prompt="a blue square", negative_prompt="red", seed=99,
                                steps=5, width=48, height=40, scheduler="DDIM",
                                model=str(tiny_model_dir))
    window.apply_request(request)
    p = window.params_panel.params()
    assert window.prompt_panel.texts() == ("a blue square", "red")
    assert (p["seed"], p["seed_random"], p["steps"], p["width"], p["height"]) == (
        99, False, 5, 48, 40)
    assert p["scheduler"] == "DDIM" and p["init_image"] is None


def test_switching_models_follows_native_size_unless_user_chose_one(window, qtbot, tmp_path):
    """demo 128 -> SD 512 style: a size equal to the old model's native size follows the new
    model; a size the user picked stays."""
    from dataclasses import replace

    from sdstudio.testing.tiny_models import TINY, build_tiny_model

    bigger = build_tiny_model(tmp_path / "big", size=replace(TINY, sample_size=6))  # native 48
    assert window.params_panel.params()["width"] == 32  # the tiny model's own size
    with qtbot.waitSignal(window.modelReady, timeout=WAIT_MS):
        window.params_panel.set_params({"model": str(bigger)})
        window._preload(str(bigger))
    assert (window.params_panel.params()["width"], window.params_panel.params()["height"]) == (48, 48)
    window.params_panel.set_params({"width": 40, "height": 40})
    small = build_tiny_model(tmp_path / "small")
    with qtbot.waitSignal(window.modelReady, timeout=WAIT_MS):
        window._preload(str(small))
    assert window.params_panel.params()["width"] == 40


def test_first_start_takes_the_demo_model_s_guidance_before_it_has_loaded(qtbot, tmp_path):
    """A Generate pressed during the first load must not go out at 7.5 (read without torch)."""
    from sdstudio.core.model_settings import recommended_guidance
    from sdstudio.core.paths import demo_model_dir

    (tmp_path / "sdstudio.json").write_text('{"guidance": 4.0}')
    w = MainWindow()  # first run: the demo model is selected; the engine is not started
    qtbot.addWidget(w)
    assert w.params_panel.params()["model"] == "demo"
    assert w.params_panel.params()["guidance"] == recommended_guidance(demo_model_dir())
    w._preload(str(tmp_path))  # picking a folder applies its scale at once, before the load
    assert w.params_panel.params()["guidance"] == 4.0
    w.params_panel.set_params({"guidance": 9.0})
    w._preload("demo")  # ...but never over the user's own choice
    assert w.params_panel.params()["guidance"] == 9.0
    w.close()


def test_switching_models_follows_recommended_guidance_unless_user_chose_one(window, qtbot, tmp_path):
    """A model folder's sdstudio.json guidance replaces the previous model's, not the user's."""
    from sdstudio.testing.tiny_models import build_tiny_model

    low = build_tiny_model(tmp_path / "low")
    (low / "sdstudio.json").write_text('{"guidance": 3.0}')
    assert window.params_panel.params()["guidance"] == 7.5
    with qtbot.waitSignal(window.modelReady, timeout=WAIT_MS):
        window._preload(str(low))
    assert window.params_panel.params()["guidance"] == 3.0
    window.params_panel.set_params({"guidance": 5.0})
    plain = build_tiny_model(tmp_path / "plain")
    with qtbot.waitSignal(window.modelReady, timeout=WAIT_MS):
        window._preload(str(plain))
    assert window.params_panel.params()["guidance"] == 5.0


def test_the_window_and_the_cli_write_the_same_record(window, qtbot, tiny_model_dir, tmp_path):
    """One engine: the same image gets the same pixels and the same record from both."""
    import numpy as np
    from PIL import Image

    from sdstudio.cli import main
    from sdstudio.core.png.io import read_png

    _use_tiny(window, tiny_model_dir, steps=2)
    window.params_panel.set_params({"guidance": 5.0, "seed": 11})
    window.prompt_panel.set_texts("a red circle", "")
    with qtbot.waitSignal(window.gallery_panel.imageSaved, timeout=WAIT_MS) as saved:
        window.generate()
    sent = window.params_panel.request("a red circle")  # the same folders as the job's
    assert main(["generate", "a red circle", "--model", str(tiny_model_dir), "--steps", "2",
                 "--seed", "11", "--guidance", "5", "--scheduler", "Euler", "--width", "32",
                 "--height", "32", "--device", "cpu", "--dtype", "fp32",
                 "--out", str(tmp_path), "--lora-dir", sent.lora_dir,  # the models folder's
                 "--embeddings-dir", sent.embeddings_dir]) == 0
    ours, cli = read_png(saved.args[0]), read_png(next(tmp_path.glob("*.png")))
    skip = {"created"}
    assert {k: v for k, v in ours.record.items() if k not in skip} == {
        k: v for k, v in cli.record.items() if k not in skip}
    assert ours.record["scheduler_config"]["num_train_timesteps"] == 1000
    assert ours.to_request() == cli.to_request()
    with Image.open(saved.args[0]) as a, Image.open(next(tmp_path.glob("*.png"))) as b:
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_a_dropped_image_reaches_each_drop_target_through_qt_dispatch(qtbot, tmp_path):
    """The slots, the VAE lab and the window share one drop mixin; Qt's own event dispatch
    (not a direct Python call) must reach it."""
    from PIL import Image
    from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QUrl
    from PySide6.QtGui import QDragEnterEvent, QDropEvent

    from sdstudio.ui.image_slot import ImageSlot

    png = tmp_path / "drop.png"
    Image.new("RGB", (8, 8)).save(png)
    slot = ImageSlot("Init image")
    qtbot.addWidget(slot)
    md = QMimeData()
    md.setUrls([QUrl.fromLocalFile(str(png))])
    enter = QDragEnterEvent(QPoint(1, 1), Qt.DropAction.CopyAction, md,
                            Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter.ignore()
    slot.event(enter)
    assert enter.isAccepted()
    drop = QDropEvent(QPointF(1, 1), Qt.DropAction.CopyAction, md, Qt.MouseButton.LeftButton,
                      Qt.KeyboardModifier.NoModifier)
    slot.event(drop)
    assert slot.path() == str(png)

"""File ▸ Settings…, open-folder failures shown in the window, and the gallery's sort and search
kept across restarts."""

from __future__ import annotations

import pytest
from PySide6.QtWidgets import QDialogButtonBox

from sdstudio.testing.fake_worker import FakeWorker, started_window
from sdstudio.ui import gallery_panel as gp
from sdstudio.ui import main_window as mw
from sdstudio.ui.main_window import MainWindow
from sdstudio.ui.settings import Settings
from sdstudio.ui.settings_dialog import SettingsDialog

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _close_discards(monkeypatch):
    monkeypatch.setattr(MainWindow, "ask_close", lambda _self: mw.CLOSE_DISCARD)


def test_the_dialog_writes_settings_and_the_window_takes_them(qtbot, tmp_path):
    w = started_window(qtbot, FakeWorker())
    models, gallery = tmp_path / "models", tmp_path / "pictures"
    models.mkdir()
    dialog = w.open_settings()
    assert isinstance(dialog, SettingsDialog) and dialog.isVisible()
    dialog.models_folder.setText(str(models))
    dialog.gallery_folder.setText(str(gallery))  # not there yet: its parent is, it is made
    dialog.dtype.setCurrentText("fp16")
    dialog.preview_source.setCurrentIndex(1)
    dialog.smooth.setChecked(True)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert not dialog.isVisible()
    fresh = Settings()  # what the next start reads
    assert fresh.models_folder() == models and fresh.gallery_folder() == gallery
    assert fresh.params()["dtype"] == "fp16"
    assert fresh.preview_source() == 1 and fresh.preview_smooth() is True
    assert w.params_panel.params()["dtype"] == "fp16"
    assert w.preview_panel.source.currentIndex() == 1 and w.smooth_action.isChecked()
    assert w.gallery_panel.gallery.folder == gallery and gallery.is_dir()
    w.close()
    again = MainWindow(worker=FakeWorker())  # a restart keeps the preview mode
    qtbot.addWidget(again)
    assert again.preview_panel.source.currentIndex() == 1 and again.smooth_action.isChecked()
    again.close()


def test_the_dialog_refuses_a_models_folder_that_does_not_exist(qtbot, tmp_path):
    settings = Settings()
    before = settings.models_folder()
    dialog = SettingsDialog(settings)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.models_folder.setText(str(tmp_path / "nowhere"))
    dialog.dtype.setCurrentText("fp16")
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert dialog.isVisible()  # stays open, says why, writes nothing
    assert "does not exist" in dialog.error.text() and dialog.error.isVisibleTo(dialog)
    assert "\n" not in dialog.error.text()
    assert Settings().models_folder() == before and Settings().params()["dtype"] == "auto"
    (tmp_path / "file.txt").write_text("x")
    dialog.models_folder.setText(str(tmp_path))
    dialog.gallery_folder.setText(str(tmp_path / "file.txt"))
    assert not dialog.apply() and "is a file" in dialog.error.text()
    dialog.gallery_folder.setText(str(tmp_path))
    assert dialog.apply() and not dialog.error.isVisibleTo(dialog)
    assert Settings().models_folder() == tmp_path


def test_open_folder_failure_is_shown_in_the_window(qtbot, monkeypatch):
    w = started_window(qtbot, FakeWorker())
    monkeypatch.setattr(gp.QDesktopServices, "openUrl", lambda _url: False)
    with qtbot.waitSignal(w.errorShown, timeout=5_000) as shown:
        w.gallery_panel._open_url(w.gallery_panel.gallery.folder)
    assert shown.args[0].startswith("Could not open the folder")
    assert w.statusBar().currentMessage() == shown.args[0]
    w.close()


def test_gallery_sort_and_search_persist_across_restarts(qtbot):
    w = started_window(qtbot, FakeWorker())
    w.gallery_panel.sort_box.setCurrentIndex(1)  # oldest first
    w.gallery_panel.search_box.setText("circle")
    w.close()
    again = MainWindow(worker=FakeWorker())
    qtbot.addWidget(again)
    assert again.gallery_panel.sort_box.currentIndex() == 1
    assert again.gallery_panel.search_box.text() == "circle"
    again.close()


def test_memory_mode_and_compile_reach_every_request_and_survive_a_restart(qtbot, tmp_path):
    w = started_window(qtbot, FakeWorker())
    assert w.params_panel.request("x").memory == "auto" and not w.params_panel.request("x").compile
    dialog = w.open_settings()
    dialog.models_folder.setText(str(tmp_path))
    labels = [dialog.memory.itemText(i) for i in range(dialog.memory.count())]
    assert any(label.startswith("Low VRAM") for label in labels)
    dialog.memory.setCurrentIndex(dialog.memory.findData("offload"))
    dialog.compile.setChecked(True)
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    request = w.params_panel.request("a prompt").validate()
    assert (request.memory, request.compile) == ("offload", True)
    assert Settings().params()["memory"] == "offload" and Settings().params()["compile"] is True
    w.close()
    again = MainWindow(worker=FakeWorker())
    qtbot.addWidget(again)
    assert again.params_panel.request("x").memory == "offload"
    reopened = again.open_settings()
    assert reopened.memory.currentData() == "offload" and reopened.compile.isChecked()
    reopened.reject()
    again.close()


def test_a_stale_memory_mode_in_the_settings_file_reads_as_auto(qtbot):
    s = Settings()
    s.set_params({**s.params(), "memory": "turbo", "compile": "yes"})
    assert s.params()["memory"] == "auto" and s.params()["compile"] is False


def test_the_dialog_offers_only_the_devices_the_machine_has(qtbot):
    w = started_window(qtbot, FakeWorker())
    w.params_panel.set_devices(["cpu"])
    dialog = w.open_settings()
    assert [dialog.device.itemText(i) for i in range(dialog.device.count())] == ["auto", "cpu"]
    dialog.reject()
    w.params_panel.set_devices(["cpu", "cuda"])
    dialog = w.open_settings()
    assert "cuda" in [dialog.device.itemText(i) for i in range(dialog.device.count())]
    assert "mps" not in [dialog.device.itemText(i) for i in range(dialog.device.count())]
    dialog.reject()
    w.close()


def test_a_first_start_can_save_settings_before_the_default_models_folder_exists(qtbot):
    from sdstudio.core.paths import default_models_dir

    assert not default_models_dir().exists()  # a new user's home
    w = started_window(qtbot, FakeWorker())
    dialog = w.open_settings()
    dialog.memory.setCurrentIndex(dialog.memory.findData("offload"))
    dialog.buttons.button(QDialogButtonBox.StandardButton.Ok).click()
    assert not dialog.isVisible() and not dialog.error.isVisible()
    assert default_models_dir().is_dir() and Settings().params()["memory"] == "offload"
    w.close()

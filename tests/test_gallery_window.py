"""The gallery inside the studio window: every finished image saved, reuse, img2img, drops.

No engine runs here: the window gets a scripted FakeWorker, and finished images are handed to
it the way the worker does.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from sdstudio.core.events import ImageEvent
from sdstudio.core.request import GenerationRequest
from sdstudio.testing.fake_worker import FakeWorker
from sdstudio.ui import main_window
from sdstudio.ui.imaging import pil_to_qimage
from sdstudio.ui.worker import FinishedImage

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
def window(fake_window):
    return fake_window


def _finished(prompt: str, seed: int, negative: str = "") -> FinishedImage:
    req = GenerationRequest(prompt, negative, seed=seed, steps=7, scheduler="DDIM", guidance=3.5,
                            width=64, height=64)
    pil = Image.new("RGB", (64, 64), "orange")
    return FinishedImage(index=0, seed=seed, image=pil_to_qimage(pil),
                         event=ImageEvent(0, seed, pil, req))


def test_finished_images_are_saved_and_survive_restart(qtbot, window):
    panel = window.gallery_panel
    assert window.gallery_dock.widget().indexOf(panel) >= 0
    with qtbot.waitSignal(panel.imageSaved, timeout=10_000) as blocker:
        window._on_image(_finished("a lighthouse at dusk", 77, "fog"))
    saved = Path(blocker.args[0])
    assert saved.is_file() and panel.model.rowCount() == 1
    assert window.session_gallery.count() == 1
    window.close()

    again = main_window.MainWindow(worker=FakeWorker())
    qtbot.addWidget(again)
    try:
        panel = again.gallery_panel
        panel.search_box.setText("lighthouse")
        panel.refresh()
        assert panel.model.rowCount() == 1
        with qtbot.waitSignal(panel.reuseRequested):
            panel.do_action("reuse", str(panel.model.image_at(0).path))
        assert again.prompt_panel.texts() == ("a lighthouse at dusk", "fog")
        params = again.params_panel.params()
        assert (params["seed"], params["steps"], params["scheduler"]) == (77, 7, "DDIM")
        panel.do_action("img2img", str(saved))
        assert again.params_panel.init_image.path() == str(saved)
    finally:
        again.close()


def test_save_failure_is_one_sentence_in_the_window(qtbot, window, monkeypatch):
    def full(*a, **kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(window.gallery_panel.gallery, "save", full)
    with qtbot.waitSignal(window.errorShown, timeout=10_000) as blocker:
        window._on_image(_finished("x", 1))
    assert "the image was saved in" in blocker.args[0] and "\n" not in blocker.args[0]


def _drop(window, path: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    event = QDropEvent(QPointF(10, 10), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)


def test_drop_png_with_parameters_offers_reuse(qtbot, window, tmp_path):
    from sdstudio.core.png import write_png

    req = GenerationRequest("a dropped teapot", seed=5, steps=9, width=64, height=64)
    png = write_png(tmp_path / "teapot.png", Image.new("RGB", (64, 64)), req, 5)
    asked = []
    window.gallery_panel.ask_drop = lambda path, params: asked.append(params.seed) or "reuse"
    with qtbot.waitSignal(window.gallery_panel.reuseRequested):
        _drop(window, png)
    assert asked == [5] and window.prompt_panel.texts()[0] == "a dropped teapot"

    plain = tmp_path / "plain.png"
    Image.new("RGB", (64, 64)).save(plain)
    window.ask_plain_drop = lambda path: "init"  # no parameters: the window asks what for
    _drop(window, plain)
    qtbot.waitUntil(lambda: window.params_panel.init_image.path() == str(plain))

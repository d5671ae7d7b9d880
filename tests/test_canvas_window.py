"""The canvas in the window with the tiny model: a hires fix job, and an only-masked inpaint of
a mask painted in the painter; the finished images carry the request (and the mask's path)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt

from sdstudio.core.events import EventKind
from sdstudio.ui.main_window import MainWindow
from sdstudio.ui.panels.canvas import MaskPainterDialog

WAIT_MS = 180_000
_IMAGE, _REQUEST = Qt.ItemDataRole.UserRole, Qt.ItemDataRole.UserRole + 1


@pytest.fixture
def window(qtbot, tiny_model_dir):
    w = MainWindow()
    qtbot.addWidget(w)
    w.params_panel.set_params({
        "model": str(tiny_model_dir), "steps": 2, "width": 32, "height": 32,
        "scheduler": "Euler", "seed_random": False, "seed": 1, "batch_size": 1,
        "device": "cpu", "dtype": "fp32",
    })
    w.show()
    with qtbot.waitSignal(w.modelReady, timeout=WAIT_MS):
        w.start_engine()
    yield w
    w.close()


def _generate(qtbot, w: MainWindow):
    with qtbot.waitSignal(w.jobFinished, timeout=WAIT_MS) as blocker:
        qtbot.mouseClick(w.prompt_panel.generate_button, Qt.MouseButton.LeftButton)
    assert blocker.args[1] is EventKind.FINISHED, w.last_error
    item = w.session_gallery.item(0)
    return item.data(_IMAGE), item.data(_REQUEST)


def test_hires_fix_in_the_window(window, qtbot):
    window.params_panel.canvas.set_params({"hires_scale": 2.0, "hires_steps": 2,
                                           "hires_upscaler": "Lanczos"})
    image, request = _generate(qtbot, window)
    assert (image.width(), image.height()) == (64, 64)
    assert request.hires_scale == 2.0 and (request.width, request.height) == (32, 32)


def test_paint_a_mask_and_inpaint_only_that(window, qtbot, tmp_path, monkeypatch):
    init = tmp_path / "init.png"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(init)
    panel = window.params_panel
    panel.init_image.set_path(str(init))

    def paint(dialog: MaskPainterDialog) -> int:
        c = dialog.painter.canvas
        c.apply(lambda m: m.point(lambda v: 0))
        box = Image.new("L", m_size := c.mask_image().size)
        box.paste(255, (36, 10, 56, 30))
        assert m_size == (64, 48)
        c.load_mask(box)
        dialog.save_and_accept()
        return dialog.result()

    monkeypatch.setattr(MaskPainterDialog, "exec", paint)
    panel.canvas.paint_button.click()
    panel.canvas.set_params({"inpaint_area": "only-masked", "inpaint_padding": 4,
                             "mask_blur": 2, "strength": 0.9})
    image, request = _generate(qtbot, window)
    assert request.mask == panel.mask_slot.path() and request.inpaint_area == "only-masked"
    assert (image.width(), image.height()) == (64, 48)  # the picture's size, not 32x32
    assert Image.open(request.mask).size == (64, 48)


def test_outpaint_to_the_right_in_the_window(window, qtbot, tmp_path, monkeypatch):
    from sdstudio.ui.panels.canvas import OutpaintDialog

    init = tmp_path / "init.png"
    Image.new("RGB", (32, 32), (20, 30, 160)).save(init)
    panel = window.params_panel
    panel.init_image.set_path(str(init))

    def choose(dialog: OutpaintDialog) -> int:
        dialog.sides["right"].setValue(24)
        return OutpaintDialog.DialogCode.Accepted

    monkeypatch.setattr(OutpaintDialog, "exec", choose)
    panel.canvas.outpaint_button.click()
    assert Image.open(panel.init_image.path()).size == (56, 32)
    image, request = _generate(qtbot, window)
    assert (image.width(), image.height()) == (56, 32)
    assert request.inpaint_area == "only-masked" and request.mask_blur == 8

"""The mask painter and the canvas options, offscreen: paint with mouse events, check the mask's
pixels; undo/redo, brush keys, zoom and pan, the operations, saving, and the request fields."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QColor
from PySide6.QtTest import QTest

from sdstudio.core.canvas import masks
from sdstudio.ui.panels.canvas import MaskPainter, MaskPainterDialog, save_mask_file
from sdstudio.ui.params_panel import ParamsPanel


@pytest.fixture
def painter(qtbot):
    w = MaskPainter()
    qtbot.addWidget(w)
    w.resize(400, 400)
    w.show()
    qtbot.waitExposed(w)
    w.canvas.set_image(Image.new("RGB", (128, 96), (30, 60, 90)))
    w.canvas.set_zoom(2.0)
    w.canvas._offset = QPointF(0, 0)
    return w


def _at(canvas, x: float, y: float) -> QPoint:
    """The widget point over image pixel (x, y)."""
    return canvas.to_widget(QPointF(x, y)).toPoint()


def _drag(canvas, points, button=Qt.MouseButton.LeftButton):
    QTest.mousePress(canvas, button, Qt.KeyboardModifier.NoModifier, _at(canvas, *points[0]))
    for p in points[1:]:
        QTest.mouseMove(canvas, _at(canvas, *p))
    QTest.mouseRelease(canvas, button, Qt.KeyboardModifier.NoModifier, _at(canvas, *points[-1]))


def test_brush_paints_and_eraser_erases(painter):
    c = painter.canvas
    c.set_brush_size(8)
    _drag(c, [(20, 40), (60, 40), (100, 40)])
    m = np.asarray(c.mask_image())
    assert m[40, 20:100].min() == 255  # the stroke
    assert m[40, 20:100].size == 80 and m[10, 60] == 0 and m[60, 60] == 0  # and nothing else
    assert m[37:44, 60].min() == 255 and m[31, 60] == 0 and m[49, 60] == 0  # 8 px wide
    painter.eraser.click()
    _drag(c, [(60, 40), (60, 40)])
    m = np.asarray(c.mask_image())
    assert m[40, 60] == 0 and m[40, 30] == 255


def test_undo_redo_with_the_keyboard(painter, qtbot):
    c = painter.canvas
    _drag(c, [(10, 10), (50, 10)])
    painted = np.asarray(c.mask_image()).copy()
    c.setFocus()
    QTest.keyClick(c, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier)
    assert np.asarray(c.mask_image()).max() == 0
    QTest.keyClick(c, Qt.Key.Key_Z, Qt.KeyboardModifier.ControlModifier
                   | Qt.KeyboardModifier.ShiftModifier)
    assert np.array_equal(np.asarray(c.mask_image()), painted)


def test_bracket_keys_change_the_brush(painter):
    c = painter.canvas
    c.set_brush_size(20)
    c.setFocus()
    QTest.keyClicks(c, "]")
    assert c.brush_size() == 25 and painter.brush_size.value() == 25
    QTest.keyClicks(c, "[[")
    assert c.brush_size() == 16


def test_operations_are_the_core_s_and_undoable(painter):
    c = painter.canvas
    painter.findChild(type(painter.brush), "fill").click()
    assert np.asarray(c.mask_image()).min() == 255
    painter.findChild(type(painter.brush), "invert").click()
    assert np.asarray(c.mask_image()).max() == 0
    c.apply(lambda m: masks.dilate(Image.new("L", m.size), 0).point(lambda v: 0))
    box = Image.new("L", (128, 96))
    box.paste(255, (30, 30, 90, 70))
    c.load_mask(box)
    painter.feather_radius.setValue(4)
    painter.findChild(type(painter.brush), "feather").click()
    assert np.array_equal(np.asarray(c.mask_image()), np.asarray(masks.feather(box, 4)))
    c.undo()
    assert np.array_equal(np.asarray(c.mask_image()), np.asarray(box))
    painter.findChild(type(painter.brush), "clear").click()
    assert np.asarray(c.mask_image()).max() == 0


def test_zoom_about_the_cursor_and_pan(painter):
    c = painter.canvas
    anchor = QPointF(100, 80)
    before = c.to_image(anchor)
    c.set_zoom(4.0, anchor)
    assert c.zoom() == 4.0
    after = c.to_image(anchor)
    assert (before - after).manhattanLength() < 1e-6
    start = c.to_image(QPointF(50, 50))
    _drag(c, [(30, 30), (40, 30)], button=Qt.MouseButton.MiddleButton)
    assert c.to_image(QPointF(50, 50)) != start
    assert np.asarray(c.mask_image()).max() == 0  # panning never paints


def test_overlay_colour_and_grab(painter, tmp_path):
    c = painter.canvas
    c.set_colour(QColor(0, 255, 0))
    c.set_brush_size(24)
    _drag(c, [(30, 30), (90, 60)])
    c.fit()
    shot = painter.grab().toImage()
    shot.save(str(tmp_path / "painter.png"))
    centre = c.to_widget(QPointF(60, 45)).toPoint() + c.pos()
    px = QColor(shot.pixel(centre))
    assert px.green() > px.red() + 40  # green over the image's dark blue-grey
    assert (tmp_path / "painter.png").stat().st_size > 0


def test_saved_mask_is_content_named_and_reused(tmp_path):
    m = Image.new("L", (16, 16))
    m.paste(255, (2, 2, 8, 8))
    a, b = save_mask_file(m, tmp_path), save_mask_file(m.copy(), tmp_path)
    assert a == b and a.name.startswith("mask-")
    assert np.array_equal(np.asarray(Image.open(a)), np.asarray(m))


def test_dialog_saves_into_the_masks_folder_and_the_panel_carries_it(qtbot, tmp_path,
                                                                     monkeypatch):
    init = tmp_path / "init.png"
    Image.new("RGB", (64, 64), (200, 100, 0)).save(init)
    panel = ParamsPanel()
    qtbot.addWidget(panel)
    panel.set_scheduler_names(["Euler a"])
    assert not panel.canvas.paint_button.isEnabled()
    panel.init_image.set_path(str(init))
    assert panel.canvas.paint_button.isEnabled()

    def fake_exec(dialog: MaskPainterDialog) -> int:
        dialog.painter.canvas.fill()
        dialog.save_and_accept()
        return dialog.result()

    monkeypatch.setattr(MaskPainterDialog, "exec", fake_exec)
    panel.canvas.paint_button.click()
    path = panel.mask_slot.path()
    assert path and "masks" in path
    assert np.asarray(Image.open(path)).min() == 255
    panel.canvas.set_params({"inpaint_area": "only-masked", "mask_blur": 4,
                             "masked_content": "fill", "hires_scale": 2.0})
    req = panel.request("a cat")
    assert (req.mask, req.inpaint_area, req.mask_blur, req.masked_content) == (
        path, "only-masked", 4, "fill")
    assert req.hires_scale == 2.0  # (validate says hires is for txt2img while an init is set)
    panel.init_image.set_path(None)
    panel.mask_slot.set_path(None)
    assert panel.request("a cat").validate().hires_size == (1024, 1024)


def test_canvas_options_persist_in_the_settings(qtbot, tmp_path):
    from PySide6.QtCore import QSettings

    from sdstudio.ui.settings import Settings

    settings = Settings(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    panel = ParamsPanel()
    qtbot.addWidget(panel)
    panel.canvas.set_params({"inpaint_area": "only-masked", "mask_blur": 6, "hires_scale": 1.5,
                             "hires_upscaler": "Lanczos", "masked_content": "latent-noise"})
    settings.set_params(panel.params())
    restored = settings.params()
    assert (restored["inpaint_area"], restored["mask_blur"], restored["hires_scale"],
            restored["hires_upscaler"], restored["masked_content"]) == (
        "only-masked", 6, 1.5, "Lanczos", "latent-noise")
    settings.set_params({"inpaint_area": "bogus", "mask_blur": -3})
    assert settings.params()["inpaint_area"] == "whole" and settings.params()["mask_blur"] == 0

"""The noise schedule panel, offscreen: curves drawn, sampled timesteps and current step marked."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtGui import QColor, QImage

from sdstudio.ui.panels.plots import HIGHLIGHT
from sdstudio.ui.panels.schedule import SIGMA, SchedulePanel


@pytest.fixture()
def panel(qtbot):
    p = SchedulePanel()
    qtbot.addWidget(p)
    p.resize(520, 560)
    p.show()
    return p


def _colour_columns(widget, colour: QColor) -> list[int]:
    """x positions where a pixel of (about) this colour is drawn."""
    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    a = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())
    rgb = a[:, : image.width() * 3].reshape(image.height(), image.width(), 3).astype(int)
    near = np.abs(rgb - [colour.red(), colour.green(), colour.blue()]).sum(axis=2) < 30
    return [int(x) for x in np.flatnonzero(near.any(axis=0))]


def test_draws_the_sampler_schedule_and_follows_the_step(qtbot, panel):
    with qtbot.waitSignal(panel.scheduleShown, timeout=30_000):
        panel.set_schedule("Euler", 10, "demo")
    s = panel.schedule
    assert len(s.timesteps) == 10 and "Euler · 10 steps" in panel.heading.text()
    blue = _colour_columns(panel.step_plot, SIGMA)
    rect = panel.step_plot.plot_rect()
    assert blue and min(blue) <= rect.left() + 4 and max(blue) >= rect.right() - 4  # whole run
    # The sigma curve falls: its first point is drawn higher than its last.
    first = panel.step_plot.to_pixel(1, s.step_sigmas[0])
    last = panel.step_plot.to_pixel(10, s.step_sigmas[-1])
    assert first.y() < last.y()
    assert _colour_columns(panel.step_plot, HIGHLIGHT) == []
    panel.set_current_step(4)
    red = _colour_columns(panel.step_plot, HIGHLIGHT)
    x4 = panel.step_plot.to_pixel(4, 1.0).x()
    assert red and all(abs(x - x4) <= 6 for x in red)
    red_t = _colour_columns(panel.train_plot, HIGHLIGHT)
    xt = panel.train_plot.to_pixel(float(s.timesteps[3]), 0.5).x()
    assert red_t and all(abs(x - xt) <= 3 for x in red_t)
    assert f"t = {s.timesteps[3]:.0f}" in panel.numbers.text()
    assert f"σ = {s.step_sigmas[3]:.3f}" in panel.numbers.text()
    panel.set_current_step(None)
    assert _colour_columns(panel.step_plot, HIGHLIGHT) == []


def test_second_order_sampler_and_unknown_sampler(qtbot, panel):
    with qtbot.waitSignal(panel.scheduleShown, timeout=30_000):
        panel.set_schedule("Heun", 5, "demo")
    assert "9 model calls" in panel.heading.text()
    panel.set_schedule("Eulerish", 5, "demo")
    qtbot.waitUntil(lambda: "Unknown scheduler" in panel.heading.text(), timeout=30_000)

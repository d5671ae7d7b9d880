"""Noise schedule view: sigma per step of the chosen sampler (log scale), and the training
schedule (alpha-bar_t, beta_t) with the sampled timesteps marked; the current step of a run, or
of the step scrubber, is highlighted."""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from sdstudio.ui.panels.plots import CurvePlot, Series
from sdstudio.ui.panels.tasks import LatestRunner

SIGMA = QColor(40, 110, 200)
ALPHA_BAR = QColor(30, 150, 80)
BETA = QColor(200, 120, 20)
SNR = QColor(140, 80, 180)


def _compute(sampler: str, steps: int, model: str) -> Any:
    from sdstudio.core.schedule import noise_schedule, scheduler_config_for

    return noise_schedule(sampler, steps, scheduler_config_for(model))


class SchedulePanel(QWidget):
    scheduleShown = Signal(str, int)  # sampler, steps once drawn

    def __init__(self, parent: QWidget | None = None, wait_for_core: bool = False) -> None:
        """`wait_for_core`: compute nothing (no torch import) until `core_ready()`, so that the
        window opens before torch is imported."""
        super().__init__(parent)
        self.schedule: Any = None  # sdstudio.core.schedule.NoiseSchedule
        self._wanted: tuple[str, int, str] | None = None
        self._asked: tuple[str, int, str] | None = None
        self._core_ready = not wait_for_core
        self._current: int | None = None
        self.runner = LatestRunner(self)
        self.runner.done.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self.heading = QLabel("Choose a sampler and a step count.")
        self.heading.setObjectName("schedule_heading")
        self.heading.setWordWrap(True)
        self.step_plot = CurvePlot("σ per step (log scale)",
                                   log_y=True)
        self.step_plot.setObjectName("sigma_plot")
        self.step_plot.setToolTip("σ_t: the noise level at each step, x_t = x₀ + σ_t·ε")
        self.train_plot = CurvePlot("Training schedule; ticks: sampled t")
        self.train_plot.setObjectName("train_plot")
        self.numbers = QLabel("")
        self.numbers.setObjectName("schedule_numbers")
        self.numbers.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.heading)
        layout.addWidget(self.step_plot, 1)
        layout.addWidget(self.train_plot, 1)
        layout.addWidget(self.numbers)

    def set_schedule(self, sampler: str, steps: int, model: str = "demo") -> None:
        """Draw the schedule `sampler` follows for `steps` steps (computed off the GUI thread)."""
        if not sampler or steps < 1:
            return
        self._wanted = (sampler, steps, model)
        if not self._core_ready or self._asked == self._wanted:
            return
        self._asked = self._wanted
        self.heading.setText(f"{sampler} · {steps} steps: computing…")
        self.runner.submit(lambda: _compute(sampler, steps, model))

    def core_ready(self) -> None:
        self._core_ready = True
        if self._wanted is not None:
            self.set_schedule(*self._wanted)

    def set_current_step(self, step: int | None) -> None:
        """Highlight model call `step` (1-based, as the progress bar counts); None: none."""
        self._current = step
        self._show_current()

    def _on_done(self, ticket: int, result: Any) -> None:
        if result is None or ticket != self.runner.latest():
            return
        self.schedule = s = result
        n = len(s.timesteps)
        calls = f", {n} model calls" if n != s.steps else ""
        self.heading.setText(f"{s.sampler} · {s.steps} steps{calls} · t from "
                             f"{s.timesteps[0]:.0f} down to {s.timesteps[-1]:.0f}")
        steps = list(range(1, n + 1))
        self.step_plot.set_series(
            [Series(steps, list(s.step_sigmas), SIGMA, "σ", points=True)], (1, max(n, 2)),
            x_label="step")
        t = list(range(s.train_steps))
        beta_max = float(s.betas.max())
        log_snr = np.log10(s.alpha_bars / (1 - s.alpha_bars))
        lo, hi = float(log_snr.min()), float(log_snr.max())
        self.train_plot.setToolTip(
            f"ᾱ_t = ∏(1−β_s): the signal left after t noising steps; β_t up to {beta_max:.4f}; "
            f"log₁₀ SNR = log₁₀(ᾱ_t/(1−ᾱ_t)) from {lo:+.2f} to {hi:+.2f}, scaled to 0…1")
        self.train_plot.set_series(
            [Series(t, list(s.alpha_bars), ALPHA_BAR, "ᾱ_t"),
             Series(t, list(s.betas / beta_max), BETA, f"β_t ≤ {beta_max:.3g}"),
             Series(t, list((log_snr - lo) / (hi - lo)), SNR, "log SNR")],
            (0, s.train_steps - 1), (0.0, 1.0), x_label="t")
        self.train_plot.set_ticks(list(s.timesteps))
        self._show_current()
        self.scheduleShown.emit(s.sampler, s.steps)

    def _on_failed(self, ticket: int, message: str) -> None:
        if ticket == self.runner.latest():
            self.heading.setText(message)

    def _show_current(self) -> None:
        s, step = self.schedule, self._current
        if s is None or step is None or not 1 <= step <= len(s.timesteps):
            self.step_plot.set_highlight(None)
            self.train_plot.set_highlight(None)
            self.numbers.setText("" if s is None else "σ_t = √((1−ᾱ_t)/ᾱ_t) · SNR = ᾱ_t/(1−ᾱ_t)")
            return
        i = step - 1
        t = float(s.timesteps[i])
        self.step_plot.set_highlight(step)
        self.train_plot.set_highlight(t)
        self.numbers.setText(
            f"Step {step}/{len(s.timesteps)} · t = {t:.0f} · σ = {s.step_sigmas[i]:.3f} · "
            f"ᾱ_t = {s.step_alpha_bars[i]:.4f} · SNR = {s.step_snr[i]:.4g}")

"""The course in the window: the VAE lab and step-through mode beside the preview, the noise
schedule beside the latent channels. They follow the chosen model, sampler and steps, and the
step shown (live, while scrubbing, or stepping through)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtWidgets import QScrollArea, QWidget

from sdstudio.ui.panels.schedule import SchedulePanel
from sdstudio.ui.panels.step_through import StepThroughPanel
from sdstudio.ui.panels.vae_lab import VaeLabPanel

if TYPE_CHECKING:
    from sdstudio.ui.main_window import MainWindow


def add_teaching_docks(w: MainWindow) -> None:
    """Create the docks as `w.vae_lab_dock`, `w.schedule_dock`, `w.step_dock` (panels:
    `w.vae_lab`, `w.schedule_panel`, `w.step_through`) and connect them."""
    right, p = Qt.DockWidgetArea.RightDockWidgetArea, w.params_panel
    w.vae_lab = VaeLabPanel()
    w.schedule_panel = SchedulePanel(wait_for_core=True)  # no torch before the engine starts
    w.step_through = StepThroughPanel(params=lambda: _request_fields(w))
    w.vae_lab_dock = w._dock("VAE lab", "vae_lab_dock", _scrolled(w.vae_lab), right)
    w.step_dock = w._dock("Step through", "step_dock", _scrolled(w.step_through), right)
    w.schedule_dock = w._dock("Noise schedule", "schedule_dock", _scrolled(w.schedule_panel),
                             right)
    w.tabifyDockWidget(w.preview_dock, w.vae_lab_dock)
    w.tabifyDockWidget(w.preview_dock, w.step_dock)
    w.tabifyDockWidget(w.channels_dock, w.schedule_dock)
    w.preview_dock.raise_()
    w.channels_dock.raise_()

    def follow_params(*_args: Any) -> None:
        w.schedule_panel.set_schedule(p.scheduler.currentText(), p.steps.value(),
                                      p.model.current_model())

    def highlight(step: int) -> None:
        w.schedule_panel.set_current_step(step or None)

    p.scheduler.currentTextChanged.connect(follow_params)
    p.steps.valueChanged.connect(follow_params)
    p.modelChosen.connect(follow_params)
    p.modelChosen.connect(w.vae_lab.set_model)
    w.vae_lab.set_model(p.model.current_model())
    w.coreReady.connect(lambda _names: w.schedule_panel.core_ready())
    w.stepShown.connect(w.schedule_panel.set_current_step)
    w.preview_panel.stepScrubbed.connect(highlight)
    w.preview_panel.stepScrubbed.connect(w.channels_panel.show_recorded)
    w.step_through.stepShown.connect(highlight)
    for panel in (w.vae_lab, w.step_through):
        panel.errorOccurred.connect(lambda m: w.show_error(m, dialog=False))
    w._teaching_close_filter = FinishOnClose(w, [w.vae_lab.runner, w.schedule_panel.runner,
                                                  w.step_through.runner])
    w.installEventFilter(w._teaching_close_filter)


class FinishOnClose(QObject):
    """When the window closes, let the panels' running task end (none is started after), so no
    worker thread outlives the widgets it reports to."""

    def __init__(self, parent: QObject, runners: list) -> None:
        super().__init__(parent)
        self._runners = runners

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if event.type() == QEvent.Type.Close:
            for runner in self._runners:
                runner.wait()
        return False


def _scrolled(widget: QWidget) -> QScrollArea:
    """In a scroll area: a panel's minimum size must not grow the window."""
    scroll = QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setWidget(widget)
    return scroll


def _request_fields(w: MainWindow) -> dict[str, Any]:
    """The window's current GenerationRequest fields (the seed as shown)."""
    params = w.params_panel.params()
    params.pop("seed_random", None)
    prompt, negative = w.prompt_panel.texts()
    params.update(prompt=prompt, negative_prompt=negative)
    return params

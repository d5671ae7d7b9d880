"""Step-through mode: generate one step at a time with the prompt and parameters of the window,
and look at what each step sees and predicts: the latent x_t, the x0 estimate, the predicted
noise and the guidance difference (conditional minus unconditional), with sigma, t and CFG.

The model is loaded on this panel's own worker thread (a second copy beside the generation
worker's; small for the demo model). Steps run in order on a one-thread pool.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from sdstudio.ui.imaging import ImageView, pil_to_qimage
from sdstudio.ui.panels.tasks import LatestRunner

VIEWS = (
    ("latent", "x_t, the latent going in"),
    ("denoised", "x₀, the model's clean estimate"),
    ("noise", "predicted noise, 4 channels"),
    ("difference", "guidance: cond − uncond"),
)


@dataclass(frozen=True)
class StepView:
    step: int
    total: int
    images: dict[str, QImage | None]
    text: str


class StepSession:
    """On the panel's worker thread: the loaded engine and the current StepThrough."""

    def __init__(self) -> None:
        self._engine: Any = None
        self._key: tuple | None = None
        self.stepper: Any = None

    def start(self, params: dict[str, Any]) -> StepView:
        from sdstudio.core.models import load_model
        from sdstudio.core.pipeline import StableDiffusion
        from sdstudio.core.request import GenerationRequest
        from sdstudio.core.stepper import StepThrough

        request = GenerationRequest.from_dict(params).validate()
        key = (request.model, request.device, request.dtype)
        if self._key != key:
            self._engine = self._key = None
            self._engine = StableDiffusion(load_model(*key))
            self._key = key
        self.stepper = StepThrough(self._engine, request)
        s = self.stepper
        latent = self._rgb(s.latents)
        return StepView(0, s.total, {"latent": latent, "denoised": None, "noise": None,
                                     "difference": None},
                        f"Ready: {s.total} steps of {request.scheduler}, CFG {request.guidance:g}, "
                        f"seed {request.seed}. The latent is pure noise × σ_max.")

    def next(self) -> StepView:
        from sdstudio.core.errors import UserError

        if self.stepper is None:
            raise UserError("Press Start first.")
        d = self.stepper.step()
        diff = d.guidance_difference
        text = (f"Step {d.step}/{d.total} · t = {d.timestep:.0f} · σ = {d.sigma:.3f} · "
                f"CFG {d.guidance:g} · noise std {float(d.noise.std()):.3f}")
        text += ("" if diff is None else f" · guidance difference std {float(diff.std()):.3f}")
        return StepView(d.step, d.total, {
            "latent": self._rgb(d.latents), "denoised": self._rgb(d.denoised),
            "noise": self._mosaic(d.noise),
            "difference": None if diff is None else self._mosaic(diff),
        }, text)

    def run_to_end(self) -> StepView:
        view = self.next()
        while not self.stepper.done:
            view = self.next()
        return self.finish(view)

    def finish(self, last: StepView | None = None) -> StepView:
        from sdstudio.core.errors import UserError

        if self.stepper is None:
            raise UserError("Press Start first.")
        image = pil_to_qimage(self.stepper.decode())
        images = dict(last.images) if last else {}
        images["final"] = image
        s = self.stepper
        before = last.text.split(" · decoded after")[0] + " · " if last else ""
        text = before + f"decoded after {s.index}/{s.total} steps"
        return StepView(s.index, s.total, images, text)

    def _rgb(self, z: Any) -> QImage:
        from sdstudio.core.latents import preview_rgb

        return pil_to_qimage(preview_rgb(z[:1], getattr(self._engine.model, "latent_rgb", None)))

    @staticmethod
    def _mosaic(z: Any) -> QImage:
        """The channels side by side in the diverging map (blue < 0 < red), 2 per row."""
        from PIL import Image

        from sdstudio.core.vae_lab import channel_picture

        chans = z[0].float().cpu()
        h, w = chans.shape[-2:]
        scale = max(1, 96 // max(h, w))
        cols = 2
        rows = (len(chans) + cols - 1) // cols
        sheet = Image.new("RGB", (cols * (w * scale + 2), rows * (h * scale + 2)), (60, 60, 60))
        for i, c in enumerate(chans):
            tile = channel_picture(c, "diverging", (w * scale, h * scale))
            sheet.paste(tile, ((i % cols) * (w * scale + 2), (i // cols) * (h * scale + 2)))
        return pil_to_qimage(sheet)


class StepThroughPanel(QWidget):
    stepShown = Signal(int)  # the step whose results are on screen (0: before the first)
    errorOccurred = Signal(str)

    def __init__(self, params: Callable[[], dict[str, Any]] | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.params = params  # the window's current request fields
        self.view: StepView | None = None
        self._session = StepSession()
        self.runner = LatestRunner(self, skip_overtaken=False)
        self.runner.done.connect(self._on_done)
        self.runner.failed.connect(lambda _t, m: self._failed(m))
        self.runner.busyChanged.connect(self._busy)
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Prepare a run from the prompt and parameters")
        self.next_button = QPushButton("Next step")
        self.next_button.setObjectName("next_step")
        self.end_button = QPushButton("Run to end")
        self.decode_button = QPushButton("Decode now")
        self.decode_button.setToolTip("Decode the current latent with the full VAE")
        for button, fn in ((self.start_button, self.start), (self.next_button, self.next_step),
                           (self.end_button, self.run_to_end), (self.decode_button, self.decode)):
            button.clicked.connect(fn)
        self.next_button.setEnabled(False)
        self.end_button.setEnabled(False)
        self.decode_button.setEnabled(False)
        self.numbers = QLabel("Press Start to prepare a run, then Next step.")
        self.numbers.setObjectName("step_numbers")
        self.numbers.setWordWrap(True)
        self.views: dict[str, ImageView] = {}
        grid = QGridLayout()
        for i, (key, title) in enumerate((*VIEWS, ("final", "decoded: the current latent"))):
            view = ImageView("", smooth=False)
            view.setObjectName(f"step_{key}")
            view.setMinimumSize(96, 96)
            self.views[key] = view
            cell = QVBoxLayout()
            label = QLabel(title)
            label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            label.setWordWrap(True)
            cell.addWidget(label)
            cell.addWidget(view, 1)
            grid.addLayout(cell, i // 2, i % 2)
        buttons = QHBoxLayout()
        for b in (self.start_button, self.next_button, self.end_button, self.decode_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addLayout(grid, 1)
        layout.addWidget(self.numbers)

    def start(self) -> None:
        if self.params is None:
            return
        params = self.params()
        if not params.get("prompt"):
            self._failed("Type a prompt first.")
            return
        session = self._session
        self.runner.submit(lambda: session.start(params))

    def next_step(self) -> None:
        session = self._session
        self.runner.submit(lambda: session.finish(session.next()) if session.stepper is not None
                           and session.stepper.index + 1 == session.stepper.total
                           else session.next())

    def decode(self) -> None:
        session, last = self._session, self.view
        self.runner.submit(lambda: session.finish(last))

    def run_to_end(self) -> None:
        self.runner.submit(self._session.run_to_end)

    def wait(self, msecs: int = -1) -> bool:
        return self.runner.wait(msecs)

    def _busy(self, busy: bool) -> None:
        self.start_button.setEnabled(not busy)
        can_step = not busy and self.view is not None and self.view.step < self.view.total
        self.next_button.setEnabled(can_step)
        self.end_button.setEnabled(can_step)
        self.decode_button.setEnabled(not busy and self.view is not None)

    def _on_done(self, _ticket: int, view: StepView | None) -> None:
        if view is None:
            return
        self.view = view
        for key, widget in self.views.items():
            if key in view.images or key == "final":
                widget.set_image(view.images.get(key))
        self.numbers.setText(view.text)
        self._busy(self.runner.busy())
        self.stepShown.emit(view.step)

    def _failed(self, message: str) -> None:
        self.numbers.setText(message)
        self.errorOccurred.emit(message)

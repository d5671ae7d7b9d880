"""VAE lab: the course's VAE exercise in the window. Open or drop a picture; it is encoded with the
current model's VAE (mean or a sample), its four latent channels are shown large (greyscale and a
diverging map, with range and histogram), it is decoded again beside the original with the
difference, PSNR and SSIM. Latent edits and forward noise (x_t) decode again at once.

All torch work runs on a one-thread pool (`LatestRunner`); the GUI only sends a `LabState` and
shows the `LabView` of QImages and numbers that comes back.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QImage
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from sdstudio.ui.image_slot import IMAGE_FILTER, AcceptsImageDrops
from sdstudio.ui.imaging import ImageView, pil_to_qimage
from sdstudio.ui.panels.plots import Histogram
from sdstudio.ui.panels.tasks import LatestRunner

OPS = {  # edit name -> (label, default value, what the value means)
    "scale": ("Scale", 2.0, "factor"),
    "zero": ("Zero", 0.0, ""),
    "swap": ("Swap with", 0.0, ""),
    "noise": ("Add noise", 0.5, "std"),
    "blur": ("Blur", 1.0, "sigma, latent px"),
}
CHANNEL_PX = 192  # channel pictures are upscaled (nearest) to about this width


@dataclass(frozen=True)
class LabState:
    """Everything a decode depends on; each task recomputes from it (cached where it can)."""

    model: str
    image: str  # path
    sample: bool = False
    seed: int = 0
    edits: tuple = ()  # of sdstudio.core.vae_lab.LatentEdit
    t: int = 0  # forward diffusion steps: 0 = the clean latent, T = pure noise


@dataclass(frozen=True)
class LabView:
    state: LabState
    original: QImage
    reconstruction: QImage
    difference: QImage
    grey: tuple[QImage, ...]
    diverging: tuple[QImage, ...]
    stats: tuple  # of sdstudio.core.vae_lab.ChannelStats
    psnr: float
    ssim: float
    scaling_factor: float
    shapes: tuple[tuple[str, str], ...]
    notes: tuple[str, ...]
    alpha_bar: float
    train_steps: int


class LabSession:
    """Lives on the lab's worker thread: the loaded VAE and the last encoding, reused while only
    the edits or t change."""

    def __init__(self) -> None:
        self._vae: Any = None
        self._vae_model: str | None = None
        self._encoded: tuple[tuple, Any, Any] | None = None  # (key, image, latents)
        self._alpha_bars: tuple[str, Any] | None = None

    def run(self, s: LabState) -> LabView:
        from sdstudio.core import vae_lab
        from sdstudio.core.schedule import scheduler_config_for, training_alpha_bars

        if self._vae_model != s.model:
            self._vae, self._vae_model, self._encoded = None, None, None
            self._vae = vae_lab.load_vae(s.model, "cpu")
            self._vae_model = s.model
        if self._alpha_bars is None or self._alpha_bars[0] != s.model:
            self._alpha_bars = (s.model, training_alpha_bars(scheduler_config_for(s.model)))
        alpha_bars = self._alpha_bars[1]
        key = (s.model, s.image, s.sample, s.seed)
        if self._encoded is None or self._encoded[0] != key:
            image = vae_lab.open_image(s.image)
            self._encoded = None
            image, _ = vae_lab.crop_to_multiple(image, vae_lab.vae_scale_factor(self._vae))
            self._encoded = (key, image, vae_lab.encode(self._vae, image, s.sample, s.seed))
        _, image, latents = self._encoded
        t = max(0, min(s.t, len(alpha_bars)))
        alpha_bar = 1.0 if t == 0 else float(alpha_bars[t - 1])
        r = vae_lab.round_trip(self._vae, image, s.sample, s.seed, s.edits,
                               alpha_bar if t else None, latents=latents)
        z = r.decoded_latents[0]
        h, w = z.shape[-2:]
        size = (CHANNEL_PX, max(1, round(CHANNEL_PX * h / w)))
        return LabView(
            state=s, original=pil_to_qimage(r.original),
            reconstruction=pil_to_qimage(r.reconstruction), difference=pil_to_qimage(r.difference),
            grey=tuple(pil_to_qimage(vae_lab.channel_picture(c, "grey", size)) for c in z),
            diverging=tuple(pil_to_qimage(vae_lab.channel_picture(c, "diverging", size))
                            for c in z),
            stats=tuple(r.stats), psnr=r.psnr, ssim=r.ssim, scaling_factor=r.scaling_factor,
            shapes=tuple(r.shapes), notes=tuple(r.notes + vae_lab.vae_notes(self._vae, s.model)),
            alpha_bar=alpha_bar, train_steps=len(alpha_bars),
        )


class _ChannelCell(QWidget):
    def __init__(self, index: int, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.grey = ImageView(f"channel {index}", smooth=False)
        self.grey.setObjectName(f"lab_grey{index}")
        self.grey.setToolTip("Greyscale: this channel's min is black, its max white")
        self.diverging = ImageView("", smooth=False)
        self.diverging.setObjectName(f"lab_div{index}")
        self.diverging.setToolTip("Diverging: blue below zero, white at zero, red above")
        for view in (self.grey, self.diverging):
            view.setMinimumSize(64, 64)
        self.histogram = Histogram()
        self.histogram.setObjectName(f"lab_hist{index}")
        self.label = QLabel(f"Channel {index}")
        self.label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        pics = QHBoxLayout()
        pics.addWidget(self.grey, 1)
        pics.addWidget(self.diverging, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.addLayout(pics, 1)
        layout.addWidget(self.histogram)
        layout.addWidget(self.label)


class VaeLabPanel(AcceptsImageDrops, QWidget):
    viewShown = Signal(object)  # LabView, once on screen
    errorOccurred = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.model = "demo"
        self.state: LabState | None = None
        self.view: LabView | None = None
        self._session = LabSession()
        self.runner = LatestRunner(self)
        self.runner.done.connect(self._on_done)
        self.runner.failed.connect(self._on_failed)
        self.runner.busyChanged.connect(lambda busy: self.busy.setText("working…" if busy else ""))
        self._build()

    # --- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        self.open_button = QPushButton("Open image…")
        self.open_button.clicked.connect(self._browse)
        self.encode_mode = QComboBox()
        self.encode_mode.setObjectName("encode_mode")
        self.encode_mode.addItems(["mean", "sample"])
        self.encode_mode.setToolTip("Encode to the mean of the latent distribution, or to a "
                                    "sample of it (mean + std · noise)")
        self.encode_mode.currentIndexChanged.connect(lambda _i: self._update(
            sample=self.encode_mode.currentIndex() == 1))
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setToolTip("Seed of the sample, of added noise and of the forward noise")
        self.seed.valueChanged.connect(lambda v: self._update(seed=v))
        self.busy = QLabel("")
        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(QLabel("Encode to the"))
        top.addWidget(self.encode_mode)
        top.addWidget(QLabel("seed"))
        top.addWidget(self.seed)
        top.addStretch(1)
        top.addWidget(self.busy)

        self.original = ImageView("Open or drop a picture here.", smooth=False)
        self.original.setObjectName("lab_original")
        self.reconstruction = ImageView("reconstruction", smooth=False)
        self.reconstruction.setObjectName("lab_reconstruction")
        self.difference = ImageView("difference ×4", smooth=False)
        self.difference.setObjectName("lab_difference")
        images = QGridLayout()
        for col, (view, title) in enumerate(((self.original, "Original"),
                                             (self.reconstruction, "Decoded"),
                                             (self.difference, "|difference| × 4"))):
            view.setMinimumSize(80, 80)
            images.addWidget(QLabel(title), 0, col, Qt.AlignmentFlag.AlignHCenter)
            images.addWidget(view, 1, col)
        self.metrics = QLabel("")
        self.metrics.setObjectName("lab_metrics")
        font = self.metrics.font()
        font.setPointSizeF(font.pointSizeF() * 1.3)
        font.setBold(True)
        self.metrics.setFont(font)
        self.shapes = QLabel("")
        self.shapes.setObjectName("lab_shapes")
        self.shapes.setTextFormat(Qt.TextFormat.RichText)
        self.notes = QLabel("")
        self.notes.setObjectName("lab_notes")
        self.notes.setWordWrap(True)
        self.notes.setMinimumHeight(self.notes.fontMetrics().height() * 3)
        self.notes.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)

        self.cells = [_ChannelCell(i) for i in range(4)]
        channels = QGridLayout()
        for i, cell in enumerate(self.cells):
            channels.addWidget(cell, i // 2, i % 2)

        self.t_slider = QSlider(Qt.Orientation.Horizontal)
        self.t_slider.setObjectName("t_slider")
        self.t_slider.setRange(0, 1000)
        self.t_slider.setToolTip("Forward diffusion: x_t = √ᾱ_t·x₀ + √(1−ᾱ_t)·ε, then decoded")
        self.t_slider.valueChanged.connect(lambda v: self._update(t=v))
        self.t_label = QLabel("t = 0: the clean latent x₀")
        self.t_label.setMinimumWidth(220)
        noise = QHBoxLayout()
        noise.addWidget(QLabel("Forward noise"))
        noise.addWidget(self.t_slider, 1)
        noise.addWidget(self.t_label)

        self.edit_op = QComboBox()
        self.edit_op.setObjectName("edit_op")
        for op, (label, _value, _unit) in OPS.items():
            self.edit_op.addItem(label, op)
        self.edit_op.currentIndexChanged.connect(self._op_changed)
        self.edit_channel = QComboBox()
        self.edit_channel.setObjectName("edit_channel")
        self.edit_other = QComboBox()
        for box in (self.edit_channel, self.edit_other):
            box.addItems([f"channel {i}" for i in range(4)])
        self.edit_other.setCurrentIndex(1)
        self.edit_value = QDoubleSpinBox()
        self.edit_value.setObjectName("edit_value")
        self.edit_value.setRange(-100.0, 100.0)
        self.edit_value.setSingleStep(0.25)
        self.apply_button = QPushButton("Apply")
        self.apply_button.setObjectName("apply_edit")
        self.apply_button.clicked.connect(self.apply_edit)
        self.reset_button = QPushButton("Reset edits")
        self.reset_button.clicked.connect(lambda: self._update(edits=()))
        self.edits_label = QLabel("No edits.")
        self.edits_label.setObjectName("edits_label")
        self.edits_label.setWordWrap(True)
        edit = QHBoxLayout()
        edit.addWidget(QLabel("Edit"))
        edit.addWidget(self.edit_channel)
        edit.addWidget(self.edit_op)
        edit.addWidget(self.edit_other)
        edit.addWidget(self.edit_value)
        edit.addStretch(1)
        buttons = QHBoxLayout()
        buttons.addWidget(self.apply_button)
        buttons.addWidget(self.reset_button)
        buttons.addWidget(self.edits_label, 1)
        self._op_changed()

        shapes = QVBoxLayout()
        self.shapes_title = QLabel("Shapes at each stage")
        shapes.addWidget(self.shapes_title)
        shapes.addWidget(self.shapes)
        info = QHBoxLayout()
        info.addLayout(shapes)
        info.addStretch(1)
        info.addWidget(self.metrics)
        images.setRowStretch(1, 1)
        for col in range(3):
            images.setColumnStretch(col, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addLayout(images, 3)
        layout.addLayout(info)
        layout.addWidget(self.notes)
        layout.addLayout(channels, 4)
        layout.addLayout(noise)
        layout.addLayout(edit)
        layout.addLayout(buttons)

    # --- public API -----------------------------------------------------------------------------
    def set_model(self, model: str) -> None:
        """Use this model's VAE (the window passes the model chosen in Parameters)."""
        if model and model != self.model:
            self.model = model
            if self.state is not None:
                self._submit(replace(self.state, model=model))

    def open_image(self, path: str | Path) -> None:
        self._submit(LabState(self.model, str(path), self.encode_mode.currentIndex() == 1,
                              self.seed.value(), (), self.t_slider.value()))

    def apply_edit(self) -> None:
        from sdstudio.core.vae_lab import LatentEdit

        if self.state is None:
            return
        op = self.edit_op.currentData()
        e = LatentEdit(op, self.edit_channel.currentIndex(), self.edit_value.value(),
                       self.edit_other.currentIndex(), self.seed.value() + len(self.state.edits))
        self._update(edits=(*self.state.edits, e))

    def wait(self, msecs: int = -1) -> bool:
        return self.runner.wait(msecs)

    # --- internals ------------------------------------------------------------------------------
    def _update(self, **changes: Any) -> None:
        if self.state is not None:
            self._submit(replace(self.state, **changes))

    def _submit(self, state: LabState) -> None:
        self.state = state
        self.edits_label.setText(_describe_edits(state.edits))
        session = self._session
        self.runner.submit(lambda: session.run(state))

    def _op_changed(self, *_args: Any) -> None:
        op = self.edit_op.currentData()
        _label, value, unit = OPS[op]
        self.edit_other.setVisible(op == "swap")
        self.edit_value.setVisible(bool(unit))
        self.edit_value.setValue(value)
        self.edit_value.setToolTip(unit)

    def _on_done(self, ticket: int, view: LabView | None) -> None:
        if view is None or ticket != self.runner.latest():
            return
        self.view = view
        self.original.set_image(view.original)
        self.reconstruction.set_image(view.reconstruction)
        self.difference.set_image(view.difference)
        for i, cell in enumerate(self.cells):
            if i < len(view.grey):
                st = view.stats[i]
                cell.grey.set_image(view.grey[i])
                cell.diverging.set_image(view.diverging[i])
                cell.histogram.set_data(st.counts, st.low, st.high)
                cell.label.setText(f"Channel {i}: {st.low:+.2f} … {st.high:+.2f}\n"
                                   f"mean {st.mean:+.2f} · std {st.std:.2f}")
        psnr = "∞" if view.psnr == float("inf") else f"{view.psnr:.2f}"
        self.metrics.setText(f"PSNR {psnr} dB\nSSIM {view.ssim:.4f}")
        rows = "".join(f"<tr><td>{stage}</td><td>&nbsp;{shape}</td></tr>"
                       for stage, shape in view.shapes)
        self.shapes.setText(f"<table>{rows}</table>")
        self.shapes_title.setText(f"Shapes at each stage · scaling factor {view.scaling_factor:g}")
        for label in (self.shapes, self.metrics):  # rich text: keep the whole table visible
            label.setMinimumSize(label.sizeHint())
        self.notes.setText(" ".join(view.notes))
        t = view.state.t
        self.t_label.setText("t = 0: the clean latent x₀" if t == 0 else
                             f"t = {t} of {view.train_steps} · ᾱ_t = {view.alpha_bar:.4f}")
        self.viewShown.emit(view)

    def _on_failed(self, ticket: int, message: str) -> None:
        if ticket == self.runner.latest():
            self.notes.setText(message)
            self.errorOccurred.emit(message)

    def _browse(self) -> None:
        from sdstudio.core.paths import default_gallery_dir

        start = str(default_gallery_dir()) if default_gallery_dir().is_dir() else ""
        path, _ = QFileDialog.getOpenFileName(self, "Open an image for the VAE lab", start,
                                              IMAGE_FILTER)
        if path:
            self.open_image(path)

    def image_dropped(self, path: str) -> None:
        self.open_image(path)


def _describe_edits(edits: tuple) -> str:
    if not edits:
        return "No edits."
    parts = []
    for e in edits:
        if e.op == "swap":
            parts.append(f"swap {e.channel}↔{e.other}")
        elif e.op == "zero":
            parts.append(f"zero {e.channel}")
        else:
            parts.append(f"{e.op} {e.channel} ({OPS[e.op][2]} {e.value:g})")
    return "Edits, in order: " + ", ".join(parts) + "."

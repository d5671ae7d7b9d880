"""Live preview: at each step the model's predicted clean image (x0) or the noisy latent x_t,
both by the cheap latent->RGB projection; step counter, progress with ETA, the final image, and
a scrubber over the previews of the last run."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QImage, QPainter, QPixmap
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from sdstudio.core.events import EventKind
from sdstudio.ui.imaging import ImageView
from sdstudio.ui.worker import StepPreview


def _seconds(s: float) -> str:
    return f"{s:.1f} s" if s < 60 else f"{int(s // 60)} min {int(s % 60):02d} s"


PREDICTED, NOISY = 0, 1  # what the preview shows (the `source` combo's index)
CELL = 64  # a batch grid cell's icon side
GAP = 2  # pixels between the images of a tiled batch


def tile(images: Sequence[QImage]) -> QImage:
    """The images side by side in a near-square grid (each cell the size of the largest)."""
    cols = math.ceil(math.sqrt(len(images)))
    rows = math.ceil(len(images) / cols)
    w = max(img.width() for img in images)
    h = max(img.height() for img in images)
    out = QImage(cols * w + (cols - 1) * GAP, rows * h + (rows - 1) * GAP,
                 QImage.Format.Format_RGB32)
    out.fill(QColor("#202020"))
    painter = QPainter(out)
    for i, img in enumerate(images):
        painter.drawImage((i % cols) * (w + GAP), (i // cols) * (h + GAP), img)
    painter.end()
    return out


SCRUB_LABEL_W = 140  # px: the step label beside the scrubber

class PreviewPanel(QWidget):
    stepScrubbed = Signal(int)  # the step now shown while scrubbing (0: not a step, e.g. final)
    imagePicked = Signal(int)  # a cell of the batch grid was clicked: the image's index

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        # pixel-exact by default: a 128 px image scaled smoothly looks blurred (View menu: smooth)
        self.view = ImageView("Type a prompt and press Generate (Ctrl+Enter).", smooth=False)
        self.view.setObjectName("preview")
        self.caption = QLabel("Idle")
        self.caption.setObjectName("preview_caption")
        self.caption.setWordWrap(True)
        # The run's notices stay here, under its image, until the next run begins.
        self.notices = QLabel("")
        self.notices.setObjectName("preview_notices")
        self.notices.setWordWrap(True)
        self.notices.setStyleSheet("color: #8a4b00;")  # dark amber: 6:1 on a light window
        self.notices.setVisible(False)
        self.progress = QProgressBar()
        self.progress.setObjectName("progress")
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("")
        self.scrubber = QSlider(Qt.Orientation.Horizontal)
        self.scrubber.setObjectName("scrubber")
        self.scrubber.setEnabled(False)
        self.scrubber.setToolTip("Look back through the previews of the last run")
        self.scrub_label = QLabel("")
        self.scrub_label.setMinimumWidth(90)
        self.scrub_label.setMaximumWidth(SCRUB_LABEL_W)
        self.source = QComboBox()
        self.source.setObjectName("preview_source")
        self.source.addItems(["Predicted image (x₀)", "Noisy latent (x_t)"])
        self.source.setToolTip("x₀: the model's current estimate of the clean image; "
                               "x_t: the latent being denoised")
        self.source.currentIndexChanged.connect(self._redraw)
        # (label, step or 0, x_t preview, x0 preview or None); the final image: both the same
        self._history: list[tuple[str, int, QImage, QImage | None]] = []
        self._live = True
        # A batch's images, one cell each: its previews as it forms, then the finished images;
        # clicking a cell shows that image (the window switches channels, seed and details).
        self.batch_grid = QListWidget()
        self.batch_grid.setObjectName("batch_grid")
        self.batch_grid.setViewMode(QListWidget.ViewMode.IconMode)
        self.batch_grid.setFlow(QListWidget.Flow.LeftToRight)
        self.batch_grid.setWrapping(False)
        self.batch_grid.setMovement(QListWidget.Movement.Static)
        self.batch_grid.setIconSize(QSize(CELL, CELL))
        self.batch_grid.setFixedHeight(CELL + 34)
        self.batch_grid.setToolTip("The images of this batch: click one to look at it")
        self.batch_grid.setVisible(False)
        self.batch_grid.itemClicked.connect(
            lambda item: self.imagePicked.emit(self.batch_grid.row(item)))

        scrub = QHBoxLayout()
        scrub.addWidget(self.source)
        scrub.addWidget(QLabel("Steps"))
        scrub.addWidget(self.scrubber, 1)
        scrub.addWidget(self.scrub_label)
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.batch_grid)
        layout.addWidget(self.caption)
        layout.addWidget(self.notices)
        layout.addWidget(self.progress)
        layout.addLayout(scrub)
        self.scrubber.valueChanged.connect(self._scrub)

    def begin(self, total_label: str = "Starting…") -> None:
        """A new run starts: forget the last run's previews."""
        self._history.clear()
        self._live = True
        self.scrubber.setEnabled(False)
        self.scrubber.setRange(0, 0)
        self.scrub_label.setText("")
        self.progress.setRange(0, 0)  # busy until the first step arrives
        self.progress.setFormat("")
        self.caption.setText(total_label)
        self.set_notices([])
        self.batch_grid.clear()
        self.batch_grid.setVisible(False)

    def set_notices(self, notices: list[str]) -> None:
        """The notices of the image shown (warning sign and one line each)."""
        self.notices.setText("\n".join(f"⚠ {n}" for n in notices))
        self.notices.setVisible(bool(notices))

    def notice_texts(self) -> list[str]:
        text = self.notices.text()
        return [line.removeprefix("⚠ ") for line in text.splitlines()] if text else []

    def show_step(self, sp: StepPreview) -> None:
        noisy, predicted = sp.preview, sp.denoised
        if sp.batch:  # the whole batch as it forms, tiled; each image in its cell
            noisy = tile(sp.batch)
            predicted = tile(sp.batch_denoised) if sp.batch_denoised else None
            cells = (sp.batch_denoised if sp.batch_denoised and
                     self.source.currentIndex() == PREDICTED else sp.batch)
            for i, image in enumerate(cells):
                self.set_batch_cell(i, image, f"{i + 1}")
        self._history.append((f"step {sp.step}", sp.step, noisy, predicted))
        self.view.set_image(self._pick(self._history[-1]))
        eta = sp.elapsed / sp.step * (sp.total - sp.step) if sp.step else 0.0
        self.progress.setRange(0, sp.total)
        self.progress.setValue(sp.step)
        self.progress.setFormat(f"{_seconds(sp.elapsed)} elapsed · ETA {_seconds(eta)}")
        phase = {"first": "First pass · ", "hires": "Hires pass · "}.get(sp.phase, "")
        self.caption.setText(f"{phase}Step {sp.step}/{sp.total}")

    def show_final(self, image: QImage, label: str) -> None:
        self._history.append((label, 0, image, image))
        self.view.set_image(image)
        self.caption.setText(label)

    def set_batch_cell(self, index: int, image: QImage, text: str) -> None:
        """Put `image` in cell `index` of the batch grid (cells are added as needed)."""
        while self.batch_grid.count() <= index:
            self.batch_grid.addItem(QListWidgetItem(f"{self.batch_grid.count() + 1}"))
        item = self.batch_grid.item(index)
        item.setIcon(QIcon(QPixmap.fromImage(image).scaled(
            CELL, CELL, Qt.AspectRatioMode.KeepAspectRatio,
            Qt.TransformationMode.FastTransformation)))
        item.setText(text)
        self.batch_grid.setVisible(self.batch_grid.count() > 1)

    def batch_count(self) -> int:
        return self.batch_grid.count()

    def end(self, outcome: EventKind, seconds: float | None = None) -> None:
        """The run is over (FINISHED, CANCELLED or FAILED): enable the scrubber on what was
        recorded."""
        if outcome is EventKind.FINISHED:
            self.progress.setRange(0, 1)
            self.progress.setValue(1)
            self.progress.setFormat(f"Done in {_seconds(seconds)}" if seconds else "Done")
        else:
            if self.progress.maximum() == 0:
                self.progress.setRange(0, 1)
                self.progress.setValue(0)
            self.progress.setFormat(outcome.value.capitalize())
            self.caption.setText(f"{self.caption.text()} — {outcome.value}")
        self._live = False
        if self._history:
            self.scrubber.blockSignals(True)
            self.scrubber.setRange(0, len(self._history) - 1)
            self.scrubber.setValue(len(self._history) - 1)
            self.scrubber.blockSignals(False)
            self.scrubber.setEnabled(len(self._history) > 1)
            self._set_scrub_label(self._history[-1][0])

    def history_labels(self) -> list[str]:
        return [entry[0] for entry in self._history]

    def shown_image(self) -> QImage | None:
        pixmap = self.view.image_pixmap()
        return None if pixmap is None else pixmap.toImage()

    def _pick(self, entry: tuple[str, int, QImage, QImage | None]) -> QImage:
        _label, _step, noisy, predicted = entry
        return noisy if predicted is None or self.source.currentIndex() == NOISY else predicted

    def _redraw(self, *_args) -> None:
        if not self._history:
            return
        index = len(self._history) - 1 if self._live else self.scrubber.value()
        if 0 <= index < len(self._history):
            self.view.set_image(self._pick(self._history[index]))

    def _scrub(self, index: int) -> None:
        if self._live or not 0 <= index < len(self._history):
            return
        entry = self._history[index]
        self.view.set_image(self._pick(entry))
        self._set_scrub_label(entry[0])
        self.stepScrubbed.emit(entry[1])

    def _set_scrub_label(self, text: str) -> None:
        """The step's label beside the scrubber, elided so a long one (an image's caption) never
        squeezes the slider; the whole text is the tooltip."""
        metrics = self.scrub_label.fontMetrics()
        self.scrub_label.setText(metrics.elidedText(text, Qt.TextElideMode.ElideRight, SCRUB_LABEL_W))
        self.scrub_label.setToolTip(text)

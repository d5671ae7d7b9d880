"""The four VAE latent channels as greyscale images, labelled with their value range, live."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from sdstudio.ui.imaging import ImageView
from sdstudio.ui.worker import ChannelImage


class ChannelsPanel(QWidget):
    COUNT = 4

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.views: list[ImageView] = []
        self.labels: list[QLabel] = []
        self._recorded: dict[int, tuple[ChannelImage, ...]] = {}  # step -> channels, last run
        grid = QGridLayout(self)
        grid.setContentsMargins(4, 4, 4, 4)
        for i in range(self.COUNT):
            view = ImageView(f"channel {i}", smooth=False)
            view.setObjectName(f"channel{i}")
            view.setMinimumSize(64, 64)
            label = QLabel(f"Channel {i}\n")  # two lines: the range never gets clipped
            label.setAlignment(Qt.AlignmentFlag.AlignHCenter)
            label.setToolTip("Each channel is scaled from its own min (black) to max (white)")
            cell = QVBoxLayout()
            cell.addWidget(view, 1)
            cell.addWidget(label)
            grid.addLayout(cell, i // 2, i % 2)
            self.views.append(view)
            self.labels.append(label)

    def show_channels(self, channels: tuple[ChannelImage, ...]) -> None:
        for i, (view, label) in enumerate(zip(self.views, self.labels, strict=False)):
            if i < len(channels):
                ch = channels[i]
                view.set_image(ch.image)
                label.setText(f"Channel {i}\n{ch.low:+.2f} … {ch.high:+.2f}")

    def record_step(self, step: int, channels: tuple[ChannelImage, ...]) -> None:
        """Show a run's step and keep it for the step scrubber (a lower step: a new run)."""
        if self._recorded and step <= max(self._recorded):
            self._recorded.clear()
        self._recorded[step] = channels
        self.show_channels(channels)

    def show_recorded(self, step: int) -> None:
        """Show a recorded step again (0: the last one), as the step scrubber moves."""
        if self._recorded:
            self.show_channels(self._recorded.get(step) or self._recorded[max(self._recorded)])

    def shown_count(self) -> int:
        return sum(view.has_image() for view in self.views)

"""Notices of the runs (prompt truncated, init image resized, VAE upcast, memory fallback, ...):
a list that keeps every one with its job and time, so that no status-bar message can hide them."""

from __future__ import annotations

import time

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

MAX_NOTICES = 500


class NoticesPanel(QWidget):
    countChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setObjectName("notices")
        self.list.setWordWrap(True)
        self.list.setAlternatingRowColors(True)
        clear = QPushButton("Clear")
        clear.clicked.connect(self.clear)
        top = QHBoxLayout()
        title = QLabel("Notices of the runs, newest first")
        title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        top.addWidget(title, 1)
        top.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.list, 1)

    def add(self, job_id: int, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.list.insertItem(0, f"{stamp} · job #{job_id}: {text}" if job_id
                             else f"{stamp}: {text}")
        self.list.item(0).setToolTip(text)
        while self.list.count() > MAX_NOTICES:
            self.list.takeItem(self.list.count() - 1)
        self.countChanged.emit(self.list.count())

    def texts(self) -> list[str]:
        return [self.list.item(i).toolTip() for i in range(self.list.count())]

    def clear(self) -> None:
        self.list.clear()
        self.countChanged.emit(0)

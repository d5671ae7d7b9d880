"""Prompt and negative prompt, Generate / Cancel (the queue has its own panel)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)


class PromptPanel(QWidget):
    generateRequested = Signal()
    cancelRequested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt = QPlainTextEdit()
        self.prompt.setObjectName("prompt")
        self.prompt.setPlaceholderText("Describe the image, e.g. a red circle on a blue background")
        self.negative = QPlainTextEdit()
        self.negative.setObjectName("negative_prompt")
        self.negative.setPlaceholderText("Negative prompt: what to avoid (optional)")
        self.negative.setMaximumHeight(60)
        self.prompt.setMinimumHeight(44)  # small screens: the text scrolls, the buttons stay
        self.negative.setMinimumHeight(32)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("generate")
        self.generate_button.setToolTip("Generate (Ctrl+Enter); pressed while running, it queues")
        self.generate_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancel")
        self.cancel_button.setToolTip("Stop the running job; the waiting ones stay (Esc)")
        self.cancel_button.setEnabled(False)

        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 2)
        buttons.addWidget(self.cancel_button, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Prompt"))
        layout.addWidget(self.prompt, 3)
        layout.addWidget(QLabel("Negative prompt"))
        layout.addWidget(self.negative, 1)
        layout.addLayout(buttons)
        self.generate_button.clicked.connect(self.generateRequested)
        self.cancel_button.clicked.connect(self.cancelRequested)

    def texts(self) -> tuple[str, str]:
        return self.prompt.toPlainText().strip(), self.negative.toPlainText().strip()

    def set_texts(self, prompt: str, negative: str) -> None:
        self.prompt.setPlainText(prompt)
        self.negative.setPlainText(negative)

"""Prompt and negative prompt, Generate / Cancel, and the queue of waiting jobs."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)


class PromptPanel(QWidget):
    generateRequested = Signal()
    cancelRequested = Signal()
    pasteRequested = Signal()  # "Paste parameters": the window reads the clipboard

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt = QPlainTextEdit()
        self.prompt.setObjectName("prompt")
        self.prompt.setPlaceholderText("Describe the image, e.g. a red circle on a blue background")
        self.negative = QPlainTextEdit()
        self.negative.setObjectName("negative_prompt")
        self.negative.setPlaceholderText("Negative prompt: what to avoid (optional)")
        self.negative.setMaximumHeight(60)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("generate")
        self.generate_button.setToolTip("Generate (Ctrl+Enter); pressed while running, it queues")
        self.generate_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancel")
        self.cancel_button.setToolTip("Stop the running job and drop the queue (Esc)")
        self.cancel_button.setEnabled(False)
        self.paste_button = QToolButton()
        self.paste_button.setText("Paste parameters")
        self.paste_button.setObjectName("paste_parameters")
        self.paste_button.setToolTip("Paste parameters: A1111 text (or another tool's) from the "
                                     "clipboard sets the prompt and every parameter (Ctrl+Shift+V)")
        self.queue = QListWidget()
        self.queue.setObjectName("queue")
        self.queue.setMaximumHeight(70)
        self.queue.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.queue.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.queue_label = QLabel("Queue: empty")

        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 2)
        buttons.addWidget(self.cancel_button, 1)
        layout = QVBoxLayout(self)
        header = QHBoxLayout()  # the prompt's label, and Paste parameters beside it
        header.addWidget(QLabel("Prompt"), 1)
        header.addWidget(self.paste_button)
        layout.addLayout(header)
        layout.addWidget(self.prompt, 3)
        layout.addWidget(QLabel("Negative prompt"))
        layout.addWidget(self.negative, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.queue_label)
        layout.addWidget(self.queue)
        self.generate_button.clicked.connect(self.generateRequested)
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.paste_button.clicked.connect(self.pasteRequested)

    def texts(self) -> tuple[str, str]:
        return self.prompt.toPlainText().strip(), self.negative.toPlainText().strip()

    def set_texts(self, prompt: str, negative: str) -> None:
        self.prompt.setPlainText(prompt)
        self.negative.setPlainText(negative)

    def show_queue(self, items: list[tuple[int, str]], running: int | None) -> None:
        self.queue.clear()
        for job_id, summary in items:
            state = "running" if job_id == running else "waiting"
            self.queue.addItem(f"#{job_id} {state}: {summary}")
        waiting = sum(1 for job_id, _ in items if job_id != running)
        if not items:
            self.queue_label.setText("Queue: empty")
        else:
            self.queue_label.setText(f"Queue: {'1 running, ' if running else ''}{waiting} waiting")
        self.cancel_button.setEnabled(bool(items))

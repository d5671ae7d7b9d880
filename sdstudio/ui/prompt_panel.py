"""Prompt and negative prompt, Generate / Cancel (the queue has its own panel)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sdstudio.ui.prompt_tools import PromptEdit, TokenCounter, TokenCounters
from sdstudio.ui.tasks import PoolTasks


class PromptPanel(QWidget):
    generateRequested = Signal()
    cancelRequested = Signal()
    pasteRequested = Signal()  # "Paste parameters": the window reads the clipboard

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prompt = PromptEdit()  # `<lora:` completes LoRA names
        self.prompt.setObjectName("prompt")
        self.prompt.setPlaceholderText("Describe the image, e.g. a red circle on a blue background")
        self.negative = QPlainTextEdit()
        self.negative.setObjectName("negative_prompt")
        self.negative.setPlaceholderText("Negative prompt: what to avoid (optional)")
        self.negative.setMaximumHeight(60)
        self.prompt.setMinimumHeight(44)  # small screens: the text scrolls, the buttons stay
        self.negative.setMinimumHeight(32)
        self._tasks = PoolTasks(1, self)  # loads the counters' tokenizer off the GUI thread
        self.prompt_tokens = TokenCounter(self.prompt, self._tasks)
        self.prompt_tokens.setObjectName("prompt_tokens")
        self.negative_tokens = TokenCounter(self.negative, self._tasks)
        self.negative_tokens.setObjectName("negative_tokens")
        self.counters = TokenCounters([self.prompt_tokens, self.negative_tokens], self._tasks)
        self.generate_button = QPushButton("Generate")
        self.generate_button.setObjectName("generate")
        self.generate_button.setToolTip("Generate (Ctrl+Enter); pressed while running, it queues")
        self.generate_button.setDefault(True)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setObjectName("cancel")
        self.cancel_button.setToolTip("Stop the running job; the waiting ones stay (Esc)")
        self.cancel_button.setEnabled(False)
        self.paste_button = QToolButton()
        self.paste_button.setText("Paste parameters")
        self.paste_button.setObjectName("paste_parameters")
        self.paste_button.setToolTip("Paste parameters: A1111 text (or another tool's) from the "
                                     "clipboard sets the prompt and every parameter (Ctrl+Shift+V)")

        buttons = QHBoxLayout()
        buttons.addWidget(self.generate_button, 2)
        buttons.addWidget(self.cancel_button, 1)
        layout = QVBoxLayout(self)
        header = _titled("Prompt", self.prompt_tokens)
        header.insertWidget(2, self.paste_button)  # after the stretch, before the counter
        layout.addLayout(header)
        layout.addWidget(self.prompt, 3)
        layout.addLayout(_titled("Negative prompt", self.negative_tokens))
        layout.addWidget(self.negative, 1)
        layout.addLayout(buttons)
        self.generate_button.clicked.connect(self.generateRequested)
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.paste_button.clicked.connect(self.pasteRequested)

    def count_with(self, model: str) -> None:
        """Count tokens with this model's tokenizer."""
        self.counters.count_with(model)

    def texts(self) -> tuple[str, str]:
        return self.prompt.toPlainText().strip(), self.negative.toPlainText().strip()

    def set_texts(self, prompt: str, negative: str) -> None:
        self.prompt.setPlainText(prompt)
        self.negative.setPlainText(negative)


def _titled(title: str, counter: QLabel) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(QLabel(title))
    row.addStretch(1)
    row.addWidget(counter)
    return row

"""The prompt box's helpers: A1111's token counter and the `<lora:` name completer.

The counter's tokenizer is loaded once per model on a pool thread (it imports transformers,
about a second); counting itself takes a few milliseconds and runs debounced after typing.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QStringListModel, Qt, QTimer
from PySide6.QtGui import QKeyEvent, QTextCursor
from PySide6.QtWidgets import QAbstractItemView, QCompleter, QLabel, QPlainTextEdit, QWidget
from shiboken6 import isValid

from sdstudio.core.conditioning.counter import counter_text, load_tokenizer, tokenizer_folder
from sdstudio.core.conditioning.lora_tags import lora_prefix
from sdstudio.ui.tasks import PoolTasks

DEBOUNCE_MS = 150


class TokenCounter(QLabel):
    """"12/75" for one text box, recounted a moment after each edit."""

    def __init__(self, edit: QPlainTextEdit, tasks: PoolTasks,
                 parent: QWidget | None = None) -> None:
        super().__init__("", parent)
        self.edit, self.tasks = edit, tasks
        self.tokenizer = None
        self.setToolTip("Tokens used / tokens before the next 75-token chunk (as A1111 counts)")
        self.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.timer = QTimer(self)
        self.timer.setSingleShot(True)
        self.timer.setInterval(DEBOUNCE_MS)
        self.timer.timeout.connect(self.recount)
        edit.textChanged.connect(self.timer.start)

    def set_tokenizer(self, tokenizer) -> None:
        self.tokenizer = tokenizer
        self.recount()

    def recount(self) -> None:
        if self.tokenizer is not None:
            self.setText(counter_text(self.tokenizer, self.edit.toPlainText()))


class TokenCounters:
    """The counters of the prompt and negative boxes, sharing one tokenizer per model."""

    def __init__(self, counters: list[TokenCounter], tasks: PoolTasks) -> None:
        self.counters, self.tasks = counters, tasks
        self.model: str | None = None

    def count_with(self, model: str) -> None:
        """Count with `model`'s tokenizer (loaded on a pool thread; the last asked one wins)."""
        self.model = model
        folder = tokenizer_folder(model)

        def done(tokenizer, asked=model) -> None:
            if asked == self.model:
                for counter in self.counters:
                    if isValid(counter):  # the panel may be gone (window closed meanwhile)
                        counter.set_tokenizer(tokenizer)

        def failed(message: str) -> None:
            for counter in filter(isValid, self.counters):
                counter.setToolTip(f"No token count: {message}")

        self.tasks.start(lambda: load_tokenizer(folder), done, failed)


class PromptEdit(QPlainTextEdit):
    """A prompt box whose `<lora:` offers the LoRA names of the models folder."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.lora_names: Callable[[], list[str]] = list
        self.completer = QCompleter(QStringListModel([], self), self)
        self.completer.setWidget(self)
        self.completer.setCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)
        self.completer.setFilterMode(Qt.MatchFlag.MatchContains)
        self.completer.setCompletionMode(QCompleter.CompletionMode.PopupCompletion)
        self.completer.activated.connect(self.insert_lora_name)

    def set_lora_names(self, names: Callable[[], list[str]]) -> None:
        """Where the names come from (asked each time `<lora:` is typed)."""
        self.lora_names = names

    def _before_cursor(self) -> str:
        cursor = self.textCursor()
        return self.toPlainText()[: cursor.position()]

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt API)
        popup = self._popup()
        if popup.isVisible() and event.key() in (
            Qt.Key.Key_Return, Qt.Key.Key_Enter, Qt.Key.Key_Tab, Qt.Key.Key_Escape
        ):
            event.ignore()  # the completer's popup takes these
            return
        super().keyPressEvent(event)
        if event.text() or event.key() == Qt.Key.Key_Backspace:
            self.update_completer()

    def _popup(self) -> QAbstractItemView:
        popup = self.completer.popup()  # Qt makes one on first use: never None after that
        assert popup is not None
        return popup

    def update_completer(self) -> None:
        """Show the popup when the text before the cursor ends in `<lora:` + part of a name."""
        prefix = lora_prefix(self._before_cursor())
        popup = self._popup()
        if prefix is None:
            popup.hide()
            return
        if prefix == "" or not popup.isVisible():
            model = self.completer.model()
            assert isinstance(model, QStringListModel)
            model.setStringList(self.lora_names())
        self.completer.setCompletionPrefix(prefix)
        if self.completer.completionCount() == 0:
            popup.hide()
            return
        popup.setCurrentIndex(self.completer.completionModel().index(0, 0))
        rect = self.cursorRect()
        rect.setWidth(popup.sizeHintForColumn(0) + popup.verticalScrollBar().sizeHint().width())
        self.completer.complete(rect)

    def insert_lora_name(self, name: str) -> None:
        """Replace the partial name by `name:1>` (the weight ready to edit)."""
        prefix = lora_prefix(self._before_cursor()) or ""
        cursor = self.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.Left,
                            QTextCursor.MoveMode.KeepAnchor, len(prefix))
        cursor.insertText(f"{name}:1>")
        self.setTextCursor(cursor)
        self._popup().hide()

"""The prompt history: a search box over every prompt used; a click puts one back in the prompt
box (its negative prompt too)."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QVBoxLayout,
    QWidget,
)

from sdstudio.core.prompt_history import PromptEntry, PromptHistory

_ENTRY = Qt.ItemDataRole.UserRole + 1


class PromptHistoryPanel(QWidget):
    """Emits `promptChosen(prompt, negative)` when an entry is clicked."""

    promptChosen = Signal(str, str)

    def __init__(self, history: PromptHistory | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("prompt_history")
        self.history = history or PromptHistory()
        self.search = QLineEdit(placeholderText="Search prompts…", clearButtonEnabled=True)
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.list.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self.search.textChanged.connect(self.refresh)
        self.list.itemClicked.connect(self._choose)
        self.list.customContextMenuRequested.connect(self._menu)
        self.refresh()

    def record(self, prompt: str, negative: str) -> None:
        """A prompt was used: remember it and show it on top."""
        if self.history.add(prompt, negative):
            self.refresh()

    def refresh(self) -> None:
        self.list.clear()
        for entry in self.history.search(self.search.text()):
            label = entry.prompt if len(entry.prompt) <= 200 else entry.prompt[:199] + "…"
            item = QListWidgetItem(label.replace("\n", " "))
            tip = entry.prompt + (f"\nNegative: {entry.negative_prompt}"
                                  if entry.negative_prompt else "")
            item.setToolTip(f"{tip}\nused {entry.uses}×")
            item.setData(_ENTRY, entry)
            self.list.addItem(item)

    def _choose(self, item: QListWidgetItem) -> None:
        entry: PromptEntry = item.data(_ENTRY)
        self.promptChosen.emit(entry.prompt, entry.negative_prompt)

    def _menu(self, pos) -> None:
        item = self.list.itemAt(pos)
        if item is None:
            return
        entry: PromptEntry = item.data(_ENTRY)
        menu = QMenu(self)
        menu.addAction("Use this prompt", lambda: self._choose(item))
        menu.addAction("Remove from history", lambda: self._remove(entry))
        menu.exec(self.list.viewport().mapToGlobal(pos))

    def _remove(self, entry: PromptEntry) -> None:
        self.history.remove(entry.prompt, entry.negative_prompt)
        self.refresh()

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        self.history.close()
        super().closeEvent(event)

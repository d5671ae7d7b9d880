"""Which folder the gallery panel shows: its own gallery or a read-only source (another tool's
folder), the "Add folder…" / "Remove source" buttons, and a watcher that reports new files.

The list of sources is core/gallery/sources.py's JSON file, so the window and
`sdstudio gallery sources` share it.
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QToolButton, QWidget

from sdstudio.core.errors import UserError
from sdstudio.core.gallery.sources import add_source, load_sources, remove_source

MAX_WATCHED = 500  # folders: A1111 makes one per day; beyond this, the next sync still sees all
_OWN = ""  # item data of the gallery's own folder


class SourceBar(QWidget):
    """`chosen(folder, read_only)`: show this folder; `errorOccurred(sentence)`."""

    chosen = Signal(object, bool)
    errorOccurred = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gallery_sources")
        self.box = QComboBox()
        self.box.setObjectName("source_box")
        self.box.setToolTip("The gallery, or another tool's folder (read-only: never written)")
        self.add_button = _tool_button("+", "Add a folder as a read-only source…")
        self.remove_button = _tool_button("−", "Remove this source (files untouched)")
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addWidget(self.box, 1)
        lay.addWidget(self.add_button)
        lay.addWidget(self.remove_button)
        self.reload()
        self.box.currentIndexChanged.connect(self._on_index)
        self.add_button.clicked.connect(self._ask_folder)
        self.remove_button.clicked.connect(self.remove_current)
        # Replaceable in tests: the folder picker.
        self.pick_folder = lambda: QFileDialog.getExistingDirectory(self, "Add a source folder")

    def reload(self, select: Path | None = None) -> None:
        self.box.blockSignals(True)
        self.box.clear()
        self.box.addItem("Gallery", _OWN)
        for folder in load_sources():
            self.box.addItem(f"{folder.name or folder} (read-only)", str(folder))
            self.box.setItemData(self.box.count() - 1, str(folder), 3)  # 3: the tooltip role
        self.box.setCurrentIndex(max(0, self.box.findData(str(select)) if select else 0))
        self.box.blockSignals(False)
        self.remove_button.setEnabled(self.current() is not None)

    def current(self) -> Path | None:
        """The source folder shown, or None for the gallery's own folder."""
        data = self.box.currentData()
        return Path(data) if data else None

    def _on_index(self, _index: int) -> None:
        folder = self.current()
        self.remove_button.setEnabled(folder is not None)
        self.chosen.emit(folder, folder is not None)

    def _ask_folder(self) -> None:
        folder = self.pick_folder()
        if folder:
            self.add(folder)

    def add(self, folder: str | os.PathLike[str]) -> None:
        try:
            added = add_source(folder)
        except UserError as exc:
            self.errorOccurred.emit(str(exc))
            return
        self.reload(select=added)
        self.chosen.emit(added, True)

    def remove_current(self) -> None:
        folder = self.current()
        if folder is None:
            return
        try:
            remove_source(folder)
        except UserError as exc:
            self.errorOccurred.emit(str(exc))
        self.reload()
        self.chosen.emit(None, False)


class FolderWatcher(QObject):
    """`changed()` a moment after files appear or go in the folder or its subfolders."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None, delay_ms: int = 1000) -> None:
        super().__init__(parent)
        self._watcher = QFileSystemWatcher(self)
        self._timer = QTimer(self, singleShot=True, interval=delay_ms)  # a burst: one sync
        self._timer.timeout.connect(self.changed)
        self._watcher.directoryChanged.connect(self._on_change)
        self._root: Path | None = None

    def watch(self, folder: Path | None) -> None:
        dirs = self._watcher.directories()
        if dirs:
            self._watcher.removePaths(dirs)
        self._root = folder
        if folder is not None:
            self._add_tree(folder)

    def _add_tree(self, folder: Path) -> None:
        todo: list[str] = [str(folder)]
        found: list[str] = []
        while todo and len(found) < MAX_WATCHED:
            d = todo.pop()
            found.append(d)
            try:
                todo += [e.path for e in os.scandir(d)
                         if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)]
            except OSError:
                continue
        watched = set(self._watcher.directories())
        new = [d for d in found if d not in watched]
        if new:
            self._watcher.addPaths(new)

    def _on_change(self, path: str) -> None:
        if self._root is not None and os.path.isdir(path):
            self._add_tree(Path(path))  # a new dated subfolder is watched too
        self._timer.start()


def _tool_button(text: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setText(text)
    button.setToolTip(tip)
    return button

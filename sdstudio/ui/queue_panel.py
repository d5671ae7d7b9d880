"""The queue you control: the running job and the waiting ones, with cancel, remove (Delete key,
context menu), move, duplicate (context menu, drag to reorder), pause and clear."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QPoint, Qt
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from sdstudio.ui.jobs import JobQueue, QueueItem

JOB_ID = Qt.ItemDataRole.UserRole


class QueueList(QListWidget):
    """The rows; waiting ones can be dragged into a new order and removed with Delete."""

    def __init__(self, jobs: JobQueue) -> None:
        super().__init__()
        self.jobs = jobs
        self.setObjectName("queue")
        self.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setDragDropMode(QAbstractItemView.DragDropMode.InternalMove)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.model().rowsMoved.connect(lambda *_a: self._reordered())

    def selected_ids(self) -> list[int]:
        return [int(item.data(JOB_ID)) for item in self.selectedItems()]

    def event(self, event: QEvent) -> bool:
        # Delete belongs to the queue while it has focus (the gallery's Delete is a window
        # shortcut and would take it otherwise).
        if (event.type() == QEvent.Type.ShortcutOverride and isinstance(event, QKeyEvent)
                and event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace)):
            event.accept()
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 (Qt API)
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace):
            for job_id in self.selected_ids():
                self.jobs.cancel(job_id)
            event.accept()
            return
        super().keyPressEvent(event)

    def _menu(self, pos: QPoint) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        menu = self.context_menu(int(item.data(JOB_ID)))
        menu.exec(self.viewport().mapToGlobal(pos))

    def context_menu(self, job_id: int) -> QMenu:
        running = self.jobs.running is not None and self.jobs.running.job_id == job_id
        menu = QMenu(self)
        if running:
            menu.addAction("Cancel this job", lambda: self.jobs.cancel(job_id))
        else:
            menu.addAction("Remove from queue", lambda: self.jobs.remove(job_id))
            menu.addAction("Move up", lambda: self.jobs.move(job_id, -1))
            menu.addAction("Move down", lambda: self.jobs.move(job_id, 1))
        menu.addAction("Duplicate", lambda: self.jobs.duplicate(job_id))
        return menu

    def _reordered(self) -> None:
        """After a drag: the waiting rows' new order (the running row cannot move)."""
        running = self.jobs.running.job_id if self.jobs.running is not None else None
        order = [int(self.item(i).data(JOB_ID)) for i in range(self.count())]
        self.jobs.reorder([i for i in order if i != running])


class QueuePanel(QWidget):
    def __init__(self, jobs: JobQueue, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.jobs = jobs
        self.label = QLabel("Queue: empty")
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.list = QueueList(jobs)
        self.list.setMinimumHeight(40)  # a small screen: two rows, scrolling
        self.pause = QCheckBox("Pause")
        self.pause.setObjectName("pause_queue")
        self.pause.setToolTip("Let the running job finish and start no other until unpaused")
        self.pause.toggled.connect(jobs.set_paused)
        self.clear = QPushButton("Clear")
        self.clear.setObjectName("clear_queue")
        self.clear.setToolTip("Clear the queue: remove every waiting job; the running one goes on")
        self.clear.clicked.connect(self._clear)
        self.clear.setEnabled(False)
        top = QHBoxLayout()
        top.addWidget(self.label, 1)
        top.addWidget(self.pause)
        top.addWidget(self.clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.list, 1)
        jobs.queueChanged.connect(self.show_items)

    def _clear(self) -> None:
        for job in list(self.jobs.waiting):
            self.jobs.remove(job.job_id)

    def show_items(self, items: list[QueueItem]) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        for row in items:
            text = f"#{row.job_id} {row.state}: {row.summary}"
            item = QListWidgetItem(text)
            item.setData(JOB_ID, row.job_id)
            item.setToolTip(text)
            if row.state != "waiting":  # the running row stays on top
                item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsDragEnabled)
            self.list.addItem(item)
        self.list.blockSignals(False)
        waiting = sum(1 for row in items if row.state == "waiting")
        running = [row.state for row in items if row.state != "waiting"]
        parts = [f"1 {running[0]}"] if running else []
        if waiting or not running:
            parts.append(f"{waiting} waiting")
        paused = " (paused)" if self.jobs.paused else ""
        self.label.setText(f"Queue: {', '.join(parts)}{paused}" if items
                           else f"Queue: empty{paused}")
        self.clear.setEnabled(waiting > 0)
        if self.pause.isChecked() != self.jobs.paused:
            self.pause.blockSignals(True)
            self.pause.setChecked(self.jobs.paused)
            self.pause.blockSignals(False)

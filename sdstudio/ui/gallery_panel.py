"""The gallery panel: a virtualised thumbnail grid over the gallery index, search, favourites,
a full-size viewer and the actions on an image.

It talks to the window only through signals: `reuseRequested(GenerationRequest)`,
`sendToImg2Img(path)` (a dropped image), `sendRequested(Send)` (a gallery image with its
parameters, see ui/gallery_send), `errorOccurred(sentence)`, `imageSaved(path)`. Saving, syncing with the
folder and making thumbnails run on pool threads; the UI thread only reads the index.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QModelIndex,
    QObject,
    QPoint,
    QSize,
    Qt,
    QTimer,
    QUrl,
    Signal,
)
from PySide6.QtGui import (
    QDesktopServices,
    QGuiApplication,
    QImage,
    QKeySequence,
    QShortcut,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QMessageBox,
    QProgressBar,
    QScrollArea,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sdstudio.core.errors import UserError
from sdstudio.core.gallery import Gallery, GalleryImage, SyncReport
from sdstudio.core.gallery.saving import PendingImage, SaveOutcome, Saver
from sdstudio.core.paths import default_gallery_dir
from sdstudio.core.png import MetadataError, Parameters, read_png, request_from_png
from sdstudio.ui.gallery_filters import FilterBar
from sdstudio.ui.gallery_model import (
    CELL,
    IMAGE_ROLE,
    MAX_CELL,
    MIN_CELL,
    GalleryModel,
    ThumbnailDelegate,
)
from sdstudio.ui.gallery_send import send_image, upscale_into
from sdstudio.ui.gallery_sources import FolderWatcher, SourceBar
from sdstudio.ui.gallery_viewer import GalleryViewer
from sdstudio.ui.settings import Settings
from sdstudio.ui.tasks import PoolTasks

if TYPE_CHECKING:
    from PIL import Image

    from sdstudio.core.request import GenerationRequest

def gallery_folder(settings: Settings | None) -> Path:
    return settings.gallery_folder() if settings is not None else default_gallery_dir()


# ---------------------------------------------------------------- the panel


class GalleryPanel(QWidget):
    reuseRequested = Signal(object)  # GenerationRequest
    sendToImg2Img = Signal(str)  # path of the image
    sendRequested = Signal(object)  # gallery_send.Send: to img2img or inpaint, with parameters
    errorOccurred = Signal(str)  # one sentence for the user
    imageSaved = Signal(str)  # path of a newly saved image
    refreshed = Signal(int)  # rows now listed
    synced = Signal(object)  # SyncReport after the folder was checked
    _indexProgress = Signal(int, int)  # (read, to read), emitted by the sync's pool thread

    def __init__(self, folder: str | Path | None = None, settings: Settings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gallery_panel")
        self.settings = settings
        self.gallery: Gallery | None = None
        self._saver = Saver(self._save_to_gallery)  # save or rescue, the retry list inside
        self._queued = 0  # save tasks not yet reported
        self._save_tasks = PoolTasks(1, self)  # saves in order, one at a time
        self._bg_tasks = PoolTasks(1, self)
        # Replaceable in tests: a yes/no question, and the choice for a dropped PNG.
        self.confirm: Callable[[str], bool] = self._confirm_dialog
        self.ask_drop: Callable[[str, Parameters], str] = self._drop_dialog
        self._build()
        self.viewer: GalleryViewer | None = None
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.open_folder(Path(folder) if folder else gallery_folder(settings))

    # --- layout ---------------------------------------------------------------------------------
    def _build(self) -> None:
        self.search_box = QLineEdit()
        self.search_box.setObjectName("gallery_search")
        self.search_box.setPlaceholderText("Search prompts · seed:123 · model:name · is:fav")
        self.search_box.setClearButtonEnabled(True)
        self.sort_box = QComboBox()
        self.sort_box.addItems(["Newest first", "Oldest first"])
        self.fav_button = QToolButton()
        self.fav_button.setText("★")
        self.fav_button.setToolTip("Show favourites only")
        self.fav_button.setCheckable(True)
        self.more_button = QToolButton()
        self.more_button.setText("⋯")
        self.more_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        more = QMenu(self.more_button)
        more.addAction("Open gallery folder", lambda: self._open_url(self._folder()))
        more.addAction("Change gallery folder…", self._choose_folder)
        more.addAction("Rebuild index", self.rebuild)
        self.more_button.setMenu(more)
        self.status = QLabel()
        self.status.setObjectName("gallery_status")
        self.filters = FilterBar()
        self.sources = SourceBar()
        self.watcher = FolderWatcher(self)
        self.progress = QProgressBar()
        self.progress.setObjectName("gallery_progress")
        self.progress.setVisible(False)
        self.progress.setFormat("Indexing %v of %m")
        self.model = GalleryModel(parent=self)
        self.view = QListView()
        self.view.setObjectName("gallery_view")
        self.view.setViewMode(QListView.ViewMode.IconMode)
        self.view.setMovement(QListView.Movement.Static)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setUniformItemSizes(True)  # layout never asks each of 10,000 rows its size
        self.view.setGridSize(CELL)
        self.view.viewport().installEventFilter(self)  # Ctrl+wheel zooms the thumbnails
        self.view.setLayoutMode(QListView.LayoutMode.Batched)
        self.view.setBatchSize(500)
        self.view.setSelectionMode(QListView.SelectionMode.SingleSelection)
        self.delegate = ThumbnailDelegate(self.view)
        self.view.setItemDelegate(self.delegate)
        self.view.setModel(self.model)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.activated.connect(self._open_index)
        self.view.doubleClicked.connect(self._open_index)
        QShortcut(QKeySequence.StandardKey.Delete, self.view, self._delete_selected)

        top = QHBoxLayout()
        top.addWidget(self.search_box, 1)
        top.addWidget(self.sort_box)
        top.addWidget(self.fav_button)
        top.addWidget(self.more_button)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        strip = QWidget()  # the folder and the filters, one row that scrolls sideways if narrow
        row = QHBoxLayout(strip)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.sources)
        row.addWidget(self.filters, 1)
        lay.addLayout(top)
        lay.addWidget(_h_scroll(strip))
        lay.addWidget(self.view, 1)
        lay.addWidget(self.progress)
        lay.addWidget(self.status)

        if self.settings is not None:  # the last session's sort and search, kept as they change
            self.sort_box.setCurrentIndex(self.settings.gallery_sort())
            self.search_box.setText(self.settings.gallery_search())
            self.sort_box.currentIndexChanged.connect(self.settings.set_gallery_sort)
            self.search_box.textChanged.connect(self.settings.set_gallery_search)
        self._search_timer = QTimer(self, singleShot=True, interval=200)
        self._search_timer.timeout.connect(self.refresh)
        self.search_box.textChanged.connect(lambda _t: self._search_timer.start())
        self.search_box.returnPressed.connect(self.refresh)
        self.sort_box.currentIndexChanged.connect(lambda _i: self.refresh())
        self.fav_button.toggled.connect(lambda _on: self.refresh())
        self.filters.changed.connect(self._search_timer.start)
        self.sources.chosen.connect(lambda folder, ro: self.open_folder(
            folder or gallery_folder(self.settings), read_only=ro))
        self.sources.errorOccurred.connect(self.errorOccurred)
        self.watcher.changed.connect(self._sync)
        self._indexProgress.connect(self._show_progress)

    def set_cell_size(self, side: int) -> None:
        side = max(MIN_CELL, min(MAX_CELL, side))
        self.delegate.cell = QSize(side, side)
        self.view.setGridSize(self.delegate.cell)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:  # noqa: N802 (Qt API)
        if (isinstance(event, QWheelEvent)
                and event.modifiers() & Qt.KeyboardModifier.ControlModifier):
            step = 16 if event.angleDelta().y() > 0 else -16
            self.set_cell_size(self.delegate.cell.width() + step)
            return True
        return super().eventFilter(obj, event)

    # --- opening and listing --------------------------------------------------------------------
    def open_folder(self, folder: Path, read_only: bool = False) -> None:
        """Show the index at once, then check the folder for outside changes in the background.
        read_only: another tool's folder (a source), never written."""
        if self.gallery is not None:
            self.gallery.stop()
            self._bg_tasks.wait()
            self._save_tasks.wait()
            self.gallery.close()
            self.gallery = None
        try:
            self.gallery = Gallery(folder, sync=False, read_only=read_only, create=not read_only)
        except UserError as exc:
            message = str(exc)
            self.model.set_rows([])
            self._set_status(message, error=True)
            QTimer.singleShot(0, lambda: self.errorOccurred.emit(message))
            return
        self.refresh()
        self.watcher.watch(self.gallery.folder)
        self._sync()

    def _sync(self) -> None:
        """Check the folder for new, changed or removed files on the pool (progress shown)."""
        if self.gallery is not None:
            gallery, progress = self.gallery, self._indexProgress.emit
            self._bg_tasks.start(lambda: gallery.sync(progress), self._on_synced,
                                 self._on_sync_failed)

    def _show_progress(self, done: int, total: int) -> None:
        self.progress.setMaximum(total)
        self.progress.setValue(done)
        self.progress.setVisible(total > 0)

    def _on_synced(self, report: SyncReport) -> None:
        self.progress.hide()
        if self.gallery is not None:
            self.filters.set_values({key: self.gallery.values(col) for key, col in (
                ("model", "model"), ("sampler", "sampler"), ("tool", "source"), ("size", "size"))})
        if report.added or report.updated or report.removed:
            self.refresh()
        self._update_status(report)
        self.synced.emit(report)

    def _on_sync_failed(self, message: str) -> None:
        self.progress.hide()
        self._set_status(message, error=True)

    def _query(self) -> str:
        return f"{self.search_box.text()} {self.filters.query()}".strip()

    def refresh(self) -> None:
        if self.gallery is None:
            return
        try:
            ids = self.gallery.search_ids(self._query(),
                                          favourites_only=self.fav_button.isChecked(),
                                          newest_first=self.sort_box.currentIndex() == 0)
        except UserError as exc:
            self._set_status(str(exc), error=True)
            return
        self.model.set_ids(ids, self.gallery.get_many)
        self._update_status()
        self.refreshed.emit(len(ids))

    def _update_status(self, report: SyncReport | None = None) -> None:
        shown = self.model.rowCount()
        text = f"{shown} image{'s' if shown != 1 else ''}"
        filtered = self._query() or self.fav_button.isChecked()
        if filtered and self.gallery is not None:
            text += f" of {self.gallery.count()}"
        tip = str(self._folder())
        if report is not None and report.unreadable:
            text += f" · {len(report.unreadable)} file(s) could not be read"
            tip += "\n" + "\n".join(report.unreadable[:20])
        self._set_status(text)
        self.status.setToolTip(tip)

    def _set_status(self, text: str, error: bool = False) -> None:
        self.status.setText(text)
        self.status.setStyleSheet("color: #c0392b" if error else "")

    def _folder(self) -> Path:
        return self.gallery.folder if self.gallery else gallery_folder(self.settings)

    def rebuild(self) -> None:
        if self.gallery is not None:
            self._set_status("Rebuilding the index…")
            gallery, progress = self.gallery, self._indexProgress.emit
            self._bg_tasks.start(lambda: gallery.rebuild(progress), self._on_synced,
                                 self._on_sync_failed)

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Gallery folder", str(self._folder()))
        if folder:
            self.set_folder(folder)

    def set_folder(self, folder: str | Path) -> None:
        if self.settings is not None:
            self.settings.set_gallery_folder(folder)
        self.open_folder(Path(folder))

    # --- saving (from the window) ----------------------------------------------------------------
    def save_image(self, image: Image.Image, request: GenerationRequest, seed: int,
                   extra: dict[str, Any] | None = None) -> None:
        """Save on the save thread; the image appears when written. Never blocks, never loses.
        `image` is a PIL image or a QImage (copied here, so the caller may reuse it)."""
        if isinstance(image, QImage):
            image = qimage_to_pil(image)
        self._queued += 1
        job = PendingImage(image, request, seed, extra)
        self._save_tasks.start(lambda: self._saver.save(job), self._on_saved, self._on_save_failed)

    def pending_saves(self) -> int:
        """Images handed to save_image and not yet written: queued, or kept in memory."""
        return self._queued + self._saver.kept()

    def _save_to_gallery(self, job: PendingImage) -> GalleryImage:
        """Save thread (called by the Saver, which rescues on failure)."""
        gallery = self.gallery
        if gallery is None:
            raise UserError("The gallery folder could not be opened")
        if gallery.read_only:  # a source is shown: new images still go to the gallery's folder
            with Gallery(gallery_folder(self.settings), sync=False) as own:
                return own.save(job.image, job.request, job.seed, job.extra)
        return gallery.save(job.image, job.request, job.seed, job.extra)

    def _on_save_failed(self, message: str) -> None:  # the Saver itself failed: unexpected
        self._queued -= 1
        self.errorOccurred.emit(message)

    def _on_saved(self, outcomes: list[SaveOutcome]) -> None:
        self._queued -= 1
        for outcome in outcomes:
            if outcome.message:
                self.errorOccurred.emit(outcome.message)
            if outcome.row is not None:
                self._show_saved(outcome.row)
            if outcome.path is not None:
                self.imageSaved.emit(str(outcome.path))

    def _show_saved(self, row: GalleryImage) -> None:
        if self.gallery is not None and row.path.parent.is_relative_to(self.gallery.folder):
            plain = not self._query() and not self.fav_button.isChecked()
            if plain and self.sort_box.currentIndex() == 0:
                self.model.insert_first(row)
                self._update_status()
            else:
                self.refresh()

    # --- actions on one image --------------------------------------------------------------------
    def selected(self) -> GalleryImage | None:
        idx = self.view.currentIndex()
        return idx.data(IMAGE_ROLE) if idx.isValid() else None

    def _open_index(self, index: QModelIndex) -> None:
        img = index.data(IMAGE_ROLE)
        if img is not None:
            self.open_image(img)

    def open_image(self, img: GalleryImage) -> GalleryViewer:
        if self.viewer is None:
            self.viewer = GalleryViewer(self)
            self.viewer.action.connect(self.do_action)
        self.viewer.show_image(img)
        self.viewer.show()
        self.viewer.raise_()
        return self.viewer

    def _context_menu(self, pos: QPoint) -> None:
        img = self.view.indexAt(pos).data(IMAGE_ROLE)
        if img is not None:
            menu = self.image_menu(img)
            menu.exec(self.view.viewport().mapToGlobal(pos))
            menu.deleteLater()

    def image_menu(self, img: GalleryImage) -> QMenu:
        """The actions on one image (the grid's context menu)."""
        menu = QMenu(self)
        menu.addAction("Open", lambda: self.open_image(img))
        menu.addSeparator()
        for name, label in (("reuse", "Reuse parameters"), ("img2img", "Send to img2img"),
                            ("inpaint", "Send to inpaint"),
                            ("copy_prompt", "Copy prompt"), ("copy_seed", "Copy seed"),
                            ("copy_parameters", "Copy parameters (A1111 text)"),
                            ("favourite", "Unfavourite" if img.favourite else "Favourite"),
                            ("folder", "Open containing folder"), ("delete", "Delete…")):
            menu.addAction(label, functools.partial(self.do_action, name, str(img.path)))
            if name == "inpaint":
                up = menu.addMenu("Upscale")
                for scale, upscaler in ((2, "Lanczos"), (4, "Lanczos"), (2, "Nearest")):
                    up.addAction(f"{scale}× {upscaler}",
                                 functools.partial(self.upscale, str(img.path), scale, upscaler))
        return menu

    def _delete_selected(self) -> None:
        img = self.selected()
        if img is not None:
            self.do_action("delete", str(img.path))

    def do_action(self, name: str, path: str) -> None:
        """copy_prompt | copy_seed | copy_parameters | reuse | img2img | inpaint | upscale |
        favourite | delete | folder."""
        try:
            getattr(self, f"_do_{name}")(Path(path))
        except UserError as exc:
            self.errorOccurred.emit(str(exc))

    def _row(self, path: Path) -> GalleryImage:
        row = self.gallery.get(path) if self.gallery else None
        if row is None:
            raise UserError(f"{path.name} is no longer in the gallery.")
        return row

    def _do_copy_prompt(self, path: Path) -> None:
        QGuiApplication.clipboard().setText(self._row(path).prompt)

    def _do_copy_seed(self, path: Path) -> None:
        seed = self._row(path).seed
        if seed is None:
            raise UserError(f"{path.name} has no seed in its parameters.")
        QGuiApplication.clipboard().setText(str(seed))

    def _do_copy_parameters(self, path: Path) -> None:
        """Any tool's parameters as A1111 text: what every other tool's paste reads."""
        from sdstudio.core.png.readers import a1111_text

        params = read_png(path)
        if params is None:
            raise UserError(f"{path.name} has no generation parameters to copy.")
        QGuiApplication.clipboard().setText(a1111_text(params))

    def _do_reuse(self, path: Path) -> None:
        self.reuseRequested.emit(request_from_png(path))

    def _do_img2img(self, path: Path) -> None:
        self.sendRequested.emit(send_image(path, "img2img"))

    def _do_inpaint(self, path: Path) -> None:
        self.sendRequested.emit(send_image(path, "inpaint"))

    def _do_upscale(self, path: Path) -> None:
        self.upscale(str(path))

    def upscale(self, path: str, scale: float = 2, upscaler: str = "Lanczos") -> None:
        """Upscale on the save thread into a new gallery image (prompt kept, upscale recorded)."""
        gallery = self.gallery
        if gallery is None:
            self.errorOccurred.emit("The gallery folder could not be opened.")
            return
        self._set_status(f"Upscaling {Path(path).name} {scale:g}× ({upscaler})…")
        self._queued += 1
        self._save_tasks.start(lambda: upscale_into(gallery, path, scale, upscaler),
                               self._on_upscaled, self._on_upscale_failed)

    def _on_upscale_failed(self, message: str) -> None:
        self._on_save_failed(message)
        self._update_status()

    def _on_upscaled(self, row: GalleryImage) -> None:
        self._queued -= 1
        self._show_saved(row)
        self._update_status()
        self.imageSaved.emit(str(row.path))

    def _do_favourite(self, path: Path) -> None:
        row = self._row(path)
        assert self.gallery is not None
        self.gallery.set_favourite(path, not row.favourite)
        row = self._row(path)
        if self.fav_button.isChecked() and not row.favourite:
            self.model.remove(row.id)
        else:
            self.model.replace(row)
        if self.viewer is not None and self.viewer.image and self.viewer.image.path == row.path:
            self.viewer.image = row
            self.viewer.set_favourite(row.favourite)

    def _do_delete(self, path: Path) -> None:
        if not self.confirm(f"Move {path.name} to the trash?"):
            return
        row = self._row(path)
        assert self.gallery is not None
        self.gallery.delete(path)
        self.model.remove(row.id)
        self._update_status()
        if self.viewer is not None and self.viewer.image and self.viewer.image.path == path:
            self.viewer.close()

    def _do_folder(self, path: Path) -> None:
        self._open_url(path.parent)

    def _open_url(self, folder: Path) -> None:
        if not QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder))):
            self.errorOccurred.emit(f"Could not open the folder {folder}: this system has no "
                                    "file manager set up to open it.")

    # --- drops on the window ---------------------------------------------------------------------
    def handle_drop(self, path: str) -> bool:
        """A PNG with SD parameters dropped on the window: offer to reuse them. False when the
        file has none (the window then treats it as any image)."""
        try:
            params = read_png(path) if path.lower().endswith((".png", ".jpg", ".jpeg", ".webp")) \
                else None
        except MetadataError as exc:
            self.errorOccurred.emit(str(exc))
            return True
        if params is None:
            return False
        choice = self.ask_drop(path, params)
        if choice == "reuse":
            try:
                self.reuseRequested.emit(params.to_request())
            except UserError as exc:
                self.errorOccurred.emit(str(exc))
        elif choice == "img2img":
            self.sendToImg2Img.emit(path)
        return True

    def _drop_dialog(self, path: str, params: Parameters) -> str:
        box = QMessageBox(QMessageBox.Icon.Question, "Image with parameters",
                          f"{Path(path).name} holds generation parameters "
                          f"(seed {params.seed}). Reuse them?", parent=self.window())
        reuse = box.addButton("Reuse parameters", QMessageBox.ButtonRole.AcceptRole)
        init = box.addButton("Use as init image", QMessageBox.ButtonRole.ActionRole)
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        clicked = box.clickedButton()
        return "reuse" if clicked is reuse else "img2img" if clicked is init else "cancel"

    def _confirm_dialog(self, question: str) -> bool:
        answer = QMessageBox.question(self.window(), "Delete image", question)
        return answer == QMessageBox.StandardButton.Yes

    # --- plumbing ---------------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Finish pending saves (an image is never dropped), then stop the workers."""
        self._save_tasks.wait(60_000)
        if self.gallery is not None:
            self.gallery.stop()
        self._bg_tasks.clear()
        self._bg_tasks.wait(10_000)
        self.model.loader.shutdown()
        if self.gallery is not None:
            self.gallery.close()
            self.gallery = None


def qimage_to_pil(image: QImage) -> Image.Image:
    from PIL import Image

    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    return Image.frombuffer("RGB", (w, h), bytes(rgb.constBits()), "raw", "RGB", stride, 1).copy()


def _h_scroll(widget: QWidget) -> QScrollArea:
    """`widget` in a strip that scrolls sideways when the dock is narrower than it, so the filter
    row never sets the gallery dock's (and the window's) minimum width."""
    area = QScrollArea()
    area.setWidget(widget)
    area.setWidgetResizable(True)
    area.setFrameShape(QFrame.Shape.NoFrame)
    area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    bar = area.horizontalScrollBar()
    area.setFixedHeight(widget.sizeHint().height() + (bar.sizeHint().height() if bar else 0))
    return area

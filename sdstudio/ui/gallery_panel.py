"""The gallery panel: a virtualised thumbnail grid over the gallery index, search, favourites,
a full-size viewer and the actions on an image.

It talks to the window only through signals: `reuseRequested(GenerationRequest)`,
`sendToImg2Img(path)`, `errorOccurred(sentence)`, `imageSaved(path)`. Saving, syncing with the
folder and making thumbnails run on pool threads; the UI thread only reads the index.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import (
    QCoreApplication,
    QEvent,
    QModelIndex,
    QObject,
    QPoint,
    QRunnable,
    QSize,
    Qt,
    QThreadPool,
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
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QMessageBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sdstudio.core import metadata
from sdstudio.core.errors import UserError
from sdstudio.core.gallery import Gallery, GalleryImage, SyncReport, file_name_for
from sdstudio.core.metadata import MetadataError, Parameters
from sdstudio.core.paths import data_dir, default_gallery_dir
from sdstudio.ui.gallery_model import (
    CELL,
    IMAGE_ROLE,
    MAX_CELL,
    MIN_CELL,
    GalleryModel,
    ThumbnailDelegate,
)
from sdstudio.ui.gallery_viewer import GalleryViewer
from sdstudio.ui.settings import Settings

if TYPE_CHECKING:
    from PIL import Image

    from sdstudio.core.request import GenerationRequest

def gallery_folder(settings: Settings | None) -> Path:
    return settings.gallery_folder() if settings is not None else default_gallery_dir()


def rescue_dir() -> Path:
    """Where an image goes when the gallery folder cannot take it."""
    return data_dir() / "unsaved"


def _sentence(text: str) -> str:
    return text.rstrip(". ")


# ---------------------------------------------------------------- running work off the UI thread


class _Relay(QObject):
    done = Signal(object)
    failed = Signal(str)


class _Call(QRunnable):
    def __init__(self, fn: Callable[[], Any], relay: _Relay) -> None:
        super().__init__()
        self.fn, self.relay = fn, relay

    def run(self) -> None:
        try:
            result = self.fn()
        except UserError as exc:
            self.relay.failed.emit(str(exc))
        except Exception as exc:  # never let a pool thread die silently
            self.relay.failed.emit(f"Unexpected error: {exc}.")
        else:
            self.relay.done.emit(result)


# ---------------------------------------------------------------- the panel


class GalleryPanel(QWidget):
    reuseRequested = Signal(object)  # GenerationRequest
    sendToImg2Img = Signal(str)  # path of the image
    errorOccurred = Signal(str)  # one sentence for the user
    imageSaved = Signal(str)  # path of a newly saved image
    refreshed = Signal(int)  # rows now listed
    synced = Signal(object)  # SyncReport after the folder was checked

    def __init__(self, folder: str | Path | None = None, settings: Settings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gallery_panel")
        self.settings = settings
        self.gallery: Gallery | None = None
        self._relays: set[_Relay] = set()
        self._unsaved: list[tuple[Any, Any, int, dict[str, Any] | None]] = []
        self._saving = 0
        self._save_pool = QThreadPool(self)
        self._save_pool.setMaxThreadCount(1)  # saves in order, one at a time
        self._bg_pool = QThreadPool(self)
        self._bg_pool.setMaxThreadCount(1)
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
        lay.addLayout(top)
        lay.addWidget(self.view, 1)
        lay.addWidget(self.status)

        self._search_timer = QTimer(self, singleShot=True, interval=200)
        self._search_timer.timeout.connect(self.refresh)
        self.search_box.textChanged.connect(lambda _t: self._search_timer.start())
        self.search_box.returnPressed.connect(self.refresh)
        self.sort_box.currentIndexChanged.connect(lambda _i: self.refresh())
        self.fav_button.toggled.connect(lambda _on: self.refresh())

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
    def open_folder(self, folder: Path) -> None:
        """Show the index at once, then check the folder for outside changes in the background."""
        if self.gallery is not None:
            self._bg_pool.waitForDone()
            self._save_pool.waitForDone()
            self.gallery.close()
            self.gallery = None
        try:
            self.gallery = Gallery(folder, sync=False)
        except UserError as exc:
            message = str(exc)
            self.model.set_rows([])
            self._set_status(message, error=True)
            QTimer.singleShot(0, lambda: self.errorOccurred.emit(message))
            return
        self.refresh()
        self._run(self._bg_pool, self.gallery.sync, self._on_synced, self._on_sync_failed)

    def _on_synced(self, report: SyncReport) -> None:
        if report.added or report.updated or report.removed:
            self.refresh()
        self._update_status(report)
        self.synced.emit(report)

    def _on_sync_failed(self, message: str) -> None:
        self._set_status(message, error=True)

    def refresh(self) -> None:
        if self.gallery is None:
            return
        try:
            ids = self.gallery.search_ids(self.search_box.text(),
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
        filtered = self.search_box.text().strip() or self.fav_button.isChecked()
        if filtered and self.gallery is not None:
            text += f" of {self.gallery.count()}"
        tip = str(self._folder())
        if report is not None and report.errors:
            text += f" · {len(report.errors)} file(s) could not be read"
            tip += "\n" + "\n".join(report.errors[:20])
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
            self._run(self._bg_pool, self.gallery.rebuild, self._on_synced, self._on_sync_failed)

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
        jobs = [*self._unsaved, (image, request, seed, extra)]
        self._unsaved.clear()
        for job in jobs:
            self._saving += 1
            self._run(self._save_pool, lambda j=job: self._save_blocking(*j), self._on_saved,
                      self._on_save_failed)

    def pending_saves(self) -> int:
        """Images handed to save_image and not yet written (or failed)."""
        return self._saving

    def _on_save_failed(self, message: str) -> None:
        self._saving -= 1
        self.errorOccurred.emit(message)

    def _save_blocking(self, image: Any, request: Any, seed: int,
                       extra: dict[str, Any] | None) -> GalleryImage:
        """Pool thread. On failure the image goes to the rescue folder, or stays in memory."""
        gallery = self.gallery
        try:
            if gallery is None:
                raise UserError("The gallery folder could not be opened")
            return gallery.save(image, request, seed, extra)
        except Exception as exc:
            reason = _sentence(str(exc) if isinstance(exc, UserError) else f"Unexpected error: {exc}")
        try:
            rescue = rescue_dir()
            rescue.mkdir(parents=True, exist_ok=True)
            target = rescue / file_name_for(request.prompt, seed, time.time())
            metadata.write_png(target, image, request, seed, extra, overwrite=False)
        except Exception:
            self._unsaved.append((image, request, seed, extra))
            raise UserError(f"{reason}; the image is kept in memory and will be saved with the "
                            "next one.") from None
        raise UserError(f"{reason}; the image was saved in {rescue} instead.")

    def _on_saved(self, row: GalleryImage) -> None:
        self._saving -= 1
        if self.gallery is not None and row.path.parent.is_relative_to(self.gallery.folder):
            plain = not self.search_box.text().strip() and not self.fav_button.isChecked()
            if plain and self.sort_box.currentIndex() == 0:
                self.model.insert_first(row)
                self._update_status()
            else:
                self.refresh()
        self.imageSaved.emit(str(row.path))

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
        if img is None:
            return
        menu = QMenu(self)
        menu.addAction("Open", lambda: self.open_image(img))
        menu.addSeparator()
        for name, label in (("reuse", "Reuse parameters"), ("img2img", "Send to img2img"),
                            ("copy_prompt", "Copy prompt"), ("copy_seed", "Copy seed"),
                            ("favourite", "Unfavourite" if img.favourite else "Favourite"),
                            ("folder", "Open containing folder"), ("delete", "Delete…")):
            menu.addAction(label, lambda n=name: self.do_action(n, str(img.path)))
        menu.exec(self.view.viewport().mapToGlobal(pos))

    def _delete_selected(self) -> None:
        img = self.selected()
        if img is not None:
            self.do_action("delete", str(img.path))

    def do_action(self, name: str, path: str) -> None:
        """copy_prompt | copy_seed | reuse | img2img | favourite | delete | folder."""
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

    def _do_reuse(self, path: Path) -> None:
        self.reuseRequested.emit(request_from_png(path))

    def _do_img2img(self, path: Path) -> None:
        self.sendToImg2Img.emit(str(path))

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
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))

    # --- drops on the window ---------------------------------------------------------------------
    def handle_drop(self, path: str) -> bool:
        """A PNG with SD parameters dropped on the window: offer to reuse them. False when the
        file has none (the window then treats it as any image)."""
        try:
            params = metadata.read_png(path) if path.lower().endswith(".png") else None
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
        return {reuse: "reuse", init: "img2img"}.get(box.clickedButton(), "cancel")

    def _confirm_dialog(self, question: str) -> bool:
        answer = QMessageBox.question(self.window(), "Delete image", question)
        return answer == QMessageBox.StandardButton.Yes

    # --- plumbing ---------------------------------------------------------------------------------
    def _run(self, pool: QThreadPool, fn: Callable[[], Any], done: Callable[[Any], None],
             failed: Callable[[str], None]) -> None:
        relay = _Relay()  # lives in the GUI thread: its signals arrive here, queued
        self._relays.add(relay)
        relay.done.connect(done)
        relay.failed.connect(failed)
        relay.done.connect(lambda _r: self._relays.discard(relay))
        relay.failed.connect(lambda _m: self._relays.discard(relay))
        pool.start(_Call(fn, relay))

    def shutdown(self) -> None:
        """Finish pending saves (an image is never dropped), then stop the workers."""
        self._save_pool.waitForDone(60_000)
        self._bg_pool.clear()
        self._bg_pool.waitForDone(10_000)
        self.model.loader.shutdown()
        if self.gallery is not None:
            self.gallery.close()
            self.gallery = None


def qimage_to_pil(image: QImage) -> Image.Image:
    from PIL import Image

    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    w, h, stride = rgb.width(), rgb.height(), rgb.bytesPerLine()
    return Image.frombuffer("RGB", (w, h), bytes(rgb.constBits()), "raw", "RGB", stride, 1).copy()


def request_from_png(path: str | Path) -> GenerationRequest:
    """The request stored in a PNG, or one clear sentence why there is none."""
    params = metadata.read_png(path)
    if params is None:
        raise UserError(f"{Path(path).name} has no generation parameters to reuse.")
    return params.to_request()

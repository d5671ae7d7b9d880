"""MainWindow: dock panels around the generation worker. The UI gathers a request, hands it to
the worker, and shows the events that come back.

Integration points (kept small on purpose):
- `apply_request(request)`  fill the prompt and parameter panels from a GenerationRequest.
- `set_init_image(path)`    use an image file as the img2img init image.
- `gallery_dock`            a QDockWidget; replace its widget with a fuller gallery.
- `_on_image(result)`       every finished image (a `FinishedImage`) arrives here, once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QSettings, Qt, QTimer, Signal, Slot
from PySide6.QtGui import QAction, QCloseEvent, QDragEnterEvent, QDropEvent, QKeySequence
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QTabWidget,
    QWidget,
)

from sdstudio.core.model_settings import recommended_guidance_for
from sdstudio.ui import settings as st
from sdstudio.ui.channels_panel import ChannelsPanel
from sdstudio.ui.gallery_panel import GalleryPanel
from sdstudio.ui.image_slot import dropped_image_path
from sdstudio.ui.jobs import JobQueue
from sdstudio.ui.params_panel import ParamsPanel
from sdstudio.ui.preview_panel import PreviewPanel
from sdstudio.ui.prompt_panel import PromptPanel
from sdstudio.ui.session_gallery import SessionGallery
from sdstudio.ui.worker import FinishedImage, GenerationWorker, StepPreview

if TYPE_CHECKING:
    from sdstudio.core.request import GenerationRequest


class MainWindow(QMainWindow):
    # GUI-thread notifications (tests and other panels wait on these, not on the worker's signals)
    stepShown = Signal(int)  # step number now shown in the preview
    jobFinished = Signal(int, str)  # job id, "done" | "cancelled" | "failed"
    errorShown = Signal(str)
    modelReady = Signal(dict)  # the worker loaded a model: {"model", "name", "native_size", ...}

    def __init__(self, settings: QSettings | None = None,
                 worker: GenerationWorker | None = None) -> None:
        super().__init__()
        self.setWindowTitle("sdstudio")
        self.setObjectName("MainWindow")
        self.setAcceptDrops(True)
        self.settings = settings or st.open_settings()
        self.jobs = JobQueue(worker, parent=self)
        self.prompt_panel = PromptPanel()
        self.params_panel = ParamsPanel()
        self.preview_panel = PreviewPanel()
        self.channels_panel = ChannelsPanel()
        self.session_gallery = SessionGallery()
        self.last_error: str | None = None
        self.last_error_dialog: QMessageBox | None = None
        self.model_label = QLabel("No model loaded")
        self._job_started_at = 0.0
        self._last_started: int | None = None
        self._quiet_failures = False
        self._first_run = not self.settings.contains("generation/params")
        self._native_size = 0  # the loaded model's training size; 0 before the first load
        self._build_docks()
        self._install_gallery()
        self._build_actions()
        self.statusBar().addPermanentWidget(self.model_label)
        self._connect()
        self._restore()
        # The chosen model's recommended CFG scale, read now (no torch), so that a Generate
        # pressed during the first load already uses it; restored settings are the user's own.
        self._model_guidance = recommended_guidance_for(self.params_panel.params()["model"])
        if self._first_run:
            self.params_panel.set_params({"guidance": self._model_guidance})
        self.statusBar().showMessage("Starting…")

    # --- layout -------------------------------------------------------------------------------
    def _dock(self, title: str, name: str, widget: QWidget,
              area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _build_docks(self) -> None:
        left, right = Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea
        self.setDockNestingEnabled(True)
        self.prompt_dock = self._dock("Prompt", "prompt_dock", self.prompt_panel, left)
        scroll = QScrollArea()  # the parameters may be taller than a small screen
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(self.params_panel)
        self.params_dock = self._dock("Parameters", "params_dock", scroll, left)
        self.preview_dock = self._dock("Preview", "preview_dock", self.preview_panel, right)
        self.channels_dock = self._dock("Latent channels", "channels_dock",
                                        self.channels_panel, right)
        self.gallery_dock = self._dock("Session gallery", "gallery_dock",
                                       self.session_gallery, right)
        self.splitDockWidget(self.prompt_dock, self.params_dock, Qt.Orientation.Vertical)
        self.splitDockWidget(self.preview_dock, self.channels_dock, Qt.Orientation.Horizontal)
        self.splitDockWidget(self.channels_dock, self.gallery_dock, Qt.Orientation.Vertical)
        self.resizeDocks([self.prompt_dock, self.preview_dock, self.channels_dock],
                         [360, 560, 300], Qt.Orientation.Horizontal)
        self.resizeDocks([self.prompt_dock, self.params_dock], [260, 440], Qt.Orientation.Vertical)

    def _install_gallery(self) -> None:
        """The saved-images gallery in the gallery dock, beside this session's images."""
        self.gallery_panel = GalleryPanel(settings=self.settings)
        self._model_info: dict[str, Any] = {}
        self._pending: tuple[str, float, float] | None = None  # model being opened, CFG to undo
        tabs = QTabWidget()
        tabs.setObjectName("gallery_tabs")
        tabs.addTab(self.gallery_panel, "Gallery")
        tabs.addTab(self.session_gallery, "This session")
        self.gallery_dock.setWidget(tabs)
        self.gallery_dock.setWindowTitle("Gallery")
        self.gallery_panel.reuseRequested.connect(self.apply_request)
        self.gallery_panel.sendToImg2Img.connect(self.set_init_image)
        self.gallery_panel.errorOccurred.connect(self.show_error)

    def _build_actions(self) -> None:
        self.generate_action = QAction("&Generate", self)
        self.generate_action.setShortcuts([QKeySequence("Ctrl+Return"), QKeySequence("Ctrl+Enter")])
        self.generate_action.triggered.connect(self.generate)
        self.cancel_action = QAction("&Cancel", self)
        self.cancel_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.cancel_action.triggered.connect(self.cancel)
        for action in (self.generate_action, self.cancel_action):
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.addAction(action)
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction("Open &model…", self.params_panel.model._open_model)
        file_menu.addAction("Open &init image…", self.params_panel.init_image._browse)
        file_menu.addAction("Set models &folder…", self.params_panel.model._choose_folder)
        file_menu.addSeparator()
        file_menu.addAction("&Quit", QKeySequence.StandardKey.Quit, self.close)
        gen_menu = self.menuBar().addMenu("&Generate")
        gen_menu.addAction(self.generate_action)
        gen_menu.addAction(self.cancel_action)
        view_menu = self.menuBar().addMenu("&View")
        for dock in (self.prompt_dock, self.params_dock, self.preview_dock,
                     self.channels_dock, self.gallery_dock):
            view_menu.addAction(dock.toggleViewAction())

    def _connect(self) -> None:
        w = self.jobs  # GUI-thread relays of the worker's signals (see JobQueue)
        self.prompt_panel.generateRequested.connect(self.generate)
        self.prompt_panel.cancelRequested.connect(self.cancel)
        self.params_panel.modelChosen.connect(self._preload)
        self.params_panel.model.vaeChosen.connect(self._preload)  # reload with the new VAE
        self.params_panel.model.folderChosen.connect(
            lambda f: st.set_models_folder(self.settings, Path(f)))
        self.jobs.queueChanged.connect(
            lambda items: self.prompt_panel.show_queue(items, self.jobs.running))
        self.session_gallery.showRequested.connect(
            lambda img: self.preview_panel.show_final(img, "from the session gallery"))
        self.session_gallery.reuseRequested.connect(self.apply_request)
        w.status.connect(self._on_status)
        w.coreReady.connect(self._on_core_ready)
        w.modelLoaded.connect(self._on_model_loaded)
        w.modelLoaded.connect(self._remember_model_info)
        w.started.connect(self._on_started)
        w.step.connect(self._on_step)
        w.image.connect(self._on_image)
        w.failed.connect(self._on_failed)
        w.finished.connect(self._on_finished)

    # --- public API ------------------------------------------------------------------------------
    def start_engine(self) -> None:
        """Start the worker thread; it imports torch and loads the chosen model there."""
        self.jobs.start()

    @Slot()
    def generate(self) -> int | None:
        """Queue one job with the current fields; returns its id (None if nothing was queued)."""
        prompt, negative = self.prompt_panel.texts()
        if not prompt:
            self.statusBar().showMessage("Type a prompt first.")
            self.prompt_panel.prompt.setFocus()
            return None
        params = self.params_panel.params()
        params["seed"] = self.params_panel.next_seed()
        params.pop("seed_random")
        params.update(prompt=prompt, negative_prompt=negative)
        self._save_params()
        self._quiet_failures = False
        self._first_run = False
        summary = f"{prompt[:32]} · {params['width']}×{params['height']} · seed {params['seed']}"
        return self.jobs.submit(params, summary)

    @Slot()
    def cancel(self) -> None:
        if self.jobs.busy():
            self.jobs.cancel_all()
            self.statusBar().showMessage("Cancelling…")

    def apply_request(self, request: GenerationRequest) -> None:
        """Fill the prompt and parameter panels from a request (fixed seed: it reproduces)."""
        data: dict[str, Any] = dict(request.to_dict())
        self.prompt_panel.set_texts(data.pop("prompt", ""), data.pop("negative_prompt", ""))
        data["seed_random"] = False
        self.params_panel.set_params(data)
        self.statusBar().showMessage("Parameters loaded.")

    def set_init_image(self, path: str | Path) -> None:
        """Use the image at `path` as the img2img init image."""
        self.params_panel.init_image.set_path(str(path))
        self.params_dock.raise_()

    def show_error(self, message: str, dialog: bool = True) -> None:
        """One sentence in the status bar and, unless told otherwise, a non-blocking dialog."""
        self.last_error = message
        self.statusBar().showMessage(message)
        self.errorShown.emit(message)
        if not dialog:
            return
        if self.last_error_dialog is not None:
            self.last_error_dialog.close()
        box = QMessageBox(QMessageBox.Icon.Warning, "sdstudio", message,
                          QMessageBox.StandardButton.Ok, self)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.setWindowModality(Qt.WindowModality.NonModal)
        box.finished.connect(lambda _r: setattr(self, "last_error_dialog", None))
        box.show()
        self.last_error_dialog = box

    # --- worker events ------------------------------------------------------------------------
    @Slot(str)
    def _on_status(self, text: str) -> None:
        self.statusBar().showMessage(text)

    @Slot(list)
    def _on_core_ready(self, names: list[str]) -> None:
        self.params_panel.set_scheduler_names(names)
        from sdstudio.core.models.loading import available_devices  # torch is imported by now

        self.params_panel.set_devices(available_devices())
        self._quiet_failures = True  # a missing default model is not worth a dialog at start
        self._preload(self.params_panel.model.current_model())

    @Slot(str)
    def _preload(self, model: str) -> None:
        self._pending = (model, self.params_panel.params()["guidance"], self._model_guidance)
        self._follow_model_guidance(recommended_guidance_for(model))
        p = self.params_panel.params()
        self.jobs.load_model(model, p["device"], p["dtype"])

    @Slot(dict)
    def _on_model_loaded(self, info: dict) -> None:
        self._pending = None
        self.params_panel.model.mark_loaded(info["model"])
        size_text = f" · native {info['native_size']}px" if info.get("native_size") else ""
        self.model_label.setText(
            f"Model: {info['name']} · {info['device']} · {info['dtype']}{size_text}")
        self.model_label.setToolTip(info["model"])
        native = int(info.get("native_size") or 0)
        if native:
            self.params_panel.set_native_size(native)
            p = self.params_panel.params()
            # Follow the model's own size for a new user, and when switching models unless the
            # user chose a size of their own (e.g. demo 128 -> SD 1.5 512).
            if self._first_run or (p["width"], p["height"]) == (self._native_size,) * 2:
                self.params_panel.set_params({"width": native, "height": native})
            self._native_size = native
        # Likewise its recommended guidance (already applied when it was chosen, where the model
        # is a folder; a hub id only tells once loaded).
        self._follow_model_guidance(float(info.get("guidance", st.DEFAULT_PARAMS["guidance"])))
        self._first_run = False
        self.modelReady.emit(info)

    def _follow_model_guidance(self, guidance: float) -> None:
        """Take a model's recommended CFG scale (the demo model over-saturates at 7.5) for a new
        user, and when switching models unless the user chose a scale of their own."""
        if self.params_panel.params()["guidance"] == self._model_guidance:
            self.params_panel.set_params({"guidance": guidance})
        self._model_guidance = guidance

    @Slot(int)
    def _on_started(self, job_id: int) -> None:
        self._quiet_failures = False
        self._last_started = job_id
        self._job_started_at = time.monotonic()
        self.preview_panel.begin(f"Job #{job_id}")

    @Slot(object)
    def _on_step(self, sp: StepPreview) -> None:
        if sp.job_id != self._last_started:
            return
        self.preview_panel.show_step(sp)
        self.channels_panel.show_channels(sp.channels)
        self.stepShown.emit(sp.step)

    @Slot(object)
    def _on_image(self, result: FinishedImage) -> None:
        """Every finished image arrives here once: shown, and saved to the gallery (on the
        gallery's save thread; a failure is one sentence and the image is kept elsewhere)."""
        self.session_gallery.add_image(result.image, result.request, result.seed)
        pil = getattr(result.event, "image", None)
        self.gallery_panel.save_image(pil if pil is not None else result.image, result.request,
                                      result.seed, self._record_extra())
        if result.index == 0:
            self.preview_panel.show_final(result.image, f"Final image · seed {result.seed}")
        for notice in result.notices:
            self.statusBar().showMessage(notice)

    @Slot(dict)
    def _remember_model_info(self, info: dict) -> None:
        self._model_info = dict(info)

    def _record_extra(self) -> dict[str, Any]:
        """What the PNG's reproducibility record needs from the loaded model."""
        info = self._model_info
        return {k: info[k] for k in ("device", "dtype") if k in info}

    @Slot(str)
    def _on_failed(self, message: str) -> None:
        if self._pending is not None:  # the model did not open: mark it, undo its CFG
            model, guidance, self._model_guidance = self._pending
            self._pending = None
            self.params_panel.model.mark_failed(model, message)
            self.params_panel.set_params({"guidance": guidance})
        if self._quiet_failures:
            self.model_label.setText("No model loaded: choose one in Parameters ▸ Model")
        self.show_error(message, dialog=not self._quiet_failures)
        self._quiet_failures = False

    @Slot(int, str)
    def _on_finished(self, job_id: int, outcome: str) -> None:
        if job_id == self._last_started:
            seconds = time.monotonic() - self._job_started_at
            self.preview_panel.end(outcome, seconds)
            if outcome == "done":
                self.statusBar().showMessage(f"Done in {seconds:.1f} s.")
        self.jobFinished.emit(job_id, outcome)

    # --- settings -----------------------------------------------------------------------------
    def _save_params(self) -> None:
        prompt, negative = self.prompt_panel.texts()
        params = self.params_panel.params()
        params.update(prompt=prompt, negative_prompt=negative)
        st.save_params(self.settings, params)
        st.set_opened_models(self.settings, self.params_panel.model.opened())

    def _restore(self) -> None:
        self.params_panel.model.set_opened(st.opened_models(self.settings))
        self.params_panel.model.set_models_folder(st.models_folder(self.settings))
        params = st.load_params(self.settings)
        self.prompt_panel.set_texts(params.pop("prompt"), params.pop("negative_prompt"))
        self.params_panel.set_params(params)
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        else:
            self.resize(1280, 800)
        state = self.settings.value("window/state")
        if state is not None:
            self.restoreState(state)

    def save_settings(self) -> None:
        self._save_params()
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.sync()

    # --- window events ------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        self.save_settings()
        if self.last_error_dialog is not None:
            self.last_error_dialog.close()
        self.hide()
        self.jobs.shutdown()
        self.gallery_panel.shutdown()  # finishes pending saves: no image is lost on exit
        event.accept()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if dropped_image_path(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt API)
        path = dropped_image_path(event)
        if path:
            event.acceptProposedAction()
            # After the drop returns: a PNG with SD parameters asks whether to reuse them.
            QTimer.singleShot(0, lambda: self.gallery_panel.handle_drop(path)
                              or self.set_init_image(path))

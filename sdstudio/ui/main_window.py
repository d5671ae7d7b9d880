"""MainWindow: dock panels around the generation worker. The UI gathers a request, hands it to
the worker, and shows the events that come back.

Integration points (kept small on purpose):
- `apply_request(request)`  fill the prompt and parameter panels from a GenerationRequest.
- `set_init_image(path)`    use an image file as the img2img init image.
- `gallery_dock`            a QDockWidget; replace its widget with a fuller gallery.
- `_on_image(result)`       every finished image (a `FinishedImage`) arrives here, once.

The hops from the prompt box to a saved PNG: `generate()` builds and validates a
GenerationRequest -> `JobQueue.submit` -> (queued signal) `GenerationWorker.run_job` in the
worker thread -> `Engine.run_job` -> `StableDiffusion.generate` -> IMAGE EngineEvent (its
ImageEvent carries the model's record) -> `JobQueue.engineEvent` in the GUI thread -> `_on_event` ->
`_on_image` -> `GalleryPanel.save_image` -> the gallery's save thread writes the PNG.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QGuiApplication,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QScrollArea,
    QTabWidget,
    QWidget,
)

from sdstudio.core.errors import UserError
from sdstudio.core.events import EngineEvent, EventKind
from sdstudio.core.model_settings import recommended_guidance_for
from sdstudio.core.png.paste import pasted_fields
from sdstudio.core.request import GenerationRequest
from sdstudio.ui.channels_panel import ChannelsPanel
from sdstudio.ui.gallery_panel import GalleryPanel
from sdstudio.ui.image_slot import dropped_image_path
from sdstudio.ui.jobs import JobQueue
from sdstudio.ui.panels.docks import add_teaching_docks
from sdstudio.ui.params_panel import ParamsPanel
from sdstudio.ui.preview_panel import PreviewPanel
from sdstudio.ui.prompt_history_panel import PromptHistoryPanel
from sdstudio.ui.prompt_panel import PromptPanel
from sdstudio.ui.session_gallery import SessionGallery
from sdstudio.ui.settings import Settings
from sdstudio.ui.worker import FinishedImage, GenerationWorker, StepPreview

if TYPE_CHECKING:
    from sdstudio.core.engine import ModelInfo
    from sdstudio.ui.gallery_send import Send
    from sdstudio.ui.panels.docks import FinishOnClose
    from sdstudio.ui.panels.schedule import SchedulePanel
    from sdstudio.ui.panels.step_through import StepThroughPanel
    from sdstudio.ui.panels.vae_lab import VaeLabPanel


class MainWindow(QMainWindow):
    # GUI-thread notifications (tests and other panels wait on these, not on the worker's signals)
    stepShown = Signal(int)  # step number now shown in the preview
    jobFinished = Signal(int, object)  # job id, EventKind FINISHED | CANCELLED | FAILED
    errorShown = Signal(str)
    modelReady = Signal(object)  # the worker loaded a model: its ModelInfo
    coreReady = Signal(list)  # the engine imported: the sampler names

    # The course's docks, made by ui/panels/docks.add_teaching_docks.
    vae_lab: VaeLabPanel
    schedule_panel: SchedulePanel
    step_through: StepThroughPanel
    vae_lab_dock: QDockWidget
    schedule_dock: QDockWidget
    step_dock: QDockWidget
    _teaching_close_filter: FinishOnClose

    def __init__(self, settings: Settings | None = None,
                 worker: GenerationWorker | None = None) -> None:
        super().__init__()
        self.setWindowTitle("sdstudio")
        self.setObjectName("MainWindow")
        self.setAcceptDrops(True)
        self.settings = settings or Settings()
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
        self._first_run = not self.settings.has_params()
        self._native_size = 0  # the loaded model's training size; 0 before the first load
        self._build_docks()
        self._install_gallery()
        add_teaching_docks(self)  # VAE lab, noise schedule, step through
        self._build_actions()
        self.statusBar().addPermanentWidget(self.model_label)
        self._connect()
        self._restore()
        # The chosen model's recommended CFG scale, read now (no torch), so that a Generate
        # pressed during the first load already uses it; restored settings are the user's own.
        self._model_guidance = recommended_guidance_for(self.params_panel.model.current_model())
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
        self._pending: tuple[str, float, float] | None = None  # model being opened, CFG to undo
        tabs = QTabWidget()
        tabs.setObjectName("gallery_tabs")
        tabs.addTab(self.gallery_panel, "Gallery")
        tabs.addTab(self.session_gallery, "This session")
        self.prompt_history = PromptHistoryPanel()
        self.prompt_history.promptChosen.connect(self.prompt_panel.set_texts)
        tabs.addTab(self.prompt_history, "Prompts")
        self.gallery_dock.setWidget(tabs)
        self.gallery_dock.setWindowTitle("Gallery")
        self.gallery_panel.reuseRequested.connect(self.apply_request)
        self.gallery_panel.sendToImg2Img.connect(self.set_init_image)
        self.gallery_panel.sendRequested.connect(self.send_to)
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
        self.paste_action = QAction("&Paste parameters", self)
        self.paste_action.setShortcut(QKeySequence("Ctrl+Shift+V"))
        self.paste_action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        self.paste_action.setToolTip("A1111 text (or another tool's) from the clipboard sets the "
                                     "prompt and every parameter")
        self.paste_action.triggered.connect(lambda: self.paste_parameters())
        self.addAction(self.paste_action)
        edit_menu = self.menuBar().addMenu("&Edit")
        edit_menu.addAction(self.paste_action)
        gen_menu = self.menuBar().addMenu("&Generate")
        gen_menu.addAction(self.generate_action)
        gen_menu.addAction(self.cancel_action)
        view_menu = self.menuBar().addMenu("&View")
        for dock in (self.prompt_dock, self.params_dock, self.preview_dock,
                     self.channels_dock, self.gallery_dock, self.vae_lab_dock, self.schedule_dock,
                     self.step_dock):
            view_menu.addAction(dock.toggleViewAction())

    def _connect(self) -> None:
        self.prompt_panel.generateRequested.connect(self.generate)
        self.prompt_panel.cancelRequested.connect(self.cancel)
        self.prompt_panel.pasteRequested.connect(lambda: self.paste_parameters())
        self.params_panel.modelChosen.connect(self._preload)
        self.params_panel.model.vaeChosen.connect(self._preload)  # reload with the new VAE
        self.params_panel.model.folderChosen.connect(
            lambda f: self.settings.set_models_folder(Path(f)))
        self.jobs.queueChanged.connect(
            lambda items: self.prompt_panel.show_queue(items, self.jobs.running))
        self.session_gallery.showRequested.connect(
            lambda img: self.preview_panel.show_final(img, "from the session gallery"))
        self.session_gallery.reuseRequested.connect(self.apply_request)
        self.jobs.engineEvent.connect(self._on_event)  # in the GUI thread (see JobQueue)

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
        try:
            request = self.params_panel.request(prompt, negative).validate()
        except UserError as err:  # nothing is queued: the fields say what to fix
            self.show_error(str(err))
            return None
        self._save_params()
        self._quiet_failures = False
        self._first_run = False
        summary = f"{prompt[:32]} · {request.width}×{request.height} · seed {request.seed}"
        self.prompt_history.record(prompt, negative)
        return self.jobs.submit(request, summary)

    @Slot()
    def cancel(self) -> None:
        if self.jobs.busy():
            self.jobs.cancel_all()
            self.statusBar().showMessage("Cancelling…")

    def apply_request(self, request: GenerationRequest) -> None:
        """Fill the prompt and parameter panels from a request (fixed seed: it reproduces)."""
        data = request.to_dict()
        self.prompt_panel.set_texts(data.pop("prompt", ""), data.pop("negative_prompt", ""))
        data["seed_random"] = False
        self.params_panel.set_params(data)
        self.statusBar().showMessage("Parameters loaded.")

    def set_init_image(self, path: str | Path) -> None:
        """Use the image at `path` as the img2img init image."""
        self.params_panel.init_image.set_path(str(path))
        self.params_dock.raise_()

    def send_to(self, send: Send) -> None:
        """A gallery image sent to img2img or inpaint: it becomes the init image, its prompt and
        parameters (and, for inpaint, its mask) fill the fields."""
        if send.request is not None:
            self.apply_request(send.request)
        else:
            self.params_panel.set_params({"init_image": send.image, "mask": None})
        self.params_dock.raise_()
        self.statusBar().showMessage(" ".join((f"Sent {Path(send.image).name} to {send.mode}.",
                                               *send.notices)))

    def paste_parameters(self, text: str | None = None) -> bool:
        """A1111's paste: parameters text (the clipboard's, by default) sets the prompt and every
        parameter at once; what could not be used is named in one notice."""
        if text is None:
            text = QGuiApplication.clipboard().text()
        try:
            fields, notices = pasted_fields(text)
        except UserError as exc:
            self.show_error(str(exc))
            return False
        self.prompt_panel.set_texts(fields.pop("prompt"), fields.pop("negative_prompt"))
        if "seed" in fields:
            fields["seed_random"] = False
        self.params_panel.set_params(fields)
        if notices:
            self.show_error("Parameters pasted. " + " ".join(notices))
        else:
            self.statusBar().showMessage("Parameters pasted.")
        return True

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
    @Slot(object)
    def _on_event(self, ev: EngineEvent) -> None:
        """Every EngineEvent of the worker, in the GUI thread."""
        kind = ev.kind
        if kind is EventKind.NOTICE:
            self.statusBar().showMessage(ev.payload)
        elif kind is EventKind.READY:
            self._on_core_ready(ev.payload)
        elif kind is EventKind.LOADED:
            self._on_model_loaded(ev.payload)
        elif kind is EventKind.STARTED:
            self._on_started(ev.job_id)
        elif kind is EventKind.PROGRESS:
            self._on_step(ev.job_id, ev.payload)
        elif kind is EventKind.IMAGE:
            self._on_image(ev.payload)
        elif kind is EventKind.FAILED:
            self._on_failed(ev.payload)
        if kind.ends_job:
            self._on_finished(ev.job_id, kind)

    def _on_core_ready(self, names: list[str]) -> None:
        self.params_panel.set_scheduler_names(names)
        self.coreReady.emit(names)
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

    def _on_model_loaded(self, info: ModelInfo) -> None:
        self._pending = None
        self.params_panel.model.mark_loaded(info.model)
        size_text = f" · native {info.native_size}px" if info.native_size else ""
        self.model_label.setText(f"Model: {info.name} · {info.device} · {info.dtype}{size_text}")
        self.model_label.setToolTip(info.model)
        native = info.native_size
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
        self._follow_model_guidance(info.guidance)
        self._first_run = False
        self.modelReady.emit(info)

    def _follow_model_guidance(self, guidance: float) -> None:
        """Take a model's recommended CFG scale (the demo model over-saturates at 7.5) for a new
        user, and when switching models unless the user chose a scale of their own."""
        if self.params_panel.params()["guidance"] == self._model_guidance:
            self.params_panel.set_params({"guidance": guidance})
        self._model_guidance = guidance

    def _on_started(self, job_id: int) -> None:
        self._quiet_failures = False
        self._last_started = job_id
        self._job_started_at = time.monotonic()
        self.preview_panel.begin(f"Job #{job_id}")

    def _on_step(self, job_id: int, sp: StepPreview) -> None:
        if job_id != self._last_started:
            return
        self.preview_panel.show_step(sp)
        self.channels_panel.record_step(sp.step, sp.channels)
        self.stepShown.emit(sp.step)

    def _on_image(self, result: FinishedImage) -> None:
        """Every finished image arrives here once: shown, and saved to the gallery (on the
        gallery's save thread; a failure is one sentence and the image is kept elsewhere) with
        the record the engine built from the loaded model."""
        self.session_gallery.add_image(result.image, result.request, result.seed)
        self.gallery_panel.save_image(result.event.image, result.request, result.seed,
                                      result.event.record)
        if result.index == 0:
            self.preview_panel.show_final(result.image, f"Final image · seed {result.seed}")
        for notice in result.notices:
            self.statusBar().showMessage(notice)

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

    def _on_finished(self, job_id: int, outcome: EventKind) -> None:
        if job_id and job_id == self._last_started:
            seconds = time.monotonic() - self._job_started_at
            self.preview_panel.end(outcome, seconds)
            if outcome is EventKind.FINISHED:
                self.statusBar().showMessage(f"Done in {seconds:.1f} s.")
        if job_id:
            self.jobFinished.emit(job_id, outcome)

    # --- settings -----------------------------------------------------------------------------
    def _save_params(self) -> None:
        prompt, negative = self.prompt_panel.texts()
        params = self.params_panel.params()
        params.update(prompt=prompt, negative_prompt=negative)
        self.settings.set_params(params)
        self.settings.set_opened_models(self.params_panel.model.opened())

    def _restore(self) -> None:
        self.params_panel.model.set_opened(self.settings.opened_models())
        self.params_panel.model.set_models_folder(self.settings.models_folder())
        params = self.settings.params()
        self.prompt_panel.set_texts(params.pop("prompt"), params.pop("negative_prompt"))
        self.params_panel.set_params(params)
        geometry = self.settings.geometry()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 800)
        state = self.settings.window_state()
        if state is not None:
            self.restoreState(state)

    def save_settings(self) -> None:
        self._save_params()
        self.settings.set_window(self.saveGeometry(), self.saveState())
        self.settings.sync()

    # --- window events ------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        self.save_settings()
        if self.last_error_dialog is not None:
            self.last_error_dialog.close()
        self.hide()
        self.jobs.shutdown()
        self.gallery_panel.shutdown()  # finishes pending saves: no image is lost on exit
        self.prompt_history.history.close()
        event.accept()

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 (Qt API)
        if dropped_image_path(event):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 (Qt API)
        path = dropped_image_path(event)
        if path:
            event.acceptProposedAction()
            # After the drop returns: a PNG with SD parameters asks whether to reuse them.
            QTimer.singleShot(0, lambda: self._handle_drop(path))

    def _handle_drop(self, path: str) -> None:
        if not self.gallery_panel.handle_drop(path):  # no parameters: it is an init image
            self.set_init_image(path)

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

from PySide6.QtCore import QRect, Qt, QTimer, Signal, Slot
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QGuiApplication,
    QKeySequence,
    QResizeEvent,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QTabWidget,
    QToolBar,
    QWidget,
)

from sdstudio.core.errors import UserError
from sdstudio.core.events import EngineEvent, EventKind
from sdstudio.core.model_settings import recommended_guidance_for
from sdstudio.core.png.paste import pasted_fields
from sdstudio.core.request import GenerationRequest
from sdstudio.ui.channels_panel import ChannelsPanel
from sdstudio.ui.gallery_panel import GalleryPanel
from sdstudio.ui.image_slot import AcceptsImageDrops
from sdstudio.ui.jobs import JobQueue, QueueItem
from sdstudio.ui.notices_panel import NoticesPanel
from sdstudio.ui.panels.docks import add_teaching_docks
from sdstudio.ui.panels.grid import add_grid_dock
from sdstudio.ui.panels.loras import LoraPanel
from sdstudio.ui.params_panel import ParamsPanel, size_warning
from sdstudio.ui.preview_panel import PreviewPanel
from sdstudio.ui.prompt_history_panel import PromptHistoryPanel
from sdstudio.ui.prompt_panel import PromptPanel
from sdstudio.ui.queue_panel import QueuePanel
from sdstudio.ui.session_gallery import SessionGallery
from sdstudio.ui.settings import Settings
from sdstudio.ui.settings_dialog import ENGINE_KEYS, SettingsDialog
from sdstudio.ui.worker import ChannelImage, FinishedImage, GenerationWorker, StepPreview

if TYPE_CHECKING:
    from sdstudio.core.engine import ModelInfo
    from sdstudio.ui.gallery_send import Send
    from sdstudio.ui.panels.docks import FinishOnClose
    from sdstudio.ui.panels.grid import GridPanel
    from sdstudio.ui.panels.schedule import SchedulePanel
    from sdstudio.ui.panels.step_through import StepThroughPanel
    from sdstudio.ui.panels.vae_lab import VaeLabPanel


DEFAULT_SIZE = (1280, 800)  # the first window, shrunk to fit the screen
SCREEN_FILL = 0.94  # at most this share of the screen's free area on the first start

# Close with unfinished jobs: what the user chose.
CLOSE_WAIT, CLOSE_KEEP, CLOSE_DISCARD, CLOSE_STAY = "wait", "keep", "discard", "stay"


def fit_rect(wanted: QRect, available: QRect) -> QRect:
    """`wanted` shrunk to fit inside `available` and moved fully onto it."""
    w = min(wanted.width(), available.width())
    h = min(wanted.height(), available.height())
    x = min(max(wanted.x(), available.x()), available.right() - w + 1)
    y = min(max(wanted.y(), available.y()), available.bottom() - h + 1)
    return QRect(x, y, w, h)


class MainWindow(AcceptsImageDrops, QMainWindow):
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
    grid_panel: GridPanel  # made by ui/panels/grid.add_grid_dock
    grid_dock: QDockWidget
    _grid_close_filter: FinishOnClose

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
        self._run_notices: dict[int, list[str]] = {}  # job id -> its notices (this session)
        # job id -> its finished images by index, and each image's final channels (this session)
        self._batches: dict[int, dict[int, FinishedImage]] = {}
        self._batch_channels: dict[int, tuple[tuple[ChannelImage, ...], ...]] = {}
        self._seconds_per_mpx_step = 0.0  # measured speed, for the estimate of a new size
        self._sizes_confirmed: set[tuple[int, int, int]] = set()  # (w, h, native) asked once
        self._quit_when_idle = False
        self._split_width = 0  # the width the default split was made for
        self._build_docks()
        self._install_gallery()
        add_teaching_docks(self)  # VAE lab, noise schedule, step through
        add_grid_dock(self)  # X/Y/Z sweeps: self.grid_panel in self.grid_dock
        self._build_actions()
        self.notices_button = QPushButton("Notices")
        self.notices_button.setObjectName("notices_button")
        self.notices_button.setFlat(True)
        self.notices_button.setToolTip("Every notice of the runs (View ▸ Notices)")
        self.notices_button.clicked.connect(self.show_notices)
        self.statusBar().addPermanentWidget(self.notices_button)
        self.statusBar().addPermanentWidget(self.model_label)
        self._connect()
        self._default_state = self.saveState()  # View ▸ Reset layout goes back to this
        self._restore()
        self._on_queue_changed(self.jobs.items())
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
        self.queue_panel = QueuePanel(self.jobs)
        self.queue_dock = self._dock("Queue", "queue_dock", self.queue_panel, left)
        self.notices_panel = NoticesPanel()
        self.notices_dock = self._dock("Notices", "notices_dock", self.notices_panel, right)
        self.splitDockWidget(self.prompt_dock, self.params_dock, Qt.Orientation.Vertical)
        self.splitDockWidget(self.params_dock, self.queue_dock, Qt.Orientation.Vertical)
        self.splitDockWidget(self.preview_dock, self.channels_dock, Qt.Orientation.Horizontal)
        self.splitDockWidget(self.channels_dock, self.gallery_dock, Qt.Orientation.Vertical)
        self.tabifyDockWidget(self.gallery_dock, self.notices_dock)
        self.gallery_dock.raise_()

    def apply_default_split(self) -> None:
        """The preview gets the most room at any window size: the side columns take a share of
        the width within limits, the preview the rest."""
        width, height = max(self.width(), 640), max(self.height(), 400)
        # the left column as wide as the parameters want (no sideways scrolling), within limits
        wanted = self.params_panel.sizeHint().width() + 24  # + the scroll bar
        side = max(300, min(max(wanted, int(width * 0.27)), int(width * 0.38), 460))
        right = max(220, min(380, int(width * 0.2)))
        self.resizeDocks([self.prompt_dock, self.preview_dock, self.channels_dock],
                         [side, width - side - right, right], Qt.Orientation.Horizontal)
        self.resizeDocks([self.prompt_dock, self.params_dock, self.queue_dock],
                         [int(height * 0.26), int(height * 0.56), int(height * 0.18)],
                         Qt.Orientation.Vertical)
        self.resizeDocks([self.channels_dock, self.gallery_dock],
                         [int(height * 0.45), int(height * 0.55)], Qt.Orientation.Vertical)
        self._split_width = self.width()

    @Slot()
    def reset_layout(self) -> None:
        """View ▸ Reset layout: every dock back in its place, shown, and the default split."""
        self.restoreState(self._default_state)
        for dock in self.findChildren(QDockWidget):
            if dock.isFloating():
                dock.setFloating(False)
        self.apply_default_split()

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
        self.lora_panel = LoraPanel(self.prompt_panel.prompt, self.params_panel.model)
        tabs.addTab(self.lora_panel, "LoRAs")
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
        self.cancel_action = QAction("&Cancel running job", self)
        self.cancel_action.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.cancel_action.setToolTip("Stop the running job; the waiting ones stay (Esc)")
        self.cancel_action.triggered.connect(self.cancel)
        self.cancel_all_action = QAction("Cancel &all", self)
        self.cancel_all_action.setShortcut(QKeySequence("Shift+Escape"))
        self.cancel_all_action.setToolTip("Stop the running job and clear the queue (Shift+Esc)")
        self.cancel_all_action.triggered.connect(self.cancel_all)
        self.pause_action = QAction("&Pause queue", self)
        self.pause_action.setCheckable(True)
        self.pause_action.setToolTip("Let the running job finish and start no other")
        self.pause_action.toggled.connect(self.jobs.set_paused)
        for action in (self.generate_action, self.cancel_action, self.cancel_all_action):
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            self.addAction(action)
        # Generate and Cancel stay reachable whatever docks are closed: a toolbar that cannot be
        # hidden or moved, and the Generate menu.
        bar = QToolBar("Generate", self)
        bar.setObjectName("generate_toolbar")
        bar.setMovable(False)
        bar.toggleViewAction().setEnabled(False)
        for action in (self.generate_action, self.cancel_action, self.cancel_all_action,
                       self.pause_action):
            bar.addAction(action)
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, bar)
        self.toolbar = bar
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addAction("Open &model…", self.params_panel.model._open_model)
        file_menu.addAction("Open &init image…", self.params_panel.init_image._browse)
        file_menu.addAction("Set models &folder…", self.params_panel.model._choose_folder)
        file_menu.addSeparator()
        self.settings_action = file_menu.addAction(
            "S&ettings…", QKeySequence.StandardKey.Preferences, self.open_settings)
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
        for action in (self.generate_action, self.cancel_action, self.cancel_all_action,
                       self.pause_action):
            gen_menu.addAction(action)
        view_menu = self.menuBar().addMenu("&View")
        for dock in (self.prompt_dock, self.params_dock, self.queue_dock, self.preview_dock,
                     self.channels_dock, self.gallery_dock, self.notices_dock, self.vae_lab_dock,
                     self.schedule_dock, self.step_dock, self.grid_dock):
            view_menu.addAction(dock.toggleViewAction())
        view_menu.addSeparator()
        self.reset_layout_action = view_menu.addAction("&Reset layout", self.reset_layout)
        self.smooth_action = view_menu.addAction("&Smooth preview scaling")
        self.smooth_action.setCheckable(True)  # off: small images are shown pixel-exact
        self.smooth_action.toggled.connect(self.preview_panel.view.set_smooth)
        self.smooth_action.toggled.connect(self.settings.set_preview_smooth)
        self.preview_panel.source.currentIndexChanged.connect(self.settings.set_preview_source)

    def _connect(self) -> None:
        self.prompt_panel.generateRequested.connect(self.generate)
        self.prompt_panel.cancelRequested.connect(self.cancel)
        self.prompt_panel.pasteRequested.connect(lambda: self.paste_parameters())
        self.params_panel.modelChosen.connect(self._preload)
        self.params_panel.model.vaeChosen.connect(self._preload)  # reload with the new VAE
        self.params_panel.model.folderChosen.connect(
            lambda f: self.settings.set_models_folder(Path(f)))
        self.jobs.queueChanged.connect(self._on_queue_changed)
        self.notices_panel.countChanged.connect(
            lambda n: self.notices_button.setText(f"Notices ({n})" if n else "Notices"))
        self.session_gallery.showRequested.connect(
            lambda img: self.preview_panel.show_final(img, "from the session gallery"))
        self.session_gallery.reuseRequested.connect(self.apply_request)
        self.session_gallery.imagePicked.connect(lambda key: self.pick_image(*key))
        self.preview_panel.imagePicked.connect(
            lambda index: self.pick_image(self._last_started or 0, index))
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
        if not self._size_ok(request):
            return None
        self._save_params()
        self._quiet_failures = False
        self._first_run = False
        summary = f"{prompt[:32]} · {request.width}×{request.height} · seed {request.seed}"
        self.prompt_history.record(prompt, negative)
        return self.jobs.submit(request, summary)

    def _size_ok(self, request: GenerationRequest) -> bool:
        """A size far above the model's native one asks once (per size and model)."""
        warning = size_warning(request.width, request.height, self._native_size)
        key = (request.width, request.height, self._native_size)
        if warning is None or key in self._sizes_confirmed:
            return True
        estimate = self.estimate_seconds(request)
        if estimate:
            warning += f" Estimated time: at least {_duration(estimate)}."
        if not self.confirm_size(warning):
            self.statusBar().showMessage("Not started: choose a smaller size (see Presets).")
            return False
        self._sizes_confirmed.add(key)
        return True

    def confirm_size(self, warning: str) -> bool:
        """Ask whether to start a job at a size the model was not made for (tests replace it)."""
        answer = QMessageBox.question(
            self, "sdstudio", f"{warning}\n\nStart it anyway?",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            QMessageBox.StandardButton.No)
        return answer == QMessageBox.StandardButton.Yes

    def estimate_seconds(self, request: GenerationRequest) -> float:
        """From the last measured speed, scaled by pixels (a lower bound: attention grows faster
        than the pixel count). 0 before anything was measured."""
        mpx = request.width * request.height * request.batch_size / 1e6
        return self._seconds_per_mpx_step * mpx * request.steps

    @Slot()
    def cancel(self) -> None:
        """Stop the running job only (Esc); the waiting ones go on."""
        if self.jobs.cancel_running():
            self.statusBar().showMessage("Cancelling…")
            self.preview_panel.caption.setText("Cancelling… (at the next step or UNet block)")

    @Slot()
    def cancel_all(self) -> None:
        """Stop the running job and drop the waiting ones (Shift+Esc)."""
        if self.jobs.busy():
            self.jobs.cancel_all()
            self.statusBar().showMessage("Cancelling… and the queue is cleared.")

    @Slot()
    def show_notices(self) -> None:
        self.notices_dock.show()
        self.notices_dock.raise_()

    def _on_queue_changed(self, items: list[QueueItem]) -> None:
        running = self.jobs.running is not None and not self.jobs.cancelling
        self.prompt_panel.cancel_button.setEnabled(running)
        self.cancel_action.setEnabled(running)
        self.cancel_all_action.setEnabled(bool(items))
        if self.pause_action.isChecked() != self.jobs.paused:
            self.pause_action.setChecked(self.jobs.paused)
        if self._quit_when_idle and not self.jobs.busy():
            QTimer.singleShot(0, self.close)

    def apply_request(self, request: GenerationRequest) -> None:
        """Fill the prompt and parameter panels from a request (fixed seed: it reproduces)."""
        data = request.to_dict()
        self.prompt_panel.set_texts(data.pop("prompt", ""), data.pop("negative_prompt", ""))
        data["seed_random"] = False
        self.params_panel.set_params(data)
        self.statusBar().showMessage(
            f"Parameters loaded: “{request.prompt[:40]}”, seed {request.seed}, "
            f"{request.width}×{request.height}, {request.steps} steps.")

    def set_init_image(self, path: str | Path) -> None:
        """Use the image at `path` as the img2img init image."""
        self.params_panel.init_image.set_path(str(path))
        self.params_dock.raise_()

    @Slot()
    def open_settings(self) -> SettingsDialog:
        """File ▸ Settings…: the dialog (window-modal); its Apply/OK take effect at once."""
        combo = self.params_panel.device  # the devices this machine has, once the engine knows
        dialog = SettingsDialog(self.settings, self, [combo.itemText(i) for i in range(combo.count())])
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        before = dialog.values()

        def applied(values: dict) -> None:
            if values["models_folder"] != before["models_folder"]:
                self.params_panel.model.set_models_folder(Path(values["models_folder"]))
            if values["gallery_folder"] != before["gallery_folder"]:
                self.gallery_panel.set_folder(values["gallery_folder"])
            self.params_panel.set_params({k: values[k] for k in ENGINE_KEYS})
            self.preview_panel.source.setCurrentIndex(values["preview_source"])
            self.smooth_action.setChecked(values["preview_smooth"])
            before.update(values)
            self.statusBar().showMessage("Settings saved.")

        dialog.applied.connect(applied)
        dialog.open()
        return dialog

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
            # A run's notice stays with the run's image; one that ends in "…" only says what
            # is going on now ("Loading model …"), like the notices between jobs.
            if ev.job_id and not str(ev.payload).endswith("…"):
                self._add_notices(ev.job_id, [ev.payload])
            else:
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
        self.prompt_panel.count_with(info.model)  # the token counter uses its tokenizer
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

    def _add_notices(self, job_id: int, notices: list[str]) -> None:
        known = self._run_notices.setdefault(job_id, [])
        for notice in notices:
            if notice not in known:
                known.append(notice)
                self.notices_panel.add(job_id, notice)
        if job_id == self._last_started:
            self.preview_panel.set_notices(known)

    def _on_started(self, job_id: int) -> None:
        self._quiet_failures = False
        self._last_started = job_id
        self._job_started_at = time.monotonic()
        request = self.jobs.running.request if self.jobs.running is not None else None
        estimate = self.estimate_seconds(request) if request is not None else 0.0
        note = f" · estimated {_duration(estimate)}" if estimate > 10 else ""
        self.preview_panel.begin(f"Job #{job_id}{note}")

    def _on_step(self, job_id: int, sp: StepPreview) -> None:
        if job_id != self._last_started:
            return
        self.preview_panel.show_step(sp)
        if self.jobs.cancelling:
            self.preview_panel.caption.setText(f"Cancelling… (step {sp.step}/{sp.total})")
        request = self.jobs.running.request if self.jobs.running is not None else None
        if request is not None and sp.step and sp.elapsed > 0:
            mpx = request.width * request.height * request.batch_size / 1e6
            self._seconds_per_mpx_step = sp.elapsed / sp.step / max(mpx, 1e-6)
        self.channels_panel.record_step(sp.step, sp.channels)
        if sp.batch_channels:
            self._batch_channels[job_id] = sp.batch_channels
        self.stepShown.emit(sp.step)

    def _on_image(self, result: FinishedImage) -> None:
        """Every finished image arrives here once: shown, and saved to the gallery (on the
        gallery's save thread; a failure is one sentence and the image is kept elsewhere) with
        the record the engine built from the loaded model."""
        job_id = self._last_started or 0
        self._batches.setdefault(job_id, {})[result.index] = result
        self.session_gallery.add_image(result.image, result.request, result.seed,
                                       result.notices, key=(job_id, result.index))
        self.gallery_panel.save_image(result.event.image, result.request, result.seed,
                                      result.event.record)
        if result.request.batch_size > 1:
            self.preview_panel.set_batch_cell(result.index, result.image, f"seed {result.seed}")
        if result.index == 0:
            self.preview_panel.show_final(result.image, self._image_caption(result))
        self._add_notices(job_id, result.notices)

    def _image_caption(self, result: FinishedImage) -> str:
        r = result.request
        which = f"Image {result.index + 1}/{r.batch_size}" if r.batch_size > 1 else "Final image"
        return (f"{which} · seed {result.seed} · {r.width}×{r.height} · {r.steps} steps · "
                f"{r.scheduler} · CFG {r.guidance:g}")

    def pick_image(self, job_id: int, index: int) -> None:
        """Show one finished image of this session: the preview, its channels, its seed and
        details (the caption) and its run's notices."""
        result = self._batches.get(job_id, {}).get(index)
        if result is None:  # still forming: nothing finished to show yet
            return
        self.preview_panel.show_final(result.image, self._image_caption(result))
        channels = self._batch_channels.get(job_id, ())
        if index < len(channels):
            self.channels_panel.show_channels(channels[index])
        self.preview_panel.set_notices(self._run_notices.get(job_id, []))
        if job_id == self._last_started:
            self.preview_panel.batch_grid.setCurrentRow(index)

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
                count = len(self._run_notices.get(job_id, []))
                extra = f" {count} notice{'s' * (count > 1)} under the image." if count else ""
                self.statusBar().showMessage(f"Done in {seconds:.1f} s.{extra}")
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
        # Not the init image or mask: a Generate after a restart must not be silently img2img.
        params.pop("init_image", None)
        params.pop("mask", None)
        self.params_panel.set_params(params)
        self.prompt_panel.count_with(self.params_panel.model.current_model())
        self.preview_panel.source.setCurrentIndex(self.settings.preview_source())
        self.smooth_action.setChecked(self.settings.preview_smooth())
        geometry = self.settings.geometry()
        restored = geometry is not None and self.restoreGeometry(geometry)
        available = self.available_geometry()
        if restored:  # the screen may have changed since: keep the window on it
            if not self.isMaximized() and not self.isFullScreen():
                self.setGeometry(fit_rect(self.geometry(), available))
        else:
            w = min(DEFAULT_SIZE[0], int(available.width() * SCREEN_FILL))
            h = min(DEFAULT_SIZE[1], int(available.height() * SCREEN_FILL))
            self.setGeometry(fit_rect(QRect(0, 0, w, h).translated(
                available.center() - QRect(0, 0, w, h).center()), available))
        state = self.settings.window_state()
        if state is not None and self.restoreState(state):
            self._split_width = self.width()  # the user's own split
            self._bring_floating_docks_back(available)
        self._restore_queue()

    def available_geometry(self) -> QRect:
        """The screen's free area (without panels and task bars), in Qt's scaled pixels."""
        screen = self.screen() or QGuiApplication.primaryScreen()
        return screen.availableGeometry() if screen is not None else QRect(0, 0, *DEFAULT_SIZE)

    def _bring_floating_docks_back(self, available: QRect) -> None:
        for dock in self.findChildren(QDockWidget):
            if dock.isFloating():
                dock.setGeometry(fit_rect(dock.geometry(), available))

    def _restore_queue(self) -> None:
        """The jobs kept at the last close wait again, paused until the user resumes."""
        kept = self.settings.saved_queue()
        if not kept:
            return
        self.jobs.set_paused(True)
        for request in kept:
            self.jobs.submit(request, f"{request.prompt[:32]} · {request.width}×"
                                      f"{request.height} · seed {request.seed} (kept)")
        self.settings.set_saved_queue([])
        message = (f"{len(kept)} job{'s' * (len(kept) > 1)} kept from last time wait in the "
                   f"queue: untick Pause to run them.")
        self.notices_panel.add(0, message)
        QTimer.singleShot(0, lambda: self.statusBar().showMessage(message))

    def save_settings(self) -> None:
        self._save_params()
        self.settings.set_window(self.saveGeometry(), self.saveState())
        self.settings.sync()

    # --- window events ------------------------------------------------------------------------
    def ask_close(self) -> str:
        """Closing with unfinished jobs: wait for them, keep them for next time, discard them, or
        stay (tests replace this)."""
        running = self.jobs.running is not None and not self.jobs.cancelling
        waiting = len(self.jobs.waiting)
        what = ", ".join(p for p in ("a job is running" if running else "",
                                     f"{waiting} waiting" if waiting else "") if p)
        box = QMessageBox(QMessageBox.Icon.Question, "sdstudio",
                          f"Quit now? {what.capitalize()}.", parent=self)
        box.setInformativeText("Finished images are saved in any case.")
        choices: dict[object, str] = {
            box.addButton("Finish, then quit", QMessageBox.ButtonRole.AcceptRole): CLOSE_WAIT,
            box.addButton("Keep the queue for next time",
                          QMessageBox.ButtonRole.AcceptRole): CLOSE_KEEP,
            box.addButton("Discard and quit", QMessageBox.ButtonRole.DestructiveRole):
                CLOSE_DISCARD,
        }
        stay = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(stay)
        box.exec()
        return choices.get(box.clickedButton(), CLOSE_STAY)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 (Qt API)
        unfinished = self.jobs.unfinished()
        if unfinished:
            choice = self.ask_close()
            if choice in (CLOSE_STAY, CLOSE_WAIT):
                event.ignore()
                if choice == CLOSE_WAIT:
                    self._quit_when_idle = True
                    self.jobs.set_paused(False)
                    self.statusBar().showMessage("sdstudio quits when the queue is done.")
                return
            if choice == CLOSE_KEEP:
                self.settings.set_saved_queue([job.request for job in unfinished])
        self.save_settings()
        if self.last_error_dialog is not None:
            self.last_error_dialog.close()
        self.hide()
        self.jobs.shutdown()
        self.gallery_panel.shutdown()  # finishes pending saves: no image is lost on exit
        self.prompt_history.history.close()
        event.accept()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt API)
        super().showEvent(event)
        if not self._split_width:  # first start: the default split once the size is known
            QTimer.singleShot(0, self.apply_default_split)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt API)
        super().resizeEvent(event)
        # A big change (maximised, restored, moved to another screen): the preview keeps the
        # most room. Small drags of the window edge leave the user's split alone.
        if self._split_width and abs(self.width() - self._split_width) > 0.15 * self._split_width:
            QTimer.singleShot(0, self.apply_default_split)

    def image_dropped(self, path: str) -> None:
        # After the drop returns: a PNG with SD parameters asks whether to reuse them.
        QTimer.singleShot(0, lambda: self._handle_drop(path))

    def _handle_drop(self, path: str) -> None:
        if self.gallery_panel.handle_drop(path):  # it had parameters: the gallery asked
            return
        choice = self.ask_plain_drop(path)  # no parameters: ask what the image is for
        if choice == "init":
            self.set_init_image(path)
            self.statusBar().showMessage(f"Init image: {Path(path).name} (img2img is on).")
        elif choice == "mask":
            self.params_panel.mask_slot.set_path(path)
            self.params_dock.raise_()
            self.statusBar().showMessage(f"Mask: {Path(path).name}.")
        elif choice == "vae":
            self.vae_lab_dock.show()
            self.vae_lab_dock.raise_()
            self.vae_lab.open_image(path)

    def ask_plain_drop(self, path: str) -> str:
        """An image without parameters was dropped: "init", "mask", "vae" or "cancel" (tests
        replace this)."""
        box = QMessageBox(QMessageBox.Icon.Question, "sdstudio",
                          f"{Path(path).name} has no generation parameters. Use it as…",
                          parent=self)
        choices: dict[object, str] = {
            box.addButton("Init image (img2img)", QMessageBox.ButtonRole.AcceptRole): "init",
            box.addButton("Mask", QMessageBox.ButtonRole.ActionRole): "mask",
            box.addButton("VAE lab image", QMessageBox.ButtonRole.ActionRole): "vae",
        }
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return choices.get(box.clickedButton(), "cancel")


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"

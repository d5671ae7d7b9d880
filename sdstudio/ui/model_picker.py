"""Model combo box: the demo model, then the models folder's checkpoints and opened models grouped
by family with their native size, then Open…, Set models folder… (and, when a model failed to
open, Remove failed models). Families of single files are read in the background."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtGui import QStandardItemModel
from PySide6.QtWidgets import QComboBox, QFileDialog, QWidget

from sdstudio.core.defaults import DEMO_MODEL as DEMO
from sdstudio.core.models import choices, discovery, hashing
from sdstudio.core.models.discovery import CheckpointInfo

_OPEN = "__open__"
_FOLDER = "__folder__"
_REMOVE = "__remove_failed__"
_VAE = "__vae__"
_OWN_VAE = "__own_vae__"
VAE_FILTER = "VAE (*.safetensors *.pt *.ckpt config.json);;All files (*)"
_HEADER = "__header__"
MODEL_FILTER = ("Stable Diffusion models (model_index.json *.safetensors *.ckpt);;"
                "All files (*)")
_PENDING = CheckpointInfo("", None)
_FAMILY_ORDER = ("SD 1.x", "SD 2.x", "SDXL")


def model_label(model: str, info: CheckpointInfo | None = None) -> str:
    if model == DEMO:
        return "Demo model (shipped)"
    name = Path(model).name or model
    if info is not None and info.native_size:
        name += f" · {info.native_size}px"
    return name


def _group(info: CheckpointInfo | None) -> str:
    return info.family if info is not None and info.family else "Other"


def _group_key(family: str) -> tuple[int, str]:
    for i, base in enumerate(_FAMILY_ORDER):
        if family.startswith(base):
            return i, family
    return len(_FAMILY_ORDER), family


class _InfoRelay(QObject):
    """Carries infos from the reader thread; apart from the combo box, whose signals are blocked
    while it rebuilds (a blocked emit would be lost)."""

    ready = Signal(str, object)  # (model, CheckpointInfo)


class ModelPicker(QComboBox):
    """Emits `modelChosen(model_id)` when the user picks a model; `folderChosen(path)` when the
    models folder changes. `current_model()` is what goes into the request."""

    modelChosen = Signal(str)
    folderChosen = Signal(str)
    vaeChosen = Signal(str)  # the model whose separate VAE changed (remembered): reload it

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("model")
        self._folder = Path()
        self._scanned: list[str] = []  # the models folder's checkpoints, rescanned on opening
        self._opened: list[str] = []
        self._hidden: set[str] = set()  # folder models the user removed from the list
        self._failed: dict[str, str] = {}  # model -> the sentence it failed with
        self._info: dict[str, CheckpointInfo] = {}
        self._loaded = DEMO  # the last model that opened: where a failed choice falls back to
        self._current = DEMO
        self._vae_trial: tuple[str, str | None] | None = None  # (model, its previous VAE)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-info")
        self.setToolTip("The demo model, models in your models folder, or Open model… for a "
                        "diffusers folder (pick its model_index.json) or a .safetensors file")
        self.activated.connect(self._on_activated)
        self._relay = _InfoRelay(self)
        self._relay.ready.connect(self._on_info)
        self.destroyed.connect(lambda *_: self._pool.shutdown(wait=False, cancel_futures=True))

    def set_models_folder(self, folder: Path) -> None:
        self._folder = folder
        self._scanned = discovery.scan_models(folder)
        self._rebuild()

    def showPopup(self) -> None:  # noqa: N802 - Qt's name
        """Rescan the models folder each time the list opens: new downloads appear."""
        scanned = discovery.scan_models(self._folder)
        if scanned != self._scanned:
            self._scanned = scanned
            self._rebuild()
        super().showPopup()

    def models_folder(self) -> Path:
        return self._folder

    def opened(self) -> list[str]:
        return list(self._opened)

    def set_opened(self, models: list[str]) -> None:
        self._opened = list(models)
        self._rebuild()

    def current_model(self) -> str:
        return self._current

    def set_current_model(self, model: str) -> None:
        """Select `model`, adding it to the opened models when it is not listed."""
        self._hidden.discard(model)
        if model != DEMO and model not in self._listed():
            self._opened.append(model)
        self._current = model
        self._rebuild()

    def info(self, model: str) -> CheckpointInfo | None:
        return self._info.get(model)

    # --- what the window tells the picker about loads ------------------------------------
    def mark_loaded(self, model: str) -> None:
        self._vae_trial = None
        self._failed.pop(model, None)
        self._loaded = model
        self._rebuild()

    def mark_failed(self, model: str, message: str) -> None:
        """Mark `model` as failed and go back to the last model that opened."""
        if self._vae_trial is not None and self._vae_trial[0] == model:
            # the VAE just chosen failed, not the model: go back to the VAE it had
            choices.remember(model, vae=self._vae_trial[1])
            self._vae_trial = None
            self._rebuild()
            return
        if model == DEMO:
            return
        self._failed[model] = message
        if self._current == model:
            self._current = self._loaded if self._loaded != model else DEMO
        self._rebuild()

    def failed_models(self) -> list[str]:
        return list(self._failed)

    def remove_failed(self) -> None:
        for model in self._failed:
            if model in self._opened:
                self._opened.remove(model)
            else:
                self._hidden.add(model)
        self._failed.clear()
        self._rebuild()

    # --- building the list -----------------------------------------------------------------
    def _listed(self) -> list[str]:
        models: list[str] = []
        for m in self._scanned + self._opened:
            if m not in models and m != DEMO and m not in self._hidden:
                models.append(m)
        return models

    def _info_for(self, model: str) -> CheckpointInfo:
        if model not in self._info:
            if Path(model).is_dir():  # configs only: read now
                self._info[model] = discovery.checkpoint_info(model)
            else:  # a single file's header (and diffusers' detection): in the background
                self._info[model] = _PENDING
                self._pool.submit(self._read_info, model)
        return self._info[model]

    def _read_info(self, model: str) -> None:
        try:
            info = discovery.checkpoint_info(model)
        except Exception as exc:  # noqa: BLE001 - an unreadable file is marked, never fatal
            info = CheckpointInfo("", None, f"{Path(model).name} cannot be read ({exc}).")
        self._relay.ready.emit(model, info)  # queued to the GUI thread

    def _on_info(self, model: str, info: CheckpointInfo) -> None:
        self._info[model] = info
        self._rebuild()

    def _rebuild(self) -> None:
        self.blockSignals(True)
        self.clear()
        self.addItem(model_label(DEMO), DEMO)
        groups: dict[str, list[str]] = {}
        for model in self._listed():
            groups.setdefault(_group(self._info_for(model)), []).append(model)
        for family in sorted(groups, key=_group_key):
            self._add_header(family)
            for model in groups[family]:
                self._add_model(model)
        self.insertSeparator(self.count())
        self.addItem("Open model…", _OPEN)
        self.addItem("Set models folder…", _FOLDER)
        self.addItem("VAE for this model…", _VAE)
        vae = choices.recall(self._current).get("vae")
        if vae:
            self.addItem(f"Use the model's own VAE (not {Path(vae).name})", _OWN_VAE)
        if self._failed:
            self.addItem("Remove failed models from the list", _REMOVE)
        self.setCurrentIndex(max(0, self.findData(self._current)))
        self.blockSignals(False)

    def _add_header(self, family: str) -> None:
        self.addItem(family, _HEADER)
        model = self.model()
        item = model.item(self.count() - 1) if isinstance(model, QStandardItemModel) else None
        if item is not None:
            item.setEnabled(False)
            font = item.font()
            font.setBold(True)
            item.setFont(font)

    def _add_model(self, model: str) -> None:
        info = self._info.get(model)
        label = "    " + model_label(model, info)
        tip = model
        if model in self._failed:
            label += "  ⚠ failed to open"
            tip += f"\n{self._failed[model]}"
        elif info is not None and info.error:
            label += "  ⚠"
            tip += f"\n{info.error}"
        vae = choices.recall(model).get("vae")
        if vae:
            tip += f"\nVAE: {vae}"
        short = hashing.cached_sha256(model) if Path(model).is_file() else None
        if short:
            tip += f"\nModel hash: {short[:10]}"
        self.addItem(label, model)
        self.setItemData(self.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)

    def _on_activated(self, index: int) -> None:
        data = self.itemData(index)
        if data == _OPEN:
            self._open_model()
        elif data == _FOLDER:
            self._choose_folder()
        elif data == _REMOVE:
            self.remove_failed()
        elif data == _VAE:
            self._choose_vae()
        elif data == _OWN_VAE:
            self.set_vae(None)
        elif isinstance(data, str) and data != _HEADER and data != self._current:
            self._current = data
            self.modelChosen.emit(data)
        self.setCurrentIndex(max(0, self.findData(self._current)))

    def _open_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", str(self._folder), MODEL_FILTER)
        if not path:
            return
        p = Path(path)
        model = str(p.parent) if p.name == "model_index.json" else str(p)
        self.set_current_model(model)
        self.modelChosen.emit(model)

    def set_vae(self, vae: str | None) -> None:
        """Give the current model a separate VAE (None: its own); remembered per model."""
        self._vae_trial = (self._current, choices.recall(self._current).get("vae"))
        choices.remember(self._current, vae=vae)
        self._rebuild()
        self.vaeChosen.emit(self._current)

    def _choose_vae(self) -> None:
        vaes = discovery.scan(self._folder).vaes  # start where the models folder keeps VAEs
        start = str(vaes[0].parent) if vaes else str(self._folder)
        path, _ = QFileDialog.getOpenFileName(self, "VAE for this model", start, VAE_FILTER)
        if path:
            p = Path(path)
            self.set_vae(str(p.parent) if p.name == "config.json" else str(p))

    def _choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Models folder", str(self._folder))
        if folder:
            self.set_models_folder(Path(folder))
            self.folderChosen.emit(folder)

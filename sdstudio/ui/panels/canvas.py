"""The canvas in the window: a mask painter over the init image, and the inpaint / hires options.

`MaskCanvas` shows the init image with the mask as a translucent overlay in a colour the user
picks; the left button paints (brush) or erases, the wheel zooms about the cursor, the middle or
right button pans, `[` and `]` change the brush size, Ctrl+Z / Ctrl+Shift+Z undo and redo. Invert,
clear, fill and feather are the core's mask operations (`sdstudio.core.canvas.masks`), so the
window and the CLI mean the same thing by them. `MaskPainter` adds the tool bar; the dialog saves
the mask as a PNG in the user's masks folder, named by its content, and the request carries that
path (so the gallery's record of an inpainted image points at its mask).

`CanvasOptions` is what the parameters panel embeds: the "Paint mask…" and "Outpaint…" buttons,
A1111's inpaint options and the hires fix group, with `params()` / `set_params()` in GenerationRequest's names.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from PySide6.QtCore import QPoint, QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QKeySequence,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QShortcut,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QColorDialog,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sdstudio.core import defaults as d
from sdstudio.core.canvas import masks
from sdstudio.core.canvas.outpaint import FILLS, Extension, prepare
from sdstudio.core.canvas.upscalers import UPSCALERS
from sdstudio.core.errors import UserError
from sdstudio.core.paths import data_dir
from sdstudio.ui.image_slot import IMAGE_FILTER, ImageSlot
from sdstudio.ui.imaging import pil_to_qimage

UNDO_LIMIT = 50
MIN_BRUSH, MAX_BRUSH = 1, 512
MIN_ZOOM, MAX_ZOOM = 0.05, 32.0


def masks_dir() -> Path:
    """Where painted masks are kept (the requests that used them point here)."""
    return data_dir() / "masks"


def mask_to_pil(image: QImage) -> Image.Image:
    """A Grayscale8 QImage as an 8-bit PIL image (row padding dropped)."""
    image = image.convertToFormat(QImage.Format.Format_Grayscale8)
    w, h, stride = image.width(), image.height(), image.bytesPerLine()
    rows = np.frombuffer(image.constBits(), np.uint8, count=stride * h).reshape(h, stride)
    return Image.fromarray(rows[:, :w].copy())


def save_mask_file(mask: Image.Image, folder: Path | None = None) -> Path:
    """Save a mask as `<folder>/mask-<sha256 prefix>.png` (the same mask, the same file)."""
    buf = io.BytesIO()
    mask.save(buf, format="PNG")
    folder = folder or masks_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"Cannot create the masks folder {folder}: {exc.strerror or exc}.") from None
    path = folder / f"mask-{hashlib.sha256(buf.getvalue()).hexdigest()[:16]}.png"
    return path if path.is_file() else masks.save_png(mask, path)


class MaskCanvas(QWidget):
    """The init image with its mask; painting, zoom, pan, undo/redo."""

    maskChanged = Signal()
    brushChanged = Signal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mask_canvas")
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMinimumSize(200, 200)
        self._image = QImage()
        self._mask = QImage()
        self._overlay = QImage()
        self._colour = QColor(255, 40, 40)
        self._opacity = 0.5
        self._brush = 16
        self.erasing = False
        self._zoom = 1.0
        self._offset = QPointF(0, 0)
        self._undo: list[QImage] = []
        self._redo: list[QImage] = []
        self._last: QPointF | None = None
        self._pan_from: QPoint | None = None
        self._cursor = QPointF(-1, -1)
        self._fitted = False

    # --- content ------------------------------------------------------------------------
    def set_image(self, image: Image.Image, mask: Image.Image | None = None) -> None:
        """Show `image` with `mask` (resized to it; none: an empty mask). Clears the history."""
        self._image = pil_to_qimage(image.convert("RGB"))
        size = image.size
        mask = masks.empty(size) if mask is None else mask.convert("L")
        if mask.size != size:
            mask = mask.resize(size, Image.Resampling.NEAREST)
        self._undo.clear()
        self._redo.clear()
        self._set_mask(pil_to_qimage(mask))
        self._fitted = False
        self.fit()

    def has_image(self) -> bool:
        return not self._image.isNull()

    def mask_image(self) -> Image.Image:  # not `mask`: that would hide QWidget.mask()
        return mask_to_pil(self._mask)

    def _set_mask(self, mask: QImage) -> None:
        self._mask = mask.convertToFormat(QImage.Format.Format_Grayscale8)
        self._refresh_overlay()
        self.maskChanged.emit()

    def _refresh_overlay(self) -> None:
        if self._mask.isNull():
            self._overlay = QImage()
            return
        m = np.asarray(self.mask_image(), dtype=np.float32)
        h, w = m.shape
        rgba = np.empty((h, w, 4), np.uint8)
        rgba[..., 0], rgba[..., 1], rgba[..., 2] = (self._colour.red(), self._colour.green(),
                                                    self._colour.blue())
        rgba[..., 3] = np.round(m * self._opacity).astype(np.uint8)
        self._overlay = pil_to_qimage(Image.fromarray(rgba, "RGBA"))
        self.update()

    # --- operations (each undoable) -----------------------------------------------------
    def apply(self, op: Callable[[Image.Image], Image.Image]) -> None:
        """Replace the mask by op(mask), one undo step."""
        if not self.has_image():
            return
        self._push_undo()
        self._set_mask(pil_to_qimage(op(self.mask_image())))

    def invert(self) -> None:
        self.apply(masks.invert)

    def clear(self) -> None:
        self.apply(lambda m: masks.empty(m.size))

    def fill(self) -> None:
        self.apply(lambda m: masks.filled(m.size))

    def feather(self, radius: float) -> None:
        self.apply(lambda m: masks.feather(m, radius))

    def load_mask(self, mask: Image.Image) -> None:
        self.apply(lambda m: mask.convert("L").resize(m.size, Image.Resampling.NEAREST))

    def _push_undo(self) -> None:
        self._undo.append(self._mask.copy())
        del self._undo[:-UNDO_LIMIT]
        self._redo.clear()

    def undo(self) -> None:
        if self._undo:
            self._redo.append(self._mask.copy())
            self._set_mask(self._undo.pop())

    def redo(self) -> None:
        if self._redo:
            self._undo.append(self._mask.copy())
            self._set_mask(self._redo.pop())

    def can_undo(self) -> bool:
        return bool(self._undo)

    # --- look ---------------------------------------------------------------------------
    def set_colour(self, colour: QColor) -> None:
        self._colour = QColor(colour)
        self._refresh_overlay()

    def colour(self) -> QColor:
        return QColor(self._colour)

    def brush_size(self) -> int:
        return self._brush

    def set_brush_size(self, size: int) -> None:
        size = max(MIN_BRUSH, min(MAX_BRUSH, int(size)))
        if size != self._brush:
            self._brush = size
            self.brushChanged.emit(size)
            self.update()

    def zoom(self) -> float:
        return self._zoom

    def set_zoom(self, zoom: float, about: QPointF | None = None) -> None:
        """Zoom to `zoom`, keeping the image point under `about` (widget coordinates) in place."""
        zoom = max(MIN_ZOOM, min(MAX_ZOOM, zoom))
        about = about if about is not None else QPointF(self.width() / 2, self.height() / 2)
        anchor = self.to_image(about)
        self._zoom = zoom
        self._offset = about - anchor * zoom
        self.update()

    def fit(self) -> None:
        if not self.has_image() or self.width() < 2:
            return
        self._zoom = min(self.width() / self._image.width(), self.height() / self._image.height())
        self._offset = QPointF((self.width() - self._image.width() * self._zoom) / 2,
                               (self.height() - self._image.height() * self._zoom) / 2)
        self._fitted = True
        self.update()

    def to_image(self, pos: QPointF) -> QPointF:
        return (pos - self._offset) / self._zoom

    def to_widget(self, pos: QPointF) -> QPointF:
        return pos * self._zoom + self._offset

    # --- painting -----------------------------------------------------------------------
    def _stroke(self, a: QPointF, b: QPointF) -> None:
        painter = QPainter(self._mask)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)  # a hard brush
        value = 0 if self.erasing else 255
        pen = QPen(QColor(value, value, value), self._brush, Qt.PenStyle.SolidLine,
                   Qt.PenCapStyle.RoundCap, Qt.PenJoinStyle.RoundJoin)
        painter.setPen(pen)
        if a == b:
            painter.setBrush(QColor(value, value, value))
            painter.setPen(Qt.PenStyle.NoPen)
            r = self._brush / 2
            painter.drawEllipse(a, r, r)
        else:
            painter.drawLine(a, b)
        painter.end()
        self._refresh_overlay()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        if event.button() == Qt.MouseButton.LeftButton and self.has_image():
            self._push_undo()
            p = self.to_image(event.position())
            self._stroke(p, p)
            self._last = p
        elif event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.RightButton):
            self._pan_from = event.position().toPoint()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        self._cursor = event.position()
        if self._last is not None:
            p = self.to_image(event.position())
            self._stroke(self._last, p)
            self._last = p
        elif self._pan_from is not None:
            now = event.position().toPoint()
            self._offset += QPointF(now - self._pan_from)
            self._pan_from = now
        self.update()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt API)
        if self._last is not None:
            self._last = None
            self.maskChanged.emit()
        self._pan_from = None

    def wheelEvent(self, event: QWheelEvent) -> None:  # noqa: N802 (Qt API)
        steps = event.angleDelta().y() / 120
        if steps:
            self.set_zoom(self._zoom * 1.25 ** steps, event.position())

    def keyPressEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        if event.text() == "[":
            self.set_brush_size(round(self._brush / 1.25) if self._brush > 4 else self._brush - 1)
        elif event.text() == "]":
            self.set_brush_size(max(self._brush + 1, round(self._brush * 1.25)))
        else:
            super().keyPressEvent(event)

    def resizeEvent(self, event: Any) -> None:  # noqa: N802 (Qt API)
        if not self._fitted:
            self.fit()
        super().resizeEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt API)
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(40, 40, 40))
        if self.has_image():
            target = QRectF(self._offset.x(), self._offset.y(),
                            self._image.width() * self._zoom, self._image.height() * self._zoom)
            smooth = self._zoom < 1
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, smooth)
            painter.drawImage(target, self._image)
            painter.drawImage(target, self._overlay)
            if self.rect().contains(self._cursor.toPoint()):
                painter.setPen(QPen(QColor(255, 255, 255), 1))
                r = self._brush * self._zoom / 2
                painter.drawEllipse(self._cursor, r, r)
        painter.end()

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(512, 512)


class MaskPainter(QWidget):
    """MaskCanvas with its tool bar: brush/eraser, size, invert, clear, fill, feather, colour,
    zoom, undo/redo, load and export."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.canvas = MaskCanvas()
        self.brush = self._tool("Brush", "Paint what to repaint (white)", checkable=True)
        self.eraser = self._tool("Eraser", "Erase the mask (keep)", checkable=True)
        self.brush.setChecked(True)
        self.brush.clicked.connect(lambda: self._set_erasing(False))
        self.eraser.clicked.connect(lambda: self._set_erasing(True))
        self.brush_size = QSpinBox()
        self.brush_size.setObjectName("brush_size")
        self.brush_size.setRange(MIN_BRUSH, MAX_BRUSH)
        self.brush_size.setValue(self.canvas.brush_size())
        self.brush_size.setToolTip("Brush size in image pixels ([ and ] change it)")
        self.brush_size.valueChanged.connect(self.canvas.set_brush_size)
        self.canvas.brushChanged.connect(self.brush_size.setValue)
        self.feather_radius = QSpinBox()
        self.feather_radius.setObjectName("feather_radius")
        self.feather_radius.setRange(1, d.MAX_MASK_BLUR)
        self.feather_radius.setValue(4)
        self.feather_radius.setToolTip("Feather radius (a Gaussian blur of the mask's edge)")
        buttons = [
            self._tool("Invert", "Swap repaint and keep", self.canvas.invert),
            self._tool("Clear", "Keep everything", self.canvas.clear),
            self._tool("Fill", "Repaint everything", self.canvas.fill),
            self._tool("Feather", "Soften the mask's edge",
                       lambda: self.canvas.feather(self.feather_radius.value())),
            self._tool("Colour…", "The overlay's colour", self._pick_colour),
            self._tool("Fit", "Fit the image in view", self.canvas.fit),
            self._tool("Undo", "Undo (Ctrl+Z)", self.canvas.undo),
            self._tool("Redo", "Redo (Ctrl+Shift+Z)", self.canvas.redo),
            self._tool("Load…", "Load a mask file", self._load),
            self._tool("Export…", "Save the mask as a PNG", self._export),
        ]
        row = QHBoxLayout()
        row.addWidget(self.brush)
        row.addWidget(self.eraser)
        row.addWidget(QLabel("Size"))
        row.addWidget(self.brush_size)
        for b in buttons[:3]:
            row.addWidget(b)
        row.addWidget(buttons[3])
        row.addWidget(self.feather_radius)
        for b in buttons[4:]:
            row.addWidget(b)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.canvas, 1)
        for keys, slot in ((QKeySequence.StandardKey.Undo, self.canvas.undo),
                           (QKeySequence("Ctrl+Shift+Z"), self.canvas.redo)):
            sc = QShortcut(keys, self)
            sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            sc.activated.connect(slot)

    def _tool(self, text: str, tip: str, slot: Callable[[], None] | None = None,
              checkable: bool = False) -> QToolButton:
        b = QToolButton()
        b.setText(text)
        b.setObjectName(text.rstrip("…").lower())
        b.setToolTip(tip)
        b.setCheckable(checkable)
        if slot is not None:
            b.clicked.connect(slot)
        return b

    def _set_erasing(self, erasing: bool) -> None:
        self.canvas.erasing = erasing
        self.brush.setChecked(not erasing)
        self.eraser.setChecked(erasing)

    def _pick_colour(self) -> None:
        colour = QColorDialog.getColor(self.canvas.colour(), self, "Mask overlay colour")
        if colour.isValid():
            self.canvas.set_colour(colour)

    def _load(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load mask", "", IMAGE_FILTER)
        if path:
            try:
                self.canvas.load_mask(masks.load_mask(path))
            except UserError as exc:
                QMessageBox.warning(self, "Load mask", str(exc))

    def _export(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export mask", "mask.png", "PNG (*.png)")
        if path:
            try:
                masks.save_png(self.canvas.mask_image(), path)
            except UserError as exc:
                QMessageBox.warning(self, "Export mask", str(exc))


class MaskPainterDialog(QDialog):
    """Paint a mask over an init image; on OK the mask is saved (`saved_path`)."""

    def __init__(self, image: Image.Image, mask: Image.Image | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Paint mask")
        self.painter = MaskPainter()
        self.painter.canvas.set_image(image, mask)
        self.saved_path: Path | None = None
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.save_and_accept)
        box.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.painter, 1)
        layout.addWidget(box)
        self.resize(760, 640)

    def save_and_accept(self) -> None:
        try:
            self.saved_path = save_mask_file(self.painter.canvas.mask_image())
        except UserError as exc:
            QMessageBox.warning(self, "Save mask", str(exc))
            return
        self.accept()


class OutpaintDialog(QDialog):
    """How many pixels to add on each side, the seam's overlap and the new area's fill."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Outpaint")
        form = QFormLayout(self)
        self.sides = {side: _int_spin(f"outpaint_{side}", 0, d.MAX_SIDE, 0,
                                      f"Pixels to add on the {side}")
                      for side in ("left", "top", "right", "bottom")}
        self.sides["right"].setValue(128)
        for side, spin in self.sides.items():
            spin.setSingleStep(8)
            form.addRow(side.capitalize(), spin)
        self.overlap = _int_spin("outpaint_overlap", 0, 512, 16,
                                 "Pixels of the picture repainted along the seam")
        self.fill = _combo("outpaint_fill", FILLS, "edge: the edge stretched out; blur: the "
                           "picture's blurred colours")
        form.addRow("Overlap", self.overlap)
        form.addRow("Fill", self.fill)
        box = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok
                               | QDialogButtonBox.StandardButton.Cancel)
        box.accepted.connect(self.accept)
        box.rejected.connect(self.reject)
        form.addRow(box)

    def extension(self) -> Extension:
        return Extension(**{side: spin.value() for side, spin in self.sides.items()})


class CanvasOptions:
    """The canvas's widgets in the parameters panel: "Paint mask…", inpaint options, hires fix."""

    def __init__(self, init_slot: ImageSlot, mask_slot: ImageSlot) -> None:
        self._init, self._mask = init_slot, mask_slot
        self.paint_button = QPushButton("Paint mask…")
        self.paint_button.setObjectName("paint_mask")
        self.paint_button.setToolTip("Paint the mask over the init image")
        self.paint_button.clicked.connect(self.paint)
        self.outpaint_button = QPushButton("Outpaint…")
        self.outpaint_button.setObjectName("outpaint")
        self.outpaint_button.setToolTip("Extend the init image on any side; Generate then "
                                        "paints the new area")
        self.outpaint_button.clicked.connect(self.outpaint)
        self.buttons = QWidget()
        row = QHBoxLayout(self.buttons)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.paint_button)
        row.addWidget(self.outpaint_button)
        for button in (self.paint_button, self.outpaint_button):
            init_slot.changed.connect(lambda p, b=button: b.setEnabled(p is not None))
            button.setEnabled(init_slot.path() is not None)

        self.inpaint = QWidget()
        form = QFormLayout(self.inpaint)
        form.setContentsMargins(0, 0, 0, 0)
        self.area = _combo("inpaint_area", d.INPAINT_AREAS,
                           "whole: repaint at the picture's size; only-masked: crop to the mask "
                           "plus padding, work at the size above, paste back")
        self.padding = _int_spin("inpaint_padding", 0, 1024, 32, "Pixels of context around "
                                 "the mask (only masked)")
        self.content = _combo("masked_content", d.MASKED_CONTENTS,
                              "What the masked area starts from")
        self.blur = _int_spin("mask_blur", 0, d.MAX_MASK_BLUR, 0,
                              "Blur of the mask's edge; above 0 pastes back with the soft mask")
        form.addRow("Area", self.area)
        form.addRow("Padding", self.padding)
        form.addRow("Content", self.content)
        form.addRow("Mask blur", self.blur)

        self.hires = QGroupBox("Hires fix")
        self.hires.setObjectName("hires")
        self.hires.setCheckable(True)
        self.hires.setChecked(False)
        hform = QFormLayout(self.hires)
        self.hires_scale = QDoubleSpinBox()
        self.hires_scale.setObjectName("hires_scale")
        self.hires_scale.setRange(1.05, d.MAX_HIRES_SCALE)
        self.hires_scale.setSingleStep(0.25)
        self.hires_scale.setValue(2.0)
        self.hires_steps = _int_spin("hires_steps", 0, d.MAX_STEPS, 0,
                                     "Steps of the second pass (0: the same as Steps)")
        self.hires_strength = QDoubleSpinBox()
        self.hires_strength.setObjectName("hires_strength")
        self.hires_strength.setRange(0.01, 1.0)
        self.hires_strength.setSingleStep(0.05)
        self.hires_strength.setValue(0.5)
        self.hires_upscaler = _combo("hires_upscaler", tuple(UPSCALERS),
                                     "Latent*: interpolate the latents; others: resize the image")
        hform.addRow("Upscale by", self.hires_scale)
        hform.addRow("Steps", self.hires_steps)
        hform.addRow("Denoising", self.hires_strength)
        hform.addRow("Upscaler", self.hires_upscaler)

    def paint(self) -> None:
        init = self._init.path()
        if not init:
            return
        parent = self.paint_button.window()
        mask_path = self._mask.path()
        try:
            image = Image.open(init).convert("RGB")
            mask = masks.load_mask(mask_path) if mask_path else None
        except (OSError, UserError) as exc:
            QMessageBox.warning(parent, "Paint mask", str(exc))
            return
        dialog = MaskPainterDialog(image, mask, parent)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.saved_path is not None:
            self._mask.set_path(str(dialog.saved_path))

    def outpaint(self) -> None:
        """Extend the init image (written with its mask into the masks folder), make them the
        init image and mask, and set the options outpainting wants; Generate does the rest."""
        init = self._init.path()
        if not init:
            return
        parent = self.paint_button.window()
        dialog = OutpaintDialog(parent)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return
        try:
            folder = masks_dir()
            folder.mkdir(parents=True, exist_ok=True)
            image, mask = prepare(Path(init), dialog.extension(), folder,
                                  dialog.fill.currentText(), dialog.overlap.value())
        except (OSError, UserError) as exc:
            QMessageBox.warning(parent, "Outpaint", str(exc))
            return
        self._init.set_path(image)
        self._mask.set_path(mask)
        self.set_params({"inpaint_area": "only-masked", "mask_blur": max(self.blur.value(), 8),
                         "masked_content": "original"})

    def params(self) -> dict[str, Any]:
        return {
            "inpaint_area": self.area.currentText(),
            "inpaint_padding": self.padding.value(),
            "masked_content": self.content.currentText(),
            "mask_blur": self.blur.value(),
            "hires_scale": round(self.hires_scale.value(), 2) if self.hires.isChecked() else 1.0,
            "hires_steps": self.hires_steps.value(),
            "hires_strength": round(self.hires_strength.value(), 2),
            "hires_upscaler": self.hires_upscaler.currentText(),
        }

    def set_params(self, p: dict[str, Any]) -> None:
        for key, combo in (("inpaint_area", self.area), ("masked_content", self.content),
                           ("hires_upscaler", self.hires_upscaler)):
            if p.get(key) and combo.findText(str(p[key])) >= 0:
                combo.setCurrentText(str(p[key]))
        for key, spin in (("inpaint_padding", self.padding), ("mask_blur", self.blur),
                          ("hires_steps", self.hires_steps)):
            if key in p:
                spin.setValue(int(p[key]))
        if "hires_strength" in p:
            self.hires_strength.setValue(float(p["hires_strength"]))
        if "hires_scale" in p:
            scale = float(p["hires_scale"])
            self.hires.setChecked(scale > 1)
            if scale > 1:
                self.hires_scale.setValue(scale)


def _combo(name: str, items: tuple[str, ...], tip: str) -> QComboBox:
    box = QComboBox()
    box.setObjectName(name)
    box.addItems(list(items))
    box.setToolTip(tip)
    return box


def _int_spin(name: str, lo: int, hi: int, value: int, tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setObjectName(name)
    box.setRange(lo, hi)
    box.setValue(value)
    box.setToolTip(tip)
    return box

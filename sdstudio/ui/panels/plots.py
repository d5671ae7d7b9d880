"""Small QPainter plots (no matplotlib): a histogram and line/point curves with markers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

AXIS = QColor(120, 120, 120)
HIGHLIGHT = QColor(220, 40, 40)


def _text_color(widget: QWidget) -> QColor:
    return widget.palette().color(widget.foregroundRole())


class Histogram(QWidget):
    """Bar chart of bin counts with the value range written under it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._counts: Sequence[int] = ()
        self._range = (0.0, 0.0)
        self._zero_at: float | None = None
        self.setMinimumSize(80, 44)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(160, 56)

    def set_data(self, counts: Sequence[int], low: float, high: float) -> None:
        self._counts, self._range = tuple(counts), (low, high)
        self._zero_at = (-low / (high - low)) if low < 0 < high else None
        self.update()

    def counts(self) -> tuple[int, ...]:
        return tuple(self._counts)

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        fm = p.fontMetrics()
        plot = QRectF(2, 2, self.width() - 4, self.height() - fm.height() - 6)
        p.setPen(QPen(AXIS))
        p.drawLine(plot.bottomLeft(), plot.bottomRight())
        if self._counts:
            top = max(self._counts) or 1
            w = plot.width() / len(self._counts)
            for i, c in enumerate(self._counts):
                h = plot.height() * c / top
                p.fillRect(QRectF(plot.left() + i * w, plot.bottom() - h, max(1.0, w - 1), h),
                           QColor(70, 130, 200))
            if self._zero_at is not None:
                x = plot.left() + self._zero_at * plot.width()
                p.setPen(QPen(HIGHLIGHT, 1, Qt.PenStyle.DashLine))
                p.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
            p.setPen(_text_color(self))
            lo, hi = self._range
            y = int(plot.bottom() + fm.ascent() + 3)
            p.drawText(int(plot.left()), y, f"{lo:+.2f}")
            label = f"{hi:+.2f}"
            p.drawText(int(plot.right() - fm.horizontalAdvance(label)), y, label)
        p.end()


@dataclass
class Series:
    xs: Sequence[float]
    ys: Sequence[float]
    color: QColor
    label: str
    points: bool = False  # dots at each (x, y) as well as the line


class CurvePlot(QWidget):
    """Curves over a shared x range; y linear in [y_min, y_max] or log10. Vertical ticks mark x
    positions (e.g. the sampled timesteps); one x may be highlighted (the current step)."""

    def __init__(self, title: str = "", log_y: bool = False, parent: QWidget | None = None):
        super().__init__(parent)
        self.title = title
        self.log_y = log_y
        self.series: list[Series] = []
        self.ticks: Sequence[float] = ()
        self.highlight: float | None = None
        self.x_range = (0.0, 1.0)
        self.y_range = (0.0, 1.0)
        self.x_label = ""
        self.setMinimumSize(200, 140)

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt API)
        return QSize(420, 200)

    def set_series(self, series: list[Series], x_range: tuple[float, float],
                   y_range: tuple[float, float] | None = None, x_label: str = "") -> None:
        self.series, self.x_range, self.x_label = series, x_range, x_label
        ys = [self._y(v) for s in series for v in s.ys if self._finite(v)]
        if y_range is not None:
            self.y_range = (self._y(y_range[0]), self._y(y_range[1]))
        elif ys:
            lo, hi = min(ys), max(ys)
            self.y_range = (lo, hi if hi > lo else lo + 1)
        self.update()

    def set_ticks(self, xs: Sequence[float]) -> None:
        self.ticks = tuple(xs)
        self.update()

    def set_highlight(self, x: float | None) -> None:
        self.highlight = x
        self.update()

    def _finite(self, v: float) -> bool:
        return math.isfinite(v) and (v > 0 or not self.log_y)

    def _y(self, v: float) -> float:
        return math.log10(v) if self.log_y else v

    def plot_rect(self) -> QRectF:
        fm = self.fontMetrics()
        left = fm.horizontalAdvance("-0.00e+0") + 6
        return QRectF(left, fm.height() * 2 + 4, self.width() - left - 8,
                      self.height() - fm.height() * 4 - 8)

    def to_pixel(self, x: float, y: float) -> QPointF:
        r = self.plot_rect()
        (x0, x1), (y0, y1) = self.x_range, self.y_range
        px = r.left() + (x - x0) / ((x1 - x0) or 1) * r.width()
        py = r.bottom() - (self._y(y) - y0) / ((y1 - y0) or 1) * r.height()
        return QPointF(px, py)

    def paintEvent(self, _event) -> None:  # noqa: N802 (Qt API)
        p = QPainter(self)
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        fm = p.fontMetrics()
        r = self.plot_rect()
        text = _text_color(self)
        p.setPen(text)
        p.drawText(int(r.left()), fm.ascent() + 2, self.title)
        x = r.left()
        for s in self.series:  # legend on the second line
            p.fillRect(QRectF(x, fm.height() + 6, 10, 6), s.color)
            p.drawText(int(x + 14), fm.height() + fm.ascent() + 2, s.label)
            x += 24 + fm.horizontalAdvance(s.label)
        p.setPen(QPen(AXIS))
        p.drawRect(r)
        for value, y in ((self.y_range[0], r.bottom()), (self.y_range[1], r.top())):
            shown = 10**value if self.log_y else value
            label = f"{shown:.3g}"
            p.drawText(int(r.left() - fm.horizontalAdvance(label) - 4), int(y + fm.ascent() / 2),
                       label)
        if self.log_y:  # a faint line at each power of ten
            for k in range(math.ceil(self.y_range[0]), math.floor(self.y_range[1]) + 1):
                py = self.to_pixel(self.x_range[0], 10.0**k).y()
                p.setPen(QPen(QColor(150, 150, 150, 90), 1, Qt.PenStyle.DotLine))
                p.drawLine(QPointF(r.left(), py), QPointF(r.right(), py))
                p.setPen(QPen(AXIS))
                if min(abs(py - r.top()), abs(py - r.bottom())) < fm.height():
                    continue  # would overlap the range's own labels
                label = f"{10.0**k:g}"
                p.drawText(int(r.left() - fm.horizontalAdvance(label) - 4),
                           int(py + fm.ascent() / 2), label)
        for value, align in ((self.x_range[0], 0), (self.x_range[1], 1)):
            label = f"{value:g}"
            px = r.left() + align * (r.width() - fm.horizontalAdvance(label))
            p.drawText(int(px), int(r.bottom() + fm.ascent() + 3), label)
        if self.x_label:
            p.drawText(int(r.center().x() - fm.horizontalAdvance(self.x_label) / 2),
                       int(r.bottom() + fm.ascent() + 3), self.x_label)
        p.setPen(QPen(QColor(150, 150, 150, 140), 1))
        for t in self.ticks:
            px = self.to_pixel(t, 1.0).x()
            p.drawLine(QPointF(px, r.bottom() - 6), QPointF(px, r.bottom()))
        p.setClipRect(r.adjusted(-4, -4, 4, 4))
        for s in self.series:
            path = QPainterPath()
            started = False
            for xv, yv in zip(s.xs, s.ys, strict=False):
                if not self._finite(yv):
                    started = False
                    continue
                pt = self.to_pixel(xv, yv)
                path.lineTo(pt) if started else path.moveTo(pt)
                started = True
                if s.points:
                    p.setPen(Qt.PenStyle.NoPen)
                    p.setBrush(s.color)
                    p.drawEllipse(pt, 2.5, 2.5)
            p.setBrush(Qt.BrushStyle.NoBrush)
            p.setPen(QPen(s.color, 1.6))
            p.drawPath(path)
        if self.highlight is not None:
            px = self.to_pixel(self.highlight, 1.0).x()
            p.setPen(QPen(HIGHLIGHT, 2))
            p.drawLine(QPointF(px, r.top()), QPointF(px, r.bottom()))
            for s in self.series:  # and the highlighted point itself
                if s.points:
                    for xv, yv in zip(s.xs, s.ys, strict=False):
                        if xv == self.highlight and self._finite(yv):
                            p.setBrush(HIGHLIGHT)
                            p.drawEllipse(self.to_pixel(xv, yv), 5, 5)
        p.end()

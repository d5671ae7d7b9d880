"""The gallery's filter bar: model, sampler, tool, size and a date range, written as the search
keys of core/gallery/query.py (model:"x" sampler:"y" tool:z size:WxH from:D to:D), so a filter
does nothing the search box cannot do. Favourites stay the panel's ★ button."""

from __future__ import annotations

from PySide6.QtCore import QDate, Signal
from PySide6.QtWidgets import QComboBox, QDateEdit, QGridLayout, QWidget

ANY = ""  # the item data of "any …"
_NO_DATE = QDate(2000, 1, 1)  # the minimum date shows as "any" (the special value text)


class FilterBar(QWidget):
    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("gallery_filters")
        self.boxes: dict[str, QComboBox] = {}
        # One row; the gallery panel puts it in a strip that scrolls sideways when narrow.
        lay = QGridLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        cells = iter((0, c) for c in range(6))
        for key, label in (("model", "model"), ("sampler", "sampler"), ("tool", "tool"),
                           ("size", "size")):
            box = QComboBox()
            box.setObjectName(f"filter_{key}")
            box.setToolTip(f"Only images with this {label}")
            box.addItem(f"any {label}", ANY)
            box.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(5)
            box.currentIndexChanged.connect(lambda _i: self.changed.emit())
            self.boxes[key] = box
            lay.addWidget(box, *next(cells))
        self.dates: dict[str, QDateEdit] = {}
        for key, tip in (("from", "Made on or after this day"), ("to", "Made on or before this day")):
            edit = QDateEdit()
            edit.setObjectName(f"filter_{key}")
            edit.setToolTip(tip + " (clear: the earliest date, shown as “any”)")
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setMinimumDate(_NO_DATE)
            edit.setSpecialValueText(f"{key}: any")
            edit.setDate(_NO_DATE)
            edit.dateChanged.connect(lambda _d: self.changed.emit())
            self.dates[key] = edit
            lay.addWidget(edit, *next(cells))

    def set_values(self, values: dict[str, list[str]]) -> None:
        """Offer these values (from Gallery.values); the current choices are kept."""
        for key, box in self.boxes.items():
            current = box.currentData()
            box.blockSignals(True)
            box.clear()
            box.addItem(box.toolTip().replace("Only images with this ", "any "), ANY)
            for value in values.get(key, []):
                box.addItem(value, value)
            if current and box.findData(current) < 0:
                box.addItem(current, current)  # chosen before, not in this folder: kept visible
            box.setCurrentIndex(max(0, box.findData(current)))
            box.blockSignals(False)

    def set_filter(self, key: str, value: str) -> None:
        """Choose `value` for `key` (model, sampler, tool, size; from/to as 'YYYY-MM-DD')."""
        if key in self.dates:
            date = QDate.fromString(value, "yyyy-MM-dd") if value else _NO_DATE
            self.dates[key].setDate(date if date.isValid() else _NO_DATE)
            return
        box = self.boxes[key]
        if value and box.findData(value) < 0:
            box.addItem(value, value)
        box.setCurrentIndex(max(0, box.findData(value)))

    def clear(self) -> None:
        for key in (*self.boxes, *self.dates):
            self.set_filter(key, "")

    def query(self) -> str:
        """The search keys of the current choices ('' when nothing is chosen)."""
        parts = []
        for key, box in self.boxes.items():
            value = str(box.currentData() or "").replace('"', "")
            if value:
                parts.append(f'{key}:"{value}"' if key != "size" else f"size:{value}")
        for key, edit in self.dates.items():
            if edit.date() != _NO_DATE:
                parts.append(f"{key}:{edit.date().toString('yyyy-MM-dd')}")
        return " ".join(parts)

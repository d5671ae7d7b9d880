"""The gallery's search text -> SQL conditions: prompt words, "a phrase", seed:123, model:name
(a part of the name; model:"name" exactly, as the filter bar writes it; so too sampler and tool),
sampler:x, steps:20, cfg:7, size:512x512, neg:word (negative prompt), tool:comfyui, is:fav,
from:2026-01-01 to:2026-01-31 date:2026-01 (local dates, both ends included; a day, a month or
a year).

Any text a user can type gives either conditions or one UserError: lone surrogates and NUL are
dropped, numbers outside SQLite's range and non-finite ones are refused, and FTS5 only ever sees
quoted phrases.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sdstudio.core.errors import UserError
from sdstudio.core.png.parameters import clean_text

# (column, LIKE pattern) -> the distinct values that match: a substring key then becomes an
# index lookup of those few values instead of a scan of every row (see Gallery._values_like).
ValuesLike = Callable[[str, str], list[str]]
MAX_VALUES = 50  # more matching values than this: the plain LIKE scan
MAX_QUERY = 1000  # characters: a search longer than this is a paste accident
_TOKEN = re.compile(r'(\w++):("[^"]*"|\S+)|"([^"]*)"|(\S+)')
_INT_KEYS = {"seed": "seed", "steps": "steps"}
_LIKE_KEYS = {"model": "model", "sampler": "sampler", "tool": "source"}  # tool:comfyui
_INT64 = 1 << 63


def _fts_phrase(text: str, prefix: bool) -> str:
    return '"' + text.replace('"', '""') + '"' + ("*" if prefix else "")


def _whole_number(key: str, value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise UserError(f"{key}: needs a whole number, like {key}:123.") from None
    if not -_INT64 <= number < _INT64:
        raise UserError(f"{key}: {value[:20]}… is out of range.")
    return number


def _date_range(key: str, value: str) -> tuple[float, float]:
    """'2026', '2026-01' or '2026-01-31' -> [start, end) as local-time timestamps."""
    m = re.fullmatch(r"(\d{4})(?:-(\d{1,2}))?(?:-(\d{1,2}))?", value)
    try:
        if not m:
            raise ValueError
        year, month, day = int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1)
        start = date(year, month, day)
        if m.group(3):
            end = date.fromordinal(start.toordinal() + 1)
        elif m.group(2):
            end = date(year + month // 12, month % 12 + 1, 1)
        else:
            end = date(year + 1, 1, 1)
        return (datetime(start.year, start.month, start.day).timestamp(),
                datetime(end.year, end.month, end.day).timestamp())
    except (ValueError, OverflowError, OSError):
        raise UserError(f"{key}: needs a date, like {key}:2026-01-31 (or 2026-01, 2026).") from None


def parse_query(query: str, values_like: ValuesLike | None = None) -> tuple[list[str], list[Any]]:
    """Search text -> SQL conditions and arguments. Bad filter values raise one UserError."""
    if len(query) > MAX_QUERY:
        raise UserError(f"The search text is too long ({len(query)} characters; at most "
                        f"{MAX_QUERY}).")
    query = clean_text(query).replace("\x00", " ")
    where: list[str] = []
    args: list[Any] = []
    fts: list[str] = []
    for key, quoted, phrase, word in _TOKEN.findall(query):
        key = key.lower()
        value = quoted.strip('"')
        if key in _INT_KEYS:
            args.append(_whole_number(key, value))
            where.append(f"{_INT_KEYS[key]} = ?")
        elif key in _LIKE_KEYS and quoted.startswith('"'):  # model:"sd15": exactly (an index)
            where.append(f"{_LIKE_KEYS[key]} = ? COLLATE NOCASE")
            args.append(value)
        elif key in _LIKE_KEYS:  # model:sd: any model whose name holds "sd"
            column = _LIKE_KEYS[key]
            pattern = "%" + re.sub(r"([%_\\])", r"\\\1", value) + "%"
            found = values_like(column, pattern) if values_like else None
            if found is not None and len(found) <= MAX_VALUES:
                where.append(f"{column} COLLATE NOCASE IN ({', '.join('?' * len(found))})"
                             if found else "0")
                args += found
            else:
                where.append(f"{column} LIKE ? ESCAPE '\\'")
                args.append(pattern)
        elif key == "cfg":
            try:
                cfg = float(value)
            except ValueError:
                cfg = math.nan
            if not math.isfinite(cfg):
                raise UserError("cfg: needs a number, like cfg:7.5.")
            args.append(cfg)
            where.append("abs(cfg - ?) < 1e-6")
        elif key == "size":
            m = re.fullmatch(r"(\d{1,9})x(\d{1,9})", value.lower())
            if not m:
                raise UserError("size: needs width x height, like size:512x512.")
            where.append("width = ? AND height = ?")
            args += [int(m.group(1)), int(m.group(2))]
        elif key in ("from", "to", "date"):
            start, end = _date_range(key, value)
            if key == "from":
                where.append("created >= ?")
                args.append(start)
            elif key == "to":  # to a day: that whole day included
                where.append("created < ?")
                args.append(end)
            else:
                where.append("created >= ? AND created < ?")
                args += [start, end]
        elif key == "is" and value.lower() in ("fav", "favourite", "favorite"):
            where.append("favourite = 1")
        elif key == "neg" and value:
            fts.append("negative_prompt : " + _fts_phrase(value, True))
        elif phrase:
            fts.append("prompt : " + _fts_phrase(phrase, False))
        else:
            text = word or f"{key}:{value}"
            terms = re.findall(r"\w+", text)
            fts += ["prompt : " + _fts_phrase(t, True) for t in terms]
    if fts:
        where.append("id IN (SELECT rowid FROM images_fts WHERE images_fts MATCH ?)")
        args.append(" AND ".join(fts))
    return where, args

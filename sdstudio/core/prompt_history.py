"""Prompt history, apart from the images (InvokeAI #8336): every prompt and negative prompt
used, with how often and when, searchable, kept across restarts in one SQLite file.

Writing the history never stops a generation: a locked or damaged file only loses that entry.
"""

from __future__ import annotations

import os
import re
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path

from sdstudio.core.paths import data_dir

MAX_PROMPT = 64 << 10  # characters kept of one prompt
_SCHEMA = """
CREATE TABLE IF NOT EXISTS prompts (
    id INTEGER PRIMARY KEY,
    prompt TEXT NOT NULL,
    negative_prompt TEXT NOT NULL,
    uses INTEGER NOT NULL DEFAULT 1,
    last_used REAL NOT NULL,
    UNIQUE (prompt, negative_prompt)
);
CREATE INDEX IF NOT EXISTS prompts_last_used ON prompts (last_used);
"""


@dataclass(frozen=True)
class PromptEntry:
    prompt: str
    negative_prompt: str
    uses: int
    last_used: float


def default_history_path() -> Path:
    return data_dir() / "prompt_history.sqlite3"


class PromptHistory:
    """The prompts used, newest first. One instance per thread (the window's is the GUI's)."""

    def __init__(self, path: str | os.PathLike[str] | None = None):
        self.path = Path(path) if path is not None else default_history_path()
        self._db: sqlite3.Connection | None = None

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=2.0)
            try:
                db.executescript(_SCHEMA)
            except sqlite3.DatabaseError:
                db.close()
                self._set_aside()  # not a database (damaged): keep it for the user, start anew
                db = sqlite3.connect(self.path, timeout=2.0)
                db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def _set_aside(self) -> None:
        try:
            aside = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
            os.replace(self.path, aside)
        except OSError:
            pass

    def add(self, prompt: str, negative_prompt: str = "") -> bool:
        """Record one use; False when the history could not be written (the job goes on)."""
        prompt, negative_prompt = _clean(prompt), _clean(negative_prompt)
        if not prompt.strip():
            return False
        try:
            with self._conn() as db:
                db.execute(
                    "INSERT INTO prompts (prompt, negative_prompt, last_used) VALUES (?, ?, ?) "
                    "ON CONFLICT (prompt, negative_prompt) DO UPDATE SET uses = uses + 1, "
                    "last_used = excluded.last_used", (prompt, negative_prompt, time.time()))
        except (sqlite3.Error, OSError):
            return False
        return True

    def search(self, text: str = "", limit: int = 200) -> list[PromptEntry]:
        """Entries whose prompt or negative holds every word of `text`, newest first."""
        words = [w for w in _clean(text).split() if w][:20]
        where = " AND ".join(["(prompt LIKE ? ESCAPE '\\' OR negative_prompt LIKE ? ESCAPE '\\')"]
                             * len(words)) or "1"
        args: list[object] = []
        for w in words:
            like = "%" + re.sub(r"([%_\\])", r"\\\1", w) + "%"
            args += [like, like]
        try:
            rows = self._conn().execute(
                f"SELECT prompt, negative_prompt, uses, last_used FROM prompts WHERE {where} "
                "ORDER BY last_used DESC, id DESC LIMIT ?", (*args, max(1, limit))).fetchall()
        except (sqlite3.Error, OSError):
            return []
        return [PromptEntry(*r) for r in rows]

    def remove(self, prompt: str, negative_prompt: str = "") -> None:
        try:
            with self._conn() as db:
                db.execute("DELETE FROM prompts WHERE prompt = ? AND negative_prompt = ?",
                           (prompt, negative_prompt))
        except (sqlite3.Error, OSError):
            pass

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> PromptHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _clean(text: str) -> str:
    """Bounded, storable text (lone surrogates from pastes replaced)."""
    text = text if isinstance(text, str) else ""
    text = text[:MAX_PROMPT]
    return text.encode("utf-8", "replace").decode("utf-8").replace("\x00", "")

"""The gallery: a folder of PNG files the user owns + an SQLite index that is always rebuildable.

The index (WAL, FTS5 over prompts) lives in the cache folder, keyed by the gallery folder, so a
read-only folder can still be browsed. Order of operations keeps the rule "never an index row
without its file": save writes the file (atomically) before its row; delete removes the row
before the file. A crash in between leaves a file without a row, which `sync` picks up.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from PIL import Image

from sdstudio.core import metadata
from sdstudio.core.errors import UserError
from sdstudio.core.metadata import MetadataError, Parameters
from sdstudio.core.paths import cache_dir, default_gallery_dir

if TYPE_CHECKING:
    from sdstudio.core.request import GenerationRequest

SCHEMA_VERSION = "1"
FAVOURITES_FILE = ".sdstudio-favourites.json"  # in the folder: favourites outlive the index
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS images(
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,          -- relative to the gallery folder, '/' separated
    prompt TEXT NOT NULL DEFAULT '',
    negative_prompt TEXT NOT NULL DEFAULT '',
    seed INTEGER, model TEXT, sampler TEXT, width INTEGER, height INTEGER,
    steps INTEGER, cfg REAL,
    created REAL NOT NULL,
    favourite INTEGER NOT NULL DEFAULT 0,
    file_size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    source TEXT
);
CREATE INDEX IF NOT EXISTS images_created ON images(created);
CREATE INDEX IF NOT EXISTS images_seed ON images(seed);
CREATE VIRTUAL TABLE IF NOT EXISTS images_fts USING fts5(
    prompt, negative_prompt, content='images', content_rowid='id', tokenize='unicode61');
CREATE TRIGGER IF NOT EXISTS images_ai AFTER INSERT ON images BEGIN
    INSERT INTO images_fts(rowid, prompt, negative_prompt)
    VALUES (new.id, new.prompt, new.negative_prompt);
END;
CREATE TRIGGER IF NOT EXISTS images_ad AFTER DELETE ON images BEGIN
    INSERT INTO images_fts(images_fts, rowid, prompt, negative_prompt)
    VALUES ('delete', old.id, old.prompt, old.negative_prompt);
END;
CREATE TRIGGER IF NOT EXISTS images_au AFTER UPDATE OF prompt, negative_prompt ON images BEGIN
    INSERT INTO images_fts(images_fts, rowid, prompt, negative_prompt)
    VALUES ('delete', old.id, old.prompt, old.negative_prompt);
    INSERT INTO images_fts(rowid, prompt, negative_prompt)
    VALUES (new.id, new.prompt, new.negative_prompt);
END;
-- files that could not be read, so each open does not try them again
CREATE TABLE IF NOT EXISTS skipped(
    path TEXT PRIMARY KEY, file_size INTEGER, mtime_ns INTEGER, reason TEXT);
"""
_COLUMNS = ("id, path, prompt, negative_prompt, seed, model, sampler, width, height, steps, cfg, "
            "created, favourite, file_size, mtime_ns")


class GalleryImage(NamedTuple):
    """One indexed image (a row of the index). A NamedTuple: thousands are built per search."""

    id: int
    file: str  # absolute path (a str: building 10,000 Path objects is slow)
    prompt: str
    negative_prompt: str
    seed: int | None
    model: str | None
    sampler: str | None
    width: int | None
    height: int | None
    steps: int | None
    cfg: float | None
    created: float
    favourite: bool
    file_size: int
    mtime_ns: int

    @property
    def path(self) -> Path:
        return Path(self.file)


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    errors: list[str] = field(default_factory=list)  # one sentence per unreadable file


def index_path_for(folder: Path) -> Path:
    digest = hashlib.sha1(str(folder).encode(), usedforsecurity=False).hexdigest()[:16]
    return cache_dir() / "galleries" / digest / "index.sqlite3"


def file_name_for(prompt: str, seed: int, when: float) -> str:
    """'20261125-093012-123-a-red-cat.png': sortable, readable, safe on every file system."""
    words = re.sub(r"[^a-z0-9]+", "-", prompt.lower()).strip("-")[:40].rstrip("-")
    stamp = datetime.fromtimestamp(when).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{seed}" + (f"-{words}" if words else "") + ".png"


class Gallery:
    """Open (and sync) the gallery in `folder`; use as a context manager or call close()."""

    def __init__(
        self,
        folder: str | os.PathLike[str] | None = None,
        *,
        index_path: str | os.PathLike[str] | None = None,
        sync: bool = True,
        create: bool = True,
    ) -> None:
        self.folder = Path(folder).expanduser() if folder else default_gallery_dir()
        self.folder = self.folder.resolve()
        if create and not self.folder.exists():
            try:
                self.folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise UserError(f"Could not create the gallery folder {self.folder}: "
                                f"{exc.strerror or exc}.") from exc
        if not self.folder.is_dir():
            raise UserError(f"The gallery folder {self.folder} does not exist or is not a folder.")
        self._root = os.path.join(str(self.folder), "")  # with a trailing separator
        self.index_path = Path(index_path) if index_path else index_path_for(self.folder)
        self._lock = threading.RLock()
        self._db = self._connect()
        self.last_sync = SyncReport()
        if sync:
            self.sync()

    # ------------------------------------------------------------ connection

    def _connect(self) -> sqlite3.Connection:
        self.index_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._open_db()
        except sqlite3.DatabaseError:  # a damaged index: it is only a cache of the files
            for suffix in ("", "-wal", "-shm"):
                Path(f"{self.index_path}{suffix}").unlink(missing_ok=True)
            return self._open_db()

    def _open_db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.index_path, check_same_thread=False, timeout=10,
                             isolation_level=None)  # autocommit; explicit BEGIN where needed
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?), ('folder', ?)",
                       (SCHEMA_VERSION, str(self.folder)))
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ saving

    def save(
        self,
        image: Image.Image,
        request: GenerationRequest,
        seed: int,
        extra: dict[str, Any] | None = None,
    ) -> GalleryImage:
        """Write the PNG (atomically, never over another file), then index it."""
        now = time.time()
        name = file_name_for(request.prompt, seed, now)
        for n in range(1000):
            target = self.folder / (name if n == 0 else name.replace(".png", f"-{n}.png"))
            if target.exists():
                continue
            try:
                metadata.write_png(target, image, request, seed, extra, overwrite=False)
                break
            except FileExistsError:
                continue
        else:
            raise UserError(f"Could not find a free file name for the image in {self.folder}.")
        row = self.add_file(target)
        assert row is not None
        return row

    def add_file(self, path: str | os.PathLike[str]) -> GalleryImage | None:
        """Index one file of the folder (new or changed); None if it cannot be read."""
        path = Path(path).resolve()
        rel = self._rel(path)
        try:
            st = path.stat()
            values = _row_values(path, rel, st)
        except (OSError, MetadataError):
            return None
        try:
            with self._lock:
                self._upsert([values])
        except sqlite3.Error as exc:
            raise UserError(f"{path.name} is saved, but the gallery index could not be updated "
                            f"({exc}); it will be listed the next time the gallery opens.") from exc
        return self.get(path)

    # ------------------------------------------------------------ syncing with the folder

    def sync(self) -> SyncReport:
        """Pick up files added, changed or removed outside the app (no full rebuild)."""
        metadata.remove_stale_temp_files(self.folder)
        on_disk = dict(self._scan())
        with self._lock:
            indexed = {p: (s, m) for p, s, m in
                       self._db.execute("SELECT path, file_size, mtime_ns FROM images")}
            skipped = {p: (s, m) for p, s, m in
                       self._db.execute("SELECT path, file_size, mtime_ns FROM skipped")}
        report = SyncReport()
        gone = [p for p in indexed if p not in on_disk]
        todo = [(rel, st) for rel, st in on_disk.items()
                if indexed.get(rel) != (st.st_size, st.st_mtime_ns)
                and skipped.get(rel) != (st.st_size, st.st_mtime_ns)]
        rows, bad = [], []
        for rel, st in todo:
            try:
                rows.append(_row_values(self.folder / rel, rel, st))
            except MetadataError as exc:
                bad.append((rel, st.st_size, st.st_mtime_ns, str(exc)))
                report.errors.append(str(exc))
            except OSError:
                continue  # vanished while scanning: the next sync sees it gone
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("DELETE FROM images WHERE path = ?", [(p,) for p in gone])
                self._db.executemany("DELETE FROM skipped WHERE path = ?",
                                     [(p,) for p in skipped if p not in on_disk])
                self._db.executemany("INSERT OR REPLACE INTO skipped VALUES (?, ?, ?, ?)", bad)
                self._upsert(rows)
                if rows:
                    self._apply_saved_favourites()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        report.removed = len(gone)
        report.updated = sum(1 for r in rows if r["path"] in indexed)
        report.added = len(rows) - report.updated
        self.last_sync = report
        return report

    def rebuild(self) -> SyncReport:
        """Forget the index and read every file again (favourites are kept)."""
        with self._lock:
            favs = [p for (p,) in self._db.execute("SELECT path FROM images WHERE favourite")]
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM images")
            self._db.execute("DELETE FROM skipped")
            self._db.execute("INSERT INTO images_fts(images_fts) VALUES ('rebuild')")
            self._db.execute("COMMIT")
            report = self.sync()
            self._db.executemany("UPDATE images SET favourite = 1 WHERE path = ?",
                                 [(p,) for p in favs])
            self._db.execute("INSERT INTO images_fts(images_fts) VALUES ('optimize')")
        return report

    def _scan(self) -> Iterator[tuple[str, os.stat_result]]:
        """(relative path, stat) of every PNG under the folder, hidden entries skipped."""
        root = str(self.folder)
        cut = len(root) + (0 if root.endswith(os.sep) else 1)
        stack = [root]
        while stack:
            folder = stack.pop()
            try:
                entries = list(os.scandir(folder))
            except OSError:
                continue
            for e in entries:
                if e.name.startswith("."):
                    continue
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append(e.path)
                    elif e.name.lower().endswith(".png") and e.is_file():
                        rel = e.path[cut:]
                        yield (rel.replace(os.sep, "/") if os.sep != "/" else rel), e.stat()
                except OSError:
                    continue

    def _upsert(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        cols = list(rows[0])
        sql = (f"INSERT INTO images ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
               f"ON CONFLICT(path) DO UPDATE SET "
               + ", ".join(f"{c} = excluded.{c}" for c in cols if c != "path"))
        self._db.executemany(sql, [tuple(r[c] for c in cols) for r in rows])
        self._db.executemany("DELETE FROM skipped WHERE path = ?", [(r["path"],) for r in rows])

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.folder).as_posix()
        except ValueError as exc:
            raise UserError(f"{path} is not inside the gallery folder {self.folder}.") from exc

    # ------------------------------------------------------------ queries

    def search(
        self,
        query: str = "",
        *,
        favourites_only: bool = False,
        newest_first: bool = True,
        limit: int | None = None,
        offset: int = 0,
    ) -> list[GalleryImage]:
        """Images matching `query`: prompt words, "a phrase", seed:123, model:name, sampler:x,
        steps:20, cfg:7, size:512x512, neg:word (negative prompt), is:fav."""
        sql, args = self._select(_COLUMNS, query, favourites_only, newest_first, limit, offset)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [self._image(r) for r in rows]

    def search_ids(self, query: str = "", *, favourites_only: bool = False,
                   newest_first: bool = True) -> list[int]:
        """Like search() but only the row ids: what a virtual list needs up front."""
        sql, args = self._select("id", query, favourites_only, newest_first, None, 0)
        with self._lock:
            return [i for (i,) in self._db.execute(sql, args)]

    def get_many(self, ids: list[int]) -> list[GalleryImage]:
        """The rows of `ids`, in that order (ids no longer in the index are left out)."""
        found: dict[int, GalleryImage] = {}
        with self._lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                sql = f"SELECT {_COLUMNS} FROM images WHERE id IN ({','.join('?' * len(chunk))})"
                found.update((r[0], self._image(r)) for r in self._db.execute(sql, chunk))
        return [found[i] for i in ids if i in found]

    def _select(self, columns: str, query: str, favourites_only: bool, newest_first: bool,
                limit: int | None, offset: int) -> tuple[str, list[Any]]:
        where, args = parse_query(query)
        if favourites_only:
            where.append("favourite = 1")
        sql = f"SELECT {columns} FROM images"
        if where:
            sql += " WHERE " + " AND ".join(where)
        order = "DESC" if newest_first else "ASC"
        sql += f" ORDER BY created {order}, id {order}"
        if limit is not None:
            sql += " LIMIT ? OFFSET ?"
            args += [limit, offset]
        return sql, args

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM images").fetchone()[0]

    def get(self, path: str | os.PathLike[str]) -> GalleryImage | None:
        rel = self._rel(Path(path).resolve())
        with self._lock:
            row = self._db.execute(f"SELECT {_COLUMNS} FROM images WHERE path = ?",
                                   (rel,)).fetchone()
        return self._image(row) if row else None

    def _image(self, r: tuple[Any, ...]) -> GalleryImage:
        file = self._root + r[1] if os.sep == "/" else os.path.join(self._root, r[1])
        return GalleryImage(r[0], file, *r[2:12], bool(r[12]), r[13], r[14])

    def parameters(self, path: str | os.PathLike[str]) -> Parameters | None:
        """The full parameters, read from the file itself."""
        return metadata.read_png(path)

    # ------------------------------------------------------------ changes

    def set_favourite(self, path: str | os.PathLike[str], favourite: bool = True) -> None:
        rel = self._rel(Path(path).resolve())
        with self._lock:
            self._db.execute("UPDATE images SET favourite = ? WHERE path = ?",
                             (int(favourite), rel))
            favs = [p for (p,) in self._db.execute("SELECT path FROM images WHERE favourite")]
        self._write_saved_favourites(favs)

    def _write_saved_favourites(self, favs: list[str]) -> None:
        """Keep the favourites beside the files too, so a lost index does not lose them."""
        target = self.folder / FAVOURITES_FILE
        tmp = target.with_name(f"{metadata.TEMP_PREFIX}{os.getpid()}-favourites{metadata.TEMP_SUFFIX}")
        try:
            tmp.write_text(json.dumps({"favourites": sorted(favs)}, ensure_ascii=False), "utf-8")
            os.replace(tmp, target)
        except OSError:  # a read-only folder: the index still holds them
            tmp.unlink(missing_ok=True)

    def _apply_saved_favourites(self) -> None:
        try:
            data = json.loads((self.folder / FAVOURITES_FILE).read_text("utf-8"))
            favs = [p for p in data["favourites"] if isinstance(p, str)]
        except (OSError, ValueError, KeyError, TypeError):
            return
        self._db.executemany("UPDATE images SET favourite = 1 WHERE path = ? AND NOT favourite",
                             [(p,) for p in favs])

    def delete(self, path: str | os.PathLike[str], *, permanently: bool = False) -> None:
        """Move the file to the system trash (or delete it); its row goes first."""
        path = Path(path).resolve()
        rel = self._rel(path)
        with self._lock:
            self._db.execute("DELETE FROM images WHERE path = ?", (rel,))
        try:
            if permanently:
                path.unlink(missing_ok=True)
            elif path.exists():
                from send2trash import send2trash

                send2trash(path)
        except Exception as exc:
            self.add_file(path)  # still there: keep it listed
            raise UserError(f"Could not move {path.name} to the trash ({exc}).") from exc


# ---------------------------------------------------------------- rows and queries


def _row_values(path: Path, rel: str, st: os.stat_result) -> dict[str, Any]:
    """The index row of one PNG, read from its text chunks (no pixel decoding)."""
    info, (w, h) = metadata.read_info(path)
    p = metadata.parameters_from_info(info) or Parameters()
    size = p.size or (w, h)
    created = p.record.get("created") if p.record else None
    return {
        "path": rel, "prompt": p.prompt, "negative_prompt": p.negative_prompt,
        "seed": p.seed, "model": p.model or None, "sampler": p.sampler or None,
        "width": size[0], "height": size[1], "steps": p.steps, "cfg": p.cfg,
        "created": float(created) if isinstance(created, (int, float)) else st.st_mtime,
        "file_size": st.st_size, "mtime_ns": st.st_mtime_ns,
        "source": p.source if p.settings or p.prompt else None,
    }


_TOKEN = re.compile(r'(\w+):("[^"]*"|\S+)|"([^"]*)"|(\S+)')
_INT_KEYS = {"seed": "seed", "steps": "steps"}
_LIKE_KEYS = {"model": "model", "sampler": "sampler"}


def _fts_phrase(text: str, prefix: bool) -> str:
    return '"' + text.replace('"', '""') + '"' + ("*" if prefix else "")


def parse_query(query: str) -> tuple[list[str], list[Any]]:
    """Search text -> SQL conditions and arguments. Bad filter values raise one UserError."""
    where: list[str] = []
    args: list[Any] = []
    fts: list[str] = []
    for key, value, phrase, word in _TOKEN.findall(query):
        key = key.lower()
        value = value.strip('"')
        if key in _INT_KEYS:
            try:
                args.append(int(value))
            except ValueError:
                raise UserError(f"{key}: needs a whole number, like {key}:123.") from None
            where.append(f"{_INT_KEYS[key]} = ?")
        elif key in _LIKE_KEYS:
            where.append(f"{_LIKE_KEYS[key]} LIKE ? ESCAPE '\\'")
            args.append("%" + re.sub(r"([%_\\])", r"\\\1", value) + "%")
        elif key == "cfg":
            try:
                args.append(float(value))
            except ValueError:
                raise UserError("cfg: needs a number, like cfg:7.5.") from None
            where.append("abs(cfg - ?) < 1e-6")
        elif key == "size":
            m = re.fullmatch(r"(\d+)x(\d+)", value.lower())
            if not m:
                raise UserError("size: needs width x height, like size:512x512.")
            where.append("width = ? AND height = ?")
            args += [int(m.group(1)), int(m.group(2))]
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

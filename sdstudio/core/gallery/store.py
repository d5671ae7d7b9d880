"""The gallery: a folder of PNG files the user owns + an SQLite index that is always rebuildable.

The index (WAL, FTS5 over prompts) lives in the cache folder, keyed by the gallery folder, so a
read-only folder can still be browsed. Order of operations keeps the rule "never an index row
without its file": save writes the file (atomically) before its row; delete removes the row
before the file. A crash in between leaves a file without a row, which `sync` picks up.

Several processes may share one gallery: SQLite waits on their locks (a busy timeout), only a
failed integrity check counts as a damaged index, and sync re-checks a missing file inside its
transaction before it drops the row. No single file can stop a sync: every error is caught per
file and named once in the report.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from PIL import Image

from sdstudio.core import atomic
from sdstudio.core.errors import UserError
from sdstudio.core.gallery.query import MAX_VALUES, parse_query
from sdstudio.core.paths import cache_dir, default_gallery_dir
from sdstudio.core.png import MetadataError, Parameters, display_name, io
from sdstudio.core.png.parameters import clean_text

if TYPE_CHECKING:
    from sdstudio.core.request import GenerationRequest

SCHEMA_VERSION = "2"  # 2: images_model_filters, full planner statistics (see _upgrade)
BUSY_TIMEOUT = 30.0  # seconds SQLite waits for another process's lock before giving up
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
-- the filter bar's exact keys (model:"x", is:fav, size:WxH, ...) walk these newest first.
-- The model one holds every other filter column too: model:x with tool:, sampler:, size:, steps:,
-- cfg: or is:fav is answered from the index alone (reading 20k rows of the table for their tool
-- took 60 ms at 100k images; this walk takes a few).
CREATE INDEX IF NOT EXISTS images_model_filters ON images(
    model COLLATE NOCASE, created, id, source, sampler, width, height, steps, cfg, favourite, seed);
CREATE INDEX IF NOT EXISTS images_sampler ON images(sampler COLLATE NOCASE, created);
CREATE INDEX IF NOT EXISTS images_source ON images(source COLLATE NOCASE, created);
CREATE INDEX IF NOT EXISTS images_favourite ON images(favourite, created);
CREATE INDEX IF NOT EXISTS images_size ON images(width, height, created);
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

Progress = Callable[[int, int], None]  # (files read, files to read)
PROGRESS_EVERY = 250  # files between two progress calls
ANALYZE_AFTER = 1000  # rows changed by a sync before the query planner's statistics are redone
MAX_DISTINCT = 1000  # distinct values a substring key walks one by one; more: one scan of them all
READER_CACHE_KIB = 65536  # the query connection's page cache (SQLite's default is 2 MiB)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")  # JPEG/WebP: EXIF parameters (A1111, SwarmUI)


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


# The columns a GalleryImage is read from, in its field order (the index stores `file` as `path`,
# relative to the folder): one definition, so a new field cannot shift the others.
_COLUMNS = ", ".join("path" if f == "file" else f for f in GalleryImage._fields)
_FILE, _FAVOURITE = GalleryImage._fields.index("file"), GalleryImage._fields.index("favourite")


@dataclass
class SyncReport:
    added: int = 0
    updated: int = 0
    removed: int = 0
    errors: list[str] = field(default_factory=list)  # one sentence per file found unreadable now
    skipped: list[str] = field(default_factory=list)  # the same, for files known bad before

    @property
    def unreadable(self) -> list[str]:
        return self.errors + self.skipped


class IndexNotUpdated(UserError):
    """The file was saved, but its index row could not be written (sync will list it)."""

    def __init__(self, message: str, path: Path) -> None:
        super().__init__(message)
        self.path = path


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
        read_only: bool = False,
    ) -> None:
        # read_only: another tool's folder (a source). Nothing is written or removed inside it;
        # favourites stay in the index (which lives in the cache folder, like the thumbnails).
        self.read_only = read_only
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
        self._lock = threading.RLock()  # the writing connection (saves, sync: pool threads)
        self._stopping = threading.Event()  # set by stop(): a running sync ends early
        self._db = self._connect()
        # Queries have their own connection: in WAL mode a reader never waits for a writer, so
        # the window's list does not stall while a sync indexes a big folder.
        self._read_lock = threading.Lock()
        self._reader = sqlite3.connect(self.index_path, check_same_thread=False,
                                       timeout=BUSY_TIMEOUT, isolation_level=None)
        # 100k images make a ~50 MB index: a search that reads 20k rows must find their pages
        # in memory, not ask the OS for them again (an upper bound, filled only as pages are read)
        self._reader.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB}")
        self.last_sync = SyncReport()
        if sync:
            self.sync()

    # ------------------------------------------------------------ connection

    def _connect(self) -> sqlite3.Connection:
        try:
            self.index_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise UserError(f"Could not create the index folder {self.index_path.parent}: "
                            f"{exc.strerror or exc}.") from exc
        try:
            return self._open_db()
        except sqlite3.DatabaseError as exc:
            if _is_busy(exc) or not _is_damaged(self.index_path):
                raise UserError(f"The gallery index is in use by another program and did not "
                                f"become free ({exc}); try again in a moment.") from exc
        # Damaged for certain: the index is only a cache of the files, read them again.
        for suffix in ("", "-wal", "-shm"):
            Path(f"{self.index_path}{suffix}").unlink(missing_ok=True)
        return self._open_db()

    def _open_db(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.index_path, check_same_thread=False, timeout=BUSY_TIMEOUT,
                             isolation_level=None)  # autocommit; explicit BEGIN where needed
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")  # two processes making a new index: one makes it
            try:
                if _stored_version(db) is None:  # new (an older one is upgraded by sync)
                    _upgrade(db)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('folder', ?)", (str(self.folder),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError:
            db.close()
            raise
        return db

    def stop(self) -> None:
        """Make a sync running in another thread end soon (before close: switching folders
        must not wait for 100,000 files to be read)."""
        self._stopping.set()

    def close(self) -> None:
        with self._lock, self._read_lock:
            self._reader.close()
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
        """Write the PNG (atomically, never over another file), then index it.

        Raises UserError when no file was written; IndexNotUpdated (a UserError) when the file
        was written but its row was not: the caller must not save that image again.
        """
        self._refuse_if_read_only("save images into")
        name = file_name_for(request.prompt, seed, time.time())
        for n in range(1000):
            target = self.folder / (name if n == 0 else name.replace(".png", f"-{n}.png"))
            if os.path.lexists(target):
                continue
            try:
                io.write_png(target, image, request, seed, extra, overwrite=False,
                             what="gallery folder")
                break
            except FileExistsError:
                continue
        else:
            raise UserError(f"Could not find a free file name for the image in {self.folder}.")
        try:
            return self._index_one(target)
        except Exception as exc:
            raise IndexNotUpdated(f"{target.name} is saved, but the gallery index could not be "
                                  f"updated ({exc}); it will be listed the next time the gallery "
                                  "opens.", target) from exc

    def add_file(self, path: str | os.PathLike[str]) -> GalleryImage | None:
        """Index one file of the folder (new or changed); None if it cannot be read."""
        try:
            return self._index_one(Path(path).resolve())
        except (OSError, MetadataError):
            return None
        except sqlite3.Error as exc:
            raise UserError(f"{display_name(path)} could not be added to the gallery index "
                            f"({exc}); it will be listed the next time the gallery opens.") from exc

    def _index_one(self, path: Path) -> GalleryImage:
        rel = self._rel(path)
        if clean_text(rel) != rel:
            raise MetadataError(_bad_name(rel))
        values = _row_values(path, rel, path.stat())
        with self._lock:  # the row comes back from the write itself: a concurrent rebuild
            row = self._db.execute(_upsert_sql(list(values)) + f" RETURNING {_COLUMNS}",
                                   tuple(values.values())).fetchone()
            self._db.execute("DELETE FROM skipped WHERE path = ?", (rel,))
        return self._image(row)

    # ------------------------------------------------------------ syncing with the folder

    def sync(self, progress: Progress | None = None) -> SyncReport:
        """Pick up files added, changed or removed outside the app (no full rebuild).

        Never fails because of a file: each unreadable one is named once in the report.
        `progress(done, total)` is called from this thread while new files are read."""
        self._upgrade_schema()
        if not self.read_only:
            atomic.remove_stale_temp_files(self.folder)
        on_disk = dict(self._scan())
        with self._lock:
            indexed = {p: (s, m) for p, s, m in
                       self._db.execute("SELECT path, file_size, mtime_ns FROM images")}
            skipped = {p: (s, m, r) for p, s, m, r in
                       self._db.execute("SELECT path, file_size, mtime_ns, reason FROM skipped")}
        report = SyncReport()
        todo = []
        for rel, st in on_disk.items():
            known = skipped.get(_key(rel))
            if known is not None and known[:2] == (st.st_size, st.st_mtime_ns):
                report.skipped.append(known[2])
            elif indexed.get(rel) != (st.st_size, st.st_mtime_ns):
                todo.append((rel, st))
        rows, bad = [], []
        for n, (rel, st) in enumerate(todo):
            if progress is not None and n % PROGRESS_EVERY == 0:
                progress(n, len(todo))
            if self._stopping.is_set():
                break  # what was read is kept; the next sync reads the rest
            try:
                if clean_text(rel) != rel:
                    raise MetadataError(_bad_name(rel))
                rows.append(_row_values(self.folder / rel, rel, st))
            except FileNotFoundError:
                continue  # vanished while scanning: the next sync sees it gone
            except Exception as exc:  # noqa: BLE001 - any file, any failure: name it, go on
                reason = _describe_bad_file(rel, exc)
                bad.append((_key(rel), st.st_size, st.st_mtime_ns, reason))
                report.errors.append(reason)
        keys_on_disk = {_key(rel) for rel in on_disk}
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                # Re-read inside the write lock: another process may have saved since the scan.
                now_indexed = [p for (p,) in self._db.execute("SELECT path FROM images")]
                gone = [p for p in now_indexed if p not in on_disk
                        and not os.path.lexists(self.folder / p)]
                self._db.executemany("DELETE FROM images WHERE path = ?", [(p,) for p in gone])
                self._db.executemany("DELETE FROM skipped WHERE path = ?",
                                     [(p,) for p in skipped if p not in keys_on_disk])
                self._db.executemany("INSERT OR REPLACE INTO skipped VALUES (?, ?, ?, ?)", bad)
                report.errors += self._upsert(rows)
                if rows and not self.read_only:
                    self._apply_saved_favourites()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if len(rows) + len(gone) > ANALYZE_AFTER or not self._has_statistics():
            self._analyze()
        report.removed = len(gone)
        report.updated = sum(1 for r in rows if r["path"] in indexed)
        report.added = len(rows) - report.updated
        self.last_sync = report
        return report

    def _upgrade_schema(self) -> None:
        """Bring an index of an older version up to date. Here, in the sync's thread, not on
        open: at 100k images it takes about a second, which the window must not wait for (until
        then the old index answers every search, a little slower)."""
        with self._lock:
            if _stored_version(self._db) == SCHEMA_VERSION:
                return
            self._db.execute("BEGIN IMMEDIATE")  # two processes: the second finds it done
            try:
                _upgrade(self._db)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _has_statistics(self) -> bool:
        with self._lock:
            if not self._db.execute(
                    "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'").fetchone():
                return False
            return bool(self._db.execute(
                "SELECT 1 FROM sqlite_stat1 WHERE tbl = 'images' LIMIT 1").fetchone())

    def _analyze(self) -> None:
        """Refresh the planner's statistics: without them `tool:"a1111" model:"x"` walks the
        tool index (every image of the folder) instead of the model one. Not sampled: a sampled
        ANALYZE (analysis_limit) rated every index alike at 100k images; the full one reads each
        index once (~0.1 s at 100k images, in the sync's thread)."""
        with self._lock, contextlib.suppress(sqlite3.OperationalError):  # busy: next time
            self._db.execute("ANALYZE")

    def rebuild(self, progress: Progress | None = None) -> SyncReport:
        """Forget the index and read every file again (favourites are kept)."""
        with self._lock:
            favs = [p for (p,) in self._db.execute("SELECT path FROM images WHERE favourite")]
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM images")
            self._db.execute("DELETE FROM skipped")
            self._db.execute("INSERT INTO images_fts(images_fts) VALUES ('rebuild')")
            self._db.execute("COMMIT")
            report = self.sync(progress)
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
                    elif e.name.lower().endswith(IMAGE_SUFFIXES) and e.is_file():
                        rel = e.path[cut:]
                        yield (rel.replace(os.sep, "/") if os.sep != "/" else rel), e.stat()
                except OSError:
                    continue

    def _upsert(self, rows: list[dict[str, Any]]) -> list[str]:
        """Write the rows; one that SQLite refuses is left out and named (the rest still go)."""
        if not rows:
            return []
        sql = _upsert_sql(list(rows[0]))
        try:
            self._db.executemany(sql, [tuple(r.values()) for r in rows])
            failed: list[str] = []
        except sqlite3.DatabaseError:  # find the odd one (the upsert is idempotent)
            failed = []
            for r in rows:
                try:
                    self._db.execute(sql, tuple(r.values()))
                except sqlite3.DatabaseError as exc:
                    if _is_busy(exc):
                        raise
                    failed.append(f"{display_name(r['path'])} could not be indexed ({exc}).")
        self._db.executemany("DELETE FROM skipped WHERE path = ?", [(r["path"],) for r in rows])
        return failed

    def _refuse_if_read_only(self, what: str) -> None:
        if self.read_only:
            raise UserError(f"{self.folder} is a read-only source: sdstudio does not {what} it.")

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
        steps:20, cfg:7, size:512x512, neg:word (negative prompt), tool:comfyui, is:fav."""
        sql, args = self._select(_COLUMNS, query, favourites_only, newest_first, limit, offset)
        with self._read_lock, _search_errors():
            rows = self._reader.execute(sql, args).fetchall()
        return [self._image(r) for r in rows]

    def search_ids(self, query: str = "", *, favourites_only: bool = False,
                   newest_first: bool = True) -> list[int]:
        """Like search() but only the row ids: what a virtual list needs up front."""
        sql, args = self._select("id", query, favourites_only, newest_first, None, 0)
        with self._read_lock, _search_errors():
            return [i for (i,) in self._reader.execute(sql, args)]

    def get_many(self, ids: list[int]) -> list[GalleryImage]:
        """The rows of `ids`, in that order (ids no longer in the index are left out)."""
        found: dict[int, GalleryImage] = {}
        with self._read_lock:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                sql = f"SELECT {_COLUMNS} FROM images WHERE id IN ({','.join('?' * len(chunk))})"
                found.update((r[0], self._image(r)) for r in self._reader.execute(sql, chunk))
        return [found[i] for i in ids if i in found]

    def _select(self, columns: str, query: str, favourites_only: bool, newest_first: bool,
                limit: int | None, offset: int) -> tuple[str, list[Any]]:
        where, args = parse_query(query, self._values_like)
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

    def _values_like(self, column: str, pattern: str) -> list[str]:
        """The distinct values of `column` LIKE `pattern`, one per case-insensitive spelling.

        The index on `column COLLATE NOCASE` is walked from one distinct value to the next (a
        seek each: a few hundred names cost well under a millisecond, where reading every
        entry of the index took 10-20 ms at 100k images); LIKE then runs over those names only.
        A column with more than MAX_DISTINCT values: the one scan of its whole index."""
        walk = (f"WITH RECURSIVE d(v) AS ("
                f"SELECT (SELECT {column} COLLATE NOCASE FROM images WHERE {column} IS NOT NULL "
                f"ORDER BY {column} COLLATE NOCASE LIMIT 1) "
                f"UNION ALL SELECT (SELECT {column} COLLATE NOCASE FROM images "
                f"WHERE {column} COLLATE NOCASE > d.v ORDER BY {column} COLLATE NOCASE LIMIT 1) "
                f"FROM d WHERE d.v IS NOT NULL LIMIT {MAX_DISTINCT + 2}) "
                f"SELECT v, v LIKE ? ESCAPE '\\' FROM d WHERE v IS NOT NULL")
        scan = (f"SELECT DISTINCT {column} COLLATE NOCASE FROM images "
                f"WHERE {column} LIKE ? ESCAPE '\\' LIMIT ?")
        with self._read_lock, _search_errors():
            names = self._reader.execute(walk, (pattern,)).fetchall()
            if len(names) <= MAX_DISTINCT:
                return [v for v, like in names if like][:MAX_VALUES + 1]
            return [v for (v,) in self._reader.execute(scan, (pattern, MAX_VALUES + 1))]

    def count(self) -> int:
        with self._read_lock:
            return self._reader.execute("SELECT count(*) FROM images").fetchone()[0]

    def values(self, column: str, limit: int = 200) -> list[str]:
        """The distinct values of model, sampler, source (tool) or size ('512x768'), most used
        first: what the filter bar offers."""
        if column == "size":
            sql = ("SELECT width || 'x' || height AS v FROM images WHERE width AND height "
                   "GROUP BY v ORDER BY count(*) DESC, v LIMIT ?")
        elif column in ("model", "sampler", "source"):
            sql = (f"SELECT {column} FROM images WHERE {column} IS NOT NULL AND {column} != '' "
                   f"GROUP BY {column} ORDER BY count(*) DESC, {column} LIMIT ?")
        else:
            raise ValueError(column)
        with self._read_lock:
            return [v for (v,) in self._reader.execute(sql, (limit,))]

    def get(self, path: str | os.PathLike[str]) -> GalleryImage | None:
        rel = self._rel(Path(path).resolve())
        with self._read_lock:
            row = self._reader.execute(f"SELECT {_COLUMNS} FROM images WHERE path = ?",
                                   (rel,)).fetchone()
        return self._image(row) if row else None

    def _image(self, r: tuple[Any, ...]) -> GalleryImage:
        values = list(r)
        rel = values[_FILE]
        values[_FILE] = self._root + rel if os.sep == "/" else os.path.join(self._root, rel)
        values[_FAVOURITE] = bool(values[_FAVOURITE])
        return GalleryImage._make(values)

    def parameters(self, path: str | os.PathLike[str]) -> Parameters | None:
        """The full parameters, read from the file itself."""
        return io.read_png(path)

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
        if self.read_only:
            return
        text = json.dumps({"favourites": sorted(favs)}, ensure_ascii=False)
        with contextlib.suppress(OSError):  # a read-only folder: the index still holds them
            atomic.write_text(self.folder / FAVOURITES_FILE, text)

    def _apply_saved_favourites(self) -> None:
        try:
            data = json.loads((self.folder / FAVOURITES_FILE).read_text("utf-8"))
            favs = [p for p in data["favourites"] if isinstance(p, str) and clean_text(p) == p]
        except Exception:  # noqa: BLE001 - a damaged or hostile file: the index keeps its own
            return
        self._db.executemany("UPDATE images SET favourite = 1 WHERE path = ? AND NOT favourite",
                             [(p,) for p in favs])

    def delete(self, path: str | os.PathLike[str], *, permanently: bool = False) -> None:
        """Move the file to the system trash (or delete it); its row goes first."""
        self._refuse_if_read_only("delete files of")
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




# ---------------------------------------------------------------- rows


_INT64 = 1 << 63


def _row_values(path: Path, rel: str, st: os.stat_result) -> dict[str, Any]:
    """The index row of one PNG, read from its text chunks (no pixel decoding). Every value is
    made fit for its column: odd files hold any JSON (lists, NaN, 2**64, lone surrogates)."""
    found, (w, h) = io.read_png_and_size(path)
    p = found or Parameters()
    size = p.size or (w, h)
    created = _real(p.record.get("created") if isinstance(p.record, dict) else None)
    return {
        "path": rel, "prompt": _text(p.prompt), "negative_prompt": _text(p.negative_prompt),
        "seed": _int(p.seed), "model": _text(p.model) or None, "sampler": _text(p.sampler) or None,
        "width": _int(size[0]), "height": _int(size[1]), "steps": _int(p.steps),
        "cfg": _real(p.cfg), "created": st.st_mtime if created is None else created,
        "file_size": st.st_size, "mtime_ns": st.st_mtime_ns,
        "source": p.source if p.settings or p.prompt else None,
    }


def _text(value: Any) -> str:
    return clean_text(value) if isinstance(value, str) else ""


def _int(value: Any) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and -_INT64 <= value < _INT64
    return value if ok else None  # a seed past SQLite's 64 bits stays in the file, not the index


def _real(value: Any) -> float | None:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except OverflowError:
        return None
    return value if math.isfinite(value) else None


def _upsert_sql(cols: list[str]) -> str:
    return (f"INSERT INTO images ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))}) "
            "ON CONFLICT(path) DO UPDATE SET "
            + ", ".join(f"{c} = excluded.{c}" for c in cols if c != "path"))


def _key(rel: str) -> str:
    """`rel` as the index can store it (a name that is not UTF-8 gets escapes)."""
    if clean_text(rel) == rel:
        return rel
    return rel.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _bad_name(rel: str) -> str:
    return f"{display_name(rel)} has a file name that is not valid UTF-8: rename it to list it."


def _describe_bad_file(rel: str, exc: BaseException) -> str:
    if isinstance(exc, UserError):
        return str(exc)
    return f"{display_name(rel)} could not be read ({type(exc).__name__}: {exc})."


def _upgrade(db: sqlite3.Connection) -> None:
    """Bring the index to SCHEMA_VERSION in place (inside the caller's transaction): every
    version so far only added indexes, so the rows, favourites included, stay as they are. An
    index written by a newer sdstudio is used as it is and keeps its version."""
    stored = _stored_version(db)
    version = int(stored) if isinstance(stored, str) and stored.isascii() and stored.isdigit() \
        else 1
    if stored is not None and version >= int(SCHEMA_VERSION):
        return  # the common case: nothing to do
    if stored is not None and version < 2:
        # 1 -> 2: images_model (model, created) becomes images_model_filters (made below)
        db.execute("DROP INDEX IF EXISTS images_model")
    # executescript() would COMMIT the caller's transaction: run the statements one by one.
    for statement in _statements(_SCHEMA):
        db.execute(statement)
    if stored is not None and version < 2:
        # The sampled statistics of version 1 rated every index alike (a tool that every image
        # shares looked as selective as a model name): redo them in full, once (at 100k images
        # ~1 s for this open, the new index included; every later open is as fast as before).
        db.execute("ANALYZE")
    db.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (SCHEMA_VERSION,))


def _stored_version(db: sqlite3.Connection) -> str | None:
    """The schema version the index was written with; None for a new (empty) one."""
    if not db.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone():
        return None
    row = db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    return str(row[0]) if row else None


def _statements(script: str) -> list[str]:
    """The statements of a script, split where sqlite3 says a statement is complete (triggers
    hold semicolons of their own)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            out.append(current.strip())
            current = ""
    return [s for s in out if s]


def _is_busy(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _is_damaged(index: Path) -> bool:
    """True only when SQLite itself says the file is not a sound database."""
    try:
        db = sqlite3.connect(index, timeout=BUSY_TIMEOUT)
    except sqlite3.Error:
        return True
    try:
        result = db.execute("PRAGMA integrity_check").fetchone()
        return result is None or result[0] != "ok"
    except sqlite3.DatabaseError as exc:
        return not _is_busy(exc)
    finally:
        db.close()


@contextlib.contextmanager
def _search_errors() -> Iterator[None]:
    try:
        yield
    except sqlite3.OperationalError as exc:
        if _is_busy(exc):
            raise UserError("The gallery index is busy (another program is writing it); "
                            "search again in a moment.") from exc
        raise UserError(f"The search text could not be understood ({exc}).") from exc

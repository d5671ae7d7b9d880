"""Model file hashes: SHA-256 and A1111's short hash (its first 10 hex digits), cached by path,
size and modification time so a 7 GB checkpoint is hashed once, and computable in the background.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from sdstudio.core.models.jsonstore import read_json, write_json
from sdstudio.core.paths import cache_dir

_LOCK = threading.Lock()
_POOL: ThreadPoolExecutor | None = None
_RUNNING: dict[str, Future[str]] = {}  # background hashes in flight, by resolved path


def sha256_file(path: Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _file() -> Path:
    return cache_dir() / "model_hashes.json"


def _stamp(path: Path) -> str:
    st = path.stat()
    return f"{st.st_size}:{st.st_mtime_ns}"


def _read() -> dict:
    return read_json(_file())


def cached_sha256(path: str | os.PathLike[str]) -> str | None:
    """The cached hash, if the file has not changed since it was hashed; never reads the file."""
    p = Path(path).resolve()
    entry = _read().get(str(p))
    try:
        if entry and entry.get("stamp") == _stamp(p):
            return entry.get("sha256")
    except OSError:
        pass
    return None


def sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a model file, from the cache when size and mtime still match."""
    p = Path(path).resolve()
    hit = cached_sha256(p)
    if hit:
        return hit
    running = _RUNNING.get(str(p))
    if running is not None and not threading.current_thread().name.startswith("model-hash"):
        return running.result()  # a background hash of this file is under way: wait for it
    stamp = _stamp(p)
    digest = sha256_file(p)
    with _LOCK:
        data = _read()
        data[str(p)] = {"stamp": stamp, "sha256": digest}
        write_json(_file(), data)
    return digest


def short_hash(path: str | os.PathLike[str]) -> str:
    """A1111's "Model hash": the first 10 hex digits of the file's SHA-256."""
    return sha256(path)[:10]


def _background_priority() -> None:
    """The hash thread at the lowest CPU priority, so hashing a just-loaded 4 GB file does not
    take a core from the first steps (Linux: a thread id is a task, niced on its own)."""
    if sys.platform.startswith("linux"):
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
        except OSError:
            pass


def hash_in_background(
    path: str | os.PathLike[str], done: Callable[[str, str], None] | None = None
) -> Future[str]:
    """Hash on a worker thread; `done(path, sha256)` is called from that thread when finished."""
    global _POOL
    with _LOCK:
        if _POOL is None:
            _POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model-hash",
                                       initializer=_background_priority)
    key = str(Path(path).resolve())
    future = _POOL.submit(sha256, path)
    _RUNNING[key] = future
    future.add_done_callback(lambda _f: _RUNNING.pop(key, None))
    if done is not None:
        future.add_done_callback(
            lambda f: done(str(path), f.result()) if f.exception() is None else None
        )
    return future

"""CPU threads for torch: one per physical core, shared fairly between sdstudio engine processes.

Hyper-threads do not speed up torch's GEMMs (they share the core's vector units) and two
processes each running one thread per core slow each other down far more than they gain, so:

- `SDSTUDIO_THREADS`, else `OMP_NUM_THREADS` (the user's, or Ray's for an actor) wins;
- else a caller's share (a Ray actor's CPUs);
- else physical cores // live engine processes (at least 1).

Each engine process registers itself with a lock file in the runtime folder, held with an OS
file lock (flock on POSIX, msvcrt on Windows) for the life of the process: the OS drops the lock
when the process dies, however it dies, so a dead process's file counts for nothing (and is
removed by the next count). `configure()` is called at the start of each job, so a second process
starting or ending changes the count of the next one. No torch import at module level.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import IO

from sdstudio.core.paths import runtime_dir

ENV = "SDSTUDIO_THREADS"
_SUFFIX = ".lock"
# registry folder -> this process's locked file (kept open) and its counted name
_held: dict[Path, tuple[IO[bytes], Path]] = {}
_interop_set = False


def physical_cores() -> int:
    """Physical cores this process may run on (logical ones when the count is unknown)."""
    import psutil

    n = psutil.cpu_count(logical=False) or os.cpu_count() or 1
    try:
        n = min(n, len(os.sched_getaffinity(0)))  # a container's or taskset's share
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        pass
    return max(1, n)


def registry() -> Path:
    return runtime_dir() / "engines"


def register() -> None:
    """Count this process as a live engine process (idempotent; held until the process ends)."""
    folder = registry()
    if folder in _held and _held[folder][1].name.startswith(f"{os.getpid()}-"):
        return  # (a forked child inherits the dict, not the registration: it registers anew)
    folder.mkdir(parents=True, exist_ok=True)
    name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    path = folder / (name + _SUFFIX)
    if sys.platform == "win32":  # an open file cannot be renamed there, nor removed by another process
        f = open(path, "a+b")  # noqa: SIM115 - held for the process's life
        _lock(f, blocking=True)
    else:  # locked before it gets its counted name, so no count sees it unlocked
        tmp = folder / (name + ".tmp")
        f = open(tmp, "a+b")  # noqa: SIM115
        _lock(f, blocking=True)
        os.replace(tmp, path)
    _held[folder] = (f, path)


def live_engines() -> int:
    """Registered engine processes still alive, this one included if registered."""
    folder = registry()
    own = _held[folder][1] if folder in _held else None
    try:
        entries = list(folder.iterdir())
    except OSError:
        entries = []
    others = sum(1 for p in entries if p.suffix == _SUFFIX and p != own and _is_held(p))
    return others + (own is not None)


def thread_count(share: float | None = None) -> int:
    """How many intra-op threads this process should use now (see the module docstring)."""
    for var in (ENV, "OMP_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    if share is not None:  # a fraction of a CPU still runs on one thread
        return max(1, int(share))
    return max(1, physical_cores() // max(1, live_engines()))


def configure(share: float | None = None) -> int:
    """Register this process and set torch's threads for the next job; returns the count."""
    import torch

    try:
        register()
    except OSError:  # an unwritable runtime folder: count this process alone, never fail a job
        pass
    n = thread_count(share)
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    global _interop_set
    if not _interop_set:  # settable once, and only before any parallel work has started
        _interop_set = True
        try:
            torch.set_num_interop_threads(n)
        except RuntimeError:
            pass
    return n


def _is_held(path: Path) -> bool:
    """True when a live process holds the file's lock; a dead one's file is removed."""
    try:
        f = open(path, "a+b")  # noqa: SIM115
    except OSError:
        return False
    with f:
        if not _lock(f, blocking=False):
            return True
        try:  # ours now, so its process is gone: tidy up (a failure only leaves a stale file)
            path.unlink()
        except OSError:
            pass
        _unlock(f)
    return False


def _lock(f: IO[bytes], blocking: bool) -> bool:
    if sys.platform == "win32":
        import msvcrt

        f.seek(0)
        try:
            msvcrt.locking(f.fileno(), msvcrt.LK_LOCK if blocking else msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
    except OSError:  # BlockingIOError: another process holds it
        return False
    return True


def _unlock(f: IO[bytes]) -> None:
    if sys.platform == "win32":
        import msvcrt

        f.seek(0)
        try:
            msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
    else:
        import fcntl

        fcntl.flock(f.fileno(), fcntl.LOCK_UN)

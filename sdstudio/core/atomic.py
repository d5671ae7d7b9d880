"""The one way sdstudio writes a file: a private temp file beside the target, fsync, rename.

The temp file is made by `tempfile.mkstemp` in the target's folder, so it is created exclusively
(`O_CREAT | O_EXCL | O_NOFOLLOW`) under an unpredictable name: a symlink planted in a shared folder
is never followed. The rename replaces the final name itself (a symlink there is replaced, not
written through). A crash leaves either the old file, or the whole new one, plus at most a hidden
`.sdstudio-<pid>-*.tmp` that `remove_stale_temp_files` clears once its process is gone.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

TEMP_PREFIX = ".sdstudio-"  # temporary files of unfinished writes start with this
TEMP_SUFFIX = ".tmp"
_TEMP_PID = re.compile(rf"{re.escape(TEMP_PREFIX)}(\d+)-")


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_read_umask()  # mkstemp makes 0600 files; give the user's usual mode


def write_atomic(
    path: str | os.PathLike[str],
    write: Callable[[BinaryIO], object],
    *,
    overwrite: bool = True,
    durable: bool = True,
) -> Path:
    """Call `write(f)` on a fresh temp file, then move it to `path` in one step.

    overwrite=False never replaces an existing file (FileExistsError, the temp file removed).
    durable=False skips the fsyncs (for caches such as thumbnails, rebuilt when lost).
    Errors propagate unchanged after the temp file is removed.
    """
    final = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-", suffix=TEMP_SUFFIX,
                                    dir=final.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            if os.name == "posix":
                os.fchmod(f.fileno(), _FILE_MODE)
            write(f)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        _commit(tmp, final, overwrite)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(final.parent)
    return final


def write_bytes(path: str | os.PathLike[str], data: bytes, **kwargs: bool) -> Path:
    return write_atomic(path, lambda f: f.write(data), **kwargs)


def write_text(path: str | os.PathLike[str], text: str, **kwargs: bool) -> Path:
    return write_bytes(path, text.encode("utf-8"), **kwargs)


def _commit(tmp: Path, final: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, final)
        return
    try:
        os.link(tmp, final, follow_symlinks=False)  # atomic, never clobbers: FileExistsError
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: the check and the rename can race
        if os.path.lexists(final):
            raise FileExistsError(final) from None
        os.replace(tmp, final)
        return
    tmp.unlink()


def fsync_dir(folder: Path) -> None:
    """Make a rename in `folder` durable (POSIX; elsewhere a no-op)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def iter_temp_files(folder: Path) -> Iterator[Path]:
    """Our temp files in `folder` (plain files only; symlinks with our name are listed too, to be
    removed, never followed)."""
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for e in entries:
        if e.name.startswith(TEMP_PREFIX) and e.name.endswith(TEMP_SUFFIX):
            with contextlib.suppress(OSError):
                if e.is_symlink() or e.is_file(follow_symlinks=False):
                    yield Path(e.path)


def remove_stale_temp_files(folder: Path, max_age: float = 600.0) -> int:
    """Delete temp files left by writes that died (their process is gone, or they are old)."""
    removed = 0
    now = time.time()
    for p in iter_temp_files(folder):
        m = _TEMP_PID.match(p.name)
        pid = int(m.group(1)) if m else -1
        try:
            dead = pid != os.getpid() and not _pid_alive(pid)
            if dead or now - p.lstat().st_mtime > max_age:
                p.unlink()
                removed += 1
        except OSError:
            pass
    return removed


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if os.name != "posix":
        return True  # no cheap test: rely on the age test
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""Saving generated images so that none is lost: the window and the CLI share this policy.

Each image goes to its destination (the gallery, or the CLI's --out folder). When that fails it
goes to the rescue folder instead; when that fails too, it stays in memory and is tried again,
first, with the next image. A file written whose index row failed counts as saved (never a
second copy). `Saver` is safe to call from any thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sdstudio.core import atomic
from sdstudio.core.errors import UserError
from sdstudio.core.gallery.store import GalleryImage, IndexNotUpdated, file_name_for
from sdstudio.core.paths import data_dir
from sdstudio.core.png import io

if TYPE_CHECKING:
    from PIL import Image

    from sdstudio.core.request import GenerationRequest

NAME_TRIES = 10_000  # numbered names tried before giving up (other writers may take them)


def rescue_dir() -> Path:
    """Where an image goes when its folder cannot take it."""
    return data_dir() / "unsaved"


@dataclass(frozen=True)
class PendingImage:
    image: Image.Image
    request: GenerationRequest
    seed: int
    extra: dict[str, Any] | None = None


@dataclass(frozen=True)
class SaveOutcome:
    job: PendingImage
    path: Path | None  # where the file is (destination or rescue folder); None: kept in memory
    row: GalleryImage | None = None  # the gallery's row, when the destination is a gallery
    message: str | None = None  # one sentence when it did not simply go to its destination


class Saver:
    """Save-or-rescue. `save(job)` writes to the destination and returns a GalleryImage or the
    Path written; it raises UserError when nothing was written."""

    def __init__(self, save: Callable[[PendingImage], GalleryImage | Path],
                 rescue: Callable[[], Path] | None = None) -> None:
        self._save, self._rescue = save, rescue or (lambda: rescue_dir())
        self._lock = threading.Lock()
        self._kept: list[PendingImage] = []  # in memory: neither folder could take them

    def kept(self) -> int:
        with self._lock:
            return len(self._kept)

    def save(self, job: PendingImage | None) -> list[SaveOutcome]:
        """Save the images kept from before (in order), then `job`; one outcome each."""
        with self._lock:
            jobs, self._kept = [*self._kept, *([job] if job else [])], []
        return [self._save_one(j) for j in jobs]

    def _save_one(self, job: PendingImage) -> SaveOutcome:
        try:
            done = self._save(job)
        except IndexNotUpdated as exc:
            return SaveOutcome(job, exc.path, None, str(exc))
        except Exception as exc:  # noqa: BLE001 - whatever went wrong, the image must survive
            reason = (str(exc) if isinstance(exc, UserError) else f"Unexpected error: {exc}")
        else:
            if isinstance(done, Path):
                return SaveOutcome(job, done)
            return SaveOutcome(job, done.path, done)
        reason = reason.rstrip(". ")
        try:
            folder = self._rescue()
            folder.mkdir(parents=True, exist_ok=True)
            path = save_numbered(folder, job, name=file_name_for(job.request.prompt, job.seed,
                                                                 time.time()))
        except Exception:  # noqa: BLE001
            with self._lock:
                self._kept.append(job)
            return SaveOutcome(job, None, None, f"{reason}; the image is kept in memory and will "
                                                "be saved with the next one.")
        return SaveOutcome(job, path, None, f"{reason}; the image was saved in {folder} instead.")


def save_numbered(folder: Path, job: PendingImage, name: str | None = None,
                  what: str = "folder") -> Path:
    """Write `job` in `folder` under a free name, never over another file, even when other
    processes write there at the same time. Without `name`: `NNNNN-SEED.png`, NNNNN one past the
    highest number in the folder (as A1111); with it: `name`, then `name-1`, ..."""
    n = _next_number(folder) if name is None else 0
    for _ in range(NAME_TRIES):
        if name is None:
            target = folder / f"{n:05d}-{job.seed}.png"
        else:
            target = folder / (name if n == 0 else name.replace(".png", f"-{n}.png"))
        try:
            return io.write_png(target, job.image, job.request, job.seed, job.extra,
                                overwrite=False, what=what)
        except FileExistsError:
            n += 1
    raise UserError(f"Could not find a free file name for the image in {folder}.")


def _next_number(folder: Path) -> int:
    numbers = [int(p.name[:5]) for p in folder.glob("[0-9][0-9][0-9][0-9][0-9]-*.png")]
    return max(numbers, default=-1) + 1


def save_to_folder(folder: Path, jobs: Iterable[PendingImage]) -> Iterator[SaveOutcome]:
    """The command line's save: numbered files in `folder`, every image of the batch tried, the
    rescue folder when `folder` fails. Leftover temp files of killed runs are cleared first."""
    atomic.remove_stale_temp_files(folder)
    saver = Saver(lambda job: save_numbered(folder, job, what="output folder"))
    for job in jobs:
        yield from (o for o in saver.save(job) if o.path is not None)
    for o in saver.save(None):  # one last try for those kept in memory; the rest are named
        if o.path is None and o.message:
            reason = o.message.split("; the image is kept")[0]
            o = SaveOutcome(o.job, None, None, f"The image with seed {o.job.seed} could not be "
                                               f"saved: {reason}.")
        yield o

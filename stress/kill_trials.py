"""SIGKILL trials of the two save paths: the window's (Saver + Gallery.save, what the gallery
panel runs on its save thread) and the CLI's (save_to_folder, what `sdstudio generate` runs).

Each trial forks a writer that saves images as fast as it can, logging each path once its save
returned, and kills it at a random moment. Then the "next start" (opening the gallery / the CLI's
start in its --out folder) runs, and the script checks: every PNG decodes fully with its own
parameters (0 corrupt), every logged image is there (0 lost), no temp file is left (0 temps), and
for the window every file has its index row. Run:

    python stress/kill_trials.py [--trials 100] [--mode window|cli|both] [--seed 1]
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing
import os
import random
import shutil
import signal
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from sdstudio.core import atomic  # noqa: E402
from sdstudio.core.gallery import Gallery  # noqa: E402
from sdstudio.core.gallery.saving import PendingImage, Saver, save_to_folder  # noqa: E402
from sdstudio.core.png import read_png  # noqa: E402
from sdstudio.core.request import GenerationRequest  # noqa: E402

SIDE = 192


def _jobs(trial: int, image: Image.Image):
    for i in itertools.count():
        seed = trial * 100_000 + i
        yield PendingImage(image, GenerationRequest(f"kill trial image {seed}", seed=seed), seed)


def _window_writer(folder: str, index: str, log: str, trial: int, image: Image.Image) -> None:
    gallery = Gallery(folder, index_path=index, sync=False)
    saver = Saver(lambda job: gallery.save(job.image, job.request, job.seed, job.extra))
    with open(log, "a") as out:
        for job in _jobs(trial, image):
            for outcome in saver.save(job):
                out.write(f"{outcome.path}\n")
                out.flush()


def _cli_writer(folder: str, log: str, trial: int, image: Image.Image) -> None:
    with open(log, "a") as out:
        for outcome in save_to_folder(Path(folder), _jobs(trial, image)):
            out.write(f"{outcome.path}\n")
            out.flush()


def _check(folder: Path, log: Path) -> tuple[int, int, int]:
    """(corrupt, lost, temps) after the next start."""
    corrupt = 0
    for path in folder.glob("*.png"):
        try:
            with Image.open(path) as im:
                im.load()
            p = read_png(path)
            if p is None or p.prompt != f"kill trial image {p.seed}" or im.size != (SIDE, SIDE):
                corrupt += 1
        except Exception:  # noqa: BLE001
            corrupt += 1
    logged = [Path(line) for line in log.read_text().splitlines() if line and line != "None"]
    lost = sum(not p.is_file() for p in logged)
    temps = len(list(atomic.iter_temp_files(folder)))
    return corrupt, lost, temps


def run(mode: str, trials: int, rng: random.Random, root: Path) -> bool:
    folder, index, log = root / mode, root / f"{mode}.sqlite3", root / f"{mode}.log"
    folder.mkdir()
    log.touch()
    image = Image.frombytes("RGB", (SIDE, SIDE), os.urandom(SIDE * SIDE * 3))  # slow to write
    ctx = multiprocessing.get_context("fork")
    totals = [0, 0, 0]
    temps_seen = 0
    for trial in range(trials):
        if mode == "window":
            args = (str(folder), str(index), str(log), trial, image)
            proc = ctx.Process(target=_window_writer, args=args)
        else:
            proc = ctx.Process(target=_cli_writer, args=(str(folder), str(log), trial, image))
        proc.start()
        time.sleep(rng.uniform(0.05, 0.3))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        temps_seen += len(list(atomic.iter_temp_files(folder)))
        if mode == "window":  # the next start: the window opens the gallery (and syncs)
            with Gallery(folder, index_path=index) as g:
                rows = {i.path.name for i in g.search()}
            files = {p.name for p in folder.glob("*.png")}
            totals[1] += len(files - rows)  # a file not listed counts as lost
        else:  # the next start: the CLI clears its --out folder before saving
            atomic.remove_stale_temp_files(folder)
        for i, v in enumerate(_check(folder, log)):
            totals[i] += v
    images = len(list(folder.glob("*.png")))
    integrity = "-"
    if mode == "window":
        integrity = sqlite3.connect(index).execute("PRAGMA integrity_check").fetchone()[0]
    print(f"{mode}: {trials} SIGKILLs, {images} images saved, {temps_seen} temp files found "
          f"right after a kill, after the next start: corrupt {totals[0]}, lost {totals[1]}, "
          f"temps left {totals[2]}; index integrity {integrity}")
    return totals == [0, 0, 0] and integrity in ("ok", "-")


def _run() -> tuple[int, Path]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--mode", choices=["window", "cli", "both"], default="both")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sdstudio-kill-"))
    os.environ["SDSTUDIO_HOME"] = str(root / "home")  # the rescue folder and caches stay here
    rng = random.Random(args.seed)
    modes = ["window", "cli"] if args.mode == "both" else [args.mode]
    ok = all([run(m, args.trials, rng, root) for m in modes])
    return (0 if ok else 1), root


def main() -> int:
    code, work = _run()
    shutil.rmtree(work, ignore_errors=True)  # the work folder (images, indexes) goes
    return code


if __name__ == "__main__":
    sys.exit(main())

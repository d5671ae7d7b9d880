"""Two processes save 20 images each into one gallery, R rounds (default 100), each round in a
fresh gallery; while they save, each also syncs the gallery now and then (as a window opening
it would). After each round: 40 files, 40 distinct images, 40 index rows (read straight from
SQLite, before any repairing sync), no error raised in either writer. Run:

    python stress/two_writers.py [--rounds 100] [--images 20]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from sdstudio.core.gallery import Gallery  # noqa: E402
from sdstudio.core.request import GenerationRequest  # noqa: E402


def _writer(folder: str, index: str, who: int, images: int, errors) -> None:
    try:
        with Gallery(folder, index_path=index) as g:
            image = Image.new("RGB", (64, 64), "red" if who else "blue")
            for i in range(images):
                # Same prompt and seed in both (the writer is in the negative prompt): both pick
                # the same file name at the same second, on purpose.
                g.save(image, GenerationRequest(f"image {i}", f"writer {who}", seed=i), i)
                if i % 7 == 3:
                    g.sync()
    except Exception as exc:  # noqa: BLE001 - counted by the parent
        errors.put(f"writer {who}: {type(exc).__name__}: {exc}")


def _run() -> tuple[int, Path]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--images", type=int, default=20)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sdstudio-two-"))
    os.environ["SDSTUDIO_HOME"] = str(root / "home")
    ctx = multiprocessing.get_context("fork")
    errors = ctx.Queue()
    lost_files = duplicated = lost_rows = failed = 0
    expected = 2 * args.images
    for r in range(args.rounds):
        folder, index = root / f"g{r}", root / f"i{r}.sqlite3"
        Gallery(folder, index_path=index).close()
        procs = [ctx.Process(target=_writer, args=(str(folder), str(index), w, args.images,
                                                   errors)) for w in (0, 1)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
            failed += p.exitcode != 0
        files = list(folder.glob("*.png"))
        prompts = [_prompt(p) for p in files]
        rows = sqlite3.connect(index).execute("SELECT prompt, negative_prompt FROM images")
        lost_files += max(0, expected - len(set(prompts)))
        duplicated += len(prompts) - len(set(prompts))
        lost_rows += max(0, expected - len(set(rows.fetchall())))
    messages = []
    while not errors.empty():
        messages.append(errors.get())
    print(f"{args.rounds} rounds x 2 writers x {args.images} images: lost files {lost_files}, "
          f"duplicated {duplicated}, lost index rows {lost_rows}, writer errors {len(messages)}, "
          f"crashed writers {failed}")
    for m in messages[:10]:
        print("ERROR", m)
    return (0 if not (lost_files or duplicated or lost_rows or messages or failed) else 1), root


def _prompt(path: Path) -> tuple[str, str]:
    from sdstudio.core.png import read_png

    p = read_png(path)
    return (p.prompt, p.negative_prompt) if p else ("", "")


def main() -> int:
    code, work = _run()
    shutil.rmtree(work, ignore_errors=True)  # the work folder (images, indexes) goes
    return code


if __name__ == "__main__":
    sys.exit(main())

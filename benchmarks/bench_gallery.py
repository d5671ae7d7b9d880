"""Gallery at scale: 10,000 PNGs -> full rebuild, open with the index present (first thumbnails
on screen), prompt search. Prints each figure against its target.

    python benchmarks/bench_gallery.py [--count 10000] [--keep]

Everything happens in a temporary SDSTUDIO_HOME; nothing of the user's is touched.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

WORDS = ("red blue green yellow purple orange black white circle square triangle star heart "
         "cat dog house tree river mountain sunset forest castle robot dragon portrait city "
         "night rain snow ocean desert flower garden bridge ship train car lamp window door "
         "old young happy dark bright misty golden silver wooden glass stone paper oil sketch "
         "watercolor photo cinematic detailed soft sharp wide close").split()


def make_images(folder: Path, count: int, rng: random.Random) -> None:
    """Small PNGs with the same two metadata chunks the app writes (no fsync: speed)."""
    from PIL import Image

    from sdstudio.core.png.record import build_pnginfo
    from sdstudio.core.request import GenerationRequest

    folder.mkdir(parents=True, exist_ok=True)
    base = [Image.new("RGB", (96, 96), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
            for _ in range(16)]
    t0 = time.time() - count
    for i in range(count):
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))
        req = GenerationRequest(prompt, "blurry, lowres", seed=rng.randrange(2**32),
                                steps=rng.choice((20, 25, 30)), model=rng.choice(("demo", "sd15")))
        path = folder / f"img-{i:05d}.png"
        base[i % 16].save(path, pnginfo=build_pnginfo(req, req.seed), compress_level=1)
        os.utime(path, (t0 + i, t0 + i))


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def report(name: str, seconds: float, target: float) -> bool:
    ok = seconds < target
    print(f"{name:<48} {seconds * 1000:9.1f} ms   target < {target * 1000:.0f} ms   "
          f"{seconds / target:5.2f}x of budget   {'OK' if ok else 'TOO SLOW'}")
    return ok


def first_thumbnails(folder: Path, visible: int) -> tuple[float, int]:
    """Seconds from creating the panel to the first `visible` thumbnails painted."""
    from PySide6.QtWidgets import QApplication

    from sdstudio.ui.gallery_panel import GalleryPanel

    app = QApplication.instance() or QApplication(sys.argv)
    shown: set[int] = set()
    start = time.perf_counter()
    panel = GalleryPanel(folder)
    panel.model.thumbnailShown.connect(shown.add)
    panel.resize(1000, 760)
    panel.show()
    deadline = start + 20
    while time.perf_counter() < deadline:
        app.processEvents()
        if len(shown & set(range(visible))) >= visible:
            break
        time.sleep(0.001)
    elapsed = time.perf_counter() - start
    rows = panel.model.rowCount()
    panel.shutdown()
    panel.deleteLater()
    app.processEvents()
    return elapsed, rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=10_000)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    home = Path(tempfile.mkdtemp(prefix="sdstudio-bench-"))
    os.environ["SDSTUDIO_HOME"] = str(home)
    from sdstudio.core.gallery import Gallery

    folder = home / "gallery"
    rng = random.Random(0)
    t, _ = timed(lambda: make_images(folder, args.count, rng))
    print(f"made {args.count} PNGs in {t:.1f} s (setup, not timed against a target)\n")
    ok = True

    g = Gallery(folder, sync=False)
    t, rep = timed(g.rebuild)
    g.close()
    ok &= report(f"full rebuild of the index ({rep.added} images)", t, 60.0)

    t, g = timed(lambda: Gallery(folder))  # index present: open + check folder for changes
    ok &= report("open with index present (incl. folder sync)", t, 1.0)
    t, rows = timed(lambda: g.search(), repeat=3)
    print(f"{'  list all, newest first':<48} {t * 1000:9.1f} ms   ({len(rows)} rows)")

    queries = ["cat", "golden dragon", '"red circle"', "wat", "cat seed:123",
               "model:sd15 castle", "sunset -", "neon"]
    times, panel_times = [], []
    print("  query                           all rows   ids+first page (what the panel does)")
    for q in queries:
        t, found = timed(lambda q=q: g.search(q), repeat=5)
        tp, _ = timed(lambda q=q: g.get_many(g.search_ids(q)[:200]), repeat=5)
        times.append(t)
        panel_times.append(tp)
        print(f"  {q!r:<30} {t * 1000:7.2f} ms   {tp * 1000:7.2f} ms   {len(found):5d} matches")
    ok &= report("prompt search, slowest query, all rows", max(times), 0.050)
    ok &= report("prompt search, slowest query, ids + first page", max(panel_times), 0.050)
    print(f"{'  median (all rows)':<48} {statistics.median(times) * 1000:9.2f} ms")
    g.close()

    visible = 40
    t, rows = first_thumbnails(folder, visible)
    ok &= report(f"panel open -> first {visible} thumbnails (cold cache)", t, 1.0)
    t, rows = first_thumbnails(folder, visible)
    ok &= report(f"panel open -> first {visible} thumbnails (disk cache)", t, 1.0)
    print(f"  ({rows} rows in the panel)")

    if args.keep:
        print(f"\nkept {home}")
    else:
        shutil.rmtree(home, ignore_errors=True)
    print("\nall targets met" if ok else "\nsome targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""Gallery at scale: 100,000 PNGs -> full rebuild, open with the index present (first thumbnails
on screen), prompt search. Prints each figure against its target.

    python benchmarks/bench_gallery.py [--count 100000] [--keep | --reuse HOME]

Everything happens in a temporary SDSTUDIO_HOME; nothing of the user's is touched. --keep keeps
it and prints its path; --reuse HOME runs again on such a kept one (its images are not made again;
the index is still rebuilt and timed).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import struct
import sys
import tempfile
import time
import zlib
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

WORDS = ("red blue green yellow purple orange black white circle square triangle star heart "
         "cat dog house tree river mountain sunset forest castle robot dragon portrait city "
         "night rain snow ocean desert flower garden bridge ship train car lamp window door "
         "old young happy dark bright misty golden silver wooden glass stone paper oil sketch "
         "watercolor photo cinematic detailed soft sharp wide close").split()


SAMPLERS = ("Euler a", "Euler", "DPM++ 2M Karras", "DDIM", "UniPC", "Heun")
MODELS = ("demo", "sd15", "dreamshaper_8", "sdxl_base", "anything-v5")
SIZES = ((512, 512), (512, 768), (768, 512), (1024, 1024), (640, 384))


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (struct.pack(">I", len(data)) + kind + data
            + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def make_images(folder: Path, count: int, rng: random.Random) -> None:
    """Tiny 8x8 PNGs written byte by byte (signature, IHDR, an A1111 `parameters` tEXt chunk,
    IDAT, IEND): 100,000 in well under a minute. Metadata varies: prompt, seed, steps, sampler,
    model, CFG and the declared size."""
    folder.mkdir(parents=True, exist_ok=True)
    head = b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 2, 0, 0, 0))
    tail = _chunk(b"IEND", b"")
    rows = [b"".join(b"\x00" + bytes((c, 255 - c, c // 2)) * 8 for _ in range(8))
            for c in range(0, 256, 16)]  # 16 flat colours, each 8 rows of filter byte + RGB
    idats = [_chunk(b"IDAT", zlib.compress(r, 1)) for r in rows]
    t0 = time.time() - count
    for i in range(count):
        prompt = " ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 14)))
        w, h = rng.choice(SIZES)
        text = (f"{prompt}\nNegative prompt: blurry, lowres\n"
                f"Steps: {rng.choice((20, 25, 30))}, Sampler: {rng.choice(SAMPLERS)}, "
                f"CFG scale: {rng.choice((5, 6, 7, 7.5))}, Seed: {rng.randrange(2**32)}, "
                f"Size: {w}x{h}, Model: {rng.choice(MODELS)}")
        data = head + _chunk(b"tEXt", b"parameters\x00" + text.encode("latin-1")) \
            + idats[i % len(idats)] + tail
        path = folder / f"{i // 1000:03d}" / f"img-{i:06d}.png"  # 1000 per subfolder, like dated ones
        if i % 1000 == 0:
            path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        os.utime(path, (t0 + i, t0 + i))


CPU_TIMES: dict[object, float] = {}  # fn -> its best CPU time (this process), beside the wall's


def timed(fn, repeat: int = 1) -> tuple[float, object]:
    """Best wall-clock seconds of `repeat` calls, and the last result. The best CPU seconds go to
    CPU_TIMES: on a machine other programs keep busy, they tell what the code itself costs."""
    best, cpu, result = float("inf"), float("inf"), None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        best = min(best, time.perf_counter() - start)
        cpu = min(cpu, time.process_time() - start_cpu)
    CPU_TIMES[fn] = cpu
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
    ap.add_argument("--count", type=int, default=100_000)
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    ap.add_argument("--reuse", type=Path, metavar="HOME",
                    help="a folder kept by --keep: its images are used again (and it is kept)")
    args = ap.parse_args()
    home = args.reuse or Path(tempfile.mkdtemp(prefix="sdstudio-bench-"))
    os.environ["SDSTUDIO_HOME"] = str(home)
    from sdstudio.core.gallery import Gallery

    folder = home / "gallery"
    if args.reuse:
        if not folder.is_dir():
            ap.error(f"{folder} does not exist: make one with --keep first")
        args.keep = True
        args.count = sum(1 for _ in folder.rglob("*.png"))
        print(f"reusing the {args.count} PNGs in {folder}\n")
    else:
        rng = random.Random(0)
        t, _ = timed(lambda: make_images(folder, args.count, rng))
        print(f"made {args.count} PNGs in {t:.1f} s (setup, not timed against a target)\n")
    ok = True

    g = Gallery(folder, sync=False)
    t, rep = timed(g.rebuild)
    g.close()
    ok &= report(f"full rebuild of the index ({rep.added} images)", t, 600.0)

    t, g = timed(lambda: Gallery(folder, sync=False))  # what the panel does; sync runs after
    ok &= report("open with index present", t, 0.5)
    g.close()
    t, g = timed(lambda: Gallery(folder))  # + check the folder for changes (background in the UI)
    ok &= report("open + folder sync (no changes; background)", t, 10.0)
    t, rows = timed(lambda: g.search(), repeat=3)
    print(f"{'  list all, newest first':<48} {t * 1000:9.1f} ms   ({len(rows)} rows)")

    # the day of the middle image (made with mtimes one second apart, ending at its making)
    middle = args.count // 2
    day = time.strftime("%Y-%m-%d", time.localtime(
        (folder / f"{middle // 1000:03d}" / f"img-{middle:06d}.png").stat().st_mtime))
    queries = ["cat", "golden dragon", '"red circle"', "wat", "cat seed:123",
               "model:sd15 castle", "sunset -", "neon", "sampler:DDIM", "size:512x768 cat",
               f"from:{day}", f"date:{day} river", "is:fav", "tool:a1111 model:dream",
               "steps:25 sampler:euler cfg:7 size:1024x1024 model:anything",
               # what the filter bar writes: exact values
               'sampler:"DDIM"', 'model:"sd15" cat', 'tool:"a1111" model:"dreamshaper_8"',
               f'model:"demo" sampler:"Euler a" size:512x768 from:{day}']
    times, panel_times, cli_times, panel_cpu = [], [], [], []
    print("  query                           all rows   ids+first page (cpu)     first 50")
    for q in queries:
        t, found = timed(lambda q=q: g.search(q), repeat=5)
        panel = lambda q=q: g.get_many(g.search_ids(q)[:200])  # noqa: E731
        tp, _ = timed(panel, repeat=5)
        tc, _ = timed(lambda q=q: g.search(q, limit=50), repeat=5)
        times.append(t)
        panel_times.append(tp)
        panel_cpu.append(CPU_TIMES.pop(panel))
        cli_times.append(tc)
        print(f"  {q[:30]!r:<32} {t * 1000:7.2f} ms   {tp * 1000:7.2f} ms ({panel_cpu[-1] * 1000:5.1f})"
              f"   {tc * 1000:7.2f} ms   {len(found):6d} matches")
    # The panel lists ids and builds only the rows on screen; the CLI asks for the first 50.
    # Building every matching row (tens of thousands) is shown, not held to the search target.
    print(f"{'  slowest query, all rows built (no target)':<48} {max(times) * 1000:9.1f} ms")
    ok &= report("search, slowest query, ids + first page (panel)", max(panel_times), 0.050)
    ok &= report("search, slowest query, first 50 rows (CLI)", max(cli_times), 0.050)
    print(f"{'  median (ids + first page)':<48} {statistics.median(panel_times) * 1000:9.2f} ms")
    print(f"{'  slowest query, ids + first page, CPU time':<48} {max(panel_cpu) * 1000:9.2f} ms"
          f"   (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    g.close()

    visible = 40
    t, rows = first_thumbnails(folder, visible)
    ok &= report(f"panel open -> first {visible} thumbnails (cold cache)", t, 0.5)
    t, rows = first_thumbnails(folder, visible)
    ok &= report(f"panel open -> first {visible} thumbnails (disk cache)", t, 0.5)
    print(f"  ({rows} rows in the panel)")

    if args.keep:
        print(f"\nkept {home}")
    else:
        shutil.rmtree(home, ignore_errors=True)
    print("\nall targets met" if ok else "\nsome targets missed")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

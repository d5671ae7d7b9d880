"""How long the window's event loop stalls while the gallery panel opens a folder of hostile
files (every kind of sdstudio.testing.hostile, a 1 MB one-line prompt, a 2 MB settings line)
and makes their thumbnails: a 5 ms timer records the longest gap between its ticks. Target:
under 100 ms. Run (offscreen):

    QT_QPA_PLATFORM=offscreen python stress/ui_freeze.py [--good 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _run() -> tuple[int, Path]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--good", type=int, default=200, help="ordinary images beside the bad ones")
    ap.add_argument("--no-bad", action="store_true", help="ordinary images only (the baseline)")
    ap.add_argument("--with-torch", action="store_true",
                    help="import torch first, as the window's engine does (many more objects)")
    ap.add_argument("--no-freeze", action="store_true",
                    help="skip gc.freeze() (the app freezes the objects of start-up, ui/app.py)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sdstudio-freeze-"))
    os.environ["SDSTUDIO_HOME"] = str(root / "home")

    from PIL import Image
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from sdstudio.core.gallery import Gallery
    from sdstudio.core.request import GenerationRequest
    from sdstudio.testing.hostile import png_with_text, write_bad_files
    from sdstudio.ui.gallery_panel import GalleryPanel

    folder = root / "g"
    with Gallery(folder) as g:
        for i in range(args.good):
            g.save(Image.new("RGB", (256, 256), (i % 255, 80, 120)), GenerationRequest(f"ok {i}"), i)
    if not args.no_bad:
        (folder / "one-line-1MB.png").write_bytes(png_with_text(parameters="word " * 200_000))
        (folder / "settings-2MB.png").write_bytes(png_with_text(
            parameters="p\n" + "Steps: 1, " * 200_000))
        write_bad_files(folder)

    if args.with_torch:
        import torch  # noqa: F401

    app = QApplication.instance() or QApplication(sys.argv)
    if not args.no_freeze:
        import gc

        gc.freeze()  # what run_app does after start-up and once torch is imported
    gaps: list[float] = []
    last = [time.perf_counter()]

    when: list[float] = []

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        when.append(now)
        last[0] = now

    timer = QTimer(interval=5)
    timer.timeout.connect(tick)
    timer.start()
    # A fresh index: the panel must read every file (the index made above is dropped).
    for p in Path(os.environ["SDSTUDIO_HOME"]).rglob("index.sqlite3*"):
        p.unlink()
    start = time.perf_counter()
    panel = GalleryPanel(folder)
    panel.resize(900, 700)
    panel.show()
    synced = []
    panel.synced.connect(synced.append)
    while not synced and time.perf_counter() - start < 120:
        app.processEvents()
        time.sleep(0.001)
    for r in range(panel.model.rowCount()):  # ask for every thumbnail, as scrolling would
        panel.model.pixmap(str(panel.model.image_at(r).path))
    while panel.model.loader._pending and time.perf_counter() - start < 300:
        app.processEvents()
        time.sleep(0.001)
    total = time.perf_counter() - start
    report = synced[0] if synced else None
    panel.shutdown()
    worst = max(gaps[1:], default=0.0)
    for gap, at in sorted(zip(gaps[1:], when[1:], strict=True), reverse=True)[:3]:
        print(f"stall {gap * 1000:.0f} ms ending {at - start:.2f} s after the panel was created")
    print(f"{'torch, ' if args.with_torch else ''}{'no freeze, ' if args.no_freeze else ''}"
          f"listed {panel.model.rowCount()}, unreadable named "
          f"{len(report.unreadable) if report else '?'}, sync + thumbnails {total:.1f} s, "
          f"event-loop ticks {len(gaps)}, longest stall {worst * 1000:.0f} ms, "
          f"stalls over 100 ms {sum(g > 0.1 for g in gaps[1:])}")
    return (0 if worst < 0.1 and report else 1), root


def main() -> int:
    code, work = _run()
    shutil.rmtree(work, ignore_errors=True)  # the work folder (images, indexes) goes
    return code


if __name__ == "__main__":
    sys.exit(main())

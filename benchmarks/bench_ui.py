"""UI responsiveness: heartbeat gaps during live generation, and launch -> window shown.

    python benchmarks/bench_ui.py                      # both parts, tiny random model
    python benchmarks/bench_ui.py --model demo --size 64 --steps 40
    python benchmarks/bench_ui.py --launch-only

Part 1 starts a QTimer every 5 ms in the GUI thread while the worker generates with live
previews and latent channels, and prints the longest gap between two ticks (target <= 50 ms,
goal <= 16 ms). Part 2 launches `run_app()` in fresh processes and prints the time from process
start to the window being exposed, and whether torch was imported by then (it must not be).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("OMP_NUM_THREADS", "1")

HEARTBEAT_MS = 5

LAUNCH_CHILD = r"""
import os, sys, time
from PySide6.QtCore import QTimer
import sdstudio.ui.app as ui_app

def shown(window):
    def poll():
        handle = window.windowHandle()
        if handle is None or not handle.isExposed():
            QTimer.singleShot(1, poll)
            return
        window.repaint()
        print(f"SHOWN {time.time():.6f} torch={'torch' in sys.modules}", flush=True)
        os._exit(0)  # do not wait for the worker's torch import
    poll()

real_run_app = ui_app.run_app
ui_app.run_app = lambda argv=None: real_run_app(argv, on_shown=shown)
if os.environ.get("BENCH_DIRECT"):
    ui_app.run_app([sys.argv[0]])
else:  # the real entry point, as `sdstudio` with no arguments runs it
    from sdstudio.cli import main
    main([])
"""


def bench_launch(runs: int, direct: bool = False) -> list[float]:
    """`direct`: call run_app() itself, skipping the CLI's argument parser."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "SDSTUDIO_HOME": home}
            if direct:
                env["BENCH_DIRECT"] = "1"
            t0 = time.time()
            out = subprocess.run([sys.executable, "-c", LAUNCH_CHILD], env=env,
                                 capture_output=True, text=True, timeout=120)
        line = next((ln for ln in out.stdout.splitlines() if ln.startswith("SHOWN")), None)
        if line is None:
            print("launch failed:", out.stderr[-2000:])
            continue
        _, stamp, torch_flag = line.split()
        times.append(float(stamp) - t0)
        print(f"  launch -> window shown: {times[-1] * 1000:7.0f} ms   ({torch_flag} at that moment)")
    return times


def bench_heartbeat(model: str, size: int, steps: int, scheduler: str,
                    previews: bool = True) -> dict[str, float]:
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer
    from PySide6.QtWidgets import QApplication

    from sdstudio.ui.main_window import MainWindow
    from sdstudio.ui.worker import PREVIEW_INTERVAL_S, GenerationWorker

    app = QApplication.instance() or QApplication([])
    window = MainWindow(worker=GenerationWorker(PREVIEW_INTERVAL_S if previews else 1e9))
    window.show()
    window.start_engine()
    from sdstudio.core.events import EventKind

    outcome: list[EventKind] = []
    window.jobFinished.connect(lambda _job, kind: outcome.append(kind))
    window.errorShown.connect(lambda msg: print("  error:", msg))

    def run_job(n_steps: int) -> None:
        outcome.clear()
        window.prompt_panel.set_texts("a red circle on a blue background", "")
        window.params_panel.set_params({
            "model": model, "steps": n_steps, "width": size, "height": size,
            "scheduler": scheduler, "seed_random": False, "seed": 0, "batch_size": 1,
        })
        loop = QEventLoop()  # the real event loop, as app.exec() runs it
        window.jobFinished.connect(loop.quit)
        window.generate()
        if not outcome:
            loop.exec()
        window.jobFinished.disconnect(loop.quit)

    print("  warming up (torch import + model load)…", flush=True)
    run_job(1)
    if outcome != [EventKind.FINISHED]:
        raise SystemExit(f"warm-up failed: {window.last_error}")

    baseline = _idle_gaps(app, 2.0)
    ticks: list[int] = []
    clock = QElapsedTimer()
    clock.start()
    beat = QTimer()
    beat.setInterval(HEARTBEAT_MS)
    beat.timeout.connect(lambda: ticks.append(clock.nsecsElapsed()))
    shown: list[int] = []
    window.stepShown.connect(shown.append)
    beat.start()
    t0 = time.perf_counter()
    run_job(steps)
    wall = time.perf_counter() - t0
    beat.stop()
    window.close()
    gaps = [(b - a) / 1e6 for a, b in zip(ticks, ticks[1:], strict=False)]
    return {
        "wall_s": wall, "steps": steps, "previews": len(shown), "ticks": len(ticks),
        "max_gap_ms": max(gaps), "p99_gap_ms": sorted(gaps)[int(len(gaps) * 0.99)],
        "median_gap_ms": statistics.median(gaps), "idle_max_gap_ms": max(baseline),
        "idle_p99_gap_ms": sorted(baseline)[int(len(baseline) * 0.99)],
    }


def _idle_gaps(app, seconds: float) -> list[float]:
    """The same heartbeat with nothing running: what the machine itself adds (other processes)."""
    from PySide6.QtCore import QElapsedTimer, QEventLoop, QTimer

    ticks: list[int] = []
    clock = QElapsedTimer()
    clock.start()
    beat = QTimer()
    beat.setInterval(HEARTBEAT_MS)
    beat.timeout.connect(lambda: ticks.append(clock.nsecsElapsed()))
    beat.start()
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    loop.exec()
    beat.stop()
    return [(b - a) / 1e6 for a, b in zip(ticks, ticks[1:], strict=False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="model id or folder (default: a tiny random model)")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--scheduler", default="Euler")
    parser.add_argument("--launch-runs", type=int, default=3)
    parser.add_argument("--no-previews", action="store_true",
                        help="only the last step's preview (to see what live previews cost)")
    parser.add_argument("--launch-only", action="store_true")
    parser.add_argument("--heartbeat-only", action="store_true")
    args = parser.parse_args()

    if not args.launch_only:
        with tempfile.TemporaryDirectory() as home:
            os.environ["SDSTUDIO_HOME"] = home
            model = args.model
            if model is None:
                from sdstudio.testing.tiny_models import build_tiny_model

                model = str(build_tiny_model(Path(home) / "tiny"))
            print(f"heartbeat every {HEARTBEAT_MS} ms during generation "
                  f"({Path(model).name}, {args.size}x{args.size}, {args.steps} steps, "
                  f"{args.scheduler}):", flush=True)
            r = bench_heartbeat(model, args.size, args.steps, args.scheduler,
                                previews=not args.no_previews)
            print(f"  {r['steps']} steps in {r['wall_s']:.2f} s, {r['previews']} previews shown, "
                  f"{r['ticks']} ticks")
            print(f"  heartbeat gap: max {r['max_gap_ms']:.1f} ms, p99 {r['p99_gap_ms']:.1f} ms, "
                  f"median {r['median_gap_ms']:.1f} ms   (target <= 50 ms, goal <= 16 ms)")
            print(f"  idle baseline (no job): max {r['idle_max_gap_ms']:.1f} ms, "
                  f"p99 {r['idle_p99_gap_ms']:.1f} ms")
    if not args.heartbeat_only:
        for direct in (False, True):
            how = "run_app() directly" if direct else "`sdstudio` entry point (sdstudio.cli.main)"
            print(f"launch -> window shown, {how}, {args.launch_runs} fresh processes:", flush=True)
            times = bench_launch(args.launch_runs, direct)
            if times:
                print(f"  best {min(times) * 1000:.0f} ms, "
                      f"median {statistics.median(times) * 1000:.0f} ms   (target <= 1500 ms)")


if __name__ == "__main__":
    main()

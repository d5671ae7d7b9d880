"""Peak memory for single hostile PNGs of at most 50 MB: each is indexed by a fresh gallery (sync)
and thumbnailed, in its own child process; the child's peak RSS (whole process, Python and
libraries included) must stay under 500 MB. Run:

    python stress/memory_big_pngs.py [--limit-mb 500]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sdstudio.testing.hostile import PNG_SIGNATURE, chunk  # noqa: E402

MB = 1 << 20


def _png(path: Path, width: int, height: int, mode_bytes: int, texts: dict[str, bytes],
         row: bytes | None = None) -> None:
    """Stream a PNG to disk (8-bit, colour type 6 = RGBA or 2 = RGB) without holding its pixels."""
    colour = 6 if mode_bytes == 4 else 2
    with open(path, "wb") as f:
        f.write(PNG_SIGNATURE + chunk(b"IHDR", width.to_bytes(4, "big") + height.to_bytes(4, "big")
                                      + bytes([8, colour, 0, 0, 0])))
        for key, value in texts.items():
            f.write(chunk(b"tEXt", key.encode() + b"\0" + value))
        comp = zlib.compressobj(6)
        line = b"\0" + (row if row is not None else bytes(width * mode_bytes))
        data = bytearray()
        for _ in range(height):
            data += comp.compress(line if row is None else b"\0" + os.urandom(width * mode_bytes))
            if len(data) > 8 * MB:
                f.write(chunk(b"IDAT", bytes(data)))
                data.clear()
        data += comp.flush()
        f.write(chunk(b"IDAT", bytes(data)) + chunk(b"IEND", b""))


def build(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, Path] = {}

    def add(name: str, **kw) -> None:
        files[name] = folder / f"{name}.png"
        _png(files[name], **kw)

    add("50MB-quoted-backslashes-parameters", width=8, height=8, mode_bytes=3,
        texts={"parameters": b'k: "' + b"\\\\" * (25 * MB - 4)})
    add("50MB-sdstudio-json", width=8, height=8, mode_bytes=3,
        texts={"sdstudio": json.dumps({"request": {"prompt": "x" * (50 * MB - 40)}}).encode()})
    add("25x2MB-chunks", width=8, height=8, mode_bytes=3,
        texts={f"k{i}": b"a, b: c" * ((2 * MB - 16) // 7) for i in range(25)})
    add("13300-square-rgba-zeros", width=13300, height=13300, mode_bytes=4, texts={})
    add("8000-square-rgba-zeros", width=8000, height=8000, mode_bytes=4, texts={})
    add("5600-square-rgba-zeros", width=5600, height=5600, mode_bytes=4, texts={})
    add("4000-square-rgb-noise", width=4000, height=4000, mode_bytes=3, texts={},
        row=b"noise")
    return files


def _child(path: str, out) -> None:
    from sdstudio.core.errors import UserError
    from sdstudio.core.gallery import Gallery
    from sdstudio.core.gallery.thumbnails import ensure_thumbnail

    base = _peak_mb()
    start = time.perf_counter()
    with Gallery(Path(path).parent, index_path=Path(path).with_suffix(".sqlite3")) as g:
        listed = g.count()
        errors = g.last_sync.errors
    try:
        ensure_thumbnail(path, root=Path(path).parent / ".thumbs")
        thumb = "thumbnail made"
    except UserError as exc:
        thumb = f"no thumbnail: {exc}"
    except Exception as exc:  # noqa: BLE001
        thumb = f"CRASH {type(exc).__name__}: {exc}"
    out.put((base, _peak_mb(), time.perf_counter() - start, listed, errors, thumb))


def _peak_mb() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not carried over exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _run() -> tuple[int, Path]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit-mb", type=float, default=500)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sdstudio-mem-"))
    os.environ["SDSTUDIO_HOME"] = str(root / "home")
    files = build(root / "src")
    ctx = multiprocessing.get_context("spawn")  # a fresh process: its peak is this file's alone
    ok = True
    for name, path in files.items():
        solo = root / name / path.name
        solo.parent.mkdir()
        path.rename(solo)
        out = ctx.Queue()
        proc = ctx.Process(target=_child, args=(str(solo), out))
        proc.start()
        proc.join()
        base, peak, seconds, listed, errors, thumb = out.get()
        size = solo.stat().st_size / MB
        good = peak < args.limit_mb and not thumb.startswith("CRASH") and proc.exitcode == 0
        ok &= good
        print(f"{name:36} {size:6.1f} MB file  peak RSS {peak:6.0f} MB (at start {base:4.0f})  "
              f"{seconds:5.2f} s  listed {listed}  {('; '.join(errors) or 'no error')[:70]}  "
              f"{thumb[:60]}  {'OK' if good else 'OVER'}")
    return (0 if ok else 1), root


def main() -> int:
    code, work = _run()
    shutil.rmtree(work, ignore_errors=True)  # the work folder (images, indexes) goes
    return code


if __name__ == "__main__":
    sys.exit(main())

"""Fuzz the gallery search: N queries (default 10,000) on a small gallery; 0 crashes (anything
but a one-sentence UserError) and 0 queries over 100 ms. Run:

    python stress/fuzz_search.py [--n 10000] [--seed 1]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from PIL import Image  # noqa: E402

from sdstudio.core.errors import UserError  # noqa: E402
from sdstudio.core.gallery import Gallery  # noqa: E402
from sdstudio.core.request import GenerationRequest  # noqa: E402

PIECES = ["seed:", "steps:", "cfg:", "size:", "model:", "sampler:", "neg:", "is:", "fav", '"',
          "'", "\x00", "\ud800", "\udfff", "9" * 25, "-1", "1e999", "nan", "inf", "x", "512x512",
          "*", "^", "-", "+", "(", ")", "{", "}", "[", "]", "AND", "OR", "NOT", "NEAR", ":", "\\",
          "%", "_", " ", "  ", "\t", "\n", "cat", "red", "猫", "😀", "é", "prompt", "rowid", ";",
          "--", "/*", "'; DROP TABLE images; --"]


def query(rng: random.Random) -> str:
    if rng.random() < 0.05:  # random code points
        return "".join(chr(rng.randint(0, 0x10FFFF)) for _ in range(rng.randint(1, 40)))
    return "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))


def _run() -> tuple[int, Path]:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    folder = Path(tempfile.mkdtemp(prefix="sdstudio-search-"))
    os.environ.setdefault("XDG_CACHE_HOME", str(folder / ".cache"))
    crashes: list[str] = []
    slow = 0
    worst = 0.0
    refused = 0
    with Gallery(folder / "g", index_path=folder / "index.sqlite3") as g:
        for i, words in enumerate(["a red cat", "a blue dog", "猫 on a mat", "seed words"]):
            g.save(Image.new("RGB", (8, 8)), GenerationRequest(words, "ugly"), i)
        for _ in range(args.n):
            q = query(rng)
            t = time.perf_counter()
            try:
                g.search_ids(q, favourites_only=rng.random() < 0.1)
                g.search(q, limit=5)
            except UserError as exc:
                refused += 1
                if "\n" in str(exc):
                    crashes.append(f"two-line message for {q!r}")
            except Exception as exc:  # noqa: BLE001 - this is what we count
                crashes.append(f"{type(exc).__name__}: {exc} <- {q!r}")
            dt = time.perf_counter() - t
            worst = max(worst, dt)
            slow += dt > 0.1
    print(f"queries {args.n}  refused with a sentence {refused}  crashes {len(crashes)}  "
          f"over 100 ms {slow}  slowest {worst * 1000:.1f} ms")
    for c in crashes[:10]:
        print("CRASH", c)
    return (1 if crashes or slow else 0), folder


def main() -> int:
    code, work = _run()
    shutil.rmtree(work, ignore_errors=True)  # the work folder (images, indexes) goes
    return code


if __name__ == "__main__":
    sys.exit(main())

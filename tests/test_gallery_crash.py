"""Crash safety: kill a process many times while it saves; no partial PNG, index consistent."""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import sqlite3
import time

import pytest
from PIL import Image

from sdstudio.core import atomic
from sdstudio.core.gallery import Gallery
from sdstudio.core.png import io
from sdstudio.core.request import GenerationRequest

pytestmark = pytest.mark.skipif(os.name != "posix", reason="uses fork and SIGKILL")

KILLS = 25


def _save_forever(folder: str, index: str, image: Image.Image, start: int) -> None:
    """Child process: save images as fast as it can until it is killed."""
    g = Gallery(folder, index_path=index, sync=False)
    seed = start
    while True:
        g.save(image, GenerationRequest(f"crash test image {seed}", seed=seed), seed)
        seed += 1


def test_kill_while_saving_leaves_no_partial_file(tmp_path):
    folder, index = tmp_path / "gallery", tmp_path / "index.sqlite3"
    Gallery(folder, index_path=index).close()
    # Incompressible pixels make each write take a few milliseconds, so kills land mid-write.
    image = Image.frombytes("RGB", (256, 256), os.urandom(256 * 256 * 3))
    ctx = multiprocessing.get_context("fork")
    rng = random.Random(1234)
    for k in range(KILLS):
        proc = ctx.Process(target=_save_forever, args=(str(folder), str(index), image, k * 1000))
        proc.start()
        time.sleep(rng.uniform(0.05, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        assert proc.exitcode == -signal.SIGKILL

    pngs = sorted(folder.glob("*.png"))
    temps = list(atomic.iter_temp_files(folder))
    assert pngs, "the children never saved anything"
    # 1. Every visible PNG is whole: it decodes fully and carries its parameters.
    for path in pngs:
        with Image.open(path) as im:
            im.load()
            assert im.size == (256, 256)
        p = io.read_png(path)
        assert p is not None and p.prompt == f"crash test image {p.seed}"
    # 2. No index row without its file (checked before any sync could repair it).
    rows = {p for (p,) in sqlite3.connect(index).execute("SELECT path FROM images")}
    assert rows <= {p.name for p in pngs}
    integrity = sqlite3.connect(index).execute("PRAGMA integrity_check").fetchone()[0]
    assert integrity == "ok"
    # 3. Opening the gallery clears the dead writers' temp files and indexes orphan files.
    with Gallery(folder, index_path=index) as g:
        assert {i.path.name for i in g.search()} == {p.name for p in pngs}
        assert g.last_sync.errors == []
    assert list(atomic.iter_temp_files(folder)) == []
    print(f"\n{KILLS} kills: {len(pngs)} whole PNGs, {len(temps)} partial temp files cleared, "
          f"{len(pngs) - len(rows)} files indexed after the crash")

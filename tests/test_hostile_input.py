"""Hostile and odd input (issue 13): every bad file named once, linear-time parsing, symlink-safe
temp files, lock contention told from corruption, capped memory, search input that never crashes.
The long fuzz, kill and two-writer runs are in stress/."""

from __future__ import annotations

import multiprocessing
import os
import random
import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from sdstudio.cli import main
from sdstudio.core import atomic
from sdstudio.core.errors import UserError
from sdstudio.core.gallery import Gallery, IndexNotUpdated, store
from sdstudio.core.gallery.query import parse_query
from sdstudio.core.gallery.saving import PendingImage, Saver, save_numbered, save_to_folder
from sdstudio.core.gallery.thumbnails import ThumbnailError, ensure_thumbnail
from sdstudio.core.png import MetadataError, a1111, io, parse_parameters, read_png
from sdstudio.core.request import GenerationRequest
from sdstudio.testing.hostile import READABLE, bad_files, raw_png, write_bad_files

A1111_PATTERN = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')


def _img(color: str = "red") -> Image.Image:
    return Image.new("RGB", (16, 16), color)


def _good(gallery: Gallery, n: int = 2) -> set[str]:
    return {gallery.save(_img(), GenerationRequest(f"good {i}", seed=i), i).path.name
            for i in range(n)}


# ---------------------------------------------------------------- 1. one file never stops a sync


def test_gallery_lists_every_good_image_and_names_each_bad_one_once(tmp_path):
    folder = tmp_path / "g"
    with Gallery(folder) as g:
        good = _good(g)
    names = write_bad_files(folder)
    with Gallery(folder) as g:
        listed = {i.path.name for i in g.search()}
        errors = g.last_sync.errors
    readable = {n for n, kind in names.items() if kind in READABLE}
    unreadable = set(names) - readable
    assert listed == good | readable
    assert len(errors) == len(unreadable)
    for name in unreadable:  # each named once, in one sentence
        shown = io.display_name(name)
        assert sum(shown in e for e in errors) == 1, (name, errors)
    assert all("\n" not in e and "Traceback" not in e for e in errors)
    with Gallery(folder) as g:  # known bad files are not read again, but still named
        assert g.last_sync.errors == [] and len(g.last_sync.skipped) == len(unreadable)
        assert g.count() == len(good | readable)


def test_odd_values_are_dropped_not_fatal(tmp_path):
    folder = tmp_path / "g"
    folder.mkdir()
    write_bad_files(folder)
    with Gallery(folder) as g:
        seed = g.get(folder / "bad-seed-over-int64.png")
        assert seed is not None and seed.seed is None and seed.prompt == "p"
        assert g.get(folder / "bad-created-nan.png").created > 0
        assert g.get(folder / "bad-lone-surrogate.png").prompt == "x?y"
        assert g.get(folder / "bad-a1111-1e999-cfg.png").cfg is None


def test_seed_past_int64_that_sdstudio_writes_itself(tmp_path):
    """Seed 2**63 - 1 with batch 2 gives the second image seed 2**63: it must not break opening."""
    with Gallery(tmp_path / "g") as g:
        g.save(_img(), GenerationRequest("edge"), 2**63 - 1)
        row = g.save(_img(), GenerationRequest("edge"), 2**63)
        assert row.seed is None
    with Gallery(tmp_path / "g") as g:
        assert g.count() == 2 and g.last_sync.errors == []
        assert read_png(row.path).seed == 2**63  # the file keeps it


def test_truncated_png_is_not_indexed_as_good(tmp_path):
    with Gallery(tmp_path / "g") as g:
        row = g.save(_img(), GenerationRequest("whole"), 1)
    data = row.path.read_bytes()
    cut = row.path.with_name("cut.png")
    cut.write_bytes(data[:-20])
    with pytest.raises(MetadataError, match="cut.png"):
        read_png(cut)
    with Gallery(tmp_path / "g") as g:
        assert g.count() == 1 and len(g.last_sync.errors) == 1


def test_unexpected_exception_in_one_file_is_named(tmp_path, monkeypatch):
    folder = tmp_path / "g"
    with Gallery(folder) as g:
        _good(g, 3)
    real = io.read_png_and_size

    def boom(path):
        if str(path).endswith("good 1.png") or "good-1" in str(path):
            raise RuntimeError("a bug we did not think of")
        return real(path)

    monkeypatch.setattr(io, "read_png_and_size", boom)
    with Gallery(folder, index_path=tmp_path / "fresh.sqlite3") as g:
        assert g.count() == 2
        assert len(g.last_sync.errors) == 1 and "a bug we did not think of" in g.last_sync.errors[0]


@pytest.mark.parametrize("kind", sorted(bad_files()))
def test_show_on_any_bad_file_is_one_sentence_or_output(tmp_path, kind, capsys):
    path = tmp_path / "x.png"
    path.write_bytes(bad_files()[kind])
    code = main(["gallery", "show", str(path)])
    err = capsys.readouterr().err
    assert code in (0, 2)
    assert "Traceback" not in err and err.count("\n") <= 1


# ---------------------------------------------------------------- 2. ReDoS


def test_settings_parser_finds_what_a1111_finds():
    rng = random.Random(13)
    alphabet = ["a", "Z", "1", "_", " ", "-", "/", ":", ",", '"', "\\", "\n", "\t", "é",
                "Steps", ": ", ", ", '"x"', "\\\""]
    for _ in range(20_000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        assert a1111._items(line) == A1111_PATTERN.findall(line), line


@pytest.mark.parametrize("text", [
    "a" * 200_000,  # a run of word characters: 200 KB cost A1111's pattern minutes
    "a b " * 50_000,
    " " * 200_000 + "!",
    'k: "\\", ' * 25_000,
    "Steps: 1, Seed: 2, CFG scale: 3, " + "x" * 200_000,
])
def test_settings_parser_is_linear(text):
    start = time.perf_counter()
    parse_parameters(text)
    a1111._items(text)
    assert time.perf_counter() - start < 5.0  # linear: ~20 ms; the old pattern took minutes


# ---------------------------------------------------------------- 3/4. atomic writes, symlinks


def test_write_never_follows_a_planted_symlink(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    folder = tmp_path / "shared"
    folder.mkdir()
    # The old predictable temp name, and the final name, both planted as links to the outside.
    (folder / f"{atomic.TEMP_PREFIX}{os.getpid()}-a{atomic.TEMP_SUFFIX}").symlink_to(outside)
    (folder / "a.png").symlink_to(outside)
    req = GenerationRequest("p")
    with pytest.raises(FileExistsError):
        io.write_png(folder / "a.png", _img(), req, 1, overwrite=False)
    io.write_png(folder / "a.png", _img(), req, 1)  # overwrite: replaces the link itself
    assert outside.read_text() == "precious"
    assert not (folder / "a.png").is_symlink() and read_png(folder / "a.png").prompt == "p"
    atomic.write_text(folder / "b.json", "{}")
    assert outside.read_text() == "precious"


def test_atomic_write_cleans_up_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "f.txt"
    atomic.write_text(target, "old")

    def dies(f):
        f.write(b"half")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        atomic.write_atomic(target, dies)
    assert target.read_text() == "old" and list(atomic.iter_temp_files(tmp_path)) == []
    assert oct(target.stat().st_mode & 0o777) != oct(0o600)  # the user's usual mode, not 0600


def test_stale_temps_of_dead_processes_go_symlinks_never_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.write_text("keep")
    folder = tmp_path / "f"
    folder.mkdir()
    dead = folder / f"{atomic.TEMP_PREFIX}999999999-x{atomic.TEMP_SUFFIX}"
    dead.symlink_to(outside)
    assert atomic.remove_stale_temp_files(folder) == 1
    assert not os.path.lexists(dead) and outside.read_text() == "keep"


# ---------------------------------------------------------------- 5. lock contention


def _hold_write_lock(index, seconds: float, ready: threading.Event) -> None:
    db = sqlite3.connect(index, isolation_level=None)
    db.execute("BEGIN EXCLUSIVE")
    ready.set()
    time.sleep(seconds)
    db.execute("ROLLBACK")
    db.close()


def test_locked_index_is_not_mistaken_for_damage(tmp_path, monkeypatch):
    with Gallery(tmp_path / "g") as g:
        _good(g, 5)
        index = g.index_path
    monkeypatch.setattr(store, "BUSY_TIMEOUT", 0.2)
    ready = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(index, 1.5, ready))
    holder.start()
    ready.wait()
    try:
        with pytest.raises(UserError, match="in use by another program"):
            Gallery(tmp_path / "g")
    finally:
        holder.join()
    with sqlite3.connect(index) as db:  # nothing was deleted
        assert db.execute("SELECT count(*) FROM images").fetchone()[0] == 5


def test_busy_index_waits_then_works(tmp_path):
    with Gallery(tmp_path / "g") as g:
        _good(g, 2)
        index = g.index_path
    ready = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(index, 0.5, ready))
    holder.start()
    ready.wait()
    with Gallery(tmp_path / "g") as g:  # waits for the lock (busy timeout), then syncs
        assert g.count() == 2
    holder.join()


def test_index_failure_after_the_file_is_written_gives_no_second_copy(tmp_path, monkeypatch):
    with Gallery(tmp_path / "g") as g:
        def locked(*a, **kw):
            raise sqlite3.OperationalError("database is locked")

        monkeypatch.setattr(g, "_index_one", locked)
        with pytest.raises(IndexNotUpdated) as err:
            g.save(_img(), GenerationRequest("once"), 1)
        assert err.value.path.is_file()
        rescued = tmp_path / "rescue"
        saver = Saver(lambda job: g.save(job.image, job.request, job.seed), lambda: rescued)
        [outcome] = saver.save(PendingImage(_img(), GenerationRequest("twice"), 2))
        assert outcome.path is not None and outcome.path.parent == g.folder
        assert "is saved, but the gallery index" in outcome.message
        assert not rescued.exists() and saver.kept() == 0
        monkeypatch.undo()
        assert len(list(g.folder.glob("*.png"))) == 2 and g.sync().added == 2


def test_sync_does_not_drop_a_row_whose_file_appeared_after_its_scan(tmp_path, monkeypatch):
    with Gallery(tmp_path / "g") as g:
        names = _good(g, 3)
        real_scan = g._scan
        monkeypatch.setattr(g, "_scan", lambda: iter([]))  # as if the files came after the scan
        assert g.sync().removed == 0 and g.count() == 3
        monkeypatch.setattr(g, "_scan", real_scan)
        (g.folder / sorted(names)[0]).unlink()
        assert g.sync().removed == 1 and g.count() == 2


def _numbered_writer(folder: str, start: int, count: int) -> None:
    for _ in range(count):
        save_numbered(Path(folder), PendingImage(_img(), GenerationRequest("race"), start))


@pytest.mark.skipif(os.name != "posix", reason="uses fork")
def test_cli_numbered_names_never_collide_between_processes(tmp_path):
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_numbered_writer, args=(str(tmp_path), 7, 15)) for _ in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
        assert p.exitcode == 0
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(names) == 45 and names == [f"{n:05d}-7.png" for n in range(45)]


def test_numbered_name_taken_between_choosing_and_writing(tmp_path, monkeypatch):
    from sdstudio.core.gallery import saving

    (tmp_path / "00000-1.png").write_bytes(b"taken")
    monkeypatch.setattr(saving, "_next_number", lambda folder: 0)  # a stale choice
    path = save_numbered(tmp_path, PendingImage(_img(), GenerationRequest("p"), 1))
    assert path.name == "00001-1.png" and (tmp_path / "00000-1.png").read_bytes() == b"taken"


# ---------------------------------------------------------------- 6/7. CLI folders, full disk


def test_cli_out_folder_temps_are_cleared_and_read_only_message(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    stale = out / f"{atomic.TEMP_PREFIX}999999999-x{atomic.TEMP_SUFFIX}"
    stale.write_bytes(b"half")
    [saved] = save_to_folder(out, [PendingImage(_img(), GenerationRequest("p"), 3)])
    assert saved.path == out / "00000-3.png" and not stale.exists()
    import errno

    real = atomic.tempfile.mkstemp

    def denied(*a, dir=None, **kw):
        if str(dir) == str(out):
            raise PermissionError(errno.EACCES, "Permission denied")
        return real(*a, dir=dir, **kw)

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    monkeypatch.setattr("sdstudio.core.gallery.saving.rescue_dir", lambda: tmp_path / "rescue")
    [saved] = save_to_folder(out, [PendingImage(_img(), GenerationRequest("p"), 4)])
    assert "The output folder" in saved.message and "choose another output folder" in saved.message
    assert "Settings" not in saved.message and saved.path.parent == tmp_path / "rescue"


def test_full_disk_keeps_the_rest_of_the_batch(tmp_path, monkeypatch):
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    jobs = [PendingImage(_img(), GenerationRequest(f"img {i}"), i) for i in range(5)]
    (tmp_path / "out").mkdir()
    monkeypatch.setattr(atomic.os, "fsync", full)
    outcomes = list(save_to_folder(tmp_path / "out", jobs))
    assert len(outcomes) == 5 and all(o.path is None for o in outcomes)
    assert all("could not be saved" in o.message and "is full" in o.message for o in outcomes)
    # The window's Saver keeps them all in memory and saves them once the disk has room.
    saver = Saver(lambda job: save_numbered(tmp_path / "out", job), lambda: tmp_path / "rescue")
    for job in jobs:
        saver.save(job)
    assert saver.kept() == 5
    monkeypatch.undo()
    done = saver.save(None)
    assert [o.job.seed for o in done] == [0, 1, 2, 3, 4] and all(o.path for o in done)


# ---------------------------------------------------------------- memory caps


def test_text_chunk_over_the_cap_is_one_sentence(tmp_path):
    path = tmp_path / "big.png"
    path.write_bytes(raw_png(8, 8, {"parameters": b"x" * (io.MAX_TEXT_CHUNK + 1)}))
    with pytest.raises(MetadataError, match="big.png: The image holds a 2 MB text chunk .parameters., more than the 2 MB"):
        read_png(path)


def test_thumbnail_refuses_huge_declared_size_before_decoding(tmp_path):
    path = tmp_path / "huge.png"
    path.write_bytes(raw_png(13300, 13300, idat=b"not even zlib"))
    with pytest.raises(ThumbnailError, match="too large for a thumbnail"):
        ensure_thumbnail(path, root=tmp_path / "thumbs")


# ---------------------------------------------------------------- search input


@pytest.mark.parametrize("query", [
    "\ud800", "cat\x00dog", "\x00", "steps:99999999999999999999", "seed:-99999999999999999999",
    "cfg:inf", "cfg:nan", 'neg:"', '"unclosed', 'a" OR "b', "NEAR(a b)", "* - ^", "size:1x99999999999",
    "model:%_\\", "prompt : x", "a" * 999, "😀 猫", "seed:", ":", '""', '" "',
])
def test_search_input_never_crashes(tmp_path, query):
    with Gallery(tmp_path / "g") as g:
        _good(g, 2)
        try:
            g.search(query)
            g.search_ids(query)
        except UserError as exc:
            assert "\n" not in str(exc)


def test_search_fuzz_small(tmp_path):
    rng = random.Random(6)
    pieces = ["seed:", "steps:", "cfg:", "size:", "model:", "neg:", "is:fav", '"', "\x00", "\ud800",
              "9" * 30, "-", "*", "(", ")", "AND", "OR", "NOT", " ", "cat", "é", ":", "\\", "1e999"]
    with Gallery(tmp_path / "g") as g:
        _good(g, 2)
        for _ in range(500):
            q = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
            try:
                g.search_ids(q)
            except UserError:
                pass


def test_long_query_is_refused_in_one_sentence():
    with pytest.raises(UserError, match="too long"):
        parse_query("a" * 5000)


def test_window_gallery_lists_good_images_beside_bad_files(qtbot, tmp_path):
    from sdstudio.ui.gallery_panel import GalleryPanel

    folder = tmp_path / "g"
    with Gallery(folder) as g:
        good = _good(g)
    names = write_bad_files(folder)
    readable = {n for n, kind in names.items() if kind in READABLE}
    panel = GalleryPanel(folder)
    qtbot.addWidget(panel)
    panel.show()
    with qtbot.waitSignal(panel.synced, timeout=20_000) as blocker:
        pass
    report = blocker.args[0]
    expected = len(good | readable)
    assert panel.model.rowCount() == expected
    assert panel.status.text() == (f"{expected} images · {len(names) - len(readable)} file(s) "
                                   "could not be read")
    # every row's thumbnail request finishes (placeholder for the huge one), none kills the pool
    for r in range(expected):
        panel.model.pixmap(str(panel.model.image_at(r).path))
    qtbot.waitUntil(lambda: not panel.model.loader._pending, timeout=20_000)
    assert report.unreadable
    panel.shutdown()

"""The gallery store: saving, SQLite/FTS5 index, search syntax, sync, rebuild, bad input."""

from __future__ import annotations

import errno
import os
import sqlite3

import pytest
from PIL import Image, PngImagePlugin

from sdstudio.core import atomic
from sdstudio.core import gallery as gallery_mod
from sdstudio.core.errors import UserError
from sdstudio.core.gallery import Gallery
from sdstudio.core.gallery.thumbnails import THUMB_SIDE, ensure_thumbnail
from sdstudio.core.paths import default_gallery_dir
from sdstudio.core.png import io
from sdstudio.core.request import GenerationRequest

A1111_SAMPLE = (
    "masterpiece, best quality\nstanding in the rain\nNegative prompt: lowres\n"
    "Steps: 28, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7, Seed: 1234567890, "
    "Size: 512x768, Model hash: 7f96a1a9ca, Model: anything-v5, Version: v1.9.4"
)


def _img(color: str = "red") -> Image.Image:
    return Image.new("RGB", (32, 24), color)


@pytest.fixture
def gallery(tmp_path):
    g = Gallery(tmp_path / "gallery")
    yield g
    g.close()


def _fill(g: Gallery) -> None:
    g.save(_img(), GenerationRequest("a red cat on a mat", "blurry, ugly", model="demo"), 100)
    g.save(_img(), GenerationRequest("a blue dog, sitting: calmly", scheduler="DDIM",
                                     guidance=5.5, width=640, height=448), 101)
    g.save(_img(), GenerationRequest("Red sunset\nover the sea", model="/m/dream-v2.safetensors"),
           102)


def test_default_folder_and_index_outside_it(tmp_path):
    with Gallery() as g:
        assert g.folder == default_gallery_dir().resolve()
        assert not g.index_path.is_relative_to(g.folder)  # the folder holds only the user's PNGs
        assert g.index_path.exists()
        mode = g._db.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"


def test_save_writes_png_and_row(gallery):
    row = gallery.save(_img(), GenerationRequest("a red cat", seed=7), 7)
    assert row.path.is_file() and row.path.parent == gallery.folder
    assert row.path.name.endswith("-7-a-red-cat.png")
    assert (row.prompt, row.seed, row.model, row.sampler, row.width) == ("a red cat", 7, "demo",
                                                                          "Euler a", 512)
    assert row.file_size == row.path.stat().st_size
    assert io.read_png(row.path).to_request() == GenerationRequest("a red cat", seed=7)


def test_same_name_never_overwrites(gallery):
    a = gallery.save(_img("red"), GenerationRequest("same"), 1)
    b = gallery.save(_img("blue"), GenerationRequest("same"), 1)
    assert a.path != b.path and gallery.count() == 2


@pytest.mark.parametrize("query, seeds", [
    ("", [102, 101, 100]),
    ("red", [102, 100]),
    ("RED cat", [100]),
    ("sit", [101]),  # prefix match while typing
    ('"red cat"', [100]),
    ('"cat red"', []),
    ("seed:101", [101]),
    ("seed:101 red", []),
    ("model:dream", [102]),
    ("model:DEMO", [100, 101]),
    ("sampler:ddim", [101]),
    ("cfg:5.5", [101]),
    ("size:640x448", [101]),
    ("steps:20", [102, 101, 100]),
    ("neg:blur", [100]),
    ("blurry", []),  # plain words search the prompt, not the negative prompt
    ("calmly:", [101]),
    ('AND OR NOT * ( ) " NEAR', []),
    ("猫", []),
])
def test_search_syntax(gallery, query, seeds):
    _fill(gallery)
    assert sorted(i.seed for i in gallery.search(query)) == sorted(seeds)


def test_search_order_favourites_and_paging(gallery):
    _fill(gallery)
    assert [i.seed for i in gallery.search()] == [102, 101, 100]
    assert [i.seed for i in gallery.search(newest_first=False)] == [100, 101, 102]
    assert [i.seed for i in gallery.search(limit=1, offset=1)] == [101]
    gallery.set_favourite(gallery.search("seed:101")[0].path)
    assert [i.seed for i in gallery.search(favourites_only=True)] == [101]
    assert [i.seed for i in gallery.search("is:fav")] == [101]


@pytest.mark.parametrize("query", ["seed:abc", "cfg:x", "size:big"])
def test_bad_filters_are_one_sentence(gallery, query):
    with pytest.raises(UserError, match=query.split(":")[0] + ":"):
        gallery.search(query)


def test_survives_restart(tmp_path):
    with Gallery(tmp_path / "g") as g:
        _fill(g)
        g.set_favourite(g.search("seed:100")[0].path)
    with Gallery(tmp_path / "g") as g:
        assert g.last_sync.added == 0 and g.count() == 3
        assert g.search("cat")[0].favourite


def test_sync_picks_up_outside_changes(tmp_path):
    folder = tmp_path / "g"
    with Gallery(folder) as g:
        _fill(g)
        first = g.search("seed:100")[0].path
    first.unlink()  # removed outside the app
    sub = folder / "from-a1111"
    sub.mkdir()
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", A1111_SAMPLE)
    _img().save(sub / "00001-1234567890.png", pnginfo=info)  # added by another tool
    _img().save(folder / "plain.png")  # a PNG without any metadata
    (folder / "notes.png").write_text("not really a png")
    (folder / ".hidden.png").write_bytes(b"")
    with Gallery(folder) as g:
        assert (g.last_sync.added, g.last_sync.removed) == (2, 1)
        assert g.last_sync.errors == ["notes.png is not an image, or is too damaged to read."]
        assert g.search("rain")[0].seed == 1234567890
        assert g.search("model:anything")[0].path.name == "00001-1234567890.png"
        assert g.get(folder / "plain.png").prompt == ""
        assert g.count() == 4
    with Gallery(folder) as g:  # the broken file is not read again until it changes
        assert g.last_sync.errors == [] and g.count() == 4


def test_sync_updates_changed_file(gallery):
    row = gallery.save(_img(), GenerationRequest("old words"), 1)
    req = GenerationRequest("new words")
    io.write_png(row.path, _img("green"), req, 1)
    os.utime(row.path, ns=(row.mtime_ns + 10**9, row.mtime_ns + 10**9))
    report = gallery.sync()
    assert report.updated == 1 and gallery.search("old") == [] and len(gallery.search("new")) == 1


def test_rebuild_from_files_keeps_favourites(gallery):
    _fill(gallery)
    gallery.set_favourite(gallery.search("seed:102")[0].path)
    report = gallery.rebuild()
    assert report.added == 3 and gallery.count() == 3
    assert [i.seed for i in gallery.search(favourites_only=True)] == [102]
    assert [i.seed for i in gallery.search("sunset")] == [102]


def test_favourites_outlive_a_lost_index(tmp_path):
    with Gallery(tmp_path / "g") as g:
        _fill(g)
        g.set_favourite(g.search("seed:101")[0].path)
        index = g.index_path
    for suffix in ("", "-wal", "-shm"):
        (index.parent / (index.name + suffix)).unlink(missing_ok=True)  # cache wiped
    with Gallery(tmp_path / "g") as g:
        assert g.count() == 3
        assert [i.seed for i in g.search(favourites_only=True)] == [101]


def test_damaged_index_is_rebuilt(tmp_path):
    with Gallery(tmp_path / "g") as g:
        _fill(g)
        index = g.index_path
    for suffix in ("-wal", "-shm"):
        (index.parent / (index.name + suffix)).unlink(missing_ok=True)
    index.write_bytes(b"this is not a database" * 100)
    with Gallery(tmp_path / "g") as g:
        assert g.count() == 3 and len(g.search("cat")) == 1


def test_delete_goes_to_trash(gallery, monkeypatch):
    _fill(gallery)
    trashed = []
    monkeypatch.setattr("send2trash.send2trash", lambda p: (trashed.append(p), os.remove(p)))
    victim = gallery.search("seed:101")[0].path
    gallery.delete(victim)
    assert trashed == [victim] and not victim.exists()
    assert gallery.get(victim) is None and gallery.count() == 2


def test_delete_failure_keeps_image_listed(gallery, monkeypatch):
    row = gallery.save(_img(), GenerationRequest("keep me"), 1)

    def no_trash(p):
        raise OSError("no trash on this volume")

    monkeypatch.setattr("send2trash.send2trash", no_trash)
    with pytest.raises(UserError, match="Could not move .* to the trash"):
        gallery.delete(row.path)
    assert row.path.exists() and gallery.get(row.path) is not None


def test_full_disk_keeps_everything_else(gallery, monkeypatch):
    _fill(gallery)
    before = sorted(p.name for p in gallery.folder.iterdir())

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", full)
    with pytest.raises(UserError, match="is full: free some space") as err:
        gallery.save(_img(), GenerationRequest("doomed"), 9)
    assert "\n" not in str(err.value)
    monkeypatch.undo()
    assert sorted(p.name for p in gallery.folder.iterdir()) == before
    assert gallery.count() == 3 and gallery.sync().added == 0


def test_read_only_folder_simulated(gallery, monkeypatch):
    _fill(gallery)
    real_mkstemp = atomic.tempfile.mkstemp

    def denied(*a, dir=None, **kw):
        if str(dir).startswith(str(gallery.folder)):
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return real_mkstemp(*a, dir=dir, **kw)

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    with pytest.raises(UserError, match="is read-only: choose another gallery folder"):
        gallery.save(_img(), GenerationRequest("nope"), 9)
    assert gallery.count() == 3


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root ignores permissions")
def test_read_only_folder_real(tmp_path):
    folder = tmp_path / "ro"
    with Gallery(folder) as g:
        _fill(g)
    folder.chmod(0o555)
    try:
        with Gallery(folder) as g:  # browsing still works: the index is in the cache
            assert g.count() == 3
            with pytest.raises(UserError, match="read-only"):
                g.save(_img(), GenerationRequest("x"), 1)
    finally:
        folder.chmod(0o755)


def test_missing_folder_for_rebuild_is_one_sentence(tmp_path):
    with pytest.raises(UserError, match="does not exist or is not a folder"):
        Gallery(tmp_path / "nowhere", create=False)


def test_stale_temp_files_are_cleared_on_open(tmp_path):
    folder = tmp_path / "g"
    folder.mkdir()
    stale = folder / f"{atomic.TEMP_PREFIX}999999999-x{atomic.TEMP_SUFFIX}"
    stale.write_bytes(b"half a png")
    mine = folder / f"{atomic.TEMP_PREFIX}{os.getpid()}-y{atomic.TEMP_SUFFIX}"
    mine.write_bytes(b"being written right now")
    with Gallery(folder) as g:
        assert g.count() == 0
    assert not stale.exists() and mine.exists()


def test_index_rows_always_have_files(gallery):
    _fill(gallery)
    rows = sqlite3.connect(gallery.index_path).execute("SELECT path FROM images").fetchall()
    assert all((gallery.folder / p).is_file() for (p,) in rows)


def test_thumbnails_cached_and_refreshed(gallery):
    row = gallery.save(Image.new("RGB", (640, 320), "red"), GenerationRequest("t"), 1)
    thumb = ensure_thumbnail(row.path)
    with Image.open(thumb) as im:
        assert im.size == (THUMB_SIDE, THUMB_SIDE // 2)
    mtime = thumb.stat().st_mtime_ns
    assert ensure_thumbnail(row.path) == thumb and thumb.stat().st_mtime_ns == mtime
    io.write_png(row.path, Image.new("RGB", (64, 64)), GenerationRequest("t"), 1)
    os.utime(row.path, ns=(mtime + 10**9, mtime + 10**9))
    assert ensure_thumbnail(row.path) != thumb


def test_file_names_are_safe():
    name = gallery_mod.file_name_for('a/b\\c: "d" 猫 <e>|*?', 5, 0)
    assert name.endswith("-5-a-b-c-d-e.png") and "/" not in name

"""The gallery's search paths at scale: substring keys resolved through the distinct values of
their index, the model index that holds the other filters, and the upgrade of an index of the
previous schema."""

from __future__ import annotations

import sqlite3

import pytest
from PIL import Image, PngImagePlugin

from sdstudio.core.gallery import Gallery, store

A1111 = ("a castle on a hill\nNegative prompt: lowres\nSteps: 28, Sampler: {sampler}, "
         "CFG scale: 7, Seed: {seed}, Size: 512x768, Model: {model}")
# names that test LIKE's wildcards and escape, case (ASCII folds, other letters do not), and
# values that differ only in case (one index entry per spelling, one name per NOCASE group)
MODELS = ["sd15", "SD15-inpaint", "Sd15", "dreamshaper_8", "dreamshaperX8", "my_sd_model",
          "100%_real", "100x_real", "back\\slash", "Ärger-v1", "ärger-v2", "demo"]
SAMPLERS = ["Euler a", "Euler", "DPM++ 2M", "DDIM"]


def _png(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", text)
    Image.new("RGB", (8, 8), "blue").save(path, pnginfo=info)


@pytest.fixture
def folder(tmp_path):
    folder = tmp_path / "models"
    for i, model in enumerate(MODELS * 2):
        _png(folder / f"{i:02d}.png",
             A1111.format(seed=i, model=model, sampler=SAMPLERS[i % len(SAMPLERS)]))
    _png(folder / "plain.png", "just a prompt")  # no model, no sampler: NULL in the index
    return folder


def _reference(g: Gallery, column: str, needle: str) -> list[int]:
    """What a substring key means, by a plain scan of every row: Python's own test for ASCII-
    case-insensitive containment (SQLite's LIKE folds ASCII letters only)."""
    fold = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
    return sorted(seed for seed, value in g._db.execute(f"SELECT seed, {column} FROM images")
                  if value is not None and needle.translate(fold) in value.translate(fold))


NEEDLES = ["sd15", "SD15", "sd_", "_", "%", "100%", "100%_", "x8", "\\", "back\\s", "Ärger",
           "ärger", "ÄRGER", "r-v", "nothing", "dreamshaper_8"]


@pytest.mark.parametrize("walk_limit", [store.MAX_DISTINCT, 3])  # the walk / the scan beyond it
def test_substring_model_key_equals_a_scan_of_every_row(folder, monkeypatch, walk_limit):
    monkeypatch.setattr(store, "MAX_DISTINCT", walk_limit)
    with Gallery(folder) as g:
        for needle in NEEDLES:
            found = sorted(i.seed for i in g.search(f"model:{needle}"))
            assert found == _reference(g, "model", needle), needle
            assert sorted(i.seed for i in g.get_many(g.search_ids(f"model:{needle}"))) == found


def test_substring_values_are_one_per_spelling_and_skip_empty_rows(folder):
    with Gallery(folder) as g:
        names = g._values_like("model", "%sd15%")
        assert sorted(n.lower() for n in names) == ["sd15", "sd15-inpaint"]  # sd15/Sd15: one
        assert g._values_like("model", "%") != [] and None not in g._values_like("model", "%")
        assert sorted(g._values_like("sampler", "%euler%")) == ["Euler", "Euler a"]
        assert g._values_like("source", "%a1111%") == ["a1111"]


def test_two_substring_keys_and_their_exact_forms(folder):
    with Gallery(folder) as g:
        def seeds(q):
            return sorted(i.seed for i in g.search(q))
        dream = _reference(g, "model", "dreamshaper")
        assert seeds("tool:a1111 model:dreamshaper") == dream and dream
        assert seeds('tool:"a1111" model:"dreamshaper_8"') == _reference(g, "model",
                                                                          "dreamshaper_8")
        assert seeds("tool:comfy model:dreamshaper") == []
        assert seeds("model:sd15 sampler:euler") == sorted(
            set(_reference(g, "model", "sd15")) & set(_reference(g, "sampler", "euler")))
        # newest first, however the rows were found
        ids = g.search_ids("tool:a1111 model:sd")
        assert [i.id for i in g.search("tool:a1111 model:sd")] == ids
        created = [i.created for i in g.get_many(ids)]
        assert created == sorted(created, reverse=True)


def _plan(g: Gallery, query: str) -> str:
    sql, args = g._select("id", query, False, True, None, 0)
    return " ".join(r[3] for r in g._reader.execute("EXPLAIN QUERY PLAN " + sql, args))


def test_model_with_other_filters_is_answered_from_the_model_index(tmp_path):
    """The shape of the benchmark's gallery (one tool for every image, a few models): the model
    index, which holds the other filter columns too, answers without reading the table."""
    with Gallery(tmp_path / "g", sync=False) as g:
        rows = [(f"{i}.png", i, ("demo", "sd15", "dreamshaper_8", "sdxl_base")[i % 4],
                 ("Euler a", "DDIM")[i % 2], 512, 768 if i % 3 else 512, 20 + i % 3, 7.0,
                 float(i), i % 50 == 0, "a1111") for i in range(4000)]
        g._db.executemany("INSERT INTO images (path, seed, model, sampler, width, height, steps, "
                          "cfg, created, favourite, source, file_size, mtime_ns) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)", rows)
        g._analyze()
        for q in ("tool:a1111 model:dream", 'tool:"a1111" model:"dreamshaper_8"',
                  "steps:21 sampler:ddim cfg:7 size:512x768 model:sd15",
                  'model:"demo" sampler:"Euler a" size:512x768 is:fav'):
            assert "COVERING INDEX images_model_filters" in _plan(g, q), (q, _plan(g, q))
            expected = [i for *_, i in sorted(
                (r[8], r[1]) for r in rows if r[2] in _models(q) and _keeps(q, r))][::-1]
            assert [i.seed for i in g.search(q)] == expected, q


def _models(q: str) -> set[str]:
    return {"dreamshaper_8"} if "dream" in q else {"sd15"} if "sd15" in q else {"demo"}


def _keeps(q: str, r: tuple) -> bool:
    """The other keys of the queries above, checked in Python on a row of the insert."""
    if "steps:21" in q:
        return r[6] == 21 and r[3] == "DDIM" and r[5] == 768
    if "is:fav" in q:
        return r[3] == "Euler a" and r[5] == 768 and r[9]
    return True


def _make_version_1(index) -> None:
    """An index as version 1 left it: images_model on (model, created) only, sampled
    statistics, version '1'."""
    db = sqlite3.connect(index, isolation_level=None)
    db.execute("DROP INDEX images_model_filters")
    db.execute("CREATE INDEX images_model ON images(model COLLATE NOCASE, created)")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    db.execute("PRAGMA analysis_limit = 10")
    db.execute("ANALYZE")
    db.close()


def _schema(g: Gallery) -> tuple[str, bool]:
    version = g._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0]
    names = {n for (n,) in g._db.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    return version, "images_model_filters" in names and "images_model" not in names


@pytest.mark.parametrize("read_only", [False, True])
def test_index_of_version_1_is_upgraded_and_keeps_favourites(folder, read_only):
    with Gallery(folder, read_only=read_only) as g:
        g.set_favourite(g.search("seed:3")[0].path)
        g.set_favourite(g.search("seed:20")[0].path)
        before = {q: [i.id for i in g.search(q)] for q in
                  ("", "castle", "model:sd", "tool:a1111 model:dream", "is:fav")}
        assert _schema(g) == (store.SCHEMA_VERSION, True)
        index = g.index_path
    (folder / store.FAVOURITES_FILE).unlink(missing_ok=True)  # only the index holds them now
    _make_version_1(index)
    with Gallery(folder, read_only=read_only, sync=False) as g:  # the panel's open: no sync
        assert _schema(g) == ("1", False)  # the old index answers while the window opens
        assert {q: [i.id for i in g.search(q)] for q in before} == before
        g.sync()  # the panel's background sync upgrades it
        assert _schema(g) == ("2", True) and g.last_sync.added == 0
        assert sorted(i.seed for i in g.search(favourites_only=True)) == [3, 20]
        assert {q: [i.id for i in g.search(q)] for q in before} == before  # same rows, same ids
        stats = dict(g._db.execute("SELECT idx, stat FROM sqlite_stat1 WHERE tbl = 'images'"))
        assert stats["images_source"].split()[:2] == ["25", "25"]  # full: one tool, 25 rows
    with Gallery(folder, read_only=read_only) as g:  # opened again: nothing more to do
        assert _schema(g) == ("2", True) and g.last_sync.added == 0
        assert sorted(i.seed for i in g.search("is:fav")) == [3, 20]


def test_index_of_a_newer_version_is_used_as_it_is(folder):
    with Gallery(folder) as g:
        index = g.index_path
    db = sqlite3.connect(index, isolation_level=None)
    db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    db.close()
    with Gallery(folder) as g:
        assert _schema(g) == ("99", True) and g.count() == 25

"""Gallery sources (other tools' folders, read-only) and the filter keys of the search text."""

from __future__ import annotations

import json
import os
from datetime import datetime

import pytest
from PIL import Image, PngImagePlugin

from sdstudio.core.errors import UserError
from sdstudio.core.gallery import Gallery
from sdstudio.core.gallery.query import parse_query
from sdstudio.core.gallery.sources import (
    add_source,
    load_sources,
    open_source,
    remove_source,
    sources_path,
)
from sdstudio.core.gallery.thumbnails import ensure_thumbnail

A1111 = ("a castle on a hill\nNegative prompt: lowres\nSteps: 28, Sampler: DPM++ 2M, "
         "CFG scale: 7, Seed: {seed}, Size: 512x768, Model: anything-v5")
COMFY = {"3": {"class_type": "KSampler", "inputs": {
    "seed": 77, "steps": 12, "cfg": 6.0, "sampler_name": "euler", "scheduler": "normal",
    "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
    "latent_image": ["5", 0]}},
    "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "dreamshaper.safetensors"}},
    "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 640, "height": 384,
                                                        "batch_size": 1}},
    "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a comfy river", "clip": ["4", 1]}},
    "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "ugly", "clip": ["4", 1]}},
    "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0]}}}


def _png(path, **chunks: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    Image.new("RGB", (8, 8), "blue").save(path, pnginfo=info)


def _tree(folder) -> dict[str, tuple[int, int]]:
    """Every entry under `folder` with its size and mtime: what "never written" is checked on."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            st = os.stat(os.path.join(root, name))
            out[os.path.relpath(os.path.join(root, name), folder)] = (st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture
def other_tools(tmp_path):
    """An A1111 outputs/ tree and a ComfyUI output/ folder, plus a leftover temp-like file."""
    a1111 = tmp_path / "webui" / "outputs"
    _png(a1111 / "txt2img-images" / "2026-01-05" / "00001-11.png", parameters=A1111.format(seed=11))
    _png(a1111 / "txt2img-images" / "2026-01-06" / "00002-12.png", parameters=A1111.format(seed=12))
    (a1111 / ".tmp-abc.png.part").write_bytes(b"not ours")
    comfy = tmp_path / "ComfyUI" / "output"
    _png(comfy / "ComfyUI_00001_.png", prompt=json.dumps(COMFY))
    return a1111, comfy


def test_source_list_persists_and_validates(tmp_path, other_tools):
    a1111, comfy = other_tools
    assert load_sources() == []
    assert add_source(a1111) == a1111.resolve()
    add_source(str(comfy))
    add_source(a1111)  # once only
    assert load_sources() == [a1111.resolve(), comfy.resolve()]
    assert json.loads(sources_path().read_text())["sources"][1] == str(comfy.resolve())
    with pytest.raises(UserError, match="not a folder"):
        add_source(tmp_path / "missing")
    assert remove_source(a1111) == a1111.resolve()
    assert load_sources() == [comfy.resolve()]
    with pytest.raises(UserError, match="not a gallery source"):
        remove_source(a1111)
    sources_path().write_text("{not json")
    assert load_sources() == []  # damaged list: no sources, no traceback


def test_source_is_indexed_searchable_and_never_written(other_tools):
    a1111, comfy = other_tools
    before = _tree(a1111.parent), _tree(comfy.parent)
    with open_source(a1111) as g:
        assert g.last_sync.added == 2
        assert [i.seed for i in g.search("castle sampler:DPM")] == [12, 11]
        img = g.search("seed:11")[0]
        g.set_favourite(img.path)  # kept in the index only
        assert [i.seed for i in g.search("is:fav")] == [11]
        thumb = ensure_thumbnail(img.path)
        assert not thumb.is_relative_to(a1111)
        with pytest.raises(UserError, match="read-only source"):
            g.delete(img.path)
        with pytest.raises(UserError, match="read-only source"):
            from sdstudio.core.request import GenerationRequest

            g.save(Image.new("RGB", (8, 8)), GenerationRequest("x"), 1)
        g.rebuild()
        assert [i.seed for i in g.search("is:fav")] == [11]  # favourite survives a rebuild
    with open_source(comfy) as g:
        (img,) = g.search("tool:comfyui river")
        assert (img.seed, img.steps, img.width, img.height) == (77, 12, 640, 384)
        assert g.values("source") == ["comfyui"]
    assert (_tree(a1111.parent), _tree(comfy.parent)) == before  # nothing moved or written
    assert (a1111 / ".tmp-abc.png.part").exists()


def test_source_sync_sees_new_files(other_tools):
    a1111, _ = other_tools
    with open_source(a1111) as g:
        _png(a1111 / "img2img-images" / "00003-13.png", parameters=A1111.format(seed=13))
        report = g.sync()
        assert report.added == 1 and g.count() == 3


def test_values_for_the_filter_bar(other_tools):
    a1111, _ = other_tools
    with open_source(a1111) as g:
        assert g.values("model") == ["anything-v5"]
        assert g.values("sampler") == ["DPM++ 2M"]
        assert g.values("size") == ["512x768"]
        with pytest.raises(ValueError):
            g.values("prompt; DROP TABLE images")


def test_date_filters(tmp_path):
    folder = tmp_path / "g"
    for day, seed in ((4, 1), (5, 2), (31, 3)):
        p = folder / f"{seed}.png"
        _png(p, parameters=A1111.format(seed=seed))
        t = datetime(2026, 1, day, 12).timestamp()
        os.utime(p, (t, t))
    p = folder / "feb.png"
    _png(p, parameters=A1111.format(seed=4))
    t = datetime(2026, 2, 1, 0, 0, 1).timestamp()
    os.utime(p, (t, t))
    with Gallery(folder) as g:
        def seeds(q):
            return sorted(i.seed for i in g.search(q))
        assert seeds("date:2026-01-05") == [2]
        assert seeds("from:2026-01-05") == [2, 3, 4]
        assert seeds("to:2026-01-05") == [1, 2]  # the whole last day included
        assert seeds("from:2026-01-05 to:2026-01-31") == [2, 3]
        assert seeds("date:2026-01") == [1, 2, 3]
        assert seeds("date:2026") == [1, 2, 3, 4]
        assert seeds("date:2025") == []


@pytest.mark.parametrize("query", ["from:yesterday", "to:2026-13-01", "date:2026-02-30",
                                   "from:99999-01-01", "date:0000"])
def test_bad_dates_are_one_sentence(query):
    with pytest.raises(UserError, match="needs a date"):
        parse_query(query)


def test_cli_sources(other_tools, capsys):
    from sdstudio.cli import main

    a1111, comfy = other_tools
    before = _tree(a1111.parent)
    assert main(["gallery", "sources", "add", str(a1111)]) == 0
    assert "2 images indexed" in capsys.readouterr().out
    assert main(["gallery", "sources", "add", str(comfy)]) == 0
    assert main(["gallery", "sources", "list"]) == 0
    out = capsys.readouterr().out
    assert f"{a1111.resolve()}  (2 images)" in out and "2 source folders" in out
    assert main(["gallery", "search", "sampler:DPM seed:12", "--source", str(a1111)]) == 0
    assert "seed 12" in capsys.readouterr().out
    assert main(["gallery", "sources", "remove", str(a1111)]) == 0
    assert main(["gallery", "sources", "remove", str(a1111)]) == 2  # one sentence, no traceback
    assert "not a gallery source" in capsys.readouterr().err
    assert _tree(a1111.parent) == before


def test_sync_reports_progress(tmp_path):
    folder = tmp_path / "many"
    for i in range(300):
        _png(folder / f"{i}.png", parameters=A1111.format(seed=i))
    calls = []
    with Gallery(folder, sync=False) as g:
        g.sync(lambda done, total: calls.append((done, total)))
    assert calls == [(0, 300), (250, 300)]


def test_stop_ends_a_sync_early_and_keeps_what_was_read(tmp_path):
    folder = tmp_path / "many"
    for i in range(600):
        _png(folder / f"{i:03d}.png", parameters=A1111.format(seed=i))
    with Gallery(folder, sync=False) as g:
        g.sync(lambda done, total: g.stop() if done >= 250 else None)
        assert g.count() == 250  # the next sync (a new Gallery) reads the rest
    with Gallery(folder) as g:
        assert g.last_sync.added == 350 and g.count() == 600


def test_substring_keys_match_every_value_that_holds_the_text(tmp_path, monkeypatch):
    folder = tmp_path / "models"
    names = ["sd15", "SD15-inpaint", "dreamshaper_8", "my_sd_model", "100%_real"]
    for i, name in enumerate(names):
        _png(folder / f"{i}.png", parameters=A1111.format(seed=i).replace("anything-v5", name))
    with Gallery(folder) as g:
        def seeds(q):
            return sorted(i.seed for i in g.search(q))
        assert seeds("model:sd15") == [0, 1]  # any case, any name holding it
        assert seeds('model:"sd15"') == [0]  # quoted: that name exactly
        assert seeds("model:sd_") == [3]  # _ and % are plain characters
        assert seeds("model:100%") == [4]
        assert seeds("model:nothing") == []
        assert seeds("model:sd sampler:dpm") == [0, 1, 3]
        from sdstudio.core.gallery import query

        monkeypatch.setattr(query, "MAX_VALUES", 1)  # many matching values: the LIKE scan
        assert seeds("model:sd") == [0, 1, 3]

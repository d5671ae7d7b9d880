"""Hostile and odd metadata: the readers return ParsedMetadata or None, never raise or hang."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest
import readers_samples as samples
from PIL import Image

from sdstudio.core.png.readers import image_chunks, read_metadata
from sdstudio.core.png.readers.dispatch import _read
from sdstudio.core.png.readers.image import decode_user_comment, read_stealth
from sdstudio.core.png.readers.model import ParsedMetadata

ODD_VALUES: list[Any] = [None, True, False, -1, 0, 2**70, -(2**70), 1e308, -1e308, 0.5, "nan",
                         "inf", "", "x" * 5000, [], {}, ["1", 0], ["9999", 0], [None, None],
                         [[["deep"]]], {"on": True}, "1e999", "-0", "\x00\ud800"[:1], "None"]


def _mutate_json(value: Any, rng: random.Random, ids: list[str]) -> Any:
    """Replace, drop or re-link a few entries anywhere in the structure (iteratively)."""
    stack = [value]
    while stack:
        node = stack.pop()
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node)) \
            if isinstance(node, list) else []
        for key, child in items:
            r = rng.random()
            if r < 0.06:
                node[key] = rng.choice(ODD_VALUES)
            elif r < 0.09 and ids:
                node[key] = [rng.choice(ids), rng.randint(-1, 3)]  # a link anywhere: cycles too
            elif r < 0.11 and isinstance(node, dict):
                del node[key]
            elif isinstance(child, (dict, list)):
                stack.append(child)
    return value


def _mutate(chunks: dict[str, str], rng: random.Random) -> dict[str, str]:
    out = dict(chunks)
    for key, text in chunks.items():
        data = None
        try:
            data = json.loads(text)
        except ValueError:
            pass
        r = rng.random()
        if data is not None and r < 0.6:
            ids = list(data) if isinstance(data, dict) else []
            out[key] = json.dumps(_mutate_json(data, rng, ids))
        elif r < 0.7:
            out[key] = text[: rng.randint(0, len(text))]  # truncated
        elif r < 0.8:
            chars = list(text)
            for _ in range(rng.randint(1, 20)):
                if chars:
                    chars[rng.randrange(len(chars))] = rng.choice('{}[]",:\\\n\x00é0')
            out[key] = "".join(chars)
        elif r < 0.85:
            out[key] = "[" * 100_000  # deeper than the JSON decoder's recursion limit
    if rng.random() < 0.2 and out:  # a chunk under another tool's name
        key = rng.choice(list(out))
        out[rng.choice(["parameters", "prompt", "workflow", "Comment", "invokeai_metadata",
                        "UserComment", "XML:com.adobe.xmp", "parameters-json"])] = out[key]
    return out


def _sources() -> list[dict[str, str]]:
    from pathlib import Path

    real = Path(__file__).parent / "fixtures" / "readers" / "sd-parsers"
    sets = [fn() for fn in samples.ALL.values()]
    for path in sorted(real.glob("*.png")):
        with Image.open(path) as im:
            if im.info:
                sets.append(image_chunks(im))
    return sets


def test_random_mutations_never_raise():
    rng = random.Random(1234)
    sources = _sources()
    start = time.perf_counter()
    slowest = 0.0
    for i in range(400):
        chunks = _mutate(rng.choice(sources), rng)
        t = time.perf_counter()
        result = _read(chunks, (64, 64) if i % 2 else None)  # _read: no safety net to hide bugs
        slowest = max(slowest, time.perf_counter() - t)
        assert result is None or isinstance(result, ParsedMetadata)
        if result is not None:
            assert isinstance(result.prompt, str) and len(result.prompt) <= 65536
            assert all(isinstance(v, str) for v in result.extra.values())
    assert slowest < 1.0, f"one image took {slowest:.2f} s"
    assert time.perf_counter() - start < 30


@pytest.mark.parametrize("key", ["prompt", "workflow", "parameters", "invokeai_metadata",
                                 "Comment", "sd-metadata", "parameters-json", "invokeai_graph"])
def test_deep_json_and_junk_are_unreadable_not_errors(key):
    for junk in ("[" * 200_000, '{"a":' * 200_000, "\x00" * 1000, "{" + "}" * 10, "null", "1e9999"):
        result = _read({key: junk}, None)
        assert result is None or isinstance(result, ParsedMetadata)


def test_long_reroute_chains_and_wide_graphs_are_bounded():
    n = 9000
    graph = {str(i): {"class_type": "Reroute", "inputs": {"input": [str(i + 1), 0]}}
             for i in range(n)}
    graph[str(n)] = {"class_type": "PrimitiveInt", "inputs": {"value": 5}}
    graph["s"] = {"class_type": "KSampler", "inputs": {
        "seed": ["0", 0], "steps": ["0", 0], "cfg": 7, "sampler_name": "euler",
        "scheduler": "normal", "model": ["0", 0], "positive": ["0", 0], "negative": ["0", 0],
        "latent_image": ["0", 0]}}
    for i in range(300):  # many samplers, all saved: the picking must stay cheap
        graph[f"k{i}"] = dict(graph["s"])
        graph[f"v{i}"] = {"class_type": "SaveImage", "inputs": {"images": [f"k{i}", 0]}}
    t = time.perf_counter()
    result = _read({"prompt": json.dumps(graph)}, None)
    assert time.perf_counter() - t < 5
    assert result is not None and result.sampler == "Euler"


def test_oversized_chunks_are_not_parsed():
    big = json.dumps({"sui_image_params": {"prompt": "x" * (9 << 20)}})
    assert _read({"parameters": big}, None) is None


def test_odd_exif_and_stealth_bytes():
    rng = random.Random(7)
    for _ in range(200):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 40)))
        for prefix in (b"UNICODE\0", b"ASCII\0\0\0", b"", b"\0" * 8):
            assert isinstance(decode_user_comment(prefix + raw), str)
    # a stealth signature with a lying length: no crash, nothing read
    im = Image.new("RGBA", (16, 16), (0, 0, 0, 255))
    assert read_stealth(im) is None
    assert read_metadata({"parameters": "x", "prompt": 5}) is not None  # non-str values skipped

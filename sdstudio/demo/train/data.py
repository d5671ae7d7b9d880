"""The data set, drawn once per process by worker processes and kept in memory."""

from __future__ import annotations

import multiprocessing
import os
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sdstudio.demo import dataset
from sdstudio.demo.tokenizer import EOS
from sdstudio.demo.train.common import MAX_TOKENS, TrainConfig, log
from sdstudio.demo.train.components import tokenizer_for

_WORKER_TOKENIZER: Any = None


def _init_worker(vocab_dir: str) -> None:
    """Reads the vocabulary files the parent wrote (writing them here would race)."""
    from transformers import CLIPTokenizer

    global _WORKER_TOKENIZER
    torch.set_num_threads(1)
    folder = Path(vocab_dir)
    _WORKER_TOKENIZER = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"),
                                      pad_token=EOS, model_max_length=MAX_TOKENS)


def _draw_chunk(job: tuple[str, int, int, int, int]) -> tuple[np.ndarray, np.ndarray | None]:
    """Images (uint8 NCHW) and, for scenes, token ids [n, k, MAX_TOKENS] of k caption wordings."""
    kind, seed, start, n, k = job
    imgs, ids = [], []
    for i in range(start, start + n):
        if kind == "dense":
            imgs.append(np.asarray(dataset.make_dense_image(seed, i)))
            continue
        sample = dataset.make_sample(seed, i)
        imgs.append(np.asarray(sample.image))
        rng = random.Random(seed * 7919 + i)
        caps = [dataset.caption(sample.scene, rng) for _ in range(k)]
        ids.append(_WORKER_TOKENIZER(caps, padding="max_length", max_length=MAX_TOKENS,
                                     truncation=True, return_tensors="np").input_ids)
    images = np.stack(imgs).transpose(0, 3, 1, 2).copy()
    return images, (np.stack(ids).astype(np.int32) if ids else None)


_POOLS: dict[tuple, tuple[torch.Tensor, torch.Tensor | None]] = {}


def data_pool(cfg: TrainConfig, kind: str, seed: int, n: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """`n` images of `kind` ("scene" or "dense") as uint8 [n, 3, 128, 128] (+ caption ids for
    scenes), drawn in parallel once per process and cached."""
    key = (kind, seed, n, cfg.captions_per_image)
    if key in _POOLS:
        return _POOLS[key]
    tokenizer_for(cfg)  # writes the vocabulary files the workers read
    workers = cfg.workers or os.cpu_count() or 1
    chunk = 500
    jobs = [(kind, seed, s, min(chunk, n - s), cfg.captions_per_image) for s in range(0, n, chunk)]
    t0 = time.time()
    ctx = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(str(cfg.work / "tokenizer_src"),)) as pool:
        parts = pool.map(_draw_chunk, jobs)
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    ids = torch.from_numpy(np.concatenate([p[1] for p in parts])) if kind == "scene" else None
    log(cfg, "data", kind=kind, n=n, seconds=round(time.time() - t0, 1))
    _POOLS[key] = (images, ids)
    return images, ids


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float in [-1, 1], the VAE's input range."""
    return images.float() / 127.5 - 1.0

"""Textual-inversion embeddings from a folder, used in the prompt by their file name (as A1111).

Files: A1111's `.safetensors` / `.pt` (`string_to_param`, read with `weights_only`), diffusers'
`learned_embeds` (one key), SDXL pairs (`clip_l` / `clip_g`). Each becomes new tokens of the
tokenizer(s) and rows of the text encoder(s)' token embedding, through diffusers'
`load_textual_inversion`; a multi-vector embedding expands to one token per vector when the
prompt is tokenized.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import torch

from sdstudio.core.errors import UserError
from sdstudio.core.models.checkpoints import (
    PICKLES,
    SAFETENSORS,
    _first_line,
    check_safetensors,
    load_pickle_weights,
)
from sdstudio.core.models.hashing import sha256

_LOADED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # text encoder -> {name: path}


def embedding_files(folder: Path) -> dict[str, Path]:
    """{token name: file} for the embeddings in `folder` (any depth; first of a name wins)."""
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix.lower() in SAFETENSORS | {".pt", ".bin"}:
            found.setdefault(path.stem, path)
    return found


def read_embedding(path: Path) -> dict[str, torch.Tensor]:
    """{"clip_l": vectors, "clip_g": vectors} or {"": vectors} (one encoder); vectors (n, width)."""
    if path.suffix.lower() in SAFETENSORS:
        from safetensors.torch import load_file

        check_safetensors(path)
        state = load_file(str(path), device="cpu")
    elif path.suffix.lower() in PICKLES:
        state = load_pickle_weights(path)  # weights_only: a pickle carrying code is refused
    else:
        raise UserError(f"Embedding {path.name} is neither a .safetensors nor a .pt file.")
    if isinstance(state, dict) and "clip_l" in state and "clip_g" in state:
        return {"clip_l": state["clip_l"], "clip_g": state["clip_g"]}
    if isinstance(state, dict) and "string_to_param" in state:  # A1111
        params = state["string_to_param"]
        return {"": next(iter(params.values()))}
    if isinstance(state, dict) and "emb_params" in state:  # A1111 .safetensors
        return {"": state["emb_params"]}
    if isinstance(state, dict) and len(state) == 1:  # diffusers learned_embeds
        return {"": next(iter(state.values()))}
    raise UserError(f"Embedding {path.name} is not a textual-inversion file this app can read.")


def load_embeddings(pipe, folder: Path, notices: list[str]) -> dict[str, Path]:
    """Load every embedding of `folder` not yet loaded into `pipe`'s encoder(s); {name: file}."""
    encoders = [
        (tok, enc, key)
        for tok, enc, key in (
            (pipe.tokenizer, pipe.text_encoder, "clip_l"),
            (getattr(pipe, "tokenizer_2", None), getattr(pipe, "text_encoder_2", None), "clip_g"),
        )
        if tok is not None and enc is not None  # an SDXL refiner has only the second
    ]
    loaded = _LOADED.setdefault(encoders[0][1], {})
    for name, path in embedding_files(folder).items():
        if name in loaded:
            continue
        if name in encoders[0][0].get_vocab():
            notices.append(f"Embedding {path.name} is named like a word of the tokenizer; skipped.")
            continue
        try:
            vectors = read_embedding(path)
            for tokenizer, encoder, key in encoders:
                emb = vectors.get(key, vectors.get(""))
                if emb is None:
                    raise UserError(f"Embedding {path.name} has no vectors for {key}.")
                width = encoder.get_input_embeddings().weight.shape[-1]
                if emb.shape[-1] != width:
                    raise UserError(
                        f"Embedding {path.name} is for another model family "
                        f"(vectors of width {emb.shape[-1]}, this text encoder takes {width})."
                    )
                pipe.load_textual_inversion(
                    emb.to(encoder.dtype), token=name, tokenizer=tokenizer, text_encoder=encoder
                )
        except UserError as exc:
            notices.append(f"{exc} It was not loaded.")
            continue
        except Exception as exc:  # noqa: BLE001 - diffusers' ValueError on a malformed file
            notices.append(f"Embedding {path.name} cannot be loaded ({_first_line(exc)}).")
            continue
        loaded[name] = path
    return loaded


def used_embeddings(prompt: str, loaded: dict[str, Path]) -> dict[str, Path]:
    """The loaded embeddings a prompt names (for A1111's "TI hashes")."""
    import re

    return {n: p for n, p in loaded.items() if re.search(rf"(?<!\w){re.escape(n)}(?!\w)", prompt)}


def ti_hashes(used: dict[str, Path]) -> str:
    """A1111's infotext value `name: hash, ...` (first 12 hex digits of each file's SHA-256)."""
    return ", ".join(
        f"{n.replace(':', '').replace(',', '')}: {sha256(p)[:12]}" for n, p in used.items()
    )

"""LoRA on a loaded model, through diffusers' own loaders (kohya/A1111 and diffusers/PEFT files).

diffusers' `load_lora_weights` converts kohya-ss keys (`lora_unet_*`, `lora_te_*`, `lora_down` /
`lora_up` / `alpha`) and reads diffusers/PEFT files; each LoRA becomes a PEFT adapter on the
UNet and the text encoder, weighted by `set_adapters`. Adapters stay loaded between generations
(changing a weight reloads nothing) and are deleted when no longer asked for, which gives back
the base model exactly: PEFT adds layers beside the base weights and never changes them.
"""

from __future__ import annotations

import hashlib
import re
import warnings
import weakref
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sdstudio.core.adapters.host import host_pipeline
from sdstudio.core.adapters.info import is_sdxl_lora
from sdstudio.core.errors import UserError
from sdstudio.core.models.checkpoints import _first_line, check_safetensors
from sdstudio.core.models.hashing import sha256

SUFFIXES = (".safetensors",)  # pickled .pt/.ckpt LoRAs are refused: they can run code


@dataclass(frozen=True)
class LoraSpec:
    path: Path
    weight: float = 1.0

    @property
    def name(self) -> str:
        return self.path.stem


def parse_lora_arg(text: str) -> LoraSpec:
    """`PATH[:WEIGHT]` (the CLI's --lora): the last ":NUMBER" is the weight, default 1."""
    path, sep, tail = text.rpartition(":")
    if sep and re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)", tail.strip()):
        return LoraSpec(Path(path).expanduser(), float(tail))
    return LoraSpec(Path(text).expanduser(), 1.0)


def find_lora(name: str, folders: list[Path]) -> Path | None:
    """A1111's lookup of `<lora:NAME:...>`: a file NAME.safetensors in a LoRA folder (any depth)."""
    for folder in folders:
        if not folder.is_dir():
            continue
        for suffix in SUFFIXES:
            direct = folder / f"{name}{suffix}"
            if direct.is_file():
                return direct
            for found in sorted(folder.rglob(f"{glob_escape(name)}{suffix}")):
                return found
    return None


def glob_escape(name: str) -> str:
    return re.sub(r"([\[\]*?])", r"[\1]", name)


def short_hash(path: Path) -> str:
    """A1111's "Lora hashes" entry: the first 12 hex digits of the file's SHA-256."""
    return sha256(path)[:12]  # cached by path, size and mtime


def _adapter_name(path: Path) -> str:
    # PEFT adapter names become module attribute keys: no dots.
    key = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:8]
    return re.sub(r"\W", "_", path.stem) + "_" + key


class LoraSet:
    """The LoRAs applied to one model's UNet and text encoder(s)."""

    def __init__(self, pipeline):
        # A diffusers pipeline object around the model's own modules (built by the caller for
        # the model's family): its LoRA mixin holds the loading, weighting and unloading logic.
        self.pipe = pipeline
        self.loaded: dict[str, tuple[Path, float]] = {}  # adapter name -> (file, mtime)
        self.for_sdxl = getattr(pipeline, "text_encoder_2", None) is not None

    def apply(self, specs: list[LoraSpec]) -> None:
        """Make exactly `specs` active with their weights (an empty list: the base model)."""
        wanted: dict[str, float] = {}
        for spec in specs:
            name = self._load(spec.path)
            wanted[name] = wanted.get(name, 0.0) + spec.weight
        if not wanted:
            if self.loaded:  # take the PEFT layers out: the modules are the base ones again
                self.pipe.unload_lora_weights()
                self.loaded.clear()
            return
        stale = [name for name in self.loaded if name not in wanted]
        if stale:
            self.pipe.delete_adapters(stale)
            for name in stale:
                del self.loaded[name]
        self.pipe.set_adapters(list(wanted), list(wanted.values()))

    def clear(self) -> None:
        self.apply([])

    def _load(self, path: Path) -> str:
        name = _adapter_name(path)
        try:
            mtime = path.stat().st_mtime
        except OSError:
            raise UserError(f"LoRA file {path} does not exist.") from None
        if name in self.loaded and self.loaded[name][1] == mtime:
            return name
        if name in self.loaded:  # the file changed on disk: load it afresh
            self.pipe.delete_adapters([name])
            del self.loaded[name]
        if path.suffix.lower() not in SUFFIXES:
            raise UserError(f"LoRA {path.name} is not a .safetensors file; only those are read.")
        state = _read_safetensors(path)
        lycoris = lycoris_kind(state)
        if lycoris:
            raise UserError(
                f"LoRA {path.stem} is a LyCORIS {lycoris} file, which diffusers' LoRA loader "
                "(used here) cannot apply; use a plain LoRA version of it."
            )
        made_for_sdxl = is_sdxl_lora(state)
        if made_for_sdxl != self.for_sdxl:
            made, this = ("SDXL", "SD 1.x/2.x") if made_for_sdxl else ("SD 1.x/2.x", "SDXL")
            raise UserError(f"LoRA {path.stem} is made for {made} models; this model is {this}.")
        try:
            with _quiet_transformers():
                self.pipe.load_lora_weights(state, adapter_name=name)
        except Exception as exc:
            self._forget_partial(name)
            raise UserError(
                f"LoRA {path.stem} does not fit this model (is it made for another model family?"
                f" {_first_line(exc)})."
            ) from None
        self.loaded[name] = (path, mtime)
        return name

    def _forget_partial(self, name: str) -> None:
        """A failed load may have put the adapter on the UNet but not on a text encoder."""
        if any(name in names for names in self.pipe.get_list_adapters().values()):
            self.pipe.delete_adapters([name])


def lycoris_kind(state: dict) -> str | None:
    """"LoHa" / "LoKr" for LyCORIS files (their keys: `hada_w1_a`, `lokr_w1`, ...), else None."""
    for key in state:
        if ".hada_" in key:
            return "LoHa"
        if ".lokr_" in key:
            return "LoKr"
    return None


@contextmanager
def _quiet_transformers():
    """transformers 5 logs a "MISSING" load report when diffusers hands PEFT a state dict of
    text-encoder LoRA weights, although they are loaded (checked in the tests)."""
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        with warnings.catch_warnings():  # PEFT's "multiple adapters" warning: that is the intent
            warnings.filterwarnings("ignore", "Already found a `peft_config`", UserWarning)
            yield
    finally:
        logging.set_verbosity(level)


def _read_safetensors(path: Path) -> dict:
    from safetensors.torch import load_file

    check_safetensors(path)  # one sentence for a truncated or corrupt file
    return load_file(str(path), device="cpu")


_SETS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # UNet module -> its LoraSet


def lora_set_for(model) -> LoraSet:
    """The model's LoraSet (one per loaded model, kept with its UNet)."""
    found = _SETS.get(model.unet)
    if found is None:
        found = _SETS[model.unet] = LoraSet(host_pipeline(model))
    return found


def has_loras(model) -> bool:
    found = _SETS.get(model.unet)
    return found is not None and bool(found.loaded)


def requested_loras(
    prompt_tags: list, paths: tuple[str, ...], folders: list[Path], notices: list[str]
) -> list[LoraSpec]:
    """The LoRAs a request asks for: `--lora PATH[:WEIGHT]` and the prompt's <lora:NAME:WEIGHT>.

    A tag whose file is not in the LoRA folders is left out with a notice, as A1111 does.
    """
    specs = [parse_lora_arg(p) for p in paths]
    for tag in prompt_tags:
        if tag.kind != "lora":
            notices.append(f"<{tag.kind}:{':'.join(tag.items)}> is not supported and was ignored.")
            continue
        try:
            weight = tag.weight
        except ValueError:
            raise UserError(f"<lora:{':'.join(tag.items)}> has no number as its weight.") from None
        path = find_lora(tag.name, folders)
        if path is None:
            where = ", ".join(str(f) for f in folders) or "no LoRA folder was given"
            notices.append(f"LoRA {tag.name!r} was not found ({where}); generated without it.")
            continue
        specs.append(LoraSpec(path, weight))
    return specs

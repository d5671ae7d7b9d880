"""Put a request's LoRAs and embeddings on the model before its prompts are encoded."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sdstudio.core.adapters.embeddings import (
    embedding_files,
    load_embeddings,
    ti_hashes,
    used_embeddings,
)
from sdstudio.core.adapters.host import host_pipeline
from sdstudio.core.adapters.lora import LoraSpec, has_loras, lora_set_for, requested_loras
from sdstudio.core.adapters.lora import short_hash as lora_short_hash
from sdstudio.core.conditioning import parse_extra_networks
from sdstudio.core.errors import UserError
from sdstudio.core.models.discovery import kind_folders
from sdstudio.core.paths import default_models_dir


@dataclass
class Applied:
    loras: list[LoraSpec] = field(default_factory=list)
    embeddings: dict[str, Path] = field(default_factory=dict)  # the ones the prompts use

    def infotext(self) -> dict[str, str]:
        """A1111's `Lora hashes` / `TI hashes` entries for the image's parameters."""
        out = {}
        if self.loras:
            out["Lora hashes"] = ", ".join(
                f"{s.name.replace(':', '').replace(',', '')}: {lora_short_hash(s.path)}"
                for s in self.loras
            )
        if self.embeddings:
            out["TI hashes"] = ti_hashes(self.embeddings)
        return out


def lora_folders(req) -> list[Path]:
    """Where <lora:NAME> tags look: the request's LoRA folder, else (the CLI without --lora-dir)
    the LoRA folders of the default models folder."""
    if req.lora_dir:
        return [Path(req.lora_dir).expanduser()]
    return [f for f in kind_folders(default_models_dir(), "loras") if f.is_dir()]


def infotext_for(req) -> dict[str, str]:
    """A1111's `Lora hashes` / `TI hashes` of a request, found from its files alone (for the
    PNG's parameters; the prompt keeps its <lora:...> tags, so reusing it finds them again)."""
    _, tags = parse_extra_networks(req.prompt)
    try:
        loras = requested_loras(tags, req.loras, lora_folders(req), [])
    except UserError:
        loras = []
    embeddings: dict[str, Path] = {}
    if req.embeddings_dir:
        files = embedding_files(Path(req.embeddings_dir).expanduser())
        embeddings = used_embeddings(f"{req.prompt}\n{req.negative_prompt}", files)
    return Applied([s for s in loras if s.path.is_file()], embeddings).infotext()


def apply_adapters(model, req, notices: list[str]) -> Applied:
    """Make the model carry exactly the request's LoRAs (none: the base weights) and load the
    embeddings folder; tags that name no file become notices."""
    applied = Applied()
    _, tags = parse_extra_networks(req.prompt)
    _, negative_tags = parse_extra_networks(req.negative_prompt or "")
    if negative_tags:
        notices.append("LoRA tags in the negative prompt are taken out and not applied.")
    applied.loras = requested_loras(tags, req.loras, lora_folders(req), notices)
    if applied.loras or has_loras(model):
        lora_set_for(model).apply(applied.loras)
    if req.embeddings_dir:
        loaded = load_embeddings(host_pipeline(model), Path(req.embeddings_dir).expanduser(), notices)
        applied.embeddings = used_embeddings(f"{req.prompt}\n{req.negative_prompt}", loaded)
    return applied

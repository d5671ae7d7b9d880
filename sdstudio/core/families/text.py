"""The one place a prompt becomes text-encoder hidden states.

Every family calls `encode_text` once per text encoder and prompt (SD 1.x/2.x: one encoder,
SDXL: two), so a richer prompt syntax (weights, 75-token chunks) can replace this one function
without touching the families.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EncodedText:
    hidden: torch.Tensor  # (1, tokens, width)
    pooled: torch.Tensor | None  # (1, projection_dim) from a CLIPTextModelWithProjection, else None


def encode_text(
    tokenizer,
    text_encoder,
    text: str,
    *,
    hidden_layer: int | None = None,
    final_norm: bool = False,
    what: str = "Prompt",
    notices: list[str] | None = None,
) -> EncodedText:
    """Encode `text` padded/truncated to the tokenizer's length, as diffusers' pipelines do.

    `hidden_layer=None`: the last hidden state after the final layer norm, with the attention
    mask where the encoder's config asks for one (`StableDiffusionPipeline`, SD 1.x and 2.x).
    An int: `hidden_states[hidden_layer]`, no mask (`StableDiffusionXLPipeline` uses -2), through
    the final layer norm if `final_norm` (clip skip on SD 1.x, as diffusers and A1111 apply it:
    -2 with `final_norm` is "clip skip 2"). A truncated prompt adds one notice naming the
    dropped words.
    """
    device = text_encoder.device
    limit = tokenizer.model_max_length
    ids = tokenizer(
        text, padding="max_length", max_length=limit, truncation=True, return_tensors="pt"
    )
    full = tokenizer(text, padding="longest", return_tensors="pt").input_ids
    if full.shape[-1] > limit and notices is not None:
        dropped = tokenizer.batch_decode(full[:, limit - 1 : -1])[0]
        notice = f"{what} is longer than the text encoder's {limit} tokens; ignored: {dropped!r}."
        if notice not in notices:  # SDXL's two tokenizers would say it twice
            notices.append(notice)
    input_ids = ids.input_ids.to(device)
    if hidden_layer is None:
        mask = None
        if getattr(text_encoder.config, "use_attention_mask", False):
            mask = ids.attention_mask.to(device)
        out = text_encoder(input_ids, attention_mask=mask)
        hidden = out[0]
    else:
        out = text_encoder(input_ids, output_hidden_states=True)
        hidden = out.hidden_states[hidden_layer]
        if final_norm:  # transformers 5 dropped the `text_model` level that diffusers names
            hidden = getattr(text_encoder, "text_model", text_encoder).final_layer_norm(hidden)
    # A CLIPTextModelWithProjection's first output is the pooled, projected text embedding.
    pooled = out[0] if out[0].ndim == 2 else None
    return EncodedText(hidden.to(dtype=text_encoder.dtype), pooled)

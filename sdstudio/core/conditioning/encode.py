"""Encode a prompt the way A1111 does: chunk by chunk, with "Original" emphasis.

Each chunk goes through the text encoder on its own and the hidden states are concatenated,
so a prompt of k chunks gives (1, k * (chunk_length + 2), D). "Original" emphasis multiplies
each token's hidden state by its weight and rescales the chunk so its mean is unchanged
(modules/sd_emphasis.py `EmphasisOriginal`). With every weight 1 and one chunk the result is
bit for bit diffusers' `encode_prompt`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from sdstudio.core.conditioning.chunks import Chunk, tokenize_line
from sdstudio.core.memory import execution_device


@dataclass(frozen=True)
class EncoderLayer:
    """Which hidden state a family conditions on.

    `index` is into the encoder's `hidden_states` (-1: the last layer's output); `final_norm`
    applies the encoder's final layer norm to it, as SD 1.x/2.x do (SDXL does not).
    """

    index: int = -1
    final_norm: bool = True


def clip_skip_layer(clip_skip: int = 1) -> EncoderLayer:
    """A1111's "Clip skip" for SD 1.x/2.x: 1 is the last layer, 2 the penultimate (+ final norm).

    diffusers' `clip_skip` counts from 0 instead: A1111's clip skip n is diffusers' n - 1.
    """
    if clip_skip < 1:
        raise ValueError(f"clip skip must be at least 1, got {clip_skip}")
    return EncoderLayer(index=-clip_skip, final_norm=True)


@dataclass
class Encoded:
    hidden: torch.Tensor  # (1, k * (chunk_length + 2), D)
    pooled: torch.Tensor | None  # projected pooled output of the first chunk, where there is one


def encode(
    tokenizer, text_encoder, prompt: str, *, layer: EncoderLayer = EncoderLayer(),
    emphasis: bool = True,
) -> Encoded:
    """The prompt's hidden states (and the first chunk's pooled embedding) on the encoder's device."""
    chunks, _ = tokenize_line(tokenizer, prompt, emphasis=emphasis)
    return encode_chunks(tokenizer, text_encoder, chunks, layer=layer, emphasis=emphasis)


def encode_chunks(
    tokenizer, text_encoder, chunks: list[Chunk], *, layer: EncoderLayer = EncoderLayer(),
    emphasis: bool = True,
) -> Encoded:
    device = execution_device(text_encoder)  # not .device: offloaded weights sit elsewhere
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    masked = getattr(text_encoder.config, "use_attention_mask", False)
    hidden, pooled = [], None
    for chunk in chunks:
        ids = torch.tensor([chunk.tokens], device=device)
        first_end = chunk.tokens.index(tokenizer.eos_token_id)
        ids[0, first_end + 1 :] = pad  # SD 1.x: pad is EOS, nothing changes
        mask = None
        if masked:
            mask = torch.zeros_like(ids)
            mask[0, : first_end + 1] = 1
        z, chunk_pooled = _run_encoder(text_encoder, ids, mask, layer)
        if emphasis and any(w != 1.0 for w in chunk.multipliers):
            z = _original_emphasis(z, torch.tensor([chunk.multipliers], device=device))
        hidden.append(z)
        if pooled is None:
            pooled = chunk_pooled
    out = torch.cat(hidden, dim=1).to(dtype=text_encoder.dtype, device=device)
    return Encoded(out, pooled)


def _run_encoder(text_encoder, ids, mask, layer: EncoderLayer):
    want_hidden = layer.index != -1 or not layer.final_norm
    out = text_encoder(ids, attention_mask=mask, output_hidden_states=want_hidden)
    pooled = getattr(out, "text_embeds", None)  # CLIPTextModelWithProjection (SDXL's second)
    if not want_hidden:
        return out.last_hidden_state, pooled  # exactly as diffusers takes it
    z = out.hidden_states[layer.index]
    if layer.final_norm:
        z = _final_layer_norm(text_encoder)(z)
    return z, pooled


def _final_layer_norm(text_encoder):
    # transformers 5's CLIPTextModel holds it directly (diffusers 0.42's clip_skip still looks
    # for `text_model.final_layer_norm`, which only CLIPTextModelWithProjection has).
    norm = getattr(text_encoder, "final_layer_norm", None)
    return norm if norm is not None else text_encoder.text_model.final_layer_norm


def _original_emphasis(z: torch.Tensor, multipliers: torch.Tensor) -> torch.Tensor:
    # Skipped for a chunk of weights 1, where it changes nothing (save 0/0 = NaN for an encoder
    # whose hidden states average exactly 0, as a freshly initialised final layer norm gives).
    original_mean = z.mean()
    z = z * multipliers.reshape(multipliers.shape + (1,)).expand(z.shape)
    new_mean = z.mean()
    ratio = original_mean / new_mean
    if not torch.isfinite(ratio):  # a mean of exactly 0: A1111 would divide into NaN (a black
        return z  # image); keep the weighted states unscaled instead
    return z * ratio

"""The one place a prompt becomes text-encoder hidden states.

Every family calls `encode_text` once per text encoder and prompt (SD 1.x/2.x: one encoder,
SDXL: two), so a richer prompt syntax (weights, 75-token chunks) can replace this one function
without touching the families: it now does (A1111's emphasis and 75-token chunks).
"""

from __future__ import annotations

from sdstudio.core.conditioning.encode import Encoded as EncodedText
from sdstudio.core.conditioning.encode import EncoderLayer, encode


def encode_text(
    tokenizer,
    text_encoder,
    text: str,
    *,
    hidden_layer: int | None = None,
    final_norm: bool = False,
) -> EncodedText:
    """Encode `text` with A1111's prompt syntax: emphasis weights and 75-token chunks
    (`sdstudio.core.conditioning.encode`); a plain prompt of up to 75 tokens gives exactly
    diffusers' encoding.

    `hidden_layer=None`: the last hidden state after the final layer norm, with the attention
    mask where the encoder's config asks for one (`StableDiffusionPipeline`, SD 1.x and 2.x).
    An int: `hidden_states[hidden_layer]` (`StableDiffusionXLPipeline` uses -2), through the
    final layer norm if `final_norm` (clip skip on SD 1.x, as diffusers and A1111 apply it:
    -2 with `final_norm` is "clip skip 2").
    """
    layer = EncoderLayer(-1, True) if hidden_layer is None else EncoderLayer(hidden_layer, final_norm)
    return encode(tokenizer, text_encoder, text, layer=layer)

"""A1111's 75-token chunks (modules/sd_hijack_clip.py `tokenize_line`).

A prompt is split by emphasis into weighted pieces; each piece is tokenized on its own, and the
tokens fill chunks of `chunk_length` (75 for CLIP's 77 positions) with their weights. A chunk
that would end within `comma_backtrack` tokens after a comma ends at the comma instead, the rest
moving to the next chunk; BREAK starts a new chunk. Each chunk is wrapped in BOS ... EOS and
padded with EOS (the encoder replaces what follows the first EOS by the pad token where the
tokenizer has a separate one, as SD 2.x and SDXL's OpenCLIP do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sdstudio.core.conditioning.attention import BREAK_WEIGHT, parse_prompt_attention

COMMA_BACKTRACK = 20  # A1111's default "comma_padding_backtrack"
CLIP_CHUNK = 75


@dataclass
class Chunk:
    tokens: list[int] = field(default_factory=list)  # chunk_length + 2 ids once closed
    multipliers: list[float] = field(default_factory=list)


def chunk_length(tokenizer) -> int:
    """75 for CLIP; less for a tokenizer whose model_max_length is under 77 (tiny models)."""
    return min(CLIP_CHUNK, int(tokenizer.model_max_length) - 2)


def _expand_embeddings(text: str, tokenizer) -> str:
    """A multi-vector textual-inversion token becomes its per-vector tokens (diffusers' rule)."""
    from diffusers.loaders.textual_inversion import TextualInversionLoaderMixin

    return TextualInversionLoaderMixin().maybe_convert_prompt(text, tokenizer)


def _comma_id(tokenizer) -> int | None:
    """The id of ",</w>" (A1111's comma token), without copying a 49k-entry vocabulary."""
    found = tokenizer.convert_tokens_to_ids(",</w>")
    if found is None or tokenizer.convert_ids_to_tokens(found) != ",</w>":
        return None
    return found


def _embedding_vectors(tokenizer) -> dict[int, int]:
    """{first token id: vector count} of the multi-vector embeddings (tokens NAME, NAME_1, ...)."""
    added = tokenizer.added_tokens_encoder
    out = {}
    for name, token_id in added.items():
        count = 1
        while f"{name}_{count}" in added:
            count += 1
        if count > 1:
            out[token_id] = count
    return out


def tokenize_line(
    tokenizer, line: str, *, emphasis: bool = True, comma_backtrack: int = COMMA_BACKTRACK
) -> tuple[list[Chunk], int]:
    """(chunks, token_count): the prompt's chunks and its number of tokens, as A1111 counts."""
    length = chunk_length(tokenizer)
    id_start, id_end = tokenizer.bos_token_id, tokenizer.eos_token_id
    comma = _comma_id(tokenizer)
    parsed = parse_prompt_attention(line) if emphasis else [[line, 1.0]]
    vectors = _embedding_vectors(tokenizer)
    texts = [str(text) for text, _ in parsed]
    if vectors:
        texts = [_expand_embeddings(text, tokenizer) for text in texts]
    tokenized = tokenizer(texts, truncation=False, add_special_tokens=False, verbose=False)[
        "input_ids"
    ]

    chunks: list[Chunk] = []
    chunk = Chunk()
    token_count = 0
    last_comma = -1

    def next_chunk(is_last: bool = False) -> None:
        nonlocal token_count, last_comma, chunk
        token_count += len(chunk.tokens) if is_last else length
        to_add = length - len(chunk.tokens)
        if to_add > 0:
            chunk.tokens += [id_end] * to_add
            chunk.multipliers += [1.0] * to_add
        chunk.tokens = [id_start] + chunk.tokens + [id_end]
        chunk.multipliers = [1.0] + chunk.multipliers + [1.0]
        last_comma = -1
        chunks.append(chunk)
        chunk = Chunk()

    for tokens, (text, weight) in zip(tokenized, parsed, strict=True):
        if text == "BREAK" and weight == BREAK_WEIGHT:
            next_chunk()
            continue
        position = 0
        while position < len(tokens):
            token = tokens[position]
            if token == comma:
                last_comma = len(chunk.tokens)
            elif (
                comma_backtrack != 0
                and len(chunk.tokens) == length
                and last_comma != -1
                and len(chunk.tokens) - last_comma <= comma_backtrack
            ):
                cut = last_comma + 1
                moved, moved_mults = chunk.tokens[cut:], chunk.multipliers[cut:]
                chunk.tokens, chunk.multipliers = chunk.tokens[:cut], chunk.multipliers[:cut]
                next_chunk()
                chunk.tokens, chunk.multipliers = moved, moved_mults
            if len(chunk.tokens) == length:
                next_chunk()
            span = vectors.get(token, 1)  # an embedding's vectors stay in one chunk
            if len(chunk.tokens) + span > length:
                next_chunk()
            chunk.tokens += tokens[position : position + span]
            chunk.multipliers += [weight] * span
            position += span

    if chunk.tokens or not chunks:
        next_chunk(is_last=True)
    return chunks, token_count


def token_counts(tokenizer, line: str) -> tuple[int, int]:
    """(tokens used, tokens available before one more chunk): A1111's "12/75" counter."""
    _, count = tokenize_line(tokenizer, line)
    length = chunk_length(tokenizer)
    return count, math.ceil(max(count, 1) / length) * length

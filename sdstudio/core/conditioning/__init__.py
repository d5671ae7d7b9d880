"""A1111 prompt syntax: emphasis, prompt editing and alternation, 75-token chunks, extra networks.

Pure text handling lives in attention, schedules and extra_networks (no torch); chunks and
encode turn text into a text encoder's hidden states; prompt ties them to the denoising steps.
"""

from sdstudio.core.conditioning.attention import parse_prompt_attention
from sdstudio.core.conditioning.chunks import token_counts
from sdstudio.core.conditioning.extra_networks import ExtraNetwork, parse_extra_networks
from sdstudio.core.conditioning.schedules import (
    entry_at,
    get_learned_conditioning_prompt_schedules,
    schedule,
)

__all__ = [
    "ExtraNetwork",
    "entry_at",
    "get_learned_conditioning_prompt_schedules",
    "parse_extra_networks",
    "parse_prompt_attention",
    "schedule",
    "token_counts",
]

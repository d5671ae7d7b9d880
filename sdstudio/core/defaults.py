"""Every default and limit of a generation, in one torch-free place.

The window, the CLI, the request and the engine all read these; nothing else spells them out.
Importing this module must stay cheap (no torch, no diffusers): `sdstudio --help` and the
window's first paint depend on it.
"""

from __future__ import annotations

DEMO_MODEL = "demo"  # the model id of the model shipped in resources/models/
DEFAULT_SAMPLER = "Euler a"
DEFAULT_GUIDANCE = 7.5  # SD's usual CFG scale; a model folder may recommend its own
DEFAULT_STEPS = 20
DEFAULT_SIZE = 512  # SD 1.x's native size; the CLI and window follow a loaded model's own
DEMO_SIZE = 128  # the demo model's native size: the window's size before any model has loaded
DEFAULT_STRENGTH = 0.75
DEFAULT_PROMPT = "a red circle on a blue background"  # the window's first prompt (demo vocabulary)
DEVICES = ("auto", "cpu", "cuda", "mps")
DTYPES = ("auto", "fp32", "fp16", "bf16")  # auto: fp16 on CUDA (bf16 for bf16 weights), else fp32
# The memory ladder (sdstudio.core.memory), fastest first; on out of memory a job is retried one
# rung down. "auto" starts at the top ("fast"), a rung starts there.
MEMORY_RUNGS = ("fast", "sliced", "tiled", "offload", "sequential")
MEMORY_MODES = ("auto", *MEMORY_RUNGS)
MEMORY_LABELS = {  # how the settings dialog names them
    "auto": "Automatic: fastest, one rung down on out of memory",
    "fast": "Fast: whole models on the GPU",
    "sliced": "Sliced attention: less memory, a little slower",
    "tiled": "Sliced + tiled VAE: for very large images",
    "offload": "Low VRAM: models wait on the CPU until used",
    "sequential": "Lowest VRAM: layers moved to the GPU one by one (slowest)",
}

# Limits every request is checked against before any work starts (what the device can hold is
# checked by the engine, which knows the model).
MAX_SIDE = 8192  # pixels; SDXL is trained at 1024, hires passes reach 4096
MAX_BATCH = 64
MAX_STEPS = 1000  # the schedulers' training schedule has 1000 timesteps
MAX_GUIDANCE = 100.0
MAX_SEED = 2**63 - 1  # image i of a batch uses seed + i, so seed + batch - 1 must stay below

# The canvas: A1111's inpaint options and hires fix.
INPAINT_AREAS = ("whole", "only-masked")
MASKED_CONTENTS = ("original", "fill", "latent-noise", "latent-nothing")
MAX_MASK_BLUR = 256
MAX_HIRES_SCALE = 8.0

"""Other tools' sampler and scheduler names -> the A1111-style names our menu uses.

ComfyUI (also SwarmUI, Fooocus, Stability Matrix) writes k-diffusion names plus a separate
scheduler (`dpmpp_2m` + `karras`); InvokeAI 3+ folds the schedule into a `_k` suffix
(`dpmpp_2m_k`); InvokeAI 1-2 and NovelAI use `k_` prefixes (`k_euler_ancestral`); Easy Diffusion
has its own short names (`dpm2_a`). The result is A1111's display name ("DPM++ 2M Karras"),
which is what the menu and the `Sampler:` text use; names outside the table are kept as written.
"""

from __future__ import annotations

import re

# k-diffusion / ComfyUI / Easy Diffusion / InvokeAI base names -> A1111 base names.
_BASE = {
    "euler": "Euler", "euler_ancestral": "Euler a", "euler_a": "Euler a",
    "heun": "Heun", "heunpp2": "Heun++ 2",
    "dpm_2": "DPM2", "kdpm_2": "DPM2", "dpm2": "DPM2",
    "dpm_2_ancestral": "DPM2 a", "kdpm_2_a": "DPM2 a", "dpm2_a": "DPM2 a",
    "lms": "LMS", "dpm_fast": "DPM fast", "dpm_adaptive": "DPM adaptive",
    "dpmpp_2s_ancestral": "DPM++ 2S a", "dpmpp_2s_a": "DPM++ 2S a", "dpmpp_2s": "DPM++ 2S",
    "dpmpp_sde": "DPM++ SDE", "dpmpp_sde_gpu": "DPM++ SDE",
    "dpmpp_2m": "DPM++ 2M", "dpmpp_2m_sde": "DPM++ 2M SDE", "dpmpp_2m_sde_gpu": "DPM++ 2M SDE",
    "dpmpp_3m_sde": "DPM++ 3M SDE", "dpmpp_3m_sde_gpu": "DPM++ 3M SDE", "dpmpp_3m": "DPM++ 3M",
    "ddim": "DDIM", "ddim_v3": "DDIM", "ddpm": "DDPM", "plms": "PNDM", "pndm": "PNDM",
    "uni_pc": "UniPC", "uni_pc_bh2": "UniPC", "unipc": "UniPC", "unipc_snr": "UniPC",
    "deis": "DEIS", "lcm": "LCM", "tcd": "TCD", "ipndm": "iPNDM", "ipndm_v": "iPNDM_V",
    "euler_cfg_pp": "Euler CFG++", "euler_ancestral_cfg_pp": "Euler a CFG++",
    "dpm_solver_stability": "DPM++ 2M",
}

# Schedules that change the name (A1111 writes them as `Schedule type`); the rest are "normal".
_SCHEDULES = {"karras": "Karras", "exponential": "Exponential", "polyexponential":
              "Polyexponential", "sgm_uniform": "SGM Uniform", "beta": "Beta",
              "align_your_steps": "Align Your Steps", "ays": "Align Your Steps"}
_PLAIN = {"", "normal", "simple", "native", "default", "automatic", "discrete", "ddim_uniform"}


def sampler_display_name(sampler: str, scheduler: str = "") -> tuple[str, bool]:
    """('dpmpp_2m', 'karras') -> ('DPM++ 2M Karras', True); unknown -> (raw text, False)."""
    raw = sampler.strip()[:100]
    key = re.sub(r"[^a-z0-9_]+", "_", raw.lower()).strip("_")
    for prefix in ("sample_", "k_"):
        if key.startswith(prefix) and key[len(prefix):] in _BASE:
            key = key[len(prefix):]
    sched = scheduler.strip().lower()[:50]
    if key not in _BASE:
        for suffix in ("_k", "_karras"):  # InvokeAI folds Karras into the name
            if key.endswith(suffix) and key[: -len(suffix)] in _BASE:
                key, sched = key[: -len(suffix)], sched or "karras"
    base = _BASE.get(key)
    if base is None:
        return (f"{raw} {scheduler.strip()}".strip() if sched not in _PLAIN else raw), False
    if sched in _PLAIN:
        return base, True
    suffix = _SCHEDULES.get(sched, scheduler.strip()[:50])
    return f"{base} {suffix}", sched in _SCHEDULES


def menu_sampler(display: str) -> tuple[str | None, str | None]:
    """Our menu's sampler for a display name, and a notice when it is only the closest one.

    Imports the scheduler table lazily: it pulls in diffusers, which indexing must not pay for.
    """
    from sdstudio.core.errors import UserError
    from sdstudio.core.schedulers import canonical_name

    if not display:
        return None, None
    try:
        return canonical_name(display), None
    except UserError:
        pass
    words = display.split()
    for cut in range(len(words) - 1, 0, -1):  # 'DPM++ 2M SDE Karras' -> 'DPM++ 2M SDE'
        try:
            name = canonical_name(" ".join(words[:cut]))
        except UserError:
            continue
        return name, f"Sampler {display!r} is not in the menu; using {name!r}, the closest."
    return None, f"Sampler {display!r} is not in the menu; the default sampler is used instead."

"""Write a diffusers-layout model as one original-layout (LDM/SGM) checkpoint, for tests.

The key maps are those of diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py
and convert_diffusers_to_original_sdxl.py, with their hard-coded block counts (4 blocks, 2
resnets) replaced by the UNet's and VAE's own config, so tiny models convert too.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

# (original, diffusers) pairs, as in the scripts
_UNET_TOP = [
    ("time_embed.0.", "time_embedding.linear_1."), ("time_embed.2.", "time_embedding.linear_2."),
    ("input_blocks.0.0.", "conv_in."), ("out.0.", "conv_norm_out."), ("out.2.", "conv_out."),
    ("label_emb.0.0.", "add_embedding.linear_1."), ("label_emb.0.2.", "add_embedding.linear_2."),
]
_RESNET = [("in_layers.0", "norm1"), ("in_layers.2", "conv1"), ("out_layers.0", "norm2"),
           ("out_layers.3", "conv2"), ("emb_layers.1", "time_emb_proj"),
           ("skip_connection", "conv_shortcut")]
_VAE_ATTN = [("norm.", "group_norm."), ("q.", "to_q."), ("k.", "to_k."), ("v.", "to_v."),
             ("proj_out.", "to_out.0.")]
_OPENCLIP = [("transformer.resblocks.", "text_model.encoder.layers."), ("ln_1", "layer_norm1"),
             ("ln_2", "layer_norm2"), (".c_fc.", ".fc1."), (".c_proj.", ".fc2."),
             (".attn", ".self_attn"), ("ln_final.", "text_model.final_layer_norm."),
             ("token_embedding.weight", "text_model.embeddings.token_embedding.weight"),
             ("positional_embedding", "text_model.embeddings.position_embedding.weight")]


def _unet_layer_map(config) -> list[tuple[str, str]]:
    n, per = len(config.block_out_channels), config.layers_per_block
    out = []
    for i in range(n):
        for j in range(per):
            out.append((f"input_blocks.{(per + 1) * i + j + 1}.0.", f"down_blocks.{i}.resnets.{j}."))
            out.append((f"input_blocks.{(per + 1) * i + j + 1}.1.",
                        f"down_blocks.{i}.attentions.{j}."))
        up_attn = config.up_block_types[i].startswith("CrossAttn")
        for j in range(per + 1):
            out.append((f"output_blocks.{(per + 1) * i + j}.0.", f"up_blocks.{i}.resnets.{j}."))
            out.append((f"output_blocks.{(per + 1) * i + j}.1.", f"up_blocks.{i}.attentions.{j}."))
        if i < n - 1:
            out.append((f"input_blocks.{(per + 1) * (i + 1)}.0.op.",
                        f"down_blocks.{i}.downsamplers.0.conv."))
            out.append((f"output_blocks.{(per + 1) * i + per}.{2 if up_attn else 1}.",
                        f"up_blocks.{i}.upsamplers.0."))
    out.append(("middle_block.1.", "mid_block.attentions.0."))
    out += [(f"middle_block.{2 * j}.", f"mid_block.resnets.{j}.") for j in range(2)]
    return out


def unet_to_original(unet) -> dict[str, torch.Tensor]:
    layer_map = _unet_layer_map(unet.config)
    out = {}
    for key, value in unet.state_dict().items():
        new = key
        for sd, hf in _UNET_TOP:
            if new.startswith(hf):
                new = sd + new[len(hf):]
        if "resnets" in new:
            for sd, hf in _RESNET:
                new = new.replace(hf, sd)
        for sd, hf in layer_map:
            if new.startswith(hf):
                new = sd + new[len(hf):]
                break
        out["model.diffusion_model." + new] = value
    return out


def vae_to_original(vae) -> dict[str, torch.Tensor]:
    n, per = len(vae.config.block_out_channels), vae.config.layers_per_block
    pairs = [("nin_shortcut", "conv_shortcut"), ("norm_out", "conv_norm_out"),
             ("mid.attn_1.", "mid_block.attentions.0.")]
    for i in range(n):
        pairs += [(f"encoder.down.{i}.block.{j}.", f"encoder.down_blocks.{i}.resnets.{j}.")
                  for j in range(per)]
        pairs += [(f"decoder.up.{n - 1 - i}.block.{j}.", f"decoder.up_blocks.{i}.resnets.{j}.")
                  for j in range(per + 1)]
        if i < n - 1:
            pairs.append((f"down.{i}.downsample.", f"down_blocks.{i}.downsamplers.0."))
            pairs.append((f"up.{n - 1 - i}.upsample.", f"up_blocks.{i}.upsamplers.0."))
    pairs += [(f"mid.block_{i + 1}.", f"mid_block.resnets.{i}.") for i in range(2)]
    out = {}
    for key, value in vae.state_dict().items():
        new = key
        for sd, hf in pairs:
            new = new.replace(hf, sd)
        if "attentions" in key:
            for sd, hf in _VAE_ATTN:
                new = new.replace(hf, sd)
            if value.ndim == 2:  # linear -> 1x1 conv, as the original VAE stores them
                value = value.reshape(*value.shape, 1, 1)
        out["first_stage_model." + new] = value
    return out


def _with_text_model(encoder) -> dict[str, torch.Tensor]:
    """State dict keys as `text_model.…` (transformers >= 5.6 flattened CLIPTextModel)."""
    out = {}
    for k, v in encoder.state_dict().items():
        if k.endswith("position_ids"):
            continue
        out[k if k.startswith(("text_model.", "text_projection")) else "text_model." + k] = v
    return out


def clip_to_original(encoder, prefix: str, legacy: bool = False) -> dict[str, torch.Tensor]:
    """OpenAI CLIP keys are kept; `legacy` drops `text_model.` as old SD 1.x files do."""
    state = _with_text_model(encoder)
    if legacy:
        state = {k.removeprefix("text_model."): v for k, v in state.items()}
    return {prefix + k: v for k, v in state.items()}


def open_clip_to_original(encoder, prefix: str) -> dict[str, torch.Tensor]:
    """OpenCLIP layout: fused q/k/v, `resblocks`, and the projection as a bare matrix."""
    protected = {re.escape(hf): sd for sd, hf in _OPENCLIP}
    pattern = re.compile("|".join(protected))
    out: dict[str, torch.Tensor] = {}
    qkv_w: dict[str, dict[str, torch.Tensor]] = {}
    qkv_b: dict[str, dict[str, torch.Tensor]] = {}
    for k, v in _with_text_model(encoder).items():
        m = re.match(r"(.*)\.self_attn\.([qkv])_proj\.(weight|bias)$", k)
        if m:
            (qkv_w if m[3] == "weight" else qkv_b).setdefault(m[1], {})[m[2]] = v
            continue
        if k == "text_projection.weight":
            out["text_projection"] = v.T.contiguous()
            continue
        out[pattern.sub(lambda x: protected[re.escape(x.group(0))], k)] = v
    for store, suffix in ((qkv_w, "in_proj_weight"), (qkv_b, "in_proj_bias")):
        for pre, parts in store.items():
            name = pattern.sub(lambda x: protected[re.escape(x.group(0))], pre)
            out[f"{name}.attn.{suffix}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return {prefix + k: v for k, v in out.items()}


def pipeline_to_original(pipe, family: str = "sd1", legacy_text: bool = False) -> dict:
    """One state dict in the original layout of `family` (sd1, sd2, sdxl, sdxl-refiner)."""
    state = {**unet_to_original(pipe.unet), **vae_to_original(pipe.vae)}
    if family == "sd1":
        state.update(clip_to_original(pipe.text_encoder, "cond_stage_model.transformer.",
                                      legacy=legacy_text))
    elif family == "sd2":
        state.update(open_clip_to_original(pipe.text_encoder, "cond_stage_model.model."))
    elif family == "sdxl":
        state.update(clip_to_original(pipe.text_encoder, "conditioner.embedders.0.transformer.",
                                      legacy=legacy_text))
        state.update(open_clip_to_original(pipe.text_encoder_2, "conditioner.embedders.1.model."))
    elif family == "sdxl-refiner":
        state.update(open_clip_to_original(pipe.text_encoder_2, "conditioner.embedders.0.model."))
    else:
        raise ValueError(family)
    return state


def write_single_file(
    folder: str | Path, out: str | Path, family: str = "sd1", dtype: torch.dtype | None = None,
    legacy_text: bool = False, extra: dict[str, torch.Tensor] | None = None,
) -> Path:
    """Convert the diffusers model in `folder` to one .safetensors (or .ckpt) file at `out`."""
    from diffusers import DiffusionPipeline

    pipe = DiffusionPipeline.from_pretrained(str(folder))
    state = pipeline_to_original(pipe, family, legacy_text)
    state.update(extra or {})
    state = {k: (v.to(dtype) if dtype and v.is_floating_point() else v).contiguous()
             for k, v in state.items()}
    out = Path(out)
    if out.suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(state, str(out))
    else:
        torch.save({"state_dict": state}, str(out))
    return out

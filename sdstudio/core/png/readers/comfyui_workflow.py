"""ComfyUI's UI graph (`workflow` chunk) -> the API graph shape the reader walks.

The UI graph lists nodes with positional `widgets_values` and links as
[id, from_node, from_slot, to_node, to_slot, type]. Widget names per node type come from
ComfyUI's own node definitions (nodes.py, comfy_extras); a seed widget is followed by its
"control after generate" value. Inputs whose widget was converted to a socket take the
linked value; Reroute and PrimitiveNode become pass-through nodes; muted nodes are dropped.
"""

from __future__ import annotations

from typing import Any

_SEED = ("seed", "__control")
_NOISE_SEED = ("noise_seed", "__control")
WIDGETS: dict[str, tuple[str, ...]] = {
    "KSampler": (*_SEED, "steps", "cfg", "sampler_name", "scheduler", "denoise"),
    "KSamplerAdvanced": ("add_noise", *_NOISE_SEED, "steps", "cfg", "sampler_name", "scheduler",
                         "start_at_step", "end_at_step", "return_with_leftover_noise"),
    "SamplerCustom": ("add_noise", *_NOISE_SEED, "cfg"),
    "RandomNoise": _NOISE_SEED,
    "KSamplerSelect": ("sampler_name",),
    "BasicScheduler": ("scheduler", "steps", "denoise"),
    "KarrasScheduler": ("steps", "sigma_max", "sigma_min", "rho"),
    "ExponentialScheduler": ("steps", "sigma_max", "sigma_min"),
    "SDTurboScheduler": ("steps", "denoise"),
    "AlignYourStepsScheduler": ("model_type", "steps", "denoise"),
    "CFGGuider": ("cfg",),
    "FluxGuidance": ("guidance",),
    "CheckpointLoaderSimple": ("ckpt_name",),
    "CheckpointLoader": ("config_name", "ckpt_name"),
    "UNETLoader": ("unet_name", "weight_dtype"),
    "VAELoader": ("vae_name",),
    "LoraLoader": ("lora_name", "strength_model", "strength_clip"),
    "LoraLoaderModelOnly": ("lora_name", "strength_model"),
    "CLIPSetLastLayer": ("stop_at_clip_layer",),
    "CLIPTextEncode": ("text",),
    "CLIPTextEncodeSDXL": ("width", "height", "crop_w", "crop_h", "target_width",
                           "target_height", "text_g", "text_l"),
    "CLIPTextEncodeSDXLRefiner": ("ascore", "width", "height", "text"),
    "EmptyLatentImage": ("width", "height", "batch_size"),
    "EmptySD3LatentImage": ("width", "height", "batch_size"),
    "LatentUpscale": ("upscale_method", "width", "height", "crop"),
    "LatentUpscaleBy": ("upscale_method", "scale_by"),
    "ImageScale": ("upscale_method", "width", "height", "crop"),
    "ImageScaleBy": ("upscale_method", "scale_by"),
    "UpscaleModelLoader": ("model_name",),
    "SaveImage": ("filename_prefix",),
    "PrimitiveNode": ("value", "__control"),
}
MAX_NODES = 10_000


def to_api(workflow: dict[str, Any] | None) -> dict[str, dict[str, Any]] | None:
    if not isinstance(workflow, dict):
        return None
    nodes, links = workflow.get("nodes"), workflow.get("links")
    if not isinstance(nodes, list) or len(nodes) > MAX_NODES:
        return None
    origin = _link_origins(links if isinstance(links, list) else [])
    graph: dict[str, dict[str, Any]] = {}
    for node in nodes:
        if not isinstance(node, dict) or not isinstance(node.get("type"), str):
            continue
        if node.get("mode") == 2:  # muted: it did not run
            continue
        nid = str(node.get("id"))
        graph[nid] = {"class_type": node["type"], "inputs": _inputs(node, origin)}
    return graph or None


def _link_origins(links: list[Any]) -> dict[Any, list[Any]]:
    origin: dict[Any, list[Any]] = {}
    for link in links[: MAX_NODES * 10]:
        if isinstance(link, list) and len(link) >= 3 and _is_id(link[0]) and _is_id(link[1]) \
                and isinstance(link[2], int):
            origin[link[0]] = [str(link[1]), link[2]]
        elif isinstance(link, dict) and _is_id(link.get("id")) and _is_id(link.get("origin_id")) \
                and isinstance(link.get("origin_slot"), int):  # the newer form
            origin[link["id"]] = [str(link["origin_id"]), link["origin_slot"]]
    return origin


def _inputs(node: dict[str, Any], origin: dict[Any, list[Any]]) -> dict[str, Any]:
    inputs: dict[str, Any] = {}
    values = node.get("widgets_values")
    if isinstance(values, dict):  # some custom nodes store their widgets by name
        inputs.update({str(k): v for k, v in list(values.items())[:500]})
    elif isinstance(values, list):
        names = WIDGETS.get(node["type"]) or tuple(_widget_names(node))  # unknown: the sockets'
        for name, value in zip(names, values[:500], strict=False):
            if name and not name.startswith("__"):
                inputs[name] = value
    sockets = node.get("inputs")
    for i, sock in enumerate(sockets if isinstance(sockets, list) else []):
        if not isinstance(sock, dict):
            continue
        link = sock.get("link")
        if not _is_id(link) or link not in origin:
            continue
        widget = sock.get("widget")
        given = widget.get("name") if isinstance(widget, dict) else sock.get("name")
        name = given if isinstance(given, str) and given else f"input_{i}"  # a Reroute's socket
        inputs[name] = origin[link]
    if node["type"] == "Reroute" or node.get("mode") == 4:  # bypassed nodes pass through
        inputs = {k: v for k, v in inputs.items() if isinstance(v, list)}
        if node["type"] == "Reroute":
            inputs = {"input": next(iter(inputs.values()))} if inputs else {}
    return inputs


def _is_id(value: Any) -> bool:
    return isinstance(value, (int, str)) and not isinstance(value, bool)


def _widget_names(node: dict[str, Any]) -> list[str]:
    """For a node type not in the table: the converted-widget sockets give some names."""
    sockets = node.get("inputs")
    names = []
    for sock in sockets if isinstance(sockets, list) else []:
        widget = sock.get("widget") if isinstance(sock, dict) else None
        if isinstance(widget, dict) and isinstance(widget.get("name"), str):
            names.append(widget["name"])
    return names

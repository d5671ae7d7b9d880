"""ComfyUI: the API graph in the `prompt` chunk (the UI graph in `workflow` when that is all).

The graph is {node_id: {"class_type": ..., "inputs": {name: value or [node_id, output]}}}.
We pick the sampler that feeds the saved image, then walk its links: the seed through
primitives, the prompts through conditioning nodes, the model through LoRA loaders, the latent
through upscales back to an earlier sampler (a hires pass) or an empty latent (the size).
Every walk is iterative with a visited set and a step budget, so cycles and deep graphs end.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from sdstudio.core.png.readers import comfyui_workflow
from sdstudio.core.png.readers.model import Hires, Lora, ParsedMetadata, short_text
from sdstudio.core.png.readers.values import (
    as_float,
    as_int,
    as_size,
    as_text,
    load_object,
    model_stem,
    positive,
)

MAX_NODES = 10_000
_BUDGET = 2_000  # node visits per walk
_VALUE_KEYS = ("value", "seed", "noise_seed", "int", "float", "number", "string", "text", "Text",
               "STRING", "INT", "FLOAT", "input")
_TEXT_KEYS = ("text_g", "text", "t5xxl", "prompt", "populated_text", "wildcard_text",
              "text_positive", "string", "clip_l")
_MODEL_KEYS = ("ckpt_name", "base_ckpt_name", "unet_name", "model_name", "gguf_name")
_LATENT_KEYS = ("latent_image", "samples", "latent", "samples_to", "pixels", "image", "images",
                "LATENT", "input")
_UPSCALES = ("LatentUpscale", "LatentUpscaleBy", "ImageScale", "ImageScaleBy",
             "ImageUpscaleWithModel", "HighRes-Fix Script", "NNLatentUpscale",
             "Upscale Latent", "Upscale Latent By", "iterative_upscale")
_SCHEDULER_NODES = {"KarrasScheduler": "karras", "ExponentialScheduler": "exponential",
                    "PolyexponentialScheduler": "polyexponential", "SDTurboScheduler": "sd_turbo",
                    "AlignYourStepsScheduler": "align_your_steps", "BetaSamplingScheduler": "beta",
                    "VPScheduler": "vp", "LaplaceScheduler": "laplace"}


def read(chunks: Mapping[str, str]) -> ParsedMetadata | None:
    graph = _api_graph(chunks.get("prompt"))
    if graph is None:
        graph = comfyui_workflow.to_api(load_object(chunks.get("workflow")))
    if not graph:
        return None
    return read_graph(graph)


def _api_graph(text: Any) -> dict[str, dict[str, Any]] | None:
    data = load_object(text)
    if not data or len(data) > MAX_NODES:
        return None
    graph = {str(k): v for k, v in data.items()
             if isinstance(v, dict) and isinstance(v.get("class_type"), str)
             and isinstance(v.get("inputs", {}), dict)}
    return graph or None


def read_graph(graph: dict[str, dict[str, Any]]) -> ParsedMetadata | None:
    g = _Graph(graph)
    final = g.final_sampler()
    out = ParsedMetadata(source="comfyui")
    if final is None:
        _read_without_sampler(g, out)
        return out if out.prompt or out.model else None
    base, upscale = g.earlier_pass(final)
    primary = base or final
    s = g.sampler_fields(primary)
    out.seed, out.steps, out.cfg = s["seed"], s["steps"], s["cfg"]
    out.set_sampler(s["sampler"], s["scheduler"], "ComfyUI")
    out.prompt = "\n".join(g.texts(s["positive"], "positive"))
    out.negative_prompt = "\n".join(g.texts(s["negative"], "negative"))
    text_l = g.first_value(s["positive"], "text_l")  # SDXL's second text, when it differs
    if isinstance(text_l, str) and text_l.strip() and text_l.strip() != out.prompt:
        out.extra["prompt_l"] = as_text(text_l, 2000)
    vaes = (g.value(g.inputs(n)["vae_name"]) for n in g.nodes if "vae_name" in g.inputs(n))
    vae = next((v for v in vaes if isinstance(v, str) and v), "")
    if vae:
        out.extra["vae"] = as_text(vae, 500)
    out.model, model_file, out.loras = g.model(s["model"])
    if model_file and model_file != out.model:
        out.extra["model_file"] = model_file
    size, img2img = g.latent_size(s["latent"])
    if size:
        out.width, out.height = size
    denoise = s["denoise"]
    if img2img and denoise is not None and denoise < 1:
        out.strength = denoise
    if base is not None and not upscale:  # base + refiner: report the base, name the refiner
        refiner, _, _ = g.model(g.sampler_fields(final)["model"])
        if refiner and refiner != out.model:
            out.extra["refiner_model"] = refiner
    elif base is not None:
        out.hires = g.hires(final, upscale)
    clip_skip = g.clip_skip(s["positive"])
    if clip_skip:
        out.clip_skip = clip_skip
    for k, v in s["extra"].items():
        out.extra[k] = short_text(v, 200)
    if len(g.samplers) > 1:
        out.extra["samplers_in_graph"] = str(len(g.samplers))
    return out


def _read_without_sampler(g: _Graph, out: ParsedMetadata) -> None:
    """A graph without a known sampler (an exotic custom node): take the first text and model."""
    for nid in g.nodes:
        inputs = g.inputs(nid)
        if not out.prompt:
            for key in _TEXT_KEYS:
                text = g.value(inputs.get(key))
                if isinstance(text, str) and text.strip():
                    out.prompt = as_text(text)
                    break
        if not out.model:
            for key in _MODEL_KEYS:
                name = g.value(inputs.get(key))
                if isinstance(name, str) and name:
                    out.model = model_stem(name)
    out.notices.append("No sampler node this reader knows was found in the ComfyUI graph.")


def _is_link(v: Any) -> bool:
    return (isinstance(v, list) and len(v) == 2 and isinstance(v[0], (str, int))
            and not isinstance(v[0], bool) and isinstance(v[1], int))


class _Graph:
    def __init__(self, nodes: dict[str, dict[str, Any]]):
        self.nodes = nodes
        self.samplers = [nid for nid in nodes if self.is_sampler(nid)]

    # ------------------------------------------------------------ basics

    def cls(self, nid: str | None) -> str:
        node = self.nodes.get(nid or "")
        return node.get("class_type", "") if node else ""

    def inputs(self, nid: str | None) -> dict[str, Any]:
        node = self.nodes.get(nid or "")
        inputs = node.get("inputs") if node else None
        return inputs if isinstance(inputs, dict) else {}

    def target(self, v: Any) -> str | None:
        return str(v[0]) if _is_link(v) and str(v[0]) in self.nodes else None

    def links(self, nid: str) -> Iterator[tuple[str, str]]:
        for name, v in self.inputs(nid).items():
            t = self.target(v)
            if t is not None:
                yield name, t

    def is_sampler(self, nid: str) -> bool:
        i = self.inputs(nid)
        cls = self.cls(nid)
        if cls in ("SamplerCustom", "SamplerCustomAdvanced"):
            return True
        if "images" in i or ("image" in i and "latent_image" not in i):
            return False  # savers and pixel-space detailers take sampler settings too
        return "steps" in i and "sampler_name" in i and ("positive" in i or "model" in i)

    def value(self, v: Any, keys: tuple[str, ...] = ()) -> Any:
        """Follow a link to a plain value: through primitives, reroutes, converted widgets."""
        seen: set[str] = set()
        for _ in range(64):
            t = self.target(v)
            if t is None:
                return None if _is_link(v) else v
            if t in seen:
                return None
            seen.add(t)
            inputs = self.inputs(t)
            key = next((k for k in keys + _VALUE_KEYS if k in inputs), None)
            if key is None and len(inputs) == 1:
                key = next(iter(inputs))
            if key is None:
                return None
            v = inputs[key]
        return None

    # ------------------------------------------------------------ which sampler

    def upstream(self, start: str) -> Iterator[str]:
        """Nodes feeding `start`, breadth first, each once."""
        seen, queue = {start}, [start]
        while queue and len(seen) < _BUDGET:
            nid = queue.pop(0)
            for _, t in self.links(nid):
                if t not in seen:
                    seen.add(t)
                    queue.append(t)
                    yield t

    def nearest_sampler(self, start: str) -> str | None:
        return next((n for n in self.upstream(start) if n in self.samplers), None)

    def depth(self, sampler: str) -> int:
        return sum(1 for n in self.upstream(sampler) if n in self.samplers)

    def final_sampler(self) -> str | None:
        """The sampler feeding the saved image; with several outputs, the one with most stages."""
        if not self.samplers:
            return None
        saves = [n for n in self.nodes if "save" in self.cls(n).lower()
                 and "latent" not in self.cls(n).lower()]
        saves = saves or [n for n in self.nodes if "preview" in self.cls(n).lower()]
        fed = [s for s in (self.nearest_sampler(n) for n in saves[:50]) if s is not None]
        some = self.samplers[:50]
        candidates = fed or [s for s in some if not any(
            self.nearest_sampler(o) == s for o in some if o != s)] or some
        return max(candidates[:50], key=self.depth)

    def earlier_pass(self, final: str) -> tuple[str | None, list[str]]:
        """(first-pass sampler, upscale nodes between, nearest first) when `final` re-samples
        another sampler's result. With upscales between it is a hires pass; without, a refiner.
        """
        upscales: list[str] = []
        for nid in self._latent_chain(final):
            if nid in self.samplers:
                return nid, upscales
            cls = self.cls(nid)
            if cls in _UPSCALES or "upscale" in cls.lower() or cls.startswith("ImageScale"):
                upscales.append(nid)
        return None, []

    def hires(self, final: str, upscales: list[str]) -> Hires:
        """The second pass: the final sampler's steps and denoise, the upscales' net effect."""
        f = self.sampler_fields(final)
        out = Hires(steps=f["steps"], denoise=f["denoise"])
        scale: float | None = 1.0
        methods: list[str] = []
        for nid in reversed(upscales):  # in the order they ran
            inputs = self.inputs(nid)
            model = self.upscale_model(nid)
            if model:
                methods.append(model)
                factor = _model_factor(model)
                scale = scale * factor if scale is not None and factor else None
            else:
                method = self.value(inputs.get("upscale_method"))
                if isinstance(method, str):
                    methods.append(method)
                by = as_float(self.value(inputs.get("scale_by")))
                w = as_int(self.value(inputs.get("width")))
                h = as_int(self.value(inputs.get("height")))
                if by is not None and scale is not None:
                    scale *= by
                elif w and h and w > 0 and h > 0:
                    out.width, out.height, scale = w, h, None  # a fixed size from here on
        out.scale = scale if scale is not None and scale != 1.0 else None
        models = [m for m in methods if "." in m]  # a model file says more than "lanczos"
        out.upscaler = as_text((models or methods or [""])[0], 200)
        return out

    def _latent_chain(self, start: str) -> Iterator[str]:
        """Nodes along the latent/image inputs from `start` back towards the empty latent."""
        seen = {start}
        nid: str | None = start
        for _ in range(_BUDGET):
            inputs = self.inputs(nid)
            nxt = None
            for key in _LATENT_KEYS:
                t = self.target(inputs.get(key))
                if t is not None and t not in seen:
                    nxt = t
                    break
            if nxt is None:
                return
            seen.add(nxt)
            yield nxt
            nid = nxt

    # ------------------------------------------------------------ what the sampler says

    def sampler_fields(self, nid: str) -> dict[str, Any]:
        i = self.inputs(nid)
        noise, guider = self.target(i.get("noise")), self.target(i.get("guider"))
        sampler_node, sigmas = self.target(i.get("sampler")), self.target(i.get("sigmas"))
        g = self.inputs(guider)
        seed = as_int(self.value(i.get("seed", i.get("noise_seed")), ("seed", "noise_seed")))
        if noise is not None:
            seed = as_int(self.value(self.inputs(noise).get("noise_seed"), ("seed",)))
        if str(self.value(i.get("add_noise"))).lower() in ("disable", "false"):
            seed = self._upstream_seed(nid) or seed  # a second stage: the first one's noise
        steps = as_int(self.value(i.get("steps")))
        sampler = self.value(i.get("sampler_name"))
        scheduler = self.value(i.get("scheduler"))
        denoise = as_float(self.value(i.get("denoise")))
        extra: dict[str, Any] = {}
        if sampler_node is not None:
            sampler = self.value(self.inputs(sampler_node).get("sampler_name")) \
                or _sampler_class_name(self.cls(sampler_node))
        if sigmas is not None:
            si = self.inputs(sigmas)
            steps = as_int(self.value(si.get("steps")))
            scheduler = self.value(si.get("scheduler")) \
                or _SCHEDULER_NODES.get(self.cls(sigmas), self.cls(sigmas))
            denoise = as_float(self.value(si.get("denoise")))
        cfg = as_float(self.value(i.get("cfg", g.get("cfg"))))
        positive_ref = i.get("positive", g.get("positive", g.get("conditioning", g.get("cond1"))))
        negative_ref = i.get("negative", g.get("negative"))
        guidance = self._flux_guidance(positive_ref)
        if guidance is not None:
            extra["guidance"] = guidance
        if self.cls(guider) == "BasicGuider" and cfg is None:
            cfg = 1.0
        for key in ("start_at_step", "end_at_step"):
            if key in i:
                extra[key] = self.value(i[key])
        return {"seed": seed, "steps": positive(steps), "cfg": cfg,
                "sampler": as_text(sampler, 100), "scheduler": as_text(scheduler, 100),
                "denoise": denoise, "positive": positive_ref, "negative": negative_ref,
                "model": i.get("model", g.get("model")), "latent": i.get("latent_image"),
                "extra": extra}

    def _upstream_seed(self, nid: str) -> int | None:
        for n in self._latent_chain(nid):
            if n in self.samplers:
                i = self.inputs(n)
                return as_int(self.value(i.get("seed", i.get("noise_seed")), ("seed",)))
        return None

    def _flux_guidance(self, ref: Any) -> float | None:
        seen: set[str] = set()
        t = self.target(ref)
        while t is not None and t not in seen and len(seen) < 64:
            seen.add(t)
            if self.cls(t) == "FluxGuidance":
                return as_float(self.value(self.inputs(t).get("guidance")))
            t = self.target(self.inputs(t).get("conditioning"))
        return None

    def texts(self, ref: Any, role: str) -> list[str]:
        """The prompt texts a conditioning input comes from (several when combined)."""
        found: list[str] = []
        stack = [ref]
        seen: set[str] = set()
        while stack and len(seen) < _BUDGET:
            t = self.target(stack.pop())
            if t is None or t in seen:
                continue
            seen.add(t)
            inputs = self.inputs(t)
            text = self._text_of(inputs, role)
            if text is not None:
                if text and text not in found:
                    found.append(text)
                continue
            if role in inputs and self.target(inputs[role]):
                stack.append(inputs[role])  # ControlNetApplyAdvanced, Efficient Loader, ...
                continue
            conds = [v for k, v in inputs.items() if "cond" in k.lower() and self.target(v)]
            stack.extend(reversed(conds))
        return found

    def _text_of(self, inputs: dict[str, Any], role: str) -> str | None:
        for key in (role, *_TEXT_KEYS):
            if key not in inputs:
                continue
            v = inputs[key]
            if key == role and self.target(v) and not self._is_text_source(self.target(v)):
                continue  # a conditioning link, not a text
            text = self.value(v, ("text", "string", "value"))
            if isinstance(text, str):
                return as_text(text)
        return None

    def _is_text_source(self, nid: str | None) -> bool:
        """A node that gives a string (a primitive, a text box), not conditioning."""
        inputs = self.inputs(nid)
        return not any("clip" in k.lower() or "cond" in k.lower() for k in inputs) and \
            any(isinstance(inputs.get(k), str) for k in _VALUE_KEYS + _TEXT_KEYS)

    def model(self, ref: Any) -> tuple[str, str, list[Lora]]:
        """(model name, model file, LoRAs) from the sampler's model input back to the loader."""
        groups: list[list[Lora]] = []  # nearest loader first; applied in the reverse order
        seen: set[str] = set()
        t = self.target(ref)
        name: Any = ""
        while t is not None and t not in seen and len(seen) < _BUDGET:
            seen.add(t)
            inputs = self.inputs(t)
            groups.append(self._loras(t, inputs))
            for key in _MODEL_KEYS:
                name = self.value(inputs.get(key))
                if isinstance(name, dict):
                    name = name.get("content")  # pysssss' image-preview loaders
                if isinstance(name, str) and name:
                    break
            else:
                name = ""
            if name:
                break
            links = list(self.links(t))
            t = self.target(inputs.get("model")) or next(
                (x for k, x in links if "model" in k.lower()), None) or (
                links[0][1] if len(links) == 1 else None)  # a reroute
        loras = [lora for group in reversed(groups) for lora in group][:100]
        return (model_stem(name), name[:500], loras) if name else ("", "", loras)

    def _loras(self, nid: str, inputs: dict[str, Any]) -> list[Lora]:
        out: list[Lora] = []
        name = self.value(inputs.get("lora_name"))
        if isinstance(name, str) and name and name != "None":
            weight = as_float(self.value(inputs.get("strength_model",
                                                    inputs.get("lora_model_strength"))))
            out.append(Lora(model_stem(name), weight))
        for key, v in inputs.items():  # rgthree Power Lora Loader: lora_1: {on, lora, strength}
            if key.startswith("lora_") and isinstance(v, dict) and v.get("on", True):
                if isinstance(v.get("lora"), str) and v["lora"] != "None":
                    out.append(Lora(model_stem(v["lora"]), as_float(v.get("strength"))))
        for i in range(1, 50):  # LoRA stacks: lora_name_1 / model_str_1, lora_01 / strength_01
            stack_name = self.value(inputs.get(f"lora_name_{i}", inputs.get(f"lora_{i:02d}")))
            if stack_name is None:
                break
            if isinstance(stack_name, str) and stack_name != "None":
                w = self.value(inputs.get(f"model_str_{i}", inputs.get(
                    f"lora_wt_{i}", inputs.get(f"strength_{i:02d}"))))
                out.append(Lora(model_stem(stack_name), as_float(w)))
        stack = self.target(inputs.get("lora_stack"))
        if stack is not None and stack != nid:
            out.extend(self._loras(stack, self.inputs(stack)) if len(out) < 100 else [])
        return out

    def latent_size(self, ref: Any) -> tuple[tuple[int, int] | None, bool]:
        """(size of the empty latent, whether it is img2img) for the sampler's latent input."""
        t = self.target(ref)
        if t is None:
            return None, False
        chain = [t, *self._latent_chain(t)]
        img2img = any(self.cls(n) in ("VAEEncode", "VAEEncodeForInpaint", "LoadImage")
                      for n in chain)
        for nid in chain:
            inputs = self.inputs(nid)
            w = as_int(self.value(inputs.get("width", inputs.get("empty_latent_width"))))
            h = as_int(self.value(inputs.get("height", inputs.get("empty_latent_height"))))
            if w and h and w > 0 and h > 0 and nid not in self.samplers:
                return (w, h), img2img
            dims = as_size(self.value(inputs.get("dimensions", inputs.get("resolution"))))
            if dims:
                return dims, img2img
        return None, img2img

    def upscale_model(self, nid: str | None) -> str:
        t = self.target(self.inputs(nid).get("upscale_model"))
        name = self.value(self.inputs(t).get("model_name")) if t else None
        return name if isinstance(name, str) else ""

    def clip_skip(self, ref: Any) -> int | None:
        """CLIPSetLastLayer (stop_at_clip_layer -2 is A1111's clip skip 2) on the text's CLIP."""
        for nid in self.upstream_from(ref):
            inputs = self.inputs(nid)
            layer = as_int(self.value(inputs.get("stop_at_clip_layer")))
            if layer is not None and layer < 0:
                return -layer
            skip = as_int(self.value(inputs.get("clip_skip")))
            if skip is not None:
                return abs(skip) or None
        return None

    def first_value(self, ref: Any, key: str) -> Any:
        """`key`'s value on the first node upstream of `ref` that has it."""
        for nid in self.upstream_from(ref):
            if key in self.inputs(nid):
                return self.value(self.inputs(nid)[key])
        return None

    def upstream_from(self, ref: Any) -> Iterator[str]:
        t = self.target(ref)
        if t is not None:
            yield t
            yield from self.upstream(t)


_SAMPLER_CLASS = re.compile(r"^Sampler(.+)$")
_MODEL_FACTOR = re.compile(r"(?:^|[^a-z0-9])(\d)x(?:[^a-z0-9]|$)|x(\d)(?:[^0-9]|$)", re.I)


def _model_factor(name: str) -> int | None:
    """'4x-UltraSharp.pth' -> 4, 'RealESRGAN_x2plus.pth' -> 2 (the usual naming); else None."""
    m = _MODEL_FACTOR.search(name.rsplit("/", 1)[-1])
    return int(m.group(1) or m.group(2)) if m else None


def _sampler_class_name(cls: str) -> str:
    """SamplerEulerAncestral -> euler_ancestral; SamplerDPMPP_2M_SDE -> dpmpp_2m_sde."""
    m = _SAMPLER_CLASS.match(cls)
    if not m:
        return cls
    name = re.sub(r"(?<=[a-z])(?=[A-Z])", "_", m.group(1)).lower()
    return name.replace("dpmpp", "dpmpp_").replace("__", "_").strip("_")

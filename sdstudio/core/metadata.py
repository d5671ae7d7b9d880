"""Generation parameters in PNG text chunks.

* `parameters`: the text the AUTOMATIC1111 web UI writes (and its forks read), e.g.

      a cat, "best" quality
      Negative prompt: blurry
      Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 123, Size: 512x512, Model: demo

* `sdstudio`: JSON with the full request (exact round trip) and a reproducibility record.

Other tools' chunks are read too: ComfyUI's `prompt` graph and InvokeAI's `invokeai_metadata`.
`GenerationRequest` (which imports diffusers) is imported lazily so that reading and indexing
stay cheap for the command line.
"""

from __future__ import annotations

import errno
import functools
import json
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PIL import Image, PngImagePlugin, UnidentifiedImageError

from sdstudio import __version__
from sdstudio.core.errors import UserError

if TYPE_CHECKING:
    from sdstudio.core.request import GenerationRequest

PARAMETERS_KEY = "parameters"
SDSTUDIO_KEY = "sdstudio"
NEGATIVE_MARKER = "Negative prompt:"
VERSION = f"sdstudio {__version__}"
TEMP_PREFIX = ".sdstudio-"  # temporary files of unfinished writes start with this
TEMP_SUFFIX = ".tmp"

# A1111's own pattern for one `Key: value` item of the last line (value JSON-quoted or up to `,`).
_PARAM_RE = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
_SIZE_RE = re.compile(r"^(\d+)x(\d+)$")


class MetadataError(UserError):
    """A PNG or parameters text that cannot be read."""


@dataclass
class Parameters:
    """Generation parameters read from an image, whichever tool wrote them."""

    prompt: str = ""
    negative_prompt: str = ""
    settings: dict[str, str] = field(default_factory=dict)  # last line, in order, unquoted
    source: str = "a1111"  # a1111 | sdstudio | comfyui | invokeai
    request: dict[str, Any] | None = None  # our full request, when the `sdstudio` chunk exists
    record: dict[str, Any] = field(default_factory=dict)  # our reproducibility record
    text: str = ""  # the raw `parameters` text, if any

    def _int(self, key: str) -> int | None:
        try:
            return int(self.settings[key])
        except (KeyError, ValueError):
            return None

    def _float(self, key: str) -> float | None:
        try:
            return float(self.settings[key])
        except (KeyError, ValueError):
            return None

    @property
    def seed(self) -> int | None:
        return self._int("Seed")

    @property
    def steps(self) -> int | None:
        return self._int("Steps")

    @property
    def cfg(self) -> float | None:
        return self._float("CFG scale")

    @property
    def strength(self) -> float | None:
        return self._float("Denoising strength")

    @property
    def model(self) -> str:
        return self.settings.get("Model", "")

    @property
    def sampler(self) -> str:
        """Sampler with its schedule type folded in, as our menus name it ('DPM++ 2M Karras')."""
        name = self.settings.get("Sampler", "")
        schedule = self.settings.get("Schedule type", "")
        if schedule and schedule.lower() not in ("automatic", "") and schedule not in name:
            name = f"{name} {schedule}"
        return name

    @property
    def size(self) -> tuple[int, int] | None:
        m = _SIZE_RE.match(self.settings.get("Size", ""))
        return (int(m.group(1)), int(m.group(2))) if m else None

    def to_request(self) -> GenerationRequest:
        """The request that makes this image again (exact for our own PNGs)."""
        from sdstudio.core.request import DEMO_MODEL, GenerationRequest
        from sdstudio.core.schedulers import DEFAULT_SAMPLER, canonical_name

        if self.request is not None:
            try:
                return GenerationRequest.from_dict(self.request)
            except TypeError as exc:
                raise MetadataError(f"The sdstudio metadata is not a valid request ({exc}).") from exc
        try:
            scheduler = canonical_name(self.sampler)
        except UserError:
            scheduler = DEFAULT_SAMPLER
        width, height = self.size or (512, 512)
        kwargs: dict[str, Any] = {
            "prompt": self.prompt, "negative_prompt": self.negative_prompt,
            "seed": self.seed or 0, "steps": self.steps or 20, "scheduler": scheduler,
            "width": width, "height": height, "model": self.model or DEMO_MODEL,
        }
        if self.cfg is not None:
            kwargs["guidance"] = self.cfg
        if self.strength is not None:
            kwargs["strength"] = self.strength
        return GenerationRequest(**kwargs)


# ---------------------------------------------------------------- A1111 `parameters` text


def quote(value: str) -> str:
    """A1111's rule: a value holding `,` `:` or a newline is written as a JSON string."""
    if "," not in value and ":" not in value and "\n" not in value and not value.startswith('"'):
        return value
    return json.dumps(value, ensure_ascii=False)


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def format_number(value: float) -> str:
    """7.0 -> '7', 7.5 -> '7.5' (shortest exact form)."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def model_name(model: str) -> str:
    """What A1111 writes as `Model`: the checkpoint's name without folder or extension."""
    p = Path(model)
    if p.suffix.lower() in (".safetensors", ".ckpt", ".pt", ".bin"):
        return p.stem
    if p.is_absolute() or model.startswith((".", "~")) or p.is_dir():
        return p.name or model  # a diffusers folder
    return model  # "demo" or a Hugging Face id like "runwayml/stable-diffusion-v1-5"


def settings_for(
    request: GenerationRequest, seed: int, model_hash: str | None = None
) -> dict[str, str]:
    """The `Key: value` items of the last line, in A1111's order."""
    from sdstudio.core.schedulers import get_sampler

    sampler = request.scheduler
    schedule = None
    try:
        spec = get_sampler(request.scheduler)
        sampler, schedule = spec.name, spec.schedule_type
        if schedule and sampler.endswith(" " + schedule):
            sampler = sampler[: -len(schedule) - 1]
    except UserError:
        pass
    items: dict[str, str | None] = {
        "Steps": str(request.steps),
        "Sampler": sampler,
        "Schedule type": schedule,
        "CFG scale": format_number(request.guidance),
        "Seed": str(seed),
        "Size": f"{request.width}x{request.height}",
        "Model hash": model_hash[:10] if model_hash else None,
        "Model": model_name(request.model),
        "Denoising strength": format_number(request.strength) if request.init_image else None,
        "Version": VERSION,
    }
    return {k: v for k, v in items.items() if v is not None}


def format_settings(settings: dict[str, str]) -> str:
    return ", ".join(f"{k}: {quote(v)}" for k, v in settings.items())


def format_parameters(
    request: GenerationRequest, seed: int, model_hash: str | None = None
) -> str:
    """The `parameters` text exactly as A1111 lays it out."""
    text = request.prompt
    if request.negative_prompt:
        text += f"\n{NEGATIVE_MARKER} {request.negative_prompt}"
    return f"{text}\n{format_settings(settings_for(request, seed, model_hash))}"


def parse_settings(line: str) -> dict[str, str]:
    return {k.strip(): unquote(v.strip()) for k, v in _PARAM_RE.findall(line)}


def parse_parameters(text: str) -> Parameters:
    """Parse A1111 `parameters` text (ours, A1111's and its forks'). Raises only MetadataError."""
    if not isinstance(text, str):
        raise MetadataError("The image parameters are not text.")
    try:
        return _parse_parameters(text)
    except Exception as exc:  # the promise: never anything but a clear parse error
        raise MetadataError(f"The image parameters could not be read ({exc}).") from exc


def _parse_parameters(text: str) -> Parameters:
    *lines, last = text.rstrip("\r\n\t ").split("\n")
    if len(_PARAM_RE.findall(last)) < 3:  # A1111's test for "this is the settings line"
        lines.append(last)
        last = ""
    prompt: list[str] = []
    negative: list[str] = []
    target = prompt
    for line in lines:
        if target is prompt and line.startswith(NEGATIVE_MARKER):
            target = negative
            line = line[len(NEGATIVE_MARKER):]
            line = line[1:] if line.startswith(" ") else line
        target.append(line)
    return Parameters(
        prompt="\n".join(prompt),
        negative_prompt="\n".join(negative),
        settings=parse_settings(last),
        text=text,
    )


# ---------------------------------------------------------------- other tools' chunks


def parse_comfyui(graph_json: str) -> Parameters:
    """ComfyUI's `prompt` chunk: the node graph; read the first sampler and what feeds it."""
    try:
        return _parse_comfyui(graph_json)
    except MetadataError:
        raise
    except Exception as exc:  # any odd graph: still only a parse error
        raise MetadataError(f"The ComfyUI workflow in this image could not be read ({exc}).") from exc


def _parse_comfyui(graph_json: str) -> Parameters:
    try:
        graph = json.loads(graph_json)
        node_id, sampler = next(
            (k, v) for k, v in graph.items()
            if isinstance(v, dict) and str(v.get("class_type", "")).startswith("KSampler")
        )
    except (ValueError, StopIteration, AttributeError) as exc:
        raise MetadataError("The ComfyUI workflow in this image has no sampler to read.") from exc
    inputs = sampler.get("inputs", {})

    def follow(ref: Any, *keys: str) -> Any:
        """A link is [node_id, output]; follow it (through a few hops) to a node's input."""
        for _ in range(8):
            if not (isinstance(ref, list) and ref and str(ref[0]) in graph):
                return ref
            node_inputs = graph[str(ref[0])].get("inputs", {})
            ref = next((node_inputs[k] for k in keys if k in node_inputs), None)
        return ref

    settings: dict[str, str] = {}

    def put(key: str, value: Any) -> None:
        if value is not None and not isinstance(value, (list, dict)):
            settings[key] = format_number(value) if isinstance(value, float) else str(value)

    put("Steps", inputs.get("steps"))
    put("Sampler", inputs.get("sampler_name"))
    put("Schedule type", inputs.get("scheduler"))
    put("CFG scale", inputs.get("cfg"))
    put("Seed", follow(inputs.get("seed", inputs.get("noise_seed")), "seed", "value"))
    latent = inputs.get("latent_image")
    w, h = follow(latent, "width"), follow(latent, "height")
    if isinstance(w, int) and isinstance(h, int):
        settings["Size"] = f"{w}x{h}"
    ckpt = follow(inputs.get("model"), "ckpt_name", "model")
    if isinstance(ckpt, str):
        settings["Model"] = model_name(ckpt)
    if isinstance(inputs.get("denoise"), (int, float)) and inputs["denoise"] < 1:
        put("Denoising strength", float(inputs["denoise"]))
    pos = follow(inputs.get("positive"), "text", "text_g", "conditioning")
    neg = follow(inputs.get("negative"), "text", "text_g", "conditioning")
    return Parameters(
        prompt=pos if isinstance(pos, str) else "",
        negative_prompt=neg if isinstance(neg, str) else "",
        settings=settings, source="comfyui", text=format_settings(settings),
    )


def parse_invokeai(meta_json: str) -> Parameters:
    """InvokeAI's `invokeai_metadata` chunk (v3+): a flat JSON object."""
    try:
        return _parse_invokeai(meta_json)
    except MetadataError:
        raise
    except Exception as exc:
        raise MetadataError(f"The InvokeAI metadata in this image could not be read ({exc}).") from exc


def _parse_invokeai(meta_json: str) -> Parameters:
    try:
        meta = json.loads(meta_json)
        if not isinstance(meta, dict):
            raise ValueError("not an object")
    except ValueError as exc:
        raise MetadataError("The InvokeAI metadata in this image is not valid JSON.") from exc
    settings: dict[str, str] = {}
    for key, name in (("steps", "Steps"), ("scheduler", "Sampler"), ("cfg_scale", "CFG scale"),
                      ("seed", "Seed"), ("strength", "Denoising strength")):
        v = meta.get(key)
        if isinstance(v, (int, float, str)) and not isinstance(v, bool):
            settings[name] = format_number(v) if isinstance(v, float) else str(v)
    if isinstance(meta.get("width"), int) and isinstance(meta.get("height"), int):
        settings["Size"] = f"{meta['width']}x{meta['height']}"
    model = meta.get("model")
    if isinstance(model, dict):
        model = model.get("name") or model.get("model_name")
    if isinstance(model, str):
        settings["Model"] = model
    pos, neg = meta.get("positive_prompt", ""), meta.get("negative_prompt", "")
    return Parameters(
        prompt=pos if isinstance(pos, str) else "",
        negative_prompt=neg if isinstance(neg, str) else "",
        settings=settings, source="invokeai", text=format_settings(settings),
    )


# ---------------------------------------------------------------- reading PNGs


def parameters_from_info(info: dict[str, Any]) -> Parameters | None:
    """Parameters from a PNG's text chunks, preferring our exact record; None if there are none."""
    ours = info.get(SDSTUDIO_KEY)
    text = info.get(PARAMETERS_KEY)
    if isinstance(ours, str):
        try:
            data = json.loads(ours)
            req = data["request"]
            seed = int(data.get("seed", req.get("seed", 0)))
            record = data.get("record", {})
            if not isinstance(record, dict) or not isinstance(req.get("prompt", ""), str):
                raise TypeError("bad record")
        except (ValueError, KeyError, TypeError, AttributeError):
            pass  # damaged: fall back to the A1111 text
        else:
            p = parse_parameters(text) if isinstance(text, str) else Parameters()
            p.prompt, p.negative_prompt = req.get("prompt", ""), req.get("negative_prompt", "")
            p.settings.setdefault("Seed", str(seed))
            p.request = {**req, "seed": seed, "batch_size": 1}
            p.record = record
            p.record.setdefault("created", data.get("created"))
            p.source = "sdstudio"
            return p
    if isinstance(text, str):
        return parse_parameters(text)
    if isinstance(info.get("invokeai_metadata"), str):
        return parse_invokeai(info["invokeai_metadata"])
    if isinstance(info.get("prompt"), str):
        return parse_comfyui(info["prompt"])
    return None


def read_info(path: str | os.PathLike[str]) -> tuple[dict[str, Any], tuple[int, int]]:
    """The text chunks and size of a PNG, without decoding its pixels."""
    name = Path(path).name
    try:
        with Image.open(path) as im:
            if im.format != "PNG":
                raise MetadataError(f"{name} is a {im.format} image, not a PNG.")
            return dict(im.info), im.size
    except FileNotFoundError as exc:
        raise MetadataError(f"{name} does not exist.") from exc
    except UnidentifiedImageError as exc:
        raise MetadataError(f"{name} is not an image, or is too damaged to read.") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise MetadataError(f"{name} is a damaged PNG file ({exc}).") from exc


def read_png(path: str | os.PathLike[str]) -> Parameters | None:
    """Generation parameters of a PNG; None for a PNG without any. Raises only MetadataError."""
    info, _ = read_info(path)
    return parameters_from_info(info)


# ---------------------------------------------------------------- writing PNGs


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a model file, cached by (path, size, mtime): checkpoints are gigabytes."""
    from sdstudio.core.models.hashing import sha256

    return sha256(path)


@functools.cache
def package_versions() -> dict[str, str]:
    """Versions of the packages that decide the pixels (looked up once: it is slow)."""
    out = {"sdstudio": __version__}
    for pkg in ("torch", "diffusers", "transformers", "numpy", "Pillow"):
        try:
            out[pkg] = importlib_metadata.version(pkg)
        except importlib_metadata.PackageNotFoundError:
            pass
    return out


def reproducibility_record(request: GenerationRequest, extra: dict[str, Any] | None) -> dict[str, Any]:
    """Versions, device, dtype, scheduler config and model hash; `extra` (from the engine) wins."""
    record: dict[str, Any] = {"versions": dict(package_versions()), "device": request.device,
                              "dtype": request.dtype}
    model = Path(request.model)
    if "model_sha256" not in (extra or {}) and model.is_file():
        record["model_sha256"] = file_sha256(model)
    if "scheduler_config" not in (extra or {}):
        record["scheduler_config"] = _scheduler_config(request.model)
    record.update(extra or {})
    return record


def _scheduler_config(model: str) -> dict[str, Any] | None:
    """The model's own scheduler config, for diffusers folders (the demo model included)."""
    from sdstudio.core.paths import demo_model_dir

    folder = demo_model_dir() if model == "demo" else Path(model)
    try:
        return json.loads((folder / "scheduler" / "scheduler_config.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None


def build_pnginfo(
    request: GenerationRequest, seed: int, extra: dict[str, Any] | None = None
) -> PngImagePlugin.PngInfo:
    record = reproducibility_record(request, extra)
    text = format_parameters(request, seed, record.get("model_sha256"))
    ours = {"request": {**request.to_dict(), "seed": seed, "batch_size": 1}, "seed": seed,
            "created": time.time(), "record": record}
    info = PngImagePlugin.PngInfo()
    info.add_text(PARAMETERS_KEY, text)  # tEXt when Latin-1, else iTXt (UTF-8), as A1111 does
    info.add_text(SDSTUDIO_KEY, json.dumps(ours, ensure_ascii=False, default=str))
    return info


def temp_path_for(final: Path) -> Path:
    return final.with_name(f"{TEMP_PREFIX}{os.getpid()}-{final.stem}{TEMP_SUFFIX}")


def describe_os_error(exc: OSError, target: Path) -> str:
    """One sentence for the OS errors saving can meet."""
    folder = target.parent
    if exc.errno == errno.ENOSPC or exc.errno == getattr(errno, "EDQUOT", -1):
        return f"The disk holding {folder} is full: free some space and generate again."
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"The folder {folder} is read-only: choose another gallery folder in Settings."
    if exc.errno == errno.ENOENT:
        return f"The folder {folder} does not exist or was removed."
    return f"Could not write {target.name} in {folder}: {exc.strerror or exc}."


def write_png(
    path: str | os.PathLike[str],
    image: Image.Image,
    request: GenerationRequest,
    seed: int,
    extra: dict[str, Any] | None = None,
    *,
    overwrite: bool = True,
) -> Path:
    """Write `image` with its metadata atomically: temp file, fsync, rename (then fsync the folder).

    A crash leaves either no file or the whole file (plus at most a hidden temp file that
    `remove_stale_temp_files` clears). With overwrite=False an existing file raises FileExistsError.
    Disk errors become UserError with one sentence.
    """
    final = Path(path)
    tmp = temp_path_for(final)
    info = build_pnginfo(request, seed, extra)
    try:
        with open(tmp, "wb") as f:
            image.save(f, format="PNG", pnginfo=info, compress_level=4)
            f.flush()
            os.fsync(f.fileno())
        _commit(tmp, final, overwrite)
    except BaseException as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, FileExistsError):
            raise UserError(describe_os_error(exc, final)) from exc
        raise
    _fsync_dir(final.parent)
    return final


def _commit(tmp: Path, final: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, final)
        return
    try:
        os.link(tmp, final)  # atomic and never clobbers: FileExistsError if the name is taken
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links
        if final.exists():
            raise FileExistsError(final) from None
        os.replace(tmp, final)
        return
    tmp.unlink()


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def iter_temp_files(folder: Path) -> Iterator[Path]:
    return (p for p in folder.glob(f"{TEMP_PREFIX}*{TEMP_SUFFIX}") if p.is_file())


def remove_stale_temp_files(folder: Path, max_age: float = 600.0) -> int:
    """Delete temp files left by writes that died (their process is gone, or they are old)."""
    removed = 0
    now = time.time()
    for p in iter_temp_files(folder):
        m = re.match(rf"{re.escape(TEMP_PREFIX)}(\d+)-", p.name)
        pid = int(m.group(1)) if m else -1
        try:
            if (pid != os.getpid() and not _pid_alive(pid)) or now - p.stat().st_mtime > max_age:
                p.unlink()
                removed += 1
        except OSError:
            pass
    return removed


def _pid_alive(pid: int) -> bool:
    if pid <= 0 or os.name != "posix":
        return False if pid <= 0 else True  # elsewhere rely on the age test
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True

"""Hand-written metadata per format, shaped like each tool's own output.

Structures follow the tools' sources: ComfyUI's SaveImage (`prompt` = API graph, `workflow` =
UI graph), Efficiency nodes' and rgthree's inputs, InvokeAI's metadata schema (v4 model
identifiers), SwarmUI's sui_image_params (a real sample from a public repository), Fooocus'
meta_parser keys, NovelAI's Comment, Stability Matrix's GenerationParameters, Draw Things' XMP
and Easy Diffusion's TASK_TEXT_MAPPING.
"""

from __future__ import annotations

import json


def comfy_sdxl_loras() -> dict[str, str]:
    graph = {
        "4": {"class_type": "CheckpointLoaderSimple",
              "inputs": {"ckpt_name": "SDXL/juggernautXL_v9.safetensors"}},
        "10": {"class_type": "LoraLoader", "inputs": {
            "lora_name": "add-detail-xl.safetensors", "strength_model": 0.8, "strength_clip": 0.8,
            "model": ["4", 0], "clip": ["4", 1]}},
        "11": {"class_type": "LoraLoader", "inputs": {
            "lora_name": "styles/film_grain.safetensors", "strength_model": 0.35,
            "strength_clip": 0.35, "model": ["10", 0], "clip": ["10", 1]}},
        "12": {"class_type": "CLIPSetLastLayer",
               "inputs": {"stop_at_clip_layer": -2, "clip": ["11", 1]}},
        "6": {"class_type": "CLIPTextEncodeSDXL", "inputs": {
            "width": 4096, "height": 4096, "crop_w": 0, "crop_h": 0, "target_width": 4096,
            "target_height": 4096, "text_g": "a lighthouse at dusk, volumetric light",
            "text_l": "film photo, 35mm", "clip": ["12", 0]}},
        "7": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "blurry, lowres", "clip": ["12", 0]}},
        "5": {"class_type": "EmptyLatentImage",
              "inputs": {"width": 832, "height": 1216, "batch_size": 1}},
        "20": {"class_type": "PrimitiveInt", "inputs": {"value": 918273645}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": ["20", 0], "steps": 30, "cfg": 6.5, "sampler_name": "dpmpp_2m",
            "scheduler": "karras", "denoise": 1.0, "model": ["11", 0], "positive": ["6", 0],
            "negative": ["7", 0], "latent_image": ["5", 0]}},
        "13": {"class_type": "VAELoader", "inputs": {"vae_name": "sdxl_vae.safetensors"}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["13", 0]}},
        "9": {"class_type": "SaveImage",
              "inputs": {"filename_prefix": "ComfyUI", "images": ["8", 0]}},
    }
    return {"prompt": json.dumps(graph)}


def comfy_sampler_custom_advanced() -> dict[str, str]:
    graph = {
        "12": {"class_type": "UNETLoader",
               "inputs": {"unet_name": "flux1-dev.safetensors", "weight_dtype": "fp8_e4m3fn"}},
        "6": {"class_type": "CLIPTextEncode",
              "inputs": {"text": "a red fox in snow, photo", "clip": ["11", 0]}},
        "60": {"class_type": "FluxGuidance", "inputs": {"guidance": 3.5, "conditioning": ["6", 0]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "", "clip": ["11", 0]}},
        "22": {"class_type": "CFGGuider", "inputs": {
            "cfg": 1.0, "model": ["12", 0], "positive": ["60", 0], "negative": ["7", 0]}},
        "25": {"class_type": "RandomNoise", "inputs": {"noise_seed": 424242}},
        "16": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "17": {"class_type": "BasicScheduler",
               "inputs": {"scheduler": "simple", "steps": 24, "denoise": 1.0, "model": ["12", 0]}},
        "27": {"class_type": "EmptySD3LatentImage",
               "inputs": {"width": 1024, "height": 768, "batch_size": 1}},
        "13": {"class_type": "SamplerCustomAdvanced", "inputs": {
            "noise": ["25", 0], "guider": ["22", 0], "sampler": ["16", 0], "sigmas": ["17", 0],
            "latent_image": ["27", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["13", 0], "vae": ["10", 0]}},
        "9": {"class_type": "SaveImage", "inputs": {"filename_prefix": "flux", "images": ["8", 0]}},
    }
    return {"prompt": json.dumps(graph)}


def comfy_workflow_only() -> dict[str, str]:
    """A UI graph alone (some savers and copies keep only it): a Reroute carries the model and a
    PrimitiveNode drives the KSampler's seed through a converted widget."""
    links = [[1, 4, 0, 30, 0, "MODEL"], [2, 30, 0, 3, 0, "MODEL"], [3, 6, 0, 3, 1, "CONDITIONING"],
             [4, 7, 0, 3, 2, "CONDITIONING"], [5, 5, 0, 3, 3, "LATENT"], [6, 40, 0, 3, 4, "INT"],
             [7, 3, 0, 8, 0, "LATENT"], [8, 8, 0, 9, 0, "IMAGE"], [9, 4, 1, 6, 0, "CLIP"],
             [10, 4, 1, 7, 0, "CLIP"], [11, 4, 2, 8, 1, "VAE"]]
    nodes = [
        {"id": 4, "type": "CheckpointLoaderSimple", "mode": 0, "widgets_values": ["dreamshaper_8.safetensors"]},
        {"id": 30, "type": "Reroute", "mode": 0, "inputs": [{"name": "", "type": "*", "link": 1}],
         "outputs": [{"name": "", "type": "MODEL", "links": [2]}]},
        {"id": 6, "type": "CLIPTextEncode", "mode": 0, "inputs": [{"name": "clip", "link": 9}],
         "widgets_values": ["a cozy cabin in the woods, watercolor"]},
        {"id": 7, "type": "CLIPTextEncode", "mode": 0, "inputs": [{"name": "clip", "link": 10}],
         "widgets_values": ["ugly, deformed"]},
        {"id": 5, "type": "EmptyLatentImage", "mode": 0, "widgets_values": [512, 768, 1]},
        {"id": 40, "type": "PrimitiveNode", "mode": 0,
         "outputs": [{"name": "INT", "type": "INT", "links": [6], "widget": {"name": "seed"}}],
         "widgets_values": [5551234, "fixed"]},
        {"id": 3, "type": "KSampler", "mode": 0, "inputs": [
            {"name": "model", "link": 2}, {"name": "positive", "link": 3},
            {"name": "negative", "link": 4}, {"name": "latent_image", "link": 5},
            {"name": "seed", "type": "INT", "link": 6, "widget": {"name": "seed"}}],
         "widgets_values": [1, "randomize", 25, 7.5, "euler_ancestral", "normal", 1]},
        {"id": 8, "type": "VAEDecode", "mode": 0,
         "inputs": [{"name": "samples", "link": 7}, {"name": "vae", "link": 11}]},
        {"id": 9, "type": "SaveImage", "mode": 0, "inputs": [{"name": "images", "link": 8}],
         "widgets_values": ["ComfyUI"]},
    ]
    return {"workflow": json.dumps({"last_node_id": 40, "last_link_id": 11, "nodes": nodes,
                                    "links": links, "version": 0.4})}


def comfy_efficiency() -> dict[str, str]:
    """Efficiency nodes: the loader holds the prompts, size and a LoRA stack."""
    graph = {
        "1": {"class_type": "Efficient Loader", "inputs": {
            "ckpt_name": "realisticVision_v51.safetensors", "vae_name": "Baked VAE",
            "clip_skip": -2, "lora_name": "None", "lora_model_strength": 1.0,
            "lora_clip_strength": 1.0, "positive": "portrait of an old sailor, detailed skin",
            "negative": "cartoon, painting", "token_normalization": "none",
            "weight_interpretation": "comfy", "empty_latent_width": 512,
            "empty_latent_height": 640, "batch_size": 1, "lora_stack": ["2", 0]}},
        "2": {"class_type": "LoRA Stacker", "inputs": {
            "input_mode": "simple", "lora_count": 2, "lora_name_1": "epiNoiseoffset_v2.safetensors",
            "lora_wt_1": 0.6, "lora_name_2": "None", "lora_wt_2": 1.0}},
        "3": {"class_type": "KSampler (Efficient)", "inputs": {
            "seed": 77, "steps": 28, "cfg": 5.0, "sampler_name": "dpmpp_sde",
            "scheduler": "karras", "denoise": 1.0, "preview_method": "auto", "vae_decode": "true",
            "model": ["1", 0], "positive": ["1", 1], "negative": ["1", 2],
            "latent_image": ["1", 3], "optional_vae": ["1", 4]}},
        "4": {"class_type": "Image Save", "inputs": {"images": ["3", 5], "output_path": "out"}},
    }
    return {"prompt": json.dumps(graph)}


def comfy_rgthree_power_lora() -> dict[str, str]:
    graph = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "ponyV6.safetensors"}},
        "2": {"class_type": "Power Lora Loader (rgthree)", "inputs": {
            "PowerLoraLoaderHeaderWidget": {"type": "PowerLoraLoaderHeaderWidget"},
            "lora_1": {"on": True, "lora": "pony/detail_slider.safetensors", "strength": 1.5},
            "lora_2": {"on": False, "lora": "pony/off.safetensors", "strength": 1.0},
            "➕ Add Lora": "", "model": ["1", 0], "clip": ["1", 1]}},
        "3": {"class_type": "Seed (rgthree)", "inputs": {"seed": 31337}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"text": "score_9, a knight", "clip": ["2", 1]}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"text": "score_1", "clip": ["2", 1]}},
        "6": {"class_type": "SDXL Empty Latent Image (rgthree)",
              "inputs": {"dimensions": " 896 x 1152  (portrait)", "clip_scale": 2.0, "batch_size": 1}},
        "7": {"class_type": "KSampler", "inputs": {
            "seed": ["3", 0], "steps": 25, "cfg": 7.0, "sampler_name": "euler_ancestral",
            "scheduler": "normal", "denoise": 1.0, "model": ["2", 0], "positive": ["4", 0],
            "negative": ["5", 0], "latent_image": ["6", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["7", 0], "vae": ["1", 2]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["8", 0], "filename_prefix": "x"}},
    }
    return {"prompt": json.dumps(graph)}


def comfy_image_saver() -> dict[str, str]:
    """comfy-image-saver writes A1111 text beside the graph; the text's hashes are the truth."""
    chunks = comfy_sdxl_loras()
    chunks["parameters"] = (
        "a lighthouse at dusk, volumetric light\nNegative prompt: blurry, lowres\n"
        "Steps: 30, Sampler: DPM++ 2M Karras, CFG scale: 6.5, Seed: 918273645, Size: 832x1216, "
        "Model hash: 1a2b3c4d5e, Model: juggernautXL_v9, Version: ComfyUI")
    return chunks


def comfy_cycle() -> dict[str, str]:
    graph = {
        "1": {"class_type": "KSampler", "inputs": {
            "seed": ["2", 0], "steps": 10, "cfg": 4.0, "sampler_name": "euler", "scheduler": "normal",
            "model": ["2", 0], "positive": ["3", 0], "negative": ["3", 0], "latent_image": ["1", 0]}},
        "2": {"class_type": "Reroute", "inputs": {"input": ["2", 0]}},
        "3": {"class_type": "ConditioningCombine",
              "inputs": {"conditioning_1": ["3", 0], "conditioning_2": ["1", 0]}},
        "9": {"class_type": "SaveImage", "inputs": {"images": ["1", 0]}},
    }
    return {"prompt": json.dumps(graph)}


def invokeai_v4() -> dict[str, str]:
    meta = {
        "generation_mode": "txt2img", "positive_prompt": "a glass teapot, studio light",
        "negative_prompt": "fingerprints", "width": 768, "height": 512, "seed": 123456789,
        "rand_device": "cpu", "cfg_scale": 6.0, "cfg_rescale_multiplier": 0, "steps": 40,
        "scheduler": "dpmpp_2m_k", "clip_skip": 0, "seamless_x": False, "seamless_y": False,
        "model": {"key": "7f2c", "hash": "blake3:9b5f2d", "name": "Deliberate v6",
                  "base": "sd-1", "type": "main"},
        "loras": [{"model": {"key": "aa", "hash": "blake3:11", "name": "more_details",
                             "base": "sd-1", "type": "lora"}, "weight": 0.65}],
        "app_version": "4.2.9",
    }
    return {"invokeai_metadata": json.dumps(meta)}


def invokeai_graph_only() -> dict[str, str]:
    graph = {"id": "g1", "nodes": {
        "main_model_loader": {"id": "main_model_loader", "type": "main_model_loader",
                              "model": {"model_name": "sd-1.5", "base_model": "sd-1"}},
        "positive_conditioning": {"id": "positive_conditioning", "type": "compel",
                                  "prompt": "a paper boat"},
        "negative_conditioning": {"id": "negative_conditioning", "type": "compel", "prompt": "text"},
        "noise": {"id": "noise", "type": "noise", "seed": 99, "width": 512, "height": 512},
        "denoise_latents": {"id": "denoise_latents", "type": "denoise_latents", "steps": 30,
                            "cfg_scale": 7.5, "scheduler": "euler_a"}},
        "edges": [
            {"source": {"node_id": "positive_conditioning", "field": "conditioning"},
             "destination": {"node_id": "denoise_latents", "field": "positive_conditioning"}},
            {"source": {"node_id": "negative_conditioning", "field": "conditioning"},
             "destination": {"node_id": "denoise_latents", "field": "negative_conditioning"}}]}
    return {"invokeai_graph": json.dumps(graph)}


def swarmui() -> dict[str, str]:
    """A real SwarmUI 0.9.1.1 record (ataylorm/FluxAIGridComparisons) plus sui_models."""
    data = {"sui_image_params": {
        "prompt": "A Close-Up photograph of a 25 year old Asian woman", "model": "Flux/flux1-dev-fp8",
        "seed": 305223794, "steps": 25, "cfgscale": 1.0, "aspectratio": "1:1", "width": 1024,
        "height": 1024, "sampler": "euler", "scheduler": "normal", "nopreviews": True,
        "wildcardseed": -1, "imageformat": "JPG", "vae": "ae.sft", "negativeprompt": "",
        "swarm_version": "0.9.1.1", "date": "2024-08-07",
        "loras": ["flux/realism_lora"], "loraweights": ["0.8"],
        "generation_time": "284.16 (prep) and 70.70 (gen) seconds"},
        "sui_models": [{"name": "flux1-dev-fp8.safetensors", "param": "model",
                        "hash": "0x8e91b68084b53a7fc44ed2a3756d821e355ac1a7b6fe29be760c1db532f3d88a"}]}
    return {"parameters": json.dumps(data)}


def fooocus_a1111_scheme() -> dict[str, str]:
    return {"fooocus_scheme": "a1111", "parameters": (
        "a castle on a cliff, Fooocus V2 expansion words\n"
        "Negative prompt: unrealistic, saturated\n"
        "Steps: 30, Sampler: DPM++ 2M SDE Karras, Seed: 1830000000, Size: 1152x896, CFG scale: 4, "
        "Sharpness: 2, ADM Guidance: \"(1.5, 0.8, 0.3)\", Model: juggernautXL_v8Rundiffusion, "
        "Model hash: aeb7e9e689, Performance: Speed, Styles: \"['Fooocus V2']\", "
        "Version: Fooocus v2.5.0")}


def novelai_v4() -> dict[str, str]:
    comment = {
        "prompt": "1girl, reading a book, library, best quality", "steps": 28, "height": 1216,
        "width": 832, "scale": 5.0, "uncond_scale": 1.0, "cfg_rescale": 0.0, "seed": 3344556677,
        "n_samples": 1, "noise_schedule": "karras", "sampler": "k_dpmpp_2m", "sm": False,
        "uc": "lowres, bad anatomy", "request_type": "PromptGenerateRequest",
        "v4_prompt": {"caption": {"base_caption": "1girl, reading a book", "char_captions": []}},
        "signed_hash": "abc"}
    return {"Title": "NovelAI generated image", "Description": "1girl, reading a book",
            "Software": "NovelAI", "Source": "NovelAI Diffusion V4 4F49EC75",
            "Generation time": "6.1", "Comment": json.dumps(comment)}


def stability_matrix() -> dict[str, str]:
    params = {"PositivePrompt": "a neon city street in rain", "NegativePrompt": "people",
              "Steps": 22, "Sampler": "dpmpp_2m", "Scheduler": "karras", "CfgScale": 6.0,
              "Seed": 20240607, "Height": 1024, "Width": 1024,
              "ModelName": "sd_xl_base_1.0.safetensors", "ModelHash": "31e35c80fc"}
    return {"parameters-json": json.dumps(params),
            "parameters": ("a neon city street in rain\nNegative prompt: people\nSteps: 22, "
                           "Sampler: DPM++ 2M Karras, CFG scale: 6, Seed: 20240607, "
                           "Size: 1024x1024, Model hash: 31e35c80fc, Model: sd_xl_base_1.0"),
            "smproj": json.dumps({"Version": 2, "ProjectType": "Inference"})}


def drawthings() -> dict[str, str]:
    comment = {"c": "a bowl of ramen, top view", "uc": "blurry", "seed": 1029384756, "steps": 20,
               "scale": 4.5, "sampler": "DPM++ 2M Karras", "size": "640x896",
               "model": "sd_xl_base_1.0_f16.ckpt", "strength": 1.0,
               "lora": [{"file": "foodphoto_lora_f16.ckpt", "weight": 0.7}],
               "v2": {"clipSkip": 1, "hiresFix": False}}
    text = json.dumps(comment).replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    xmp = (
        "<x:xmpmeta xmlns:x='adobe:ns:meta/'><rdf:RDF xmlns:rdf='http://www.w3.org/1999/02/"
        "22-rdf-syntax-ns#'><rdf:Description rdf:about='' xmlns:exif='http://ns.adobe.com/exif/"
        "1.0/' xmlns:xmp='http://ns.adobe.com/xap/1.0/'><xmp:CreatorTool>Draw Things"
        "</xmp:CreatorTool><exif:UserComment><rdf:Alt><rdf:li xml:lang='x-default'>" + text +
        "</rdf:li></rdf:Alt></exif:UserComment></rdf:Description></rdf:RDF></x:xmpmeta>")
    return {"XML:com.adobe.xmp": xmp}


def easydiffusion_keys() -> dict[str, str]:
    return {"prompt": "a snowy owl, macro", "negative_prompt": "cartoon", "seed": "8675309",
            "use_stable_diffusion_model": "sd-v1-5-inpainting", "clip_skip": "False",
            "use_vae_model": "vae-ft-mse-840000-ema-pruned", "sampler_name": "dpmpp_2m",
            "width": "512", "height": "704", "num_inference_steps": "35", "guidance_scale": "7.5",
            "use_lora_model": "owl_feathers", "lora_alpha": "0.5", "use_upscale": "RealESRGAN_x4plus"}


def easydiffusion_labels() -> dict[str, str]:
    return {"Prompt": "a red bicycle", "Negative Prompt": "", "Seed": "42",
            "Stable Diffusion model": "dreamshaper_8", "Clip Skip": "True", "Sampler": "euler_a",
            "Width": "512", "Height": "512", "Steps": "25", "Guidance Scale": "7"}



def comfy_pixel_upscale_two_pass() -> dict[str, str]:
    """Decode, upscale with a model, scale down, encode, sample again at denoise 0.4."""
    graph = {
        "4": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "dreamshaper_8.safetensors"}},
        "6": {"class_type": "CLIPTextEncode", "inputs": {"text": "a mountain lake", "clip": ["4", 1]}},
        "7": {"class_type": "CLIPTextEncode", "inputs": {"text": "haze", "clip": ["4", 1]}},
        "5": {"class_type": "EmptyLatentImage", "inputs": {"width": 512, "height": 512, "batch_size": 1}},
        "3": {"class_type": "KSampler", "inputs": {
            "seed": 1234, "steps": 20, "cfg": 7.0, "sampler_name": "dpmpp_2m", "scheduler": "karras",
            "denoise": 1.0, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["5", 0]}},
        "8": {"class_type": "VAEDecode", "inputs": {"samples": ["3", 0], "vae": ["4", 2]}},
        "20": {"class_type": "UpscaleModelLoader", "inputs": {"model_name": "4x-UltraSharp.pth"}},
        "21": {"class_type": "ImageUpscaleWithModel",
               "inputs": {"upscale_model": ["20", 0], "image": ["8", 0]}},
        "22": {"class_type": "ImageScaleBy",
               "inputs": {"upscale_method": "lanczos", "scale_by": 0.5, "image": ["21", 0]}},
        "23": {"class_type": "VAEEncode", "inputs": {"pixels": ["22", 0], "vae": ["4", 2]}},
        "24": {"class_type": "KSampler", "inputs": {
            "seed": 99, "steps": 12, "cfg": 7.0, "sampler_name": "euler", "scheduler": "normal",
            "denoise": 0.4, "model": ["4", 0], "positive": ["6", 0], "negative": ["7", 0],
            "latent_image": ["23", 0]}},
        "25": {"class_type": "VAEDecode", "inputs": {"samples": ["24", 0], "vae": ["4", 2]}},
        "26": {"class_type": "SaveImage", "inputs": {"images": ["25", 0], "filename_prefix": "x"}},
    }
    return {"prompt": json.dumps(graph)}


ALL = {name: fn for name, fn in list(globals().items())
       if callable(fn) and name[0].islower() and name not in ("annotations",)
       and getattr(fn, "__module__", "") == __name__}

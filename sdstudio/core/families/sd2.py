"""SD 2.x (512 epsilon and 768 v-prediction): the SD 1.x pipeline with an OpenCLIP text encoder.

diffusers runs SD 2.x through the same `StableDiffusionPipeline` as SD 1.x: the last hidden state
after the final layer norm (the converted OpenCLIP encoder already stops at the penultimate
layer, so nothing is skipped here), the same VAE and latent space. The prediction type
(epsilon or v) lives in the scheduler config, which every sampler is built from.
"""

from __future__ import annotations

from sdstudio.core.families.sd1 import SD1


class SD2(SD1):
    name = "sd2"
    label = "SD 2.x"
    default_size = 768
    clip_skip_applies = False  # A1111 leaves its OpenCLIP encoder at the penultimate layer

    def describe(self, model) -> str:
        kind = "v" if model.scheduler_config.get("prediction_type") == "v_prediction" else "epsilon"
        return f"{super().describe(model)} ({kind})"

"""Errors a user can cause. Their message is one clear sentence, shown as is by the CLI and UI."""


class UserError(Exception):
    """A mistake in the user's input or files: show `str(err)`, never a traceback."""


class ModelLoadError(UserError):
    """A model path or file that cannot be opened as a Stable Diffusion model."""


class GenerationCancelled(Exception):
    """Raised inside the denoising loop when the cancel flag is set."""

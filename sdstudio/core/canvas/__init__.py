"""The canvas: masks, A1111 inpaint options (only masked, masked content), outpainting, hires fix
and upscalers, as core functions the CLI and the window call."""

"""Teaching panels: the VAE lab and the noise schedule view."""

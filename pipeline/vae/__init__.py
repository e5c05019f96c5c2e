"""The Wan 2.1 VAE (diffusers `AutoencoderKLWan`): loading, latent normalisation, encode by mode, tiled decode."""

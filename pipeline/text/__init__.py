"""umT5 text encoding: prompt cleaning, the encoder from official folders or ComfyUI single files, an embedding cache."""

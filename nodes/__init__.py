"""Thin ComfyUI V3 nodes over the engine in `pipeline/`."""

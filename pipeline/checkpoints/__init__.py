"""Checkpoint formats: official DiT folders and single files, int8 weights, LoRA files."""

"""The LongCat-Video-Avatar engine: model, encoders, sampler and muxing. Never imports ComfyUI."""

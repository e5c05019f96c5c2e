"""Video output: frame-rate conversion that keeps duration and lip sync, and MP4 (H.264 + AAC) muxing."""

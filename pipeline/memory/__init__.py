"""Memory and compute planning from shapes and configs: activation options, weight bytes, phase peaks, FLOPs."""

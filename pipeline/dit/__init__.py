"""The LongCat-Video-Avatar DiT (v1.0 and v1.5)."""

from .config import DiTConfig
from .model import LongCatAvatarDiT

__all__ = ["DiTConfig", "LongCatAvatarDiT"]

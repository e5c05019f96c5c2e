"""ComfyUI runtime plumbing for the nodes: devices and dtypes, one progress bar, Cancel, freeing memory."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import comfy.model_management as mm
import comfy.utils
import torch

from .choices import require_choice
from .progress_report import publish_segments

log = logging.getLogger(__name__)

DTYPE_CHOICES = ("auto", "bf16", "fp16", "fp32")
WAN21_CHANNELS = 16  # Wan 2.1 VAE latent channels
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def torch_device() -> torch.device:
    """The device ComfyUI computes on (CPU with --cpu)."""
    return mm.get_torch_device()


def resolve_dtype(choice: str, device: torch.device | None = None) -> torch.dtype:
    """The dtype for a loader's `dtype` widget; "auto" is bf16 on GPUs that support it, else fp16 / fp32."""
    if require_choice("dtype", choice, DTYPE_CHOICES) in _DTYPES:
        return _DTYPES[choice]
    device = device or torch_device()
    if device.type == "cpu":
        return torch.float32  # CPU matmuls in bf16 are slow and the reference math is fp32-exact there
    if mm.should_use_bf16(device):
        return torch.bfloat16
    return torch.float16 if mm.should_use_fp16(device) else torch.float32


class NodeProgress:
    """One ComfyUI progress bar over the real number of steps of a whole run, plus the Cancel check."""

    def __init__(self, total: int, node_id: str | None = None) -> None:
        self.bar = comfy.utils.ProgressBar(max(int(total), 1), node_id=node_id)
        self.last_step = 0

    @staticmethod
    def publish_segments(segment_steps: tuple[int, ...]) -> None:
        """Engine plan callback: each segment's step count, published for the job route's "segment i of n"."""
        publish_segments(segment_steps)

    def __call__(self, step: int, total: int, preview: Any = None) -> None:
        """Engine progress callback: step of total done (raises when the user pressed Cancel)."""
        self.last_step = int(step)
        self.bar.update_absolute(int(step), int(total), _preview_image(preview))

    @staticmethod
    def should_stop() -> bool:
        """Engine stop check, called between model steps: True once POST /interrupt arrived."""
        return mm.processing_interrupted()


def _preview_image(preview: Any) -> Any:
    """A ComfyUI preview tuple from an engine preview (a PIL image or a normalised latent [B, 16, T, H, W])."""
    from comfy.cli_args import LatentPreviewMethod, args
    from PIL import Image

    if preview is None or args.preview_method == LatentPreviewMethod.NoPreviews:
        return None
    if isinstance(preview, torch.Tensor) and preview.dim() == 5 and preview.shape[1] == WAN21_CHANNELS:
        preview = latent_to_rgb(preview)
    if isinstance(preview, Image.Image):
        return ("JPEG", preview, 512)  # the largest side ComfyUI's own previews use
    return None


def latent_to_rgb(latent: torch.Tensor) -> Any:
    """A cheap RGB picture of the middle latent frame (ComfyUI's linear Wan 2.1 latent -> RGB preview factors)."""
    from comfy.latent_formats import Wan21
    from PIL import Image

    wan = Wan21()
    frame = latent[0, :, latent.shape[2] // 2].float().cpu()  # [16, H, W]
    rgb = torch.einsum("chw,cr->hwr", frame, torch.tensor(wan.latent_rgb_factors))
    rgb = rgb + torch.tensor(wan.latent_rgb_factors_bias)
    pixels = ((rgb + 1) / 2).clamp(0, 1).mul(255).round().to(torch.uint8).numpy()
    return Image.fromarray(pixels)


def free_memory(collect: bool = True) -> None:
    """Give cached accelerator memory back (after a run or a Cancel); `collect` first drops tensors that only
    reference cycles still hold (a traceback's frames keep a failed run's tensors alive)."""
    if collect:
        gc.collect()
    mm.soft_empty_cache()


@contextmanager
def cancellable(*interrupt_types: type[BaseException]) -> Iterator[None]:
    """Run engine code; an engine interruption becomes ComfyUI's interrupt, and memory is freed either way.

    A run that ends normally frees its tensors by reference counting, and ComfyUI's prompt worker collects garbage
    after prompts: only a Cancel or an error pays for a full `gc.collect()` here (a fraction of a second each)."""
    failed = True
    try:
        yield
        failed = False
    except interrupt_types as error:  # the engine's should_stop() check fired between two model calls
        log.info("LongCat Avatar: cancelled (%s)", error)
        mm.interrupt_current_processing(False)
        raise mm.InterruptProcessingException() from error
    except mm.InterruptProcessingException:  # ComfyUI's progress hook saw the interrupt first
        log.info("LongCat Avatar: cancelled")
        raise
    finally:
        free_memory(collect=failed)

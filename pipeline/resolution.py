"""Generation sizes: 512×512 by default, the reference's 480p / 720p aspect-ratio buckets, or a custom size."""

from __future__ import annotations

from .limits import MAX_SIZE, MIN_SIZE, SIZE_MULTIPLE

# (h/w ratio, height, width) of the reference's one-GPU bucket tables (ASPECT_RATIO_627 for 480p, _960 for 720p):
# about 0.4 and 0.9 megapixels, every side a multiple of 32. ai2v picks the ratio closest to the image's h/w.
BUCKETS: dict[str, tuple[tuple[float, int, int], ...]] = {
    "480p": (
        (0.26, 320, 1216), (0.31, 352, 1120), (0.38, 384, 1024), (0.43, 416, 960), (0.52, 448, 864),
        (0.58, 480, 832), (0.67, 512, 768), (0.74, 544, 736), (0.86, 576, 672), (0.95, 608, 640),
        (1.05, 640, 608), (1.17, 672, 576), (1.29, 704, 544), (1.35, 736, 544), (1.50, 768, 512),
        (1.67, 800, 480), (1.73, 832, 480), (2.00, 896, 448), (2.31, 960, 416), (2.58, 992, 384),
        (2.75, 1056, 384), (3.09, 1088, 352), (3.70, 1184, 320), (3.80, 1216, 320), (3.90, 1248, 320),
        (4.00, 1280, 320),
    ),
    "720p": (
        (0.25, 480, 1920), (0.29, 512, 1792), (0.32, 544, 1696), (0.36, 576, 1600), (0.40, 608, 1504),
        (0.49, 672, 1376), (0.54, 704, 1312), (0.59, 736, 1248), (0.69, 800, 1152), (0.74, 832, 1120),
        (0.82, 864, 1056), (0.88, 896, 1024), (0.94, 928, 992), (1.00, 960, 960), (1.07, 992, 928),
        (1.14, 1024, 896), (1.22, 1056, 864), (1.31, 1088, 832), (1.35, 1120, 832), (1.44, 1152, 800),
        (1.70, 1248, 736), (2.00, 1344, 672), (2.05, 1376, 672), (2.47, 1504, 608), (2.53, 1536, 608),
        (2.83, 1632, 576), (3.06, 1664, 544), (3.12, 1696, 544), (3.62, 1856, 512), (3.93, 1888, 480),
        (4.00, 1920, 480),
    ),
}  # fmt: skip

# at2v has no image to take a ratio from: the reference uses fixed landscape sizes.
AT2V_SIZES = {"480p": (480, 832), "720p": (768, 1280)}
DEFAULT_SIZE = (512, 512)  # square portrait, our default: cheap and suits head-and-shoulders framing
CUSTOM_MODE = "custom"  # width x height given by the user
RESOLUTION_MODES = ("512x512", "480p", "720p", CUSTOM_MODE)


def bucket_size(image_height: int, image_width: int, resolution: str) -> tuple[int, int]:
    """(height, width) of the bucket whose h/w ratio is closest to the image's (ties: the smaller ratio)."""
    if resolution not in BUCKETS:
        raise ValueError(f"unknown bucket table {resolution!r}; use one of {sorted(BUCKETS)}")
    ratio = image_height / image_width
    _, height, width = min(BUCKETS[resolution], key=lambda bucket: abs(bucket[0] - ratio))
    return height, width


def resolve_size(
    mode: str, image_size: tuple[int, int] | None = None, width: int | None = None, height: int | None = None
) -> tuple[int, int]:
    """(height, width) for a resolution mode; `image_size` is the portrait's (h, w), None for at2v."""
    if mode == "512x512":
        return DEFAULT_SIZE
    if mode in BUCKETS:
        return bucket_size(*image_size, mode) if image_size else AT2V_SIZES[mode]
    if mode != CUSTOM_MODE:
        raise ValueError(f"unknown resolution {mode!r}; use one of {RESOLUTION_MODES}")
    if any(not side or side % SIZE_MULTIPLE or not MIN_SIZE <= side <= MAX_SIZE for side in (width, height)):
        raise ValueError(
            f"custom width and height must be between {MIN_SIZE} and {MAX_SIZE} and multiples of {SIZE_MULTIPLE}, "
            f"got {width}x{height}"
        )
    return int(height), int(width)

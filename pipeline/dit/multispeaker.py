"""Multi-speaker routing: reference-frame attention maps per mask class and the 1D RoPE positions derived from them."""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The reference splits the heads into 2 groups when it computes the reference attention map (to bound memory) and
# averages the two group maps; with an odd head count the last head is left out. We keep the same grouping.
MAP_HEAD_GROUPS = 2
# Background RoPE position when there are more than 3 mask classes (extra silent people): the reference hard-codes 100,
# far from both speaker ranges.
FAR_BACKGROUND_POS = 100.0
# With 3 classes (human1, human2, background) the background sits mid-way between the speaker ranges.
MAX_CLASSES_NEAR_BACKGROUND = 3


def token_grid_masks(ref_target_masks: torch.Tensor, grid_hw: tuple[int, int]) -> torch.Tensor:
    """Pixel masks [K, H_px, W_px] -> nearest-resized to the token grid, > 0: [K, N_h, N_w] bool."""
    if ref_target_masks.dim() != 3 or ref_target_masks.shape[0] < 2:
        raise ValueError(
            f"ref_target_masks must be [K >= 2, H, W] (speaker 1, speaker 2, ...), got {list(ref_target_masks.shape)}"
        )
    return F.interpolate(ref_target_masks[None].float(), size=grid_hw, mode="nearest")[0] > 0


def empty_speaker_tokens(grid_masks: torch.Tensor) -> list[int]:
    """The speakers (1-based) whose token-grid mask covers no token."""
    return [k + 1 for k in range(2) if not grid_masks[k].any()]


def token_masks(ref_target_masks: torch.Tensor, grid_hw: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """Pixel masks [K, H_px, W_px] -> nearest-resized to the token grid, > 0, flattened: [K, N_h * N_w] (0/1).

    The two speaker masks (classes 0 and 1) must cover at least one token, else routing is undefined (NaN).
    """
    masks = token_grid_masks(ref_target_masks, grid_hw)
    empty = empty_speaker_tokens(masks)
    if empty:
        raise ValueError(f"speaker mask(s) {empty} cover no latent token at grid {grid_hw}; enlarge the region")
    return masks.flatten(1).to(dtype)


def _map_rows(q: torch.Tensor, k_ref: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The map of a slice of queries q [H, s, D] against k_ref [H, R, D] -> [K, s] (the reference's 2 head groups)."""
    heads, dim = q.shape[0], q.shape[-1]
    per_group = heads // MAP_HEAD_GROUPS
    total = None
    for group in range(MAP_HEAD_GROUPS):
        sl = slice(group * per_group, (group + 1) * per_group)
        probs = ((q[sl] * dim**-0.5) @ k_ref[sl].transpose(-1, -2)).softmax(-1)
        # [K, h, s] -> mean over the group's heads. As in the reference, a class whose mask covers no token gives
        # 0/0 = NaN; argmax then picks that class (>= 2: background) for every token.
        weighted = torch.einsum("hsr,kr->khs", probs, masks) / masks.sum(-1)[:, None, None]
        total = weighted.mean(1) if total is None else total + weighted.mean(1)
    return total / MAP_HEAD_GROUPS


def reference_attention_map(
    q_noise: torch.Tensor, k_ref: torch.Tensor, masks: torch.Tensor, chunk: int | None = None
) -> torch.Tensor:
    """Per class k: mean over heads of (sum_j softmax(q k_ref^T / sqrt(D))[., j] * m_k[j]) / sum_j m_k[j].

    q_noise [1, H, S, D] (post-RoPE noisy queries), k_ref [1, H, R, D] (post-RoPE keys of the reference frame),
    masks [K, R] -> [K, S], in q's dtype. Each query row is independent: `chunk` computes at most that many query
    rows at a time, bounding the [H/2, rows, R] probabilities (None: all S rows at once).
    """
    if q_noise.shape[0] != 1:
        raise ValueError(
            f"multi-speaker needs hidden batch 1 (the audio batch holds the speakers), got {q_noise.shape[0]}"
        )
    q, k = q_noise[0], k_ref[0].to(q_noise.dtype)
    masks = masks.to(device=q.device, dtype=q.dtype)
    rows = q.shape[1]
    if chunk is None or chunk >= rows:
        return _map_rows(q, k, masks)
    out = q.new_empty((masks.shape[0], rows))
    for start in range(0, rows, chunk):
        out[:, start : start + chunk] = _map_rows(q[:, start : start + chunk], k, masks)
    return out


def _rescale(values: torch.Tensor, low: torch.Tensor, high: torch.Tensor, target: tuple[float, float]) -> torch.Tensor:
    """Min-max rescale into `target` with the reference's 1e-8 guard."""
    return (values - low) / (high - low + 1e-8) * (target[1] - target[0]) + target[0]


def background_position(num_classes: int, class_range: int) -> float:
    """RoPE position of background tokens: class_range/2 for <= 3 mask classes, else far away (100)."""
    return float(class_range // 2) if num_classes <= MAX_CLASSES_NEAR_BACKGROUND else FAR_BACKGROUND_POS


def query_positions(ref_map: torch.Tensor, class_range: int, class_interval: int) -> torch.Tensor:
    """1D positions [S] of the noisy video tokens from the map [K, S] (K >= 2).

    Speaker 1 tokens map into [0, interval], speaker 2 into [range - interval, range] (min-max over all tokens of that
    class map); each token takes the class of its largest map value, classes >= 2 meaning background.
    """
    if ref_map.shape[0] < 2:
        raise ValueError(f"multi-speaker routing needs at least 2 mask classes, got {ref_map.shape[0]}")
    maxima, minima = ref_map.max(1).values, ref_map.min(1).values
    human1 = _rescale(ref_map[0], minima[0], maxima[0], (0.0, float(class_interval)))
    human2 = _rescale(ref_map[1], minima[1], maxima[1], (float(class_range - class_interval), float(class_range)))
    back = torch.full_like(human1, background_position(ref_map.shape[0], class_range))
    choice = ref_map.argmax(0).clamp(max=2)
    return torch.stack([human1, human2, back], dim=1).gather(1, choice[:, None])[:, 0]


def key_positions(
    tokens_per_frame: int, human_num: int | None, num_classes: int, class_range: int, class_interval: int
) -> torch.Tensor:
    """1D positions [M] of one frame's audio tokens: speaker-1 block at the centre of its range, speaker 2 likewise.

    With more than 2 streams the tokens after the first two speakers' blocks take the background position; with 2
    (or an unknown count) the first half is speaker 1 and the second half speaker 2.
    """
    pos = torch.zeros(tokens_per_frame)
    center1 = class_interval / 2
    center2 = class_range - class_interval / 2
    if human_num is not None and human_num > 2:
        per_human = tokens_per_frame // human_num
        pos[:per_human] = center1
        pos[per_human : 2 * per_human] = center2
        pos[2 * per_human :] = background_position(num_classes, class_range)
    else:
        pos[: tokens_per_frame // 2] = center1
        pos[tokens_per_frame // 2 :] = center2
    return pos

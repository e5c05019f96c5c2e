"""Parameter limits, defined once: the nodes' widgets, the command line, batch files and the HTTP endpoint import them.

Importable without torch (the command-line client runs where only the Python standard library and aiohttp are).
"""

from __future__ import annotations

MIN_STEPS, MAX_STEPS = 1, 100  # beyond 100 flow-matching steps nothing improves; 1 is the smallest meaningful run
RECOMMENDED_STEPS = (20, 50)  # the non-distilled models' useful range (the reference demo's default is 50)
MIN_GUIDANCE, MAX_GUIDANCE = 1.0, 10.0  # 1.0 turns guidance off; above ~10 mouths and colours exaggerate
MIN_FPS, MAX_FPS = 15.0, 30.0  # output frame rates of the MP4: 15-30 covers common players
MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes 64-bit seeds (and ComfyUI's seed widgets are unsigned 64-bit)
MAX_NOISE_SEED = 2**32 - 1  # v1.0's audio noise floor is drawn with numpy's RandomState, whose seeds are 32-bit
SIZE_MULTIPLE = 16  # 8x VAE downsampling times the DiT's 2x2 patches
MIN_SIZE = SIZE_MULTIPLE  # one 2x2 patch of latents: the smallest frame the VAE and the DiT accept
MAX_SIZE = 2048  # far beyond the 720p buckets the model was trained on; this only guards against typos
MAX_TEXT_CHARS = 20_000  # ~20 minutes of speech: far beyond one avatar video, stops accidental pastes of whole books

"""The model files LongCat Avatar uses: where the official hub repositories put them, and which single files stand in.

Pure data, importable without torch or ComfyUI. The loaders' dropdowns and messages (nodes/model_files.py), the
`doctor` inventory (longcat_avatar/model_inventory.py), the self-test's tiny layout and the example workflows read it.
Official components live under ComfyUI's `models/longcat/<hub repository>/` exactly as the repositories ship them;
single files sit in ComfyUI's standard folders and are recognised by their tensor names.
"""

from __future__ import annotations

from dataclasses import dataclass

from .limits import RECOMMENDED_STEPS

HUB_ORG = "meituan-longcat"  # the hub organisation of the three repositories
HUB = f"https://huggingface.co/{HUB_ORG}/"
REPACKAGED = "https://huggingface.co/Comfy-Org/Wan_2.1_ComfyUI_repackaged"  # ComfyUI's single-file umT5 and Wan VAE
REPO_BASE, REPO_V10, REPO_V15 = "LongCat-Video", "LongCat-Video-Avatar", "LongCat-Video-Avatar-1.5"
LONGCAT_FOLDER = "longcat"  # the ComfyUI model folder (models/longcat) holding the hub repositories
TOKENIZER_FOLDER = "tokenizer"  # beside text_encoder/ in LongCat-Video
SCHEDULER_FOLDER, SCHEDULER_CONFIG = "scheduler", "scheduler_config.json"  # a repository's flow-matching settings
# Kinds of single files, told apart by their tensor names (longcat_avatar/model_inventory.py `classify`).
KIND_DIT_V15, KIND_DIT_V10, KIND_LORA = "dit_v1.5", "dit_v1.0", "lora"
KIND_WHISPER, KIND_WAV2VEC2, KIND_VAE, KIND_UMT5 = "whisper", "wav2vec2", "vae", "umt5"


@dataclass(frozen=True)
class Official:
    """One component of an official hub repository, as the repository ships it."""

    repo: str
    path: str  # folder or file inside the repository
    marker: str  # a file that must exist inside `path` ("" when `path` is itself the file)
    label: str
    note: str = ""  # what it serves, for messages
    size_gb: float = 0.0
    size_note: str = ""  # where the size comes from when it is not exact

    @property
    def relpath(self) -> str:
        """Path under the longcat folder, e.g. `LongCat-Video-Avatar-1.5/base_model`."""
        return f"{self.repo}/{self.path}"

    @property
    def choice(self) -> str:
        """The loader's dropdown entry (and the name workflows use)."""
        return f"{LONGCAT_FOLDER}/{self.relpath}"

    @property
    def page(self) -> str:
        """The hub page to download it from."""
        return HUB + self.repo


@dataclass(frozen=True)
class SingleFile:
    """A kind of single .safetensors file in one of ComfyUI's standard folders."""

    kind: str
    folder: str  # ComfyUI folder_paths name
    label: str
    size_gb: float = 0.0
    size_note: str = ""
    page: str = ""


DIT_V15_BF16 = Official(REPO_V15, "base_model", "config.json", "v1.5 bf16 DiT", "single and multi speaker", 31.71)
DIT_V15_INT8 = Official(REPO_V15, "base_model_int8", "config.json", "v1.5 int8 DiT", size_gb=15.88)
LORA_V15_DMD = Official(
    REPO_V15, "lora/dmd_lora.safetensors", "", "DMD LoRA", "v1.5 8-step distillation", 2.5, "reported"
)
WHISPER = Official(REPO_V15, "whisper-large-v3", "config.json", "whisper-large-v3", "audio encoder of v1.5", 6.17)
DIT_V10_SINGLE = Official(REPO_V10, "avatar_single", "config.json", "v1.0 single-speaker DiT", "", 31.7, "estimate")
DIT_V10_MULTI = Official(REPO_V10, "avatar_multi", "config.json", "v1.0 multi-speaker DiT", "", 31.7, "estimate")
WAV2VEC2 = Official(
    REPO_V10, "chinese-wav2vec2-base", "config.json", "chinese-wav2vec2-base", "audio encoder of v1.0", 0.38, "estimate"
)
WAN_VAE = Official(REPO_BASE, "vae", "config.json", "Wan 2.1 VAE", "", 0.51, "estimate")
UMT5 = Official(
    REPO_BASE, "text_encoder", "config.json", "umT5-XXL (text_encoder/ and tokenizer/)", "tokenizer/ beside it", 22.0,
    "reported",
)  # fmt: skip
# The MDX-Net model the official demos separate the voice from music and noise with before the audio features; both
# Avatar repositories ship the same file (66,759,214 bytes).
VOCAL_SEPARATOR_V15 = Official(
    REPO_V15, "vocal_separator/Kim_Vocal_2.onnx", "", "Kim_Vocal_2 vocal separator", "MDX-Net, optional", 0.067
)
VOCAL_SEPARATOR_V10 = Official(
    REPO_V10, "vocal_separator/Kim_Vocal_2.onnx", "", "Kim_Vocal_2 vocal separator", "MDX-Net, optional", 0.067
)
OFFICIAL = (
    DIT_V15_BF16, DIT_V15_INT8, LORA_V15_DMD, WHISPER, VOCAL_SEPARATOR_V15, DIT_V10_SINGLE, DIT_V10_MULTI, WAV2VEC2,
    VOCAL_SEPARATOR_V10, WAN_VAE, UMT5,
)  # fmt: skip

DIT_V15_FILE = SingleFile(KIND_DIT_V15, "diffusion_models", "single-file v1.5 DiT")
DIT_V10_FILE = SingleFile(KIND_DIT_V10, "diffusion_models", "single-file v1.0 DiT")
LORA_FILE = SingleFile(KIND_LORA, "loras", "single-file LongCat LoRA")
WHISPER_FILE = SingleFile(KIND_WHISPER, "audio_encoders", "single-file Whisper encoder")
WAV2VEC2_FILE = SingleFile(KIND_WAV2VEC2, "audio_encoders", "single-file wav2vec2 encoder")
VAE_FILE = SingleFile(KIND_VAE, "vae", "wan_2.1_vae.safetensors", 0.25, "approx.", REPACKAGED)
UMT5_FILE = SingleFile(KIND_UMT5, "text_encoders", "umt5_xxl single file", 6.7, "fp8, approx.", REPACKAGED)


@dataclass(frozen=True)
class LoaderFiles:
    """What one loader node lists: its standard folder and the official components it accepts."""

    label: str
    folder: str  # ComfyUI folder_paths name of its single files
    official: tuple[Official, ...]
    single_file_hint: str
    gguf_folder: str | None = None  # the folder_paths name listing .gguf files of the same folders, if it reads GGUF


# The folder name ComfyUI-GGUF registers for .gguf files in diffusion_models/ (ComfyUI's own list has no .gguf):
# the same name, so the two packs share one registration when both are installed.
GGUF_FOLDER, GGUF_SUFFIX = "unet_gguf", ".gguf"
WEIGHT_SUFFIXES = (".safetensors", GGUF_SUFFIX)  # the single-file weight formats the loaders read


DIT = LoaderFiles(
    "avatar model (DiT)", "diffusion_models", (DIT_V15_BF16, DIT_V15_INT8, DIT_V10_SINGLE, DIT_V10_MULTI),
    "a LongCat-Video-Avatar DiT .safetensors or .gguf file", GGUF_FOLDER,
)  # fmt: skip
LORA = LoaderFiles("LoRA", "loras", (LORA_V15_DMD,), "a LongCat LoRA .safetensors file (e.g. dmd_lora.safetensors)")
AUDIO_ENCODER = LoaderFiles(
    "audio encoder", "audio_encoders", (WHISPER, WAV2VEC2),
    "a whisper-large-v3 (v1.5) or chinese-wav2vec2-base (v1.0) .safetensors file",
)  # fmt: skip
VAE = LoaderFiles("VAE", "vae", (WAN_VAE,), f"wan_2.1_vae.safetensors ({REPACKAGED})")
TEXT_ENCODER = LoaderFiles("text encoder", "text_encoders", (UMT5,), f"umt5_xxl_*.safetensors ({REPACKAGED})")
SEPARATOR_FOLDER = "audio_separation"  # ComfyUI's models/audio_separation/, where audio-separation packs keep models
SEPARATION_OFF, SEPARATION_AUTO = "off", "auto"  # the separator choices besides the files: none, the first one found
ONNXRUNTIME_HINT = (
    "Vocal separation needs onnxruntime in ComfyUI's Python environment. Install the flavour for your machine with "
    "ComfyUI's pip: `pip install onnxruntime-gpu` (NVIDIA), `pip install onnxruntime-directml` (Windows with AMD or "
    "Intel graphics) or `pip install onnxruntime` (CPU, macOS). Or turn vocal separation off."
)
VOCAL_SEPARATOR = LoaderFiles(
    "vocal separator", SEPARATOR_FOLDER, (VOCAL_SEPARATOR_V15, VOCAL_SEPARATOR_V10),
    "Kim_Vocal_2.onnx (the official vocal_separator/ file)",
)  # fmt: skip


@dataclass(frozen=True)
class Component:
    """A part the graph needs for one version (any of its options will do)."""

    name: str
    options: tuple[Official | SingleFile, ...]
    required: bool = True
    why: str = ""


SEPARATOR_WHY = "separates the voice from music and noise before the audio features, as the official demos do"
VAE_COMPONENT = Component("VAE (Wan 2.1)", (WAN_VAE, VAE_FILE))
TEXT_COMPONENT = Component("text encoder (umT5-XXL)", (UMT5, UMT5_FILE))
VERSION_COMPONENTS: dict[str, tuple[Component, ...]] = {
    "1.5": (
        Component("avatar model (DiT)", (DIT_V15_INT8, DIT_V15_BF16, DIT_V15_FILE)),
        Component(
            "distillation LoRA",
            (LORA_V15_DMD, LORA_FILE),
            required=False,
            why="the recommended 8-step v1.5 sampling; without it v1.5 runs "
            f"{RECOMMENDED_STEPS[0]}-{RECOMMENDED_STEPS[1]} full steps with guidance",
        ),  # fmt: skip
        Component("audio encoder (whisper-large-v3)", (WHISPER, WHISPER_FILE)),
        VAE_COMPONENT,
        TEXT_COMPONENT,
        Component("vocal separator", (VOCAL_SEPARATOR_V15,), required=False, why=SEPARATOR_WHY),
    ),
    "1.0": (
        Component("avatar model (DiT)", (DIT_V10_SINGLE, DIT_V10_FILE)),
        Component(
            "multi-speaker DiT",
            (DIT_V10_MULTI,),
            required=False,
            why="two people talking with v1.0 (v1.5's DiT serves one and two speakers)",
        ),  # fmt: skip
        Component("audio encoder (chinese-wav2vec2-base)", (WAV2VEC2, WAV2VEC2_FILE)),
        VAE_COMPONENT,
        TEXT_COMPONENT,
        Component("vocal separator", (VOCAL_SEPARATOR_V10,), required=False, why=SEPARATOR_WHY),
    ),
}

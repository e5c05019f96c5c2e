"""Loader nodes: avatar model (DiT + LoRA), audio encoder, VAE, text encoder.

Each lists its standard ComfyUI folder plus the official layouts under `models/longcat/`, and refuses a missing or
wrong file with a message naming the file it expected, the folder and the download page.
"""

from __future__ import annotations

import logging
from pathlib import Path

import folder_paths
from comfy_api.latest import io

from ..pipeline import model_catalogue as catalogue
from . import model_files as mf
from .choices import check_choices, require_choice
from .managed import load_managed_audio_encoder, load_managed_dit, load_managed_vae, managed_text_encoder
from .payloads import AudioEncoderHandle, ModelHandle, NamedModel
from .runtime import DTYPE_CHOICES, resolve_dtype, torch_device
from .types import LOADER_CATEGORY, AudioEncoderModel, AvatarModel, AvatarVAE, TextEncoderModel

log = logging.getLogger(__name__)

SPEAKER_CHOICES = ("auto", "single", "multi")


def check_choice(kind: catalogue.LoaderFiles, choice: str, *, optional: bool = False) -> bool | str:
    """validate_inputs helper: True when the entry exists, else the actionable message."""
    if optional and choice == mf.NONE_CHOICE:
        return True
    try:
        mf.resolve(kind, choice)
    except FileNotFoundError as error:
        return str(error)
    return True


def wrong_file(kind: catalogue.LoaderFiles, choice: str, error: Exception) -> ValueError:
    """A loading failure turned into a message with the file, its folder and the download page."""
    return ValueError(
        f"Could not load the {kind.label} '{choice}' ({mf.resolve(kind, choice)}): {error}\n"
        f"Expected {kind.single_file_hint} in the {kind.folder} folder, or the official layout under models/longcat/. "
        f"Download page: {mf.download_page(kind, choice)}"
    )


def lora_inputs() -> list[io.Input]:
    """Optional LoRA (strength, merged or on the fly) and int8 quantisation on load."""
    return [
        io.Combo.Input(
            "lora",
            options=mf.list_choices(catalogue.LORA, optional=True),
            default=mf.NONE_CHOICE,
            tooltip="Optional LoRA, e.g. the v1.5 DMD distillation LoRA (lora/dmd_lora.safetensors) for "
            "8-step sampling without guidance: with it the sampler's 'distilled' auto mode turns on. Any other "
            "LoRA (e.g. a style LoRA) keeps the sampler's steps and guidance.",
        ),
        io.Float.Input(
            "lora_strength",
            default=1.0,
            min=-2.0,
            max=2.0,
            step=0.05,
            tooltip="LoRA multiplier (the reference uses 1.0).",
        ),
        io.Boolean.Input(
            "merge_lora",
            default=False,
            tooltip="Merge the LoRA into the weights (faster sampling, equal up to rounding) instead of "
            "applying it on the fly. Not possible on quantised (int8, fp8, GGUF) files; with 'quantize_int8' the "
            "LoRA is merged before quantising.",
        ),
        io.Boolean.Input(
            "quantize_int8",
            default=False,
            optional=True,  # added after the first workflows were saved: they still validate without it
            tooltip="Quantise a dense (bf16/fp32) DiT to int8 weights while loading, with the official "
            "per-channel scheme: about half the memory of bf16. Official int8 folders (base_model_int8) "
            "already are int8.",
        ),
    ]


class AvatarModelLoader(io.ComfyNode):
    """Loads the LongCat-Video-Avatar DiT (v1.0 or v1.5, dense or int8), optionally with a LoRA."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        """Model file, speakers, dtype, LoRA and its strength."""
        return io.Schema(
            node_id="LongCatAvatarModelLoader",
            display_name="LongCat Avatar Model Loader",
            category=LOADER_CATEGORY,
            description="Loads the avatar DiT. The version (v1.0 / v1.5) and format (folder, sharded, single file, "
            "int8) are detected from the config and the tensors.",
            inputs=[
                io.Combo.Input(
                    "model",
                    options=mf.list_choices(catalogue.DIT),
                    tooltip=f"The DiT: {mf.where(catalogue.DIT)}.",
                ),
                io.Combo.Input(
                    "speakers",
                    options=list(SPEAKER_CHOICES),
                    default="auto",
                    tooltip="v1.0 ships separate single- and multi-speaker DiTs with the same tensors: say which "
                    "this is. auto: multi for avatar_multi and for v1.5 (one DiT serves both), single otherwise.",
                ),
                io.Combo.Input(
                    "dtype",
                    options=list(DTYPE_CHOICES),
                    default="auto",
                    tooltip="Compute dtype. auto: bf16 on GPUs that support it, fp32 on CPU. int8 checkpoints keep "
                    "their int8 weights and dequantise to this dtype.",
                ),
                *lora_inputs(),
            ],
            outputs=[AvatarModel.Output(display_name="model", tooltip="The loaded avatar model.")],
        )

    @classmethod
    def validate_inputs(cls, model: str, lora: str, speakers: str, dtype: str) -> bool | str:
        """Refuse unknown choices; name a missing file, its folder and the download page before anything runs."""
        for found in (
            check_choices(speakers=(speakers, SPEAKER_CHOICES), dtype=(dtype, DTYPE_CHOICES)),
            check_choice(catalogue.DIT, model),
            check_choice(catalogue.LORA, lora, optional=True),
        ):
            if found is not True:
                return found
        return True

    @classmethod
    def execute(
        cls,
        model: str,
        speakers: str,
        dtype: str,
        lora: str,
        lora_strength: float,
        merge_lora: bool,
        quantize_int8: bool = False,
    ) -> io.NodeOutput:
        """Load the DiT (and LoRA) into a ModelPatcher that ComfyUI loads per phase, optionally quantised to int8."""
        device = torch_device()
        compute_dtype = resolve_dtype(dtype, device)
        path = mf.resolve(catalogue.DIT, model)
        lora_path = None if lora == mf.NONE_CHOICE else mf.resolve(catalogue.LORA, lora)
        multi = {"auto": None, "single": False, "multi": True}[require_choice("speakers", speakers, SPEAKER_CHOICES)]
        if multi is None and path.name == "avatar_multi":  # the official v1.0 multi-speaker folder
            multi = True
        try:
            loaded, patcher = load_managed_dit(
                path,
                compute_dtype,
                lora_path=lora_path,
                lora_strength=lora_strength,
                merge_lora=merge_lora,
                quantize_int8=quantize_int8,
                multi_speaker=multi,
            )
        except ValueError as error:
            if lora_path is not None and str(lora_path) in str(error):
                raise wrong_file(catalogue.LORA, lora, error) from error
            raise wrong_file(catalogue.DIT, model, error) from error
        handle = ModelHandle(loaded, model, patcher)
        log.info("LongCat Avatar: loaded %s", handle.describe())
        return io.NodeOutput(handle)


class AudioEncoderLoader(io.ComfyNode):
    """Loads the audio encoder: chinese-wav2vec2-base for v1.0, whisper-large-v3 for v1.5."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        """Encoder file and dtype."""
        return io.Schema(
            node_id="LongCatAvatarAudioEncoderLoader",
            display_name="LongCat Avatar Audio Encoder Loader",
            category=LOADER_CATEGORY,
            description="Loads wav2vec2 (v1.0) or Whisper (v1.5); the kind is detected from the tensors.",
            inputs=[
                io.Combo.Input(
                    "audio_encoder",
                    options=mf.list_choices(catalogue.AUDIO_ENCODER),
                    tooltip=f"{mf.where(catalogue.AUDIO_ENCODER)}.",
                ),
                io.Combo.Input(
                    "dtype",
                    options=list(DTYPE_CHOICES),
                    default="fp32",
                    tooltip="The reference runs the audio encoder in fp32; fp16/bf16 halve its memory.",
                ),
            ],
            outputs=[AudioEncoderModel.Output(display_name="audio_encoder", tooltip="The encoder.")],
        )

    @classmethod
    def validate_inputs(cls, audio_encoder: str, dtype: str) -> bool | str:
        """Refuse an unknown dtype; name a missing file, its folder and the download page before anything runs."""
        found = check_choices(dtype=(dtype, DTYPE_CHOICES))
        return found if found is not True else check_choice(catalogue.AUDIO_ENCODER, audio_encoder)

    @classmethod
    def execute(cls, audio_encoder: str, dtype: str) -> io.NodeOutput:
        """Load the encoder into a ModelPatcher (ComfyUI loads it for the Audio Encode phase)."""
        compute_dtype = resolve_dtype(dtype, torch_device())
        try:
            encoder, patcher = load_managed_audio_encoder(
                mf.resolve(catalogue.AUDIO_ENCODER, audio_encoder), compute_dtype
            )
        except ValueError as error:
            raise wrong_file(catalogue.AUDIO_ENCODER, audio_encoder, error) from error
        log.info("LongCat Avatar: loaded %s audio encoder %s (%s)", encoder.kind, audio_encoder, encoder.version)
        return io.NodeOutput(AudioEncoderHandle(encoder, audio_encoder, patcher))


class VAELoader(io.ComfyNode):
    """Loads the Wan 2.1 VAE (diffusers folder or ComfyUI single file)."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        """VAE file and dtype."""
        return io.Schema(
            node_id="LongCatAvatarVAELoader",
            display_name="LongCat Avatar VAE Loader",
            category=LOADER_CATEGORY,
            description="Loads the Wan 2.1 VAE that LongCat-Video uses (16 latent channels, 4x8x8 compression).",
            inputs=[
                io.Combo.Input(
                    "vae",
                    options=mf.list_choices(catalogue.VAE),
                    tooltip=f"{mf.where(catalogue.VAE)} (the Wan 2.2 VAE does not fit).",
                ),
                io.Combo.Input(
                    "dtype",
                    options=list(DTYPE_CHOICES),
                    default="auto",
                    tooltip="VAE compute dtype. auto: bf16 on GPUs that support it, fp32 on CPU.",
                ),
            ],
            outputs=[AvatarVAE.Output(display_name="vae", tooltip="The VAE for Portrait Encode, Sampler and Decode.")],
        )

    @classmethod
    def validate_inputs(cls, vae: str, dtype: str) -> bool | str:
        """Refuse an unknown dtype; name a missing file, its folder and the download page before anything runs."""
        found = check_choices(dtype=(dtype, DTYPE_CHOICES))
        return found if found is not True else check_choice(catalogue.VAE, vae)

    @classmethod
    def execute(cls, vae: str, dtype: str) -> io.NodeOutput:
        """Load the VAE into a ModelPatcher (ComfyUI loads it for encoding and decoding)."""
        compute_dtype = resolve_dtype(dtype, torch_device())
        try:
            model, patcher = load_managed_vae(mf.resolve(catalogue.VAE, vae), compute_dtype)
        except (ValueError, OSError) as error:
            raise wrong_file(catalogue.VAE, vae, error) from error
        return io.NodeOutput(NamedModel(model, vae, patcher=patcher))


def text_cache_dir() -> str:
    """Where prompt embeddings are cached: ComfyUI's user directory, so they survive restarts."""
    return str(Path(folder_paths.get_user_directory()) / "longcat_avatar" / "text_embeddings")


def longcat_tokenizer_dir() -> Path | None:
    """LongCat-Video's tokenizer/ folder, for single-file encoders that carry no tokenizer of their own."""
    folders = (root / catalogue.REPO_BASE / catalogue.TOKENIZER_FOLDER for root in mf.longcat_roots())
    return next((folder for folder in folders if folder.is_dir()), None)


class TextEncoderLoader(io.ComfyNode):
    """Prepares the umT5 text encoder; it is loaded only for prompts that are not in the embedding cache."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        """Encoder file and dtype."""
        return io.Schema(
            node_id="LongCatAvatarTextEncoderLoader",
            display_name="LongCat Avatar Text Encoder Loader",
            category=LOADER_CATEGORY,
            description="umT5-XXL from LongCat-Video/text_encoder (+ tokenizer/) or a single file such as ComfyUI's "
            "umt5_xxl_fp8_e4m3fn_scaled.safetensors. Prompt embeddings are cached on disk, so the large encoder "
            "is only loaded for new prompts.",
            inputs=[
                io.Combo.Input(
                    "text_encoder",
                    options=mf.list_choices(catalogue.TEXT_ENCODER),
                    tooltip=f"{mf.where(catalogue.TEXT_ENCODER)}; the official folder's {catalogue.TOKENIZER_FOLDER}/ "
                    "sits beside it (fp8 'scaled' files are dequantised).",
                ),
                io.Combo.Input(
                    "dtype",
                    options=list(DTYPE_CHOICES),
                    default="auto",
                    tooltip="Encoder dtype; the reference runs umT5 in bf16. auto: bf16 on capable GPUs, fp32 on CPU.",
                ),
            ],
            outputs=[TextEncoderModel.Output(display_name="text_encoder", tooltip="For LongCat Avatar Text Encode.")],
        )

    @classmethod
    def validate_inputs(cls, text_encoder: str, dtype: str) -> bool | str:
        """Refuse an unknown dtype; name a missing file, its folder and the download page before anything runs."""
        found = check_choices(dtype=(dtype, DTYPE_CHOICES))
        return found if found is not True else check_choice(catalogue.TEXT_ENCODER, text_encoder)

    @classmethod
    def execute(cls, text_encoder: str, dtype: str) -> io.NodeOutput:
        """Return a lazily loading, caching encoder (nothing big is read here)."""
        device = torch_device()
        source = mf.resolve(catalogue.TEXT_ENCODER, text_encoder)
        tokenizer = longcat_tokenizer_dir() if source.is_file() else None  # single files may lack one
        encoder = managed_text_encoder(source, text_cache_dir(), resolve_dtype(dtype, device), tokenizer)
        return io.NodeOutput(NamedModel(encoder, text_encoder))


LOADERS: list[type[io.ComfyNode]] = [AvatarModelLoader, VAELoader, TextEncoderLoader, AudioEncoderLoader]

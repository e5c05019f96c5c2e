"""The example workflows as Python: one function per graph, producing the API format (`POST /prompt`).

`export.py` writes them to `workflows/<name>_api.json` and, through the ComfyUI frontend itself, to the UI format
`workflows/<name>.json`.
"""

from __future__ import annotations

from typing import Any

from pipeline import model_catalogue as catalogue  # the repository root is on sys.path (export.py puts it there)

PORTRAIT = "longcat_avatar_portrait.png"  # put your portrait in ComfyUI's input/ folder (or pick it in Load Image)
SPEECH = "longcat_avatar_speech.wav"
SPEECH_2 = "longcat_avatar_speech_2.wav"
LONG_SPEECH = "longcat_avatar_long_speech.wav"

Graph = dict[str, dict[str, Any]]


def node(class_type: str, title: str, **inputs: Any) -> dict[str, Any]:
    """One API-format node."""
    return {"class_type": class_type, "inputs": inputs, "_meta": {"title": title}}


def loaders(model: str, audio_encoder: str, lora: str, speakers: str = "auto") -> Graph:
    """Nodes 1-4: avatar model, VAE, text encoder, audio encoder."""
    return {
        "1": node(
            "LongCatAvatarModelLoader",
            "Avatar Model",
            model=model,
            speakers=speakers,
            dtype="auto",
            lora=lora,
            lora_strength=1.0,
            merge_lora=False,
            quantize_int8=False,
        ),
        "2": node("LongCatAvatarVAELoader", "VAE (Wan 2.1)", vae=catalogue.WAN_VAE.choice, dtype="auto"),
        "3": node(
            "LongCatAvatarTextEncoderLoader", "Text Encoder (umT5)", text_encoder=catalogue.UMT5.choice, dtype="auto"
        ),
        "4": node("LongCatAvatarAudioEncoderLoader", "Audio Encoder", audio_encoder=audio_encoder, dtype="fp32"),
    }


def talking_head(
    *,
    model: str,
    audio_encoder: str,
    lora: str,
    speech: str,
    steps: int,
    text_guidance: float,
    audio_guidance: float,
    distilled: str,
    speech_2: str | None = None,
    tiled: bool = False,
    prefix: str = "LongCatAvatar/avatar",
    separate_vocals: str = catalogue.SEPARATION_AUTO,  # recordings may carry music: features from the vocals, as the demos do
) -> Graph:
    """The whole graph: loaders → encoders → sampler → decode → Video Combine (one or two speakers)."""
    graph = loaders(model, audio_encoder, lora)
    graph["5"] = node("LoadImage", "Portrait", image=PORTRAIT)
    graph["6"] = node("LoadAudio", "Speech" if speech_2 is None else "Speech (speaker 1)", audio=speech)
    graph["7"] = node(
        "LongCatAvatarPortraitEncode",
        "Portrait Encode",
        vae=["2", 0],
        image=["5", 0],
        resolution="512x512",
        width=512,
        height=512,
    )
    audio_inputs: dict[str, Any] = {"audio_encoder": ["4", 0], "audio": ["6", 0]}
    if speech_2 is not None:
        graph["13"] = node("LoadAudio", "Speech (speaker 2)", audio=speech_2)
        audio_inputs["audio_2"] = ["13", 0]
    graph["8"] = node(
        "LongCatAvatarAudioEncode",
        "Audio Encode",
        **audio_inputs,
        mode="para",
        speaker_boxes="",
        extra_people_boxes="",
        seed=0,
        separate_vocals=separate_vocals,
    )
    graph["9"] = node("LongCatAvatarTextEncode", "Text Encode", text_encoder=["3", 0], **_prompts())
    graph["10"] = node(
        "LongCatAvatarSampler",
        "Avatar Sampler",
        model=["1", 0],
        vae=["2", 0],
        portrait=["7", 0],
        audio_embeds=["8", 0],
        text_embeds=["9", 0],
        steps=steps,
        text_guidance=text_guidance,
        audio_guidance=audio_guidance,
        shift=0.0,
        seed=42,
        ref_img_index=10,
        mask_frame_range=3,
        distilled=distilled,
    )
    graph["11"] = node("LongCatAvatarDecode", "Decode", vae=["2", 0], video_latents=["10", 0], tiled=tiled)
    graph["12"] = node(
        "LongCatAvatarVideoCombine",
        "Video Combine (MP4)",
        images=["11", 0],
        audio=["8", 1],
        frame_rate=25.0,
        source_fps=["11", 1],
        frame_rate_conversion="nearest",
        filename_prefix=prefix,
        crf=19,
    )
    return graph


def _prompts() -> dict[str, str]:
    from pipeline.text.prompt import DEFAULT_NEGATIVE_PROMPT

    return {
        "prompt": "A person is talking to the camera with natural lip movements that match the speech, lively "
        "facial expressions, subtle head movements and blinking, realistic lighting, sharp details.",
        "negative_prompt": DEFAULT_NEGATIVE_PROMPT,
    }


def v15_single_distilled() -> Graph:
    """v1.5, one speaker, int8 DiT + DMD LoRA: 8 steps without guidance (the reference's recommended setup)."""
    return talking_head(
        model=catalogue.DIT_V15_INT8.choice,
        audio_encoder=catalogue.WHISPER.choice,
        lora=catalogue.LORA_V15_DMD.choice,
        speech=SPEECH,
        steps=8,
        text_guidance=1.0,
        audio_guidance=1.0,
        distilled="auto",
        prefix="LongCatAvatar/v15_single",
    )


def v10_single_full_guidance() -> Graph:
    """v1.0, one speaker, full sampling with text and audio guidance (16 fps made, 25 fps written)."""
    return talking_head(
        model=catalogue.DIT_V10_SINGLE.choice,
        audio_encoder=catalogue.WAV2VEC2.choice,
        lora="none",
        speech=SPEECH,
        steps=25,
        text_guidance=4.0,
        audio_guidance=4.0,
        distilled="off",
        prefix="LongCatAvatar/v10_single",
    )


def v15_two_speakers() -> Graph:
    """v1.5, two speakers talking at the same time (para), speaker 1 on the left half, speaker 2 on the right."""
    return talking_head(
        model=catalogue.DIT_V15_INT8.choice,
        audio_encoder=catalogue.WHISPER.choice,
        lora=catalogue.LORA_V15_DMD.choice,
        speech=SPEECH,
        speech_2=SPEECH_2,
        steps=8,
        text_guidance=1.0,
        audio_guidance=1.0,
        distilled="auto",
        prefix="LongCatAvatar/v15_two_speakers",
    )


def v15_long_audio() -> Graph:
    """v1.5 over a long speech: several 93-frame segments chained automatically, decoded tile by tile."""
    return talking_head(
        model=catalogue.DIT_V15_INT8.choice,
        audio_encoder=catalogue.WHISPER.choice,
        lora=catalogue.LORA_V15_DMD.choice,
        speech=LONG_SPEECH,
        steps=8,
        text_guidance=1.0,
        audio_guidance=1.0,
        distilled="auto",
        tiled=True,
        prefix="LongCatAvatar/v15_long",
    )


WORKFLOWS = {
    "longcat_avatar_v15_single_distilled": v15_single_distilled,
    "longcat_avatar_v10_single_full_guidance": v10_single_full_guidance,
    "longcat_avatar_v15_two_speakers": v15_two_speakers,
    "longcat_avatar_v15_long_audio": v15_long_audio,
}

"""Make the license-clean example inputs: a procedurally drawn portrait (PIL) and a short espeak-ng speech clip.

Run from the repository folder: `python examples/make_examples.py`. It rewrites examples/portrait.png and
examples/speech.wav (both are committed, so users need neither PIL drawing nor espeak-ng to try the quick start).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

HERE = Path(__file__).resolve().parent
SIZE = 512  # square, small enough to commit; the sampler picks its own bucket from the aspect ratio
SPEECH = "Hello! I am a portrait, and now I can talk."  # under 3.7 s: one 93-frame v1.5 segment
VOICE, RATE = "en-us", 160  # a clear, calm voice for a lip-sync demo


def _background() -> Image.Image:
    """A soft vertical blue-grey gradient."""
    rows = np.linspace(0.0, 1.0, SIZE)[:, None, None]
    top, bottom = np.array([96, 126, 160]), np.array([40, 52, 72])  # studio-like backdrop colours
    pixels = (top * (1 - rows) + bottom * rows).repeat(SIZE, axis=1)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def _draw_face(draw: ImageDraw.ImageDraw) -> None:
    """Shoulders, neck, hair, face, eyes, brows, nose and a closed mouth, front-facing and centred."""
    skin, shade, hair = (226, 184, 150), (196, 150, 118), (58, 40, 30)
    draw.ellipse((56, 400, 456, 720), fill=(52, 80, 120))  # shoulders in a dark blue top
    draw.rectangle((216, 330, 296, 430), fill=shade)  # neck
    draw.ellipse((146, 70, 366, 250), fill=hair)  # hair volume behind the head
    draw.ellipse((166, 110, 346, 370), fill=skin)  # face oval
    draw.chord((160, 84, 352, 230), 180, 360, fill=hair)  # fringe
    draw.ellipse((154, 220, 178, 276), fill=shade)  # left ear
    draw.ellipse((334, 220, 358, 276), fill=shade)  # right ear
    for cx in (218, 294):  # the eyes, 76 px apart as on a ~180 px wide face
        draw.ellipse((cx - 22, 218, cx + 22, 240), fill=(250, 250, 248))
        draw.ellipse((cx - 9, 220, cx + 9, 238), fill=(70, 90, 60))
        draw.ellipse((cx - 4, 225, cx + 4, 233), fill=(15, 15, 15))
        draw.line((cx - 24, 204, cx + 22, 200), fill=hair, width=5)  # brow
    draw.polygon([(256, 240), (244, 292), (268, 292)], fill=shade)  # nose
    draw.chord((226, 306, 286, 334), 0, 180, fill=(170, 80, 80))  # closed lips
    draw.line((226, 320, 286, 320), fill=(120, 50, 50), width=2)


def make_portrait(path: Path) -> None:
    """Draw the portrait and save it as PNG."""
    image = _background()
    _draw_face(ImageDraw.Draw(image))
    image.filter(ImageFilter.GaussianBlur(1.2)).save(path, optimize=True)  # soften the vector edges a little


def make_speech(path: Path) -> None:
    """Speak SPEECH with espeak-ng into a 16-bit mono WAV."""
    program = shutil.which("espeak-ng")
    if program is None:
        sys.exit("espeak-ng is not installed (sudo apt-get install espeak-ng)")
    command = [program, "-b", "1", "-v", VOICE, "-s", str(RATE), "-w", str(path), SPEECH]
    subprocess.run(command, check=True)


def main() -> None:
    """Write both example files next to this script."""
    make_portrait(HERE / "portrait.png")
    make_speech(HERE / "speech.wav")
    print(f"wrote {HERE / 'portrait.png'} and {HERE / 'speech.wav'}")


if __name__ == "__main__":
    main()

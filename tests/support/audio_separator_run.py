"""Run inside the audio-separator reference venv (see audio_separator_ref.py); not imported by the tests.

argv[1] is JSON {model_dir, model_file, out_dir, audio_files}. Each file is separated as LongCat-Video's demos do it
(`Separator(model_file_dir=..., output_dir=...)`, `load_model`, default MDX settings) but with both stems written.
The stems audio-separator computed are saved as float32 `.npy` ([samples, 2], before the WAV's int16 rounding)
beside its WAV files. The last stdout line is JSON: per file, {vocals, rest, vocals_wav, rest_wav} paths.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
from audio_separator.separator import Separator


def main() -> None:
    """Separate every file and print where the stems are."""
    request = json.loads(sys.argv[1])
    out_dir = Path(request["out_dir"])
    separator = Separator(log_level=logging.WARNING, model_file_dir=request["model_dir"], output_dir=str(out_dir))
    separator.load_model(request["model_file"])
    model = separator.model_instance
    results = []
    for index, audio in enumerate(request["audio_files"]):
        # Separator.separate() calls this, then clears the arrays it leaves on the model; read them first.
        written = model.separate(audio)
        stems = {"vocals": model.primary_source, "rest": model.secondary_source}
        result = {}
        for name, stem in stems.items():
            path = out_dir / f"{index}_{name}.npy"
            np.save(path, np.asarray(stem, dtype=np.float32))
            result[name] = str(path)
        result["vocals_wav"] = str(out_dir / next(w for w in written if "(Vocals)" in w))
        result["rest_wav"] = str(out_dir / next(w for w in written if "(Instrumental)" in w))
        results.append(result)
        model.clear_file_specific_paths()
    print(json.dumps(results))


if __name__ == "__main__":
    main()

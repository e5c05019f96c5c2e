"""GGUF DiT files are first-class choices: the DiT loader lists the .gguf files of diffusion_models/ (ComfyUI's own
list has no .gguf) and resolves them, and `doctor` recognises them by their tensors like any single file."""

from __future__ import annotations

from argparse import Namespace
from pathlib import Path

import pytest
import torch

from longcat_avatar import doctor
from pipeline.checkpoints.dit_loader import load_dit
from support.comfy_inprocess import comfy, pack
from support.dit_tiny import tiny_model
from support.quant_files import write_gguf_dit

WIDE = 256  # K-type GGUF blocks need rows of 256 values


@pytest.fixture(scope="module")
def gguf_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny v1.5 DiT saved as a GGUF file in a `models/diffusion_models/` folder, beside a file that is no model."""
    folder = tmp_path_factory.mktemp("models") / "diffusion_models"
    folder.mkdir()
    state = tiny_model(seed=3, hidden_size=WIDE, num_heads=4).state_dict()
    write_gguf_dit(state, folder / "avatar_q4_k_m.gguf", conv_key="x_embedder.proj.weight")
    (folder / "readme.txt").write_text("not a model\n")
    return folder / "avatar_q4_k_m.gguf"


def test_dit_loader_lists_and_resolves_gguf_files(gguf_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    comfy()
    import folder_paths

    catalogue = pack("pipeline.model_catalogue")
    model_files = pack("nodes.model_files")
    folders = dict(folder_paths.folder_names_and_paths)  # this test's own table: nothing leaks into other tests
    folders["diffusion_models"] = ([str(gguf_file.parent)], folder_paths.supported_pt_extensions)
    folders.pop(catalogue.GGUF_FOLDER, None)
    monkeypatch.setattr(folder_paths, "folder_names_and_paths", folders)
    monkeypatch.setattr(folder_paths, "filename_list_cache", {})
    choices = model_files.list_choices(catalogue.DIT)
    assert gguf_file.name in choices and "readme.txt" not in choices
    assert gguf_file.name not in folder_paths.get_filename_list("diffusion_models")  # core loaders stay unaffected
    path = model_files.resolve(catalogue.DIT, gguf_file.name)
    assert path == gguf_file
    assert load_dit(path, dtype=torch.float32, version="v1.5").format.startswith("gguf (")


def test_doctor_recognises_a_gguf_dit(gguf_file: Path) -> None:
    report = doctor.collect(Namespace(comfyui=None, models_dir=[gguf_file.parents[1]], selftest=False))
    checks = {check["name"]: check for check in report["checks"]}
    assert f"single-file v1.5 DiT at {gguf_file}" in checks["v1.5 avatar model (DiT)"]["detail"]

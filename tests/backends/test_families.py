"""Families are read from files (config.json, model_index.json, .onnx, LoRA headers), never from names."""

from __future__ import annotations

import json
import shutil

import pytest

from promptpaint.backends.families import (FAMILIES, ROLES, UnknownFamily, families_for, family_from_config,
                                           family_from_model_index, family_of_folder)


@pytest.mark.parametrize("kit_folder, family", [
    ("grounding-dino", "grounding-dino"), ("owlv2", "owlv2"), ("sam", "sam"), ("sam2", "sam2"), ("sam3", "sam3"),
    ("sd-inpaint", "sd-inpaint"), ("sdxl-inpaint", "sdxl-inpaint"), ("flux-fill", "flux-fill"), ("lama", "lama"),
])
def test_family_of_every_tiny_kit_folder(tiny, kit_folder, family):
    assert family_of_folder(tiny[kit_folder]) == family


@pytest.mark.parametrize("config, family", [
    ({"architectures": ["GroundingDinoForObjectDetection"], "model_type": "grounding-dino"}, "grounding-dino"),
    ({"architectures": ["MMGroundingDinoForObjectDetection"]}, "grounding-dino"),
    ({"model_type": "owlv2"}, "owlv2"),
    ({"architectures": ["SamModel"], "model_type": "sam"}, "sam"),
    ({"architectures": ["Sam2Model"], "model_type": "sam2"}, "sam2"),
    ({"model_type": "sam3_video"}, "sam3"),
    ({"architectures": ["VitMatteForImageMatting"], "model_type": "vitmatte"}, "vitmatte"),
    ({"_class_name": "AutoencoderTiny", "_diffusers_version": "0.20.0"}, "taesd"),
    # architectures win over a model_type of another family
    ({"architectures": ["Owlv2ForObjectDetection"], "model_type": "sam"}, "owlv2"),
])
def test_family_from_hand_written_config(config, family):
    assert family_from_config(config) == family


@pytest.mark.parametrize("class_name, family", [
    ("StableDiffusionInpaintPipeline", "sd-inpaint"), ("StableDiffusionPipeline", "sd-inpaint"),
    ("StableDiffusionXLInpaintPipeline", "sdxl-inpaint"), ("StableDiffusionXLPipeline", "sdxl-inpaint"),
    ("FluxFillPipeline", "flux-fill"),
])
def test_family_from_hand_written_model_index(class_name, family):
    assert family_from_model_index({"_class_name": class_name}) == family


def test_unsupported_configs_say_what_they_are():
    with pytest.raises(UnknownFamily, match="OwlViTForObjectDetection"):
        family_from_config({"architectures": ["OwlViTForObjectDetection"], "model_type": "owlvit"})
    with pytest.raises(UnknownFamily, match="FluxPipeline"):
        family_from_model_index({"_class_name": "FluxPipeline"})


def test_a_flux_named_sdxl_folder_is_sdxl_and_a_lama_named_sd_folder_is_sd(tmp_path):
    """Today's main guessed from names: 'XLabs-AI/flux-fill-test' became SDXL, 'Sanster/lama-inpaint' SD."""
    flux = tmp_path / "XLabs-AI" / "flux-fill-test"
    flux.mkdir(parents=True)
    (flux / "model_index.json").write_text(json.dumps({"_class_name": "FluxFillPipeline"}))
    lama = tmp_path / "Sanster" / "lama-inpaint"
    lama.mkdir(parents=True)
    (lama / "big-lama.onnx").write_bytes(b"onnx")
    assert family_of_folder(flux) == "flux-fill"
    assert family_of_folder(lama) == "lama"


def test_model_index_wins_over_config_and_empty_folders_are_none(tmp_path):
    (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionXLInpaintPipeline"}))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "sam"}))
    assert family_of_folder(tmp_path) == "sdxl-inpaint"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert family_of_folder(empty) is None


def test_a_lora_file_is_known_by_its_tensor_names(tmp_path):
    import numpy as np
    from safetensors.numpy import save_file

    lora, plain = tmp_path / "lora", tmp_path / "plain"
    lora.mkdir()
    plain.mkdir()
    save_file({"unet.down.0.lora_A.weight": np.zeros((2, 2), np.float32)}, str(lora / "pytorch_lora_weights.safetensors"))
    save_file({"unet.down.0.weight": np.zeros((2, 2), np.float32)}, str(plain / "weights.safetensors"))
    assert family_of_folder(lora) == "lora"
    assert family_of_folder(plain) is None


def test_unreadable_config_is_reported(tmp_path):
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(UnknownFamily, match="unreadable config.json"):
        family_of_folder(tmp_path)


def test_roles_and_layouts():
    assert families_for("remover") == ("sd-inpaint", "sdxl-inpaint", "flux-fill", "lama", "telea")
    assert families_for("detector") == ("grounding-dino", "owlv2", "sam3")
    assert families_for("matting") == ("vitmatte",)
    assert families_for("preview-vae") == ("taesd",)
    assert families_for("lora") == ("lora",)
    assert all(set(f.roles) <= set(ROLES) for f in FAMILIES.values())
    assert {f.layout for f in FAMILIES.values()} == {"transformers", "diffusers", "diffusers-model", "onnx",
                                                      "lora", "builtin"}


def test_a_copied_kit_folder_keeps_its_family(tiny, tmp_path):
    copy = shutil.copytree(tiny["sam2"], tmp_path / "my-segmenter")
    assert family_of_folder(copy) == "sam2"

"""Which files promptpaint fetches, checked against the recorded listings of the real repositories
(tests/backends/hub_listings.py; no network), and the download with huggingface_hub mocked."""

from __future__ import annotations

import json
import shutil

import pytest
from hub_listings import LISTINGS, MODEL_INDEXES

from promptpaint.backends import fetch
from promptpaint.backends.catalog import CATALOGUE
from promptpaint.backends.fetch import load_kwargs, missing_pieces, pick_onnx, pick_weights, select_files

CLIP_TOKENIZER = ["merges.txt", "special_tokens_map.json", "tokenizer_config.json", "vocab.json"]


def _select(repo: str, half: bool = False):
    layout = next(e.layout for e in CATALOGUE.values() if e.hub_id == repo)
    return select_files(layout, LISTINGS[repo], model_index=MODEL_INDEXES.get(repo), half=half)


def test_grounding_dino_tiny_config_tokenizer_and_safetensors_only():
    chosen = _select("IDEA-Research/grounding-dino-tiny")
    assert chosen.files == ["config.json", "preprocessor_config.json", "special_tokens_map.json", "tokenizer.json",
                            "tokenizer_config.json", "vocab.txt", "model.safetensors"]
    assert chosen.problems == []


def test_sam_vit_base_never_fetches_the_pickle_or_the_tensorflow_copy():
    assert _select("facebook/sam-vit-base").files == ["config.json", "preprocessor_config.json", "model.safetensors"]


def test_owlv2_fetches_its_clip_tokenizer():
    assert _select("google/owlv2-base-patch16-ensemble").files == [
        "config.json", "merges.txt", "preprocessor_config.json", "special_tokens_map.json", "tokenizer.json",
        "tokenizer_config.json", "vocab.json", "model.safetensors"]


def test_sd15_inpainting_components_only_full_precision_on_the_cpu():
    chosen = _select("stable-diffusion-v1-5/stable-diffusion-inpainting")
    assert chosen.files == [
        "model_index.json", "scheduler/scheduler_config.json",
        "text_encoder/config.json", "text_encoder/model.safetensors",
        *(f"tokenizer/{n}" for n in CLIP_TOKENIZER),
        "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors"]
    # never the 4.3 GB .ckpt at the root, never the safety checker promptpaint switches off
    assert not any(f.endswith((".ckpt", ".bin")) or f.startswith(("safety_checker", "feature_extractor"))
                   for f in chosen.files)


def test_sd15_inpainting_fp16_variant_halves_the_download():
    full, half = _select("stable-diffusion-v1-5/stable-diffusion-inpainting"), \
        _select("stable-diffusion-v1-5/stable-diffusion-inpainting", half=True)
    weights = [f for f in half.files if f.endswith(".safetensors")]
    assert weights == ["text_encoder/model.fp16.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
                       "vae/diffusion_pytorch_model.fp16.safetensors"]
    listing = LISTINGS["stable-diffusion-v1-5/stable-diffusion-inpainting"]
    assert sum(listing[f] for f in half.files) < 0.51 * sum(listing[f] for f in full.files)


def test_sdxl_inpainting_two_text_encoders_and_no_root_checkpoint():
    chosen = _select("diffusers/stable-diffusion-xl-1.0-inpainting-0.1", half=True)
    assert chosen.files == [
        "model_index.json", "scheduler/scheduler_config.json",
        "text_encoder/config.json", "text_encoder/model.fp16.safetensors",
        "text_encoder_2/config.json", "text_encoder_2/model.fp16.safetensors",
        *(f"tokenizer/{n}" for n in CLIP_TOKENIZER), *(f"tokenizer_2/{n}" for n in CLIP_TOKENIZER),
        "unet/config.json", "unet/diffusion_pytorch_model.fp16.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.fp16.safetensors"]


def test_flux_fill_never_fetches_the_24_gb_root_checkpoint():
    chosen = _select("black-forest-labs/FLUX.1-Fill-dev", half=True)
    assert "flux1-fill-dev.safetensors" not in chosen.files and "ae.safetensors" not in chosen.files
    assert [f for f in chosen.files if "/" not in f] == ["model_index.json"]
    assert chosen.files == [
        "model_index.json", "scheduler/scheduler_config.json",
        "text_encoder/config.json", "text_encoder/model.safetensors",
        "text_encoder_2/config.json", "text_encoder_2/model-00001-of-00002.safetensors",
        "text_encoder_2/model-00002-of-00002.safetensors", "text_encoder_2/model.safetensors.index.json",
        *(f"tokenizer/{n}" for n in CLIP_TOKENIZER),
        "tokenizer_2/special_tokens_map.json", "tokenizer_2/spiece.model", "tokenizer_2/tokenizer.json",
        "tokenizer_2/tokenizer_config.json",
        "transformer/config.json", "transformer/diffusion_pytorch_model-00001-of-00003.safetensors",
        "transformer/diffusion_pytorch_model-00002-of-00003.safetensors",
        "transformer/diffusion_pytorch_model-00003-of-00003.safetensors",
        "transformer/diffusion_pytorch_model.safetensors.index.json",
        "vae/config.json", "vae/diffusion_pytorch_model.safetensors"]
    # the old allow-pattern ("*.safetensors" anywhere) would have fetched 24 GB more
    listing = LISTINGS["black-forest-labs/FLUX.1-Fill-dev"]
    old = sum(size for name, size in listing.items() if name.endswith(".safetensors")
              and not name.endswith(".fp16.safetensors"))
    assert old - sum(listing[f] for f in chosen.files) > 24e9


def test_lama_only_the_full_precision_dynamic_export():
    assert _select("g-ronimo/lama").files == ["lama.onnx"]


def test_catalogue_sizes_are_those_of_the_recorded_selections():
    for entry in CATALOGUE.values():
        if entry.hub_id not in LISTINGS:
            continue
        listing = LISTINGS[entry.hub_id]
        assert entry.size == sum(listing[f] for f in _select(entry.hub_id).files), entry.alias
        half = sum(listing[f] for f in _select(entry.hub_id, half=True).files)
        assert (entry.size_fp16 or entry.size) == half, entry.alias


@pytest.mark.parametrize("names, half, expected", [
    (["model.safetensors", "model.fp16.safetensors"], False, ["model.safetensors"]),
    (["model.safetensors", "model.fp16.safetensors"], True, ["model.fp16.safetensors"]),
    (["model.fp16.safetensors"], False, ["model.fp16.safetensors"]),  # all there is: loaded and upcast
    (["model.safetensors", "pytorch_model.bin"], True, ["model.safetensors"]),
    (["pytorch_model.bin", "model.ckpt", "weights.pt", "flax_model.msgpack", "tf_model.h5"], False, []),
    (["diffusion_pytorch_model.fp16-00001-of-00002.safetensors", "diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
      "diffusion_pytorch_model.safetensors.index.fp16.json", "diffusion_pytorch_model.safetensors"], True,
     ["diffusion_pytorch_model.fp16-00001-of-00002.safetensors", "diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
      "diffusion_pytorch_model.safetensors.index.fp16.json"]),
    (["other.safetensors", "model.safetensors"], False, ["model.safetensors"]),
])
def test_pick_weights(names, half, expected):
    assert pick_weights(names, half) == expected


@pytest.mark.parametrize("names, expected", [
    (["lama_fp16.onnx", "lama_fp32.onnx", "lama.onnx"], ["lama.onnx"]),
    (["lama_fp32.onnx", "lama_fp16.onnx", "lama_int8.onnx"], ["lama_fp32.onnx"]),
    (["big-lama.onnx", "big-lama.onnx_data", "README.md"], ["big-lama.onnx", "big-lama.onnx_data"]),
    (["README.md"], []),
])
def test_pick_onnx(names, expected):
    assert pick_onnx(names) == expected


def test_a_repository_with_pickles_only_is_refused_with_the_reason():
    chosen = select_files("diffusers", ["model_index.json", "unet/config.json", "unet/diffusion_pytorch_model.bin"],
                          model_index={"_class_name": "StableDiffusionInpaintPipeline",
                                       "unet": ["diffusers", "UNet2DConditionModel"]})
    assert chosen.problems == ["unet has no safetensors weights"]
    assert select_files("transformers", ["pytorch_model.bin"]).problems == ["no config.json", "no safetensors weights"]


# ------------------------------------------------------------------------------ local folders

def test_every_tiny_kit_folder_is_complete(tiny):
    layouts = {"sd-inpaint": "diffusers", "sdxl-inpaint": "diffusers", "flux-fill": "diffusers", "lama": "onnx",
               "lcm-lora": "lora", "tcd-lora-sdxl": "lora", "flux-turbo-lora": "lora", "taesd": "diffusers-model"}
    for name, folder in tiny.items():
        assert missing_pieces(folder, layouts.get(name, "transformers")) == [], name


def test_missing_pieces_names_what_a_partial_download_lacks(tiny, tmp_path):
    folder = shutil.copytree(tiny["sd-inpaint"], tmp_path / "sd")
    for weights in (folder / "unet").glob("*.safetensors"):
        weights.unlink()
    assert missing_pieces(folder, "diffusers") == ["unet has no safetensors weights"]
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    (sharded / "config.json").write_text("{}")
    (sharded / "model-00001-of-00002.safetensors").write_bytes(b"x")
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}))
    assert missing_pieces(sharded, "transformers") == [
        "model.safetensors.index.json names missing shards (model-00002-of-00002.safetensors)"]


def test_inpainter_loads_a_folder_fetched_as_fp16_without_the_safety_checker(tiny, tmp_path):
    """What `fetch` leaves for SD on a GPU: fp16 files only, and a model_index.json that still lists
    the safety checker and feature extractor, whose folders were not fetched."""
    import torch
    from safetensors.torch import load_file, save_file

    folder = shutil.copytree(tiny["sd-inpaint"], tmp_path / "sd-fp16")
    index = json.loads((folder / "model_index.json").read_text())
    index.update(safety_checker=["stable_diffusion", "StableDiffusionSafetyChecker"],
                 feature_extractor=["transformers", "CLIPImageProcessor"], requires_safety_checker=True)
    (folder / "model_index.json").write_text(json.dumps(index))
    for weights in folder.glob("*/*.safetensors"):
        tensors = {k: v.to(torch.float16) for k, v in load_file(weights).items()}
        save_file(tensors, weights.with_name(weights.name.replace(".safetensors", ".fp16.safetensors")))
        weights.unlink()
    assert load_kwargs(folder, half=False) == {"safety_checker": None, "feature_extractor": None, "variant": "fp16"}
    assert missing_pieces(folder, "diffusers") == []

    from promptpaint.backends.inpainters import DiffusersInpainter
    from promptpaint.backends.registry import resolve

    inpainter = DiffusersInpainter(resolve(str(folder), role="inpainter"), "cpu", "float32")
    assert inpainter.pipe.unet.dtype == torch.float32 and inpainter.pipe.safety_checker is None


def test_load_kwargs_prefer_full_precision_when_both_are_here(tiny):
    assert load_kwargs(tiny["sd-inpaint"], half=True) == {}  # the kit has full precision only


# ------------------------------------------------------------------------------ downloading

def test_download_fetches_exactly_the_selection(fake_hub):
    fake_hub.serve()
    folder = fetch.download("black-forest-labs/FLUX.1-Fill-dev", "diffusers", half=True)
    fetched = [name for repo, name in fake_hub.downloads]
    assert fetched[0] == "model_index.json"  # read first: it names the component folders
    assert sorted(set(fetched)) == sorted(_select("black-forest-labs/FLUX.1-Fill-dev").files)
    assert folder == fake_hub.cache / "models--black-forest-labs--FLUX.1-Fill-dev" / "snapshots" / fake_hub.commit
    assert missing_pieces(folder, "diffusers") == []


def test_download_sd15_fp16_on_a_gpu(fake_hub):
    fake_hub.serve()
    fetch.download("stable-diffusion-v1-5/stable-diffusion-inpainting", "diffusers", half=True)
    weights = sorted(name for _, name in fake_hub.downloads if name.endswith(".safetensors"))
    assert weights == ["text_encoder/model.fp16.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors",
                       "vae/diffusion_pytorch_model.fp16.safetensors"]


def test_download_refuses_a_repository_without_safetensors(fake_hub):
    fake_hub.listings["someone/pickles"] = {"config.json": 10, "pytorch_model.bin": 100}
    fake_hub.serve()
    with pytest.raises(FileNotFoundError, match="no safetensors weights"):
        fetch.download("someone/pickles", "transformers", half=False)
    assert fake_hub.downloads == []


def test_human_size():
    assert [fetch.human_size(n) for n in (0, 999, 1_500, 2_134_213_550, 33_746_242_749)] == [
        "0 B", "999 B", "1.5 kB", "2.1 GB", "33.7 GB"]


def test_pinned_files_are_fetched_alone(fake_hub):
    """A LoRA alias names one file of a repository holding many (e.g. ByteDance/Hyper-SD)."""
    fake_hub.listings["ByteDance/Hyper-SD"] = {"Hyper-SD15-8steps-CFG-lora.safetensors": 269_000_000,
                                              "Hyper-SDXL-8steps-CFG-lora.safetensors": 787_000_000,
                                              "Hyper-SD15-1step-lora.safetensors": 269_000_000}
    fake_hub.serve()
    pinned = ("Hyper-SD15-8steps-CFG-lora.safetensors",)
    folder = fetch.download("ByteDance/Hyper-SD", "lora", half=False, pinned=pinned)
    assert fake_hub.downloads == [("ByteDance/Hyper-SD", "Hyper-SD15-8steps-CFG-lora.safetensors")]
    assert missing_pieces(folder, "lora", pinned) == []
    assert missing_pieces(folder, "lora", ("Hyper-SD15-1step-lora.safetensors",)) == [
        "no Hyper-SD15-1step-lora.safetensors"]
    assert select_files("lora", fake_hub.listings["ByteDance/Hyper-SD"]).files == sorted(fake_hub.listings["ByteDance/Hyper-SD"])

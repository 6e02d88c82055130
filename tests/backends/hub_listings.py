"""Recorded file listings (path -> bytes) of the default models' hub repositories and of FLUX.1-Fill-dev,
for testing which files promptpaint fetches without any network.

How they were made: this machine cannot reach the Hugging Face hub, so each listing was rebuilt from
public material (November 2026):

- file NAMES: the repositories' "Files" pages as quoted by model cards and by peers' download
  scripts (hf-mirror / `resolve/main/...` URLs for every file of grounding-dino-tiny, the SD and SDXL
  inpainting component folders, FLUX.1-Fill-dev's root `flux1-fill-dev.safetensors` and `ae.safetensors`,
  g-ronimo/lama's six ONNX exports), and the layout diffusers' `save_pretrained` and transformers'
  `save_pretrained` write (config names, tokenizer files, shard and index names);
- SIZES marked EXACT come from peers' checksum-pinned download tables (expected byte counts next to
  a SHA-256): grounding-dino-tiny `model.safetensors` 689,359,096 and `vocab.txt` 231,508;
  sam-vit-base `model.safetensors` 375,042,048; g-ronimo/lama `lama_int8.onnx` 61,512,617 and
  `lama_512_int8.onnx` 62,074,990. All other sizes are APPROXIMATE: the sizes the hub pages show
  (e.g. "3.44 GB"), or parameter count x bytes per parameter, to about 1%. Small text files are
  estimates; they change no total that matters.

The selection tests assert file NAMES exactly; totals are compared with the catalogue's sizes,
which are computed from these same listings.
"""

from __future__ import annotations

GB = 1_000_000_000
MB = 1_000_000

_CLIP_TOKENIZER = {"merges.txt": 524_619, "special_tokens_map.json": 472, "tokenizer_config.json": 806,
                   "vocab.json": 1_059_962}


def _folder(name: str, files: dict[str, int]) -> dict[str, int]:
    return {f"{name}/{file}": size for file, size in files.items()}


LISTINGS: dict[str, dict[str, int]] = {
    "IDEA-Research/grounding-dino-tiny": {
        ".gitattributes": 1_519,
        "README.md": 3_160,
        "config.json": 2_640,
        "model.safetensors": 689_359_096,  # EXACT
        "preprocessor_config.json": 457,
        "pytorch_model.bin": 694_200_000,
        "special_tokens_map.json": 125,
        "tokenizer.json": 466_062,
        "tokenizer_config.json": 1_240,
        "vocab.txt": 231_508,  # EXACT
    },
    "facebook/sam-vit-base": {
        ".gitattributes": 1_477,
        "README.md": 7_800,
        "config.json": 6_570,
        "model.safetensors": 375_042_048,  # EXACT
        "preprocessor_config.json": 466,
        "pytorch_model.bin": 375_050_000,
        "tf_model.h5": 375_300_000,
    },
    "google/owlv2-base-patch16-ensemble": {
        ".gitattributes": 1_519,
        "README.md": 8_120,
        "config.json": 4_460,
        "merges.txt": 524_619,
        "model.safetensors": 620_000_000,
        "preprocessor_config.json": 420,
        "pytorch_model.bin": 620_100_000,
        "special_tokens_map.json": 460,
        "tokenizer.json": 2_224_003,
        "tokenizer_config.json": 900,
        "vocab.json": 862_328,
    },
    "stable-diffusion-v1-5/stable-diffusion-inpainting": {
        ".gitattributes": 1_550,
        "README.md": 13_970,
        "model_index.json": 548,
        "sd-v1-5-inpainting.ckpt": 4_265_437_280,  # the original single-file checkpoint: never fetched
        **_folder("feature_extractor", {"preprocessor_config.json": 342}),
        **_folder("safety_checker", {"config.json": 4_780, "model.safetensors": 1_215_981_830,
                                     "model.fp16.safetensors": 608_016_280, "pytorch_model.bin": 1_216_064_769,
                                     "pytorch_model.fp16.bin": 608_103_564}),
        **_folder("scheduler", {"scheduler_config.json": 313}),
        **_folder("text_encoder", {"config.json": 617, "model.safetensors": 492_265_168,
                                   "model.fp16.safetensors": 246_144_152, "pytorch_model.bin": 492_305_335,
                                   "pytorch_model.fp16.bin": 246_187_076}),
        **_folder("tokenizer", _CLIP_TOKENIZER),
        **_folder("unet", {"config.json": 748, "diffusion_pytorch_model.safetensors": 3_438_167_536,
                           "diffusion_pytorch_model.fp16.safetensors": 1_719_145_424,
                           "diffusion_pytorch_model.bin": 3_438_375_973,
                           "diffusion_pytorch_model.fp16.bin": 1_719_327_893}),
        **_folder("vae", {"config.json": 547, "diffusion_pytorch_model.safetensors": 334_643_268,
                          "diffusion_pytorch_model.fp16.safetensors": 167_335_342,
                          "diffusion_pytorch_model.bin": 334_707_217,
                          "diffusion_pytorch_model.fp16.bin": 167_405_651}),
    },
    "diffusers/stable-diffusion-xl-1.0-inpainting-0.1": {
        ".gitattributes": 1_519,
        "README.md": 4_970,
        "inpaint-examples-min.png": 1_470_000,
        "model_index.json": 681,
        "sd_xl_base_1.0_inpainting_0.1.safetensors": 6_940_000_000,  # root single file: never fetched
        **_folder("scheduler", {"scheduler_config.json": 479}),
        **_folder("text_encoder", {"config.json": 565, "model.safetensors": 492_265_168,
                                   "model.fp16.safetensors": 246_144_152}),
        **_folder("text_encoder_2", {"config.json": 575, "model.safetensors": 2_778_702_264,
                                     "model.fp16.safetensors": 1_389_382_176}),
        **_folder("tokenizer", _CLIP_TOKENIZER),
        **_folder("tokenizer_2", {**_CLIP_TOKENIZER, "special_tokens_map.json": 460}),
        **_folder("unet", {"config.json": 1_790, "diffusion_pytorch_model.safetensors": 10_270_000_000,
                           "diffusion_pytorch_model.fp16.safetensors": 5_135_000_000}),
        **_folder("vae", {"config.json": 642, "diffusion_pytorch_model.safetensors": 334_643_268,
                          "diffusion_pytorch_model.fp16.safetensors": 167_335_342}),
    },
    "black-forest-labs/FLUX.1-Fill-dev": {
        ".gitattributes": 1_655,
        "LICENSE.md": 18_620,
        "README.md": 4_430,
        "ae.safetensors": 335_304_388,  # root copies for the reference code and ComfyUI: never fetched
        "flux1-fill-dev.safetensors": 23_804_856_238,  # 22.17 GiB, the 24 GB single file: never fetched
        "model_index.json": 536,
        **_folder("scheduler", {"scheduler_config.json": 273}),
        **_folder("text_encoder", {"config.json": 613, "model.safetensors": 246_144_152}),
        **_folder("text_encoder_2", {"config.json": 782, "model-00001-of-00002.safetensors": 4_994_582_224,
                                     "model-00002-of-00002.safetensors": 4_530_066_360,
                                     "model.safetensors.index.json": 19_885}),
        **_folder("tokenizer", _CLIP_TOKENIZER),
        **_folder("tokenizer_2", {"special_tokens_map.json": 2_543, "spiece.model": 791_656,
                                  "tokenizer.json": 2_424_035, "tokenizer_config.json": 20_817}),
        **_folder("transformer", {"config.json": 454,
                                  "diffusion_pytorch_model-00001-of-00003.safetensors": 9_983_083_480,
                                  "diffusion_pytorch_model-00002-of-00003.safetensors": 9_949_494_968,
                                  "diffusion_pytorch_model-00003-of-00003.safetensors": 3_870_235_120,
                                  "diffusion_pytorch_model.safetensors.index.json": 121_270}),
        **_folder("vae", {"config.json": 820, "diffusion_pytorch_model.safetensors": 167_666_902}),
    },
    "g-ronimo/lama": {
        ".gitattributes": 1_519,
        "README.md": 3_100,
        "example.jpg": 160_000,
        "lama.onnx": 208_000_000,  # dynamic input size, fp32: the one promptpaint reads
        "lama_fp32.onnx": 363_000_000,
        "lama_fp16.onnx": 107_000_000,
        "lama_int8.onnx": 61_512_617,  # EXACT
        "lama_512_fp16.onnx": 106_600_000,
        "lama_512_int8.onnx": 62_074_990,  # EXACT
    },
}

#: model_index.json of the diffusers repositories above (the component folders they list)
MODEL_INDEXES: dict[str, dict] = {
    "stable-diffusion-v1-5/stable-diffusion-inpainting": {
        "_class_name": "StableDiffusionInpaintPipeline", "_diffusers_version": "0.6.0",
        "feature_extractor": ["transformers", "CLIPImageProcessor"],
        "safety_checker": ["stable_diffusion", "StableDiffusionSafetyChecker"],
        "scheduler": ["diffusers", "DDIMScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"], "requires_safety_checker": True,
    },
    "diffusers/stable-diffusion-xl-1.0-inpainting-0.1": {
        "_class_name": "StableDiffusionXLInpaintPipeline", "_diffusers_version": "0.21.0.dev0",
        "force_zeros_for_empty_prompt": True, "requires_aesthetics_score": False,
        "scheduler": ["diffusers", "EulerDiscreteScheduler"], "text_encoder": ["transformers", "CLIPTextModel"],
        "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"], "vae": ["diffusers", "AutoencoderKL"],
    },
    "black-forest-labs/FLUX.1-Fill-dev": {
        "_class_name": "FluxFillPipeline", "_diffusers_version": "0.32.0.dev0",
        "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"], "text_encoder_2": ["transformers", "T5EncoderModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"], "tokenizer_2": ["transformers", "T5TokenizerFast"],
        "transformer": ["diffusers", "FluxTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"],
    },
}

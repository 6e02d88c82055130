"""The models both sides of the benchmark load: the tiny kit, or full-size architectures with random weights.

Full-size models have the architectures (and so the compute) of the checkpoints users run, built
locally from configs with random weights (nothing is downloaded; speed does not depend on the
weights' values) and written once with ``save_pretrained`` so that both sides load them through
``from_pretrained`` as a user would:

- ``grounding-dino``: IDEA-Research/grounding-dino-tiny (Swin-T backbone, d_model 256, 900 queries,
  6 encoder + 6 decoder layers, BERT-base text encoder with a 30522 vocabulary);
- ``sam``: facebook/sam-vit-base (ViT-B/16 image encoder at 1024 px);
- ``sd-inpaint``: stable-diffusion-v1-5/stable-diffusion-inpainting (9-channel UNet (320, 640, 1280,
  1280), CLIP ViT-L/14 text encoder, VAE (128, 256, 512, 512), its DDIM scheduler and its CLIP
  ViT-L/14 safety checker, which ``StableDiffusionInpaintPipeline.from_pretrained`` runs by default);
- ``sdxl-inpaint`` (only with ``--sdxl``, 2.6B-parameter UNet): diffusers/stable-diffusion-xl-1.0-inpainting-0.1;
- ``lama``: big-lama (51M parameters) as the public ONNX export Carve/LaMa-ONNX ``lama_fp32.onnx``
  (fixed 512x512, inputs ``image`` and ``mask``), promptpaint's default remover (see
  :mod:`benchmarks.big_lama`);
- ``vitmatte`` (the matting benchmark, :mod:`benchmarks.matting`): hustvl/vitmatte-small-composition-1k
  (ViTDet-S backbone: 384 wide, 12 blocks, windowed attention except in blocks 2, 5, 8 and 11);
- ``lcm-lora`` (with ``fast``): latent-consistency/lcm-lora-sdv1-5, rank 64 on every linear and conv
  layer of SD 1.5's UNet blocks (67.3M parameters; the published one has 67.5M), kohya format;
- ``tcd-lora-sdxl`` (with ``fast`` and ``sdxl``): h1t/TCD-SDXL-LoRA's shape, rank 64 on the SDXL UNet.

Tokenizers come from the tiny kit (small vocabularies, built offline); every id they produce is
below the full vocabulary size, and SD's text encoder always sees 77 tokens, so the compute is the
real one.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

#: Bump a model's version when its builder changes: only that model's folder is then rebuilt.
MODEL_VERSIONS = {"grounding-dino": 1, "sam": 1, "sd-inpaint": 1, "sdxl-inpaint": 1, "lama": 1, "vitmatte": 1,
                  "lcm-lora": 1, "tcd-lora-sdxl": 1}
MARKER_FILE = "bench-model.json"
SEED = 0

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CACHE = ROOT / ".cache"


def tiny_folders(cache: Path = DEFAULT_CACHE) -> dict[str, Path]:
    """The tiny kit's folders (built once into ``cache/tiny-models``, shared with the test suite)."""
    from promptpaint.testing.tiny_models import build_all

    folder = Path(os.environ.get("PROMPTPAINT_TINY_MODELS", cache / "tiny-models"))
    return {k: Path(v) for k, v in build_all(folder, only=["grounding-dino", "sam", "sd-inpaint", "sdxl-inpaint",
                                                          "lama", "vitmatte", "lcm-lora",
                                                          "tcd-lora-sdxl"]).items()}


def full_folders(cache: Path = DEFAULT_CACHE, sdxl: bool = False, fast: bool = False,
                 log: Callable[[str], None] = print, only: list[str] | None = None) -> dict[str, Path]:
    """The full-size random models, built into ``cache/bench-models`` on first use (about a minute
    and ~6 GB on the project's machine; SDXL adds ~14 GB; ``fast`` adds the distillation LoRAs).
    ``only``: just these models."""
    tiny = tiny_folders(cache)
    root = cache / "bench-models"
    builders = {
        "grounding-dino": lambda f: build_grounding_dino(f, tiny["grounding-dino"]),
        "sam": build_sam,
        "sd-inpaint": lambda f: build_sd_inpaint(f, tiny["sd-inpaint"]),
        "lama": build_lama_full,
    }
    if sdxl:
        builders["sdxl-inpaint"] = lambda f: build_sdxl_inpaint(f, tiny["sdxl-inpaint"])
    if fast:
        builders["lcm-lora"] = build_lcm_lora
        if sdxl:
            builders["tcd-lora-sdxl"] = build_tcd_lora_sdxl
    folders = {}
    for name, build in builders.items():
        if only is not None and name not in only:
            continue
        target = root / name
        if not _is_complete(target):
            log(f"building full-size random {name} into {target} (once) ...")
            _build_into(target, build)
        folders[name] = target
    return folders


def vitmatte_folder(cache: Path = DEFAULT_CACHE, log: Callable[[str], None] = print) -> Path:
    """The full-size random ViTMatte-S, built into ``cache/bench-models/vitmatte`` on first use (~100 MB)."""
    target = cache / "bench-models" / "vitmatte"
    if not _is_complete(target):
        log(f"building full-size random vitmatte into {target} (once) ...")
        _build_into(target, build_vitmatte)
    return target


def _is_complete(folder: Path) -> bool:
    """Whether ``folder`` holds the model of its name as the current builder writes it."""
    try:
        return json.loads((folder / MARKER_FILE).read_text()).get("version") == MODEL_VERSIONS[folder.name]
    except (OSError, ValueError):
        return False


def _build_into(target: Path, build: Callable[[Path], None]) -> None:
    """Build into a temporary sibling and rename it into place: an interrupted build leaves nothing
    that looks complete."""
    import torch

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(SEED)
            build(tmp)
        (tmp / MARKER_FILE).write_text(json.dumps({"name": target.name, "version": MODEL_VERSIONS[target.name]}) + "\n")
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------- detector and segmenter

def build_grounding_dino(folder: Path, tiny_folder: Path) -> None:
    """grounding-dino-tiny: transformers' GroundingDinoConfig defaults are that checkpoint's architecture."""
    from transformers import (
        AutoProcessor,
        BertConfig,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
    )

    tokenizer = AutoProcessor.from_pretrained(tiny_folder).tokenizer
    config = GroundingDinoConfig(text_config=BertConfig(vocab_size=30522, max_position_embeddings=512))
    model = GroundingDinoForObjectDetection(config).eval()
    model.save_pretrained(folder)
    # The checkpoint's processor: shortest edge 800, longest 1333.
    GroundingDinoProcessor(image_processor=GroundingDinoImageProcessor(), tokenizer=tokenizer).save_pretrained(folder)


def build_sam(folder: Path) -> None:
    """sam-vit-base: transformers' SamConfig defaults are ViT-B/16 at 1024 px."""
    from transformers import SamConfig, SamImageProcessor, SamModel, SamProcessor

    SamModel(SamConfig()).eval().save_pretrained(folder)
    SamProcessor(image_processor=SamImageProcessor()).save_pretrained(folder)


# ---------------------------------------------------------------- diffusion inpainters

def _clip_text_config(tokenizer, **sizes):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(vocab_size=49408, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
                          eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **sizes)


#: CLIP ViT-L/14 text tower (SD 1.5's text encoder, SDXL's first one).
CLIP_L_TEXT = {"hidden_size": 768, "intermediate_size": 3072, "num_hidden_layers": 12, "num_attention_heads": 12,
               "projection_dim": 768}


def _sd_vae(scaling_factor: float, **extra):
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
        block_out_channels=(128, 256, 512, 512),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        scaling_factor=scaling_factor, **extra)


def _safety_checker():
    """The CLIP ViT-L/14 image classifier SD 1.5 repositories ship and diffusers runs after every call."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    vision = {"hidden_size": 1024, "intermediate_size": 4096, "num_hidden_layers": 24, "num_attention_heads": 16,
              "patch_size": 14, "image_size": 224}
    config = CLIPConfig(text_config=dict(CLIP_L_TEXT), vision_config=vision, projection_dim=768)
    processor = CLIPImageProcessor(size={"shortest_edge": 224}, crop_size={"height": 224, "width": 224})
    return StableDiffusionSafetyChecker(config).eval(), processor


def build_sd_inpaint(folder: Path, tiny_folder: Path) -> None:
    """stable-diffusion-inpainting: the UNet, VAE, text encoder, scheduler and safety checker it ships."""
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline
    from transformers import CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(tiny_folder / "tokenizer")
    unet = _sd_unet()
    safety_checker, feature_extractor = _safety_checker()
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              num_train_timesteps=1000, clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionInpaintPipeline(
        vae=_sd_vae(0.18215), text_encoder=CLIPTextModel(_clip_text_config(tokenizer, **CLIP_L_TEXT)),
        tokenizer=tokenizer, unet=unet, scheduler=scheduler, safety_checker=safety_checker,
        feature_extractor=feature_extractor, requires_safety_checker=True)
    pipe.save_pretrained(folder)


def _sd_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(sample_size=64, in_channels=9, out_channels=4, layers_per_block=2,
                                block_out_channels=(320, 640, 1280, 1280), cross_attention_dim=768,
                                attention_head_dim=8)


def build_sdxl_inpaint(folder: Path, tiny_folder: Path) -> None:
    """stable-diffusion-xl-1.0-inpainting-0.1: 2.6B-parameter UNet, CLIP ViT-L and OpenCLIP ViT-bigG text encoders."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLInpaintPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(tiny_folder / "tokenizer")
    tokenizer_2 = CLIPTokenizer.from_pretrained(tiny_folder / "tokenizer_2")
    big_g = {"hidden_size": 1280, "intermediate_size": 5120, "num_hidden_layers": 32, "num_attention_heads": 20,
             "projection_dim": 1280, "hidden_act": "gelu"}
    unet = _sdxl_unet()
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       num_train_timesteps=1000, steps_offset=1, timestep_spacing="leading",
                                       interpolation_type="linear", prediction_type="epsilon")
    pipe = StableDiffusionXLInpaintPipeline(
        vae=_sd_vae(0.13025, force_upcast=True),
        text_encoder=CLIPTextModel(_clip_text_config(tokenizer, **CLIP_L_TEXT)),
        text_encoder_2=CLIPTextModelWithProjection(_clip_text_config(tokenizer_2, **big_g)),
        tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler,
        requires_aesthetics_score=False, force_zeros_for_empty_prompt=True)
    pipe.save_pretrained(folder)


def _sdxl_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=128, in_channels=9, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20), use_linear_projection=True,
        cross_attention_dim=2048, addition_embed_type="text_time", addition_time_embed_dim=256,
        projection_class_embeddings_input_dim=2816)


# ---------------------------------------------------------------- fast-mode LoRAs

#: The published LoRAs' rank (LCM-LoRA: diffusers' distillation script's default, 64; TCD likewise).
LORA_RANK = 64


def build_lcm_lora(folder: Path) -> None:
    """latent-consistency/lcm-lora-sdv1-5's shape and kohya format, random weights scaled down so that
    the adapted UNet stays numerically tame (speed does not depend on the values)."""
    from promptpaint.testing.tiny_models import UNET_LORA_TARGETS, random_lora, save_kohya_unet_lora

    save_kohya_unet_lora(_small(random_lora(_sd_unet(), UNET_LORA_TARGETS, LORA_RANK, rank=LORA_RANK)),
                         LORA_RANK, folder)


def build_tcd_lora_sdxl(folder: Path) -> None:
    """h1t/TCD-SDXL-LoRA's shape on the SDXL UNet, in diffusers' format."""
    from diffusers import StableDiffusionXLInpaintPipeline

    from promptpaint.testing.tiny_models import UNET_LORA_TARGETS, random_lora

    layers = _small(random_lora(_sdxl_unet(), UNET_LORA_TARGETS, LORA_RANK, rank=LORA_RANK))
    StableDiffusionXLInpaintPipeline.save_lora_weights(folder, unet_lora_layers=layers, safe_serialization=True)


def _small(layers: dict) -> dict:
    return {key: weight * 0.01 for key, weight in layers.items()}


# ---------------------------------------------------------------- remover

def build_lama_full(folder: Path) -> None:
    """big-lama with random weights, exported as the public ``lama_fp32.onnx`` (about 200 MB)."""
    from benchmarks.big_lama import export

    export(folder / "lama_fp32.onnx")


# ---------------------------------------------------------------- matting

def build_vitmatte(folder: Path) -> None:
    """vitmatte-small-composition-1k: its config.json and preprocessor_config.json, values as published."""
    from transformers import VitDetConfig, VitMatteConfig, VitMatteForImageMatting, VitMatteImageProcessor

    backbone = VitDetConfig(hidden_size=384, num_attention_heads=6, image_size=512, num_channels=4,
                            out_features=["stage12"], residual_block_indices=[2, 5, 8, 11],
                            use_relative_position_embeddings=True, window_block_indices=[0, 1, 3, 4, 6, 7, 9, 10],
                            window_size=14)
    config = VitMatteConfig(backbone_config=backbone, hidden_size=384, convstream_hidden_sizes=[48, 96, 192],
                            fusion_hidden_sizes=[256, 128, 64, 32])
    VitMatteForImageMatting(config).eval().save_pretrained(folder)
    VitMatteImageProcessor(image_mean=[0.5, 0.5, 0.5], image_std=[0.5, 0.5, 0.5], size_divisor=32).save_pretrained(folder)

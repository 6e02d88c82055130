"""Tiny, randomly initialised models for offline tests.

Every model promptpaint loads in production has a tiny twin here: the SAME classes (Grounding DINO,
OWLv2, SAM, SAM 2, SAM 3, Stable Diffusion 1.5 / SDXL inpainting, FLUX.1 Fill, LaMa as ONNX, ViTMatte) with at
most a couple of million parameters instead of hundreds of millions (about 21 MB for the whole kit),
written to a folder with `save_pretrained` (safetensors) so that tests load them through the very
loaders production uses::

    from promptpaint.testing.tiny_models import build_all
    folders = build_all("/tmp/tiny")          # {"sam": Path("/tmp/tiny/sam"), ...}
    SamModel.from_pretrained(folders["sam"])

or from a shell::

    python -m promptpaint.testing.tiny_models /tmp/tiny [--only sam lama] [--overwrite]

The weights are random (seeded, so each build writes the same weights): outputs have the right types and
shapes but no meaning. Tokenizers are built offline from small vocabularies (see `TINY_WORDS`); processors
use small image sizes that match the model configs so that a forward pass takes milliseconds.

Nothing heavy is imported at module import time; torch, transformers, diffusers and onnx are imported
inside the builders.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = [
    "KIT_VERSION",
    "MARKER_FILE",
    "MODEL_NAMES",
    "TINY_WORDS",
    "build_all",
    "build_flux_fill",
    "build_flux_turbo_lora",
    "build_grounding_dino",
    "build_lama",
    "build_lcm_lora",
    "build_owlv2",
    "build_sam",
    "build_sam2",
    "build_sam3",
    "build_sam3_full",
    "build_sd_inpaint",
    "build_sdxl_inpaint",
    "build_taesd",
    "build_tcd_lora_sdxl",
    "build_vitmatte",
    "is_complete",
    "main",
]

#: Bump when a builder changes, so that folders written by an older kit are rebuilt.
KIT_VERSION = 5
#: Written last into every finished folder; a folder without it (or with an older version) is rebuilt.
MARKER_FILE = "tiny-model.json"
SEED = 0

#: Words every tiny tokenizer knows as whole tokens (anything else still tokenizes, in pieces or as unknown).
TINY_WORDS = (
    "a", "an", "the", "of", "and", "with", "in", "on", "photo", "picture",
    "cat", "dog", "fox", "tree", "person", "face", "sky", "car", "background", "object",
    "man", "woman", "hat", "house", "grass", "road", "water", "flower", "bird", "horse",
    "chair", "table", "cup", "sun", "cloud", "red", "blue", "green", "white", "black",
)  # fmt: skip

# Sizes of the tiny models' inputs (pixels).
GROUNDING_DINO_SHORTEST_EDGE = 128  # >= 128: a square image keeps a 2x2 deepest level (GroupNorm needs > 1 value)
GROUNDING_DINO_LONGEST_EDGE = 192
OWLV2_IMAGE_SIZE = 64
SAM_IMAGE_SIZE = 128
SAM2_IMAGE_SIZE = 128
SAM3_IMAGE_SIZE = 112


def _seeded_and_quiet(builder: Callable[[Path], Path]) -> Callable[[str | Path], Path]:
    """Run a torch builder with the RNG seeded by `SEED` (restoring the caller's RNG state afterwards)
    and transformers' progress bars off, so that every build writes the same weights, silently."""

    @functools.wraps(builder)
    def wrapper(folder: str | Path) -> Path:
        import torch
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(SEED)
                builder(Path(folder))
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        return Path(folder)

    return wrapper


# --------------------------------------------------------------------------------------------------
# Tokenizers
# --------------------------------------------------------------------------------------------------


def _byte_characters() -> list[str]:
    """The 256 characters byte-level BPE (CLIP, GPT-2) uses for the bytes, in real CLIP's vocabulary order
    (the printable bytes as themselves first, so that ``!`` is id 0, then the others mapped above 255)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    others = [b for b in range(256) if b not in printable]
    return [chr(b) for b in printable] + [chr(256 + i) for i in range(len(others))]


def _tiny_clip_tokenizer(model_max_length: int = 77, pad_token: str = "<|endoftext|>"):
    """A CLIPTokenizer with a ~560-token vocabulary laid out like the real one.

    The vocabulary is: the 256 byte characters, the same with the end-of-word suffix ``</w>``, the
    results of the merges that spell every word of `TINY_WORDS`, then ``<|startoftext|>`` and
    ``<|endoftext|>`` LAST (as in real CLIP: OWLv2 ignores any query whose first id is 0).
    """
    from transformers import CLIPTokenizer

    chars = _byte_characters()
    tokens = chars + [c + "</w>" for c in chars]
    merges: list[tuple[str, str]] = []
    for word in TINY_WORDS:
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        merged = symbols[0]
        for symbol in symbols[1:]:
            pair = (merged, symbol)
            merged += symbol
            if pair not in merges:
                merges.append(pair)
            if merged not in tokens:
                tokens.append(merged)
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(tokens)}
    return CLIPTokenizer(
        vocab=vocab, merges=merges, model_max_length=model_max_length, pad_token=pad_token
    )


def _tiny_bert_tokenizer():
    """A BertTokenizer whose special ids match real ``bert-base-uncased``.

    Grounding DINO hard-codes ``[CLS]``=101, ``[SEP]``=102, ``.``=1012 and ``?``=1029 to split the
    prompt into phrases, so the vocabulary keeps those ids and fills the gaps with ``[unusedN]``.
    """
    from transformers import BertTokenizer

    tokens = [f"[unused{i}]" for i in range(1034)]
    for i, word in enumerate([*TINY_WORDS, ",", "!", "-", "'"], start=104):
        tokens[i] = word
    specials = {0: "[PAD]", 100: "[UNK]", 101: "[CLS]", 102: "[SEP]", 103: "[MASK]", 1012: ".", 1029: "?"}
    for i, special in specials.items():
        tokens[i] = special
    vocab = {token: i for i, token in enumerate(tokens)}
    return BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=256)


def _tiny_t5_tokenizer(model_max_length: int = 512):
    """A T5Tokenizer (unigram, the fast one) with the words of `TINY_WORDS` and single letters."""
    from transformers import T5Tokenizer

    pieces = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -2.0)]
    pieces += [("▁" + word, -3.0) for word in TINY_WORDS]
    pieces += [(c, -8.0) for c in "abcdefghijklmnopqrstuvwxyz0123456789.,!?-'"]
    return T5Tokenizer(vocab=pieces, extra_ids=0, model_max_length=model_max_length)


def _tiny_clip_text_config(tokenizer, *, max_position_embeddings: int = 77, projection_dim: int = 32):
    from transformers import CLIPTextConfig

    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=max_position_embeddings,
        projection_dim=projection_dim,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


# --------------------------------------------------------------------------------------------------
# Detectors
# --------------------------------------------------------------------------------------------------


@_seeded_and_quiet
def build_grounding_dino(folder: Path) -> Path:
    """GroundingDinoProcessor + GroundingDinoForObjectDetection (tiny Swin + tiny BERT)."""
    from transformers import (
        BertConfig,
        GroundingDinoConfig,
        GroundingDinoForObjectDetection,
        GroundingDinoImageProcessor,
        GroundingDinoProcessor,
        SwinConfig,
    )

    tokenizer = _tiny_bert_tokenizer()
    text_config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=256,
    )
    backbone_config = SwinConfig(
        image_size=GROUNDING_DINO_LONGEST_EDGE,
        embed_dim=8,
        depths=[1, 1, 1, 1],
        num_heads=[1, 1, 1, 1],
        window_size=4,
        out_features=["stage2", "stage3", "stage4"],
        out_indices=[2, 3, 4],
    )
    config = GroundingDinoConfig(
        backbone_config=backbone_config,
        text_config=text_config,
        d_model=32,  # GroupNorm(32, d_model): a multiple of 32
        encoder_layers=1,
        decoder_layers=2,  # 1 breaks tie_weights
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        num_queries=10,
        num_feature_levels=4,
        encoder_n_points=2,
        decoder_n_points=2,
        max_text_len=256,
    )
    model = GroundingDinoForObjectDetection(config).eval()
    image_processor = GroundingDinoImageProcessor(
        size={"shortest_edge": GROUNDING_DINO_SHORTEST_EDGE, "longest_edge": GROUNDING_DINO_LONGEST_EDGE}
    )
    processor = GroundingDinoProcessor(image_processor=image_processor, tokenizer=tokenizer)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


@_seeded_and_quiet
def build_owlv2(folder: Path) -> Path:
    """Owlv2Processor + Owlv2ForObjectDetection (tiny CLIP text and vision towers)."""
    import torch
    from transformers import Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor

    tokenizer = _tiny_clip_tokenizer(model_max_length=16, pad_token="!")
    text_config = _tiny_clip_text_config(tokenizer, max_position_embeddings=16).to_dict()
    vision_config = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "image_size": OWLV2_IMAGE_SIZE,
        "patch_size": 16,
    }
    config = Owlv2Config(text_config=text_config, vision_config=vision_config, projection_dim=32)
    model = Owlv2ForObjectDetection(config).eval()
    # Random box-head weights push every box into a corner with zero size; damp them so boxes stay
    # near the model's built-in per-patch priors, i.e. real, non-empty boxes inside the image.
    with torch.no_grad():
        model.box_head.dense2.weight.mul_(0.01)
        model.box_head.dense2.bias.zero_()
    image_processor = Owlv2ImageProcessor(size={"height": OWLV2_IMAGE_SIZE, "width": OWLV2_IMAGE_SIZE})
    processor = Owlv2Processor(image_processor=image_processor, tokenizer=tokenizer)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------------------------------
# Segmenters
# --------------------------------------------------------------------------------------------------


@_seeded_and_quiet
def build_sam(folder: Path) -> Path:
    """SamProcessor + SamModel; images are resized and padded to 128 px (8x8 embedding, 32 px masks)."""
    from transformers import (
        SamConfig,
        SamImageProcessor,
        SamMaskDecoderConfig,
        SamModel,
        SamProcessor,
        SamPromptEncoderConfig,
        SamVisionConfig,
    )

    size, patch = SAM_IMAGE_SIZE, 16
    vision_config = SamVisionConfig(
        hidden_size=32,
        output_channels=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        mlp_dim=64,
        image_size=size,
        patch_size=patch,
        window_size=4,
        global_attn_indexes=[1],
        num_pos_feats=16,
    )
    prompt_encoder_config = SamPromptEncoderConfig(
        hidden_size=32, image_size=size, patch_size=patch, mask_input_channels=4
    )
    mask_decoder_config = SamMaskDecoderConfig(
        hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=4, iou_head_hidden_dim=32
    )
    config = SamConfig(
        vision_config=vision_config,
        prompt_encoder_config=prompt_encoder_config,
        mask_decoder_config=mask_decoder_config,
    )
    model = SamModel(config).eval()
    mask_size = 4 * (size // patch)
    image_processor = SamImageProcessor(
        size={"longest_edge": size},
        pad_size={"height": size, "width": size},
        mask_size={"longest_edge": mask_size},
        mask_pad_size={"height": mask_size, "width": mask_size},
    )
    processor = SamProcessor(image_processor=image_processor)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


@_seeded_and_quiet
def build_sam2(folder: Path) -> Path:
    """Sam2Processor + Sam2Model (tiny Hiera backbone); images are resized to 128x128."""
    from transformers import (
        Sam2Config,
        Sam2HieraDetConfig,
        Sam2ImageProcessor,
        Sam2MaskDecoderConfig,
        Sam2Model,
        Sam2Processor,
        Sam2PromptEncoderConfig,
        Sam2VisionConfig,
    )

    size = SAM2_IMAGE_SIZE
    dims = [16, 32, 64, 128]
    backbone_config = Sam2HieraDetConfig(
        hidden_size=dims[0],
        image_size=[size, size],
        blocks_per_stage=[1, 1, 2, 1],
        embed_dim_per_stage=dims,
        num_attention_heads_per_stage=[1, 1, 2, 2],
        window_size_per_stage=[8, 4, 4, 4],
        global_attention_blocks=[3],  # never the first block of a stage
        window_positional_embedding_background_size=[4, 4],
    )
    vision_config = Sam2VisionConfig(
        backbone_config=backbone_config,
        backbone_channel_list=dims[::-1],
        backbone_feature_sizes=[[size // 4, size // 4], [size // 8, size // 8], [size // 16, size // 16]],
        fpn_hidden_size=32,
    )
    prompt_encoder_config = Sam2PromptEncoderConfig(
        hidden_size=32, image_size=size, patch_size=16, mask_input_channels=4
    )
    mask_decoder_config = Sam2MaskDecoderConfig(
        hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=4, iou_head_hidden_dim=32
    )
    config = Sam2Config(
        vision_config=vision_config,
        prompt_encoder_config=prompt_encoder_config,
        mask_decoder_config=mask_decoder_config,
    )
    model = Sam2Model(config).eval()
    image_processor = Sam2ImageProcessor(
        size={"height": size, "width": size}, mask_size={"height": size // 4, "width": size // 4}
    )
    processor = Sam2Processor(image_processor=image_processor)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


@_seeded_and_quiet
def build_sam3(folder: Path) -> Path:
    """Sam3Processor + Sam3Model: text prompt -> instance masks; images are resized to 112x112."""
    from transformers import (
        Sam3Config,
        Sam3DETRDecoderConfig,
        Sam3DETREncoderConfig,
        Sam3GeometryEncoderConfig,
        Sam3ImageProcessor,
        Sam3MaskDecoderConfig,
        Sam3Model,
        Sam3Processor,
        Sam3VisionConfig,
        Sam3ViTConfig,
    )

    size, patch = SAM3_IMAGE_SIZE, 14
    grid = size // patch
    tokenizer = _tiny_clip_tokenizer(model_max_length=32)
    backbone_config = Sam3ViTConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        image_size=size,
        patch_size=patch,
        window_size=grid // 2,
        global_attn_indexes=[1],
        pretrain_image_size=size,
    )
    vision_config = Sam3VisionConfig(
        backbone_config=backbone_config,
        fpn_hidden_size=32,
        scale_factors=[2.0, 1.0],
        backbone_feature_sizes=[[grid * 2, grid * 2], [grid, grid]],
    )
    text_config = _tiny_clip_text_config(tokenizer, max_position_embeddings=32).to_dict()
    config = Sam3Config(
        vision_config=vision_config,
        text_config=text_config,
        geometry_encoder_config=Sam3GeometryEncoderConfig(
            hidden_size=32, num_layers=1, num_attention_heads=4, intermediate_size=64
        ),
        detr_encoder_config=Sam3DETREncoderConfig(
            hidden_size=32, num_layers=1, num_attention_heads=4, intermediate_size=64
        ),
        detr_decoder_config=Sam3DETRDecoderConfig(
            hidden_size=32, num_layers=1, num_queries=10, num_attention_heads=4, intermediate_size=64
        ),
        mask_decoder_config=Sam3MaskDecoderConfig(
            hidden_size=32, num_upsampling_stages=2, num_attention_heads=4
        ),
    )
    model = Sam3Model(config).eval()
    image_processor = Sam3ImageProcessor(
        size={"height": size, "width": size}, mask_size={"height": grid * 4, "width": grid * 4}
    )
    processor = Sam3Processor(image_processor=image_processor, tokenizer=tokenizer)
    model.save_pretrained(folder, safe_serialization=True)
    processor.save_pretrained(folder)
    return folder


@_seeded_and_quiet
def build_sam3_full(folder: Path) -> Path:
    """A twin of the full ``facebook/sam3`` checkpoint (``model_type`` ``sam3_video``): SAM 3's text
    detector AND its SAM-2-style tracker in one folder, so that ``Sam3Model`` and
    ``Sam3TrackerModel`` both load from it (the tracker reads the detector's ViT backbone).

    Not part of `build_all` (the kit's ``sam3`` is the detector alone). Its vision neck has the real
    model's four scale factors, of which the tracker uses the first three."""
    from safetensors.torch import load_file, save_file
    from transformers import Sam3Config, Sam3TrackerVideoConfig, Sam3VideoConfig, Sam3VideoModel
    from transformers.models.sam3_tracker_video.configuration_sam3_tracker_video import (
        Sam3TrackerVideoMaskDecoderConfig,
        Sam3TrackerVideoPromptEncoderConfig,
    )

    build_sam3.__wrapped__(folder)  # processor, tokenizer and the detector's configuration
    size, grid = SAM3_IMAGE_SIZE, SAM3_IMAGE_SIZE // 14
    detector = Sam3Config.from_pretrained(folder).to_dict()
    detector["vision_config"]["scale_factors"] = [4.0, 2.0, 1.0, 0.5]
    detector["vision_config"]["backbone_feature_sizes"] = [[grid * 4] * 2, [grid * 2] * 2, [grid] * 2]
    detector = Sam3Config(**detector)
    tracker = Sam3TrackerVideoConfig(
        vision_config=detector.vision_config.to_dict(),
        prompt_encoder_config=Sam3TrackerVideoPromptEncoderConfig(
            hidden_size=32, image_size=size, patch_size=14, mask_input_channels=4
        ),
        mask_decoder_config=Sam3TrackerVideoMaskDecoderConfig(
            hidden_size=32, mlp_dim=64, num_hidden_layers=2, num_attention_heads=4, iou_head_hidden_dim=32
        ),
        memory_attention_hidden_size=32,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=32,
        memory_encoder_hidden_size=32,
        memory_encoder_output_channels=16,
        mask_downsampler_embed_dim=32,
        image_size=size,
    )
    model = Sam3VideoModel(Sam3VideoConfig(detector_config=detector, tracker_config=tracker)).eval()
    model.save_pretrained(folder, safe_serialization=True)
    # transformers 5 saves the tracker's weights as "tracker_model.tracker_model.*" (its prefix
    # conversion applied twice); the published checkpoint has "tracker_model.*", which loads.
    weights = folder / "model.safetensors"
    state = {k.replace("tracker_model.tracker_model.", "tracker_model."): v for k, v in load_file(weights).items()}
    save_file(state, weights, metadata={"format": "pt"})
    return folder


# --------------------------------------------------------------------------------------------------
# Inpainters
# --------------------------------------------------------------------------------------------------


def _tiny_vae(blocks: int = 2, **kwargs):
    """AutoencoderKL with 4 latent channels and ``blocks`` blocks (vae_scale_factor 2**(blocks-1)).

    The SD/SDXL kits use 4 blocks (factor 8, as the real VAEs), so their UNets attend over few
    tokens even for the 512 px windows some tests generate. No mid-block attention: its cost grows
    with the fourth power of the image side."""
    from diffusers import AutoencoderKL

    channels = (16, 32, 32, 32)[:blocks] if blocks > 2 else (32, 64)
    return AutoencoderKL(
        block_out_channels=channels,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * blocks,
        up_block_types=("UpDecoderBlock2D",) * blocks,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=16,
        sample_size=64,
        mid_block_add_attention=False,
        **kwargs,
    )


def _tiny_sd_unet():
    """The SD 1.5 inpainting kit's UNet (9 input channels)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,  # x vae_scale_factor 8 = a 64 px working size: fast windows
        in_channels=9,  # 4 noisy latents + 1 mask + 4 masked-image latents
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
    )


@_seeded_and_quiet
def build_sd_inpaint(folder: Path) -> Path:
    """StableDiffusionInpaintPipeline: 9-channel UNet, tiny VAE, tiny CLIP text encoder, DDIM scheduler."""
    from diffusers import DDIMScheduler, StableDiffusionInpaintPipeline
    from transformers import CLIPTextModel

    tokenizer = _tiny_clip_tokenizer()
    text_encoder = CLIPTextModel(_tiny_clip_text_config(tokenizer))
    unet = _tiny_sd_unet()
    vae = _tiny_vae(blocks=4, scaling_factor=0.18215)
    # The scheduler configuration that stable-diffusion-v1-5/stable-diffusion-inpainting ships.
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = StableDiffusionInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


def _tiny_sdxl_unet():
    """The SDXL inpainting kit's UNet (text_time conditioning, 9 input channels)."""
    from diffusers import UNet2DConditionModel

    time_embed_dim = 8
    return UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=8,  # x vae_scale_factor 8 = a 64 px working size: fast windows
        in_channels=9,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4),
        use_linear_projection=True,
        addition_embed_type="text_time",
        addition_time_embed_dim=time_embed_dim,
        transformer_layers_per_block=(1, 1),
        # pooled text embedding (32) + 6 time ids (original size, crop top-left, target size) * 8
        projection_class_embeddings_input_dim=32 + 6 * time_embed_dim,
        cross_attention_dim=32 + 32,  # both encoders' hidden states, concatenated
    )


@_seeded_and_quiet
def build_sdxl_inpaint(folder: Path) -> Path:
    """StableDiffusionXLInpaintPipeline: text_time UNet, two tiny CLIP text encoders, Euler scheduler."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLInpaintPipeline
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = _tiny_clip_tokenizer()
    tokenizer_2 = _tiny_clip_tokenizer(pad_token="!")
    text_encoder = CLIPTextModel(_tiny_clip_text_config(tokenizer))
    text_encoder_2 = CLIPTextModelWithProjection(_tiny_clip_text_config(tokenizer_2, projection_dim=32))
    unet = _tiny_sdxl_unet()
    vae = _tiny_vae(blocks=4, scaling_factor=0.13025)
    # The scheduler that diffusers/stable-diffusion-xl-1.0-inpainting-0.1 ships.
    scheduler = EulerDiscreteScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        num_train_timesteps=1000,
        steps_offset=1,
        timestep_spacing="leading",
        interpolation_type="linear",
        prediction_type="epsilon",
        use_karras_sigmas=False,
    )
    pipe = StableDiffusionXLInpaintPipeline(
        vae=vae,
        text_encoder=text_encoder,
        text_encoder_2=text_encoder_2,
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        unet=unet,
        scheduler=scheduler,
        requires_aesthetics_score=False,
        force_zeros_for_empty_prompt=True,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


#: The FLUX kit's VAE has 4 latent channels (FLUX.1's has 16); latents are packed in 2x2 patches.
FLUX_LATENT_CHANNELS = 4


def _tiny_flux_transformer(in_channels: int):
    """The FLUX kit's transformer: ``in_channels`` 4*c for FLUX.1-dev's shape, more for Fill's
    (which also takes the masked image and the mask)."""
    from diffusers import FluxTransformer2DModel

    return FluxTransformer2DModel(
        patch_size=1,
        in_channels=in_channels,
        out_channels=4 * FLUX_LATENT_CHANNELS,
        num_layers=1,
        num_single_layers=1,
        attention_head_dim=16,
        num_attention_heads=2,
        joint_attention_dim=32,  # the tiny T5's d_model
        pooled_projection_dim=32,  # the tiny CLIP's hidden size
        guidance_embeds=True,
        axes_dims_rope=[4, 4, 8],
    )


@_seeded_and_quiet
def build_flux_fill(folder: Path) -> Path:
    """FluxFillPipeline: tiny FluxTransformer2DModel, VAE, CLIP and T5 encoders, flow-matching scheduler."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxFillPipeline
    from transformers import CLIPTextModel, T5Config, T5EncoderModel

    tokenizer = _tiny_clip_tokenizer()
    tokenizer_2 = _tiny_t5_tokenizer()
    text_encoder = CLIPTextModel(_tiny_clip_text_config(tokenizer))
    text_encoder_2 = T5EncoderModel(
        T5Config(
            vocab_size=len(tokenizer_2),
            d_model=32,
            d_kv=8,
            d_ff=64,
            num_layers=2,
            num_heads=4,
            relative_attention_num_buckets=8,
            feed_forward_proj="gated-gelu",
            pad_token_id=tokenizer_2.pad_token_id,
            eos_token_id=tokenizer_2.eos_token_id,
            decoder_start_token_id=tokenizer_2.pad_token_id,
        )
    )
    vae = _tiny_vae(
        scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False, use_post_quant_conv=False
    )
    latent_channels = vae.config.latent_channels
    vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
    # packed 2x2 latents (4*c) + packed 2x2 masked-image latents (4*c) + packed mask (4 * vsf**2)
    transformer = _tiny_flux_transformer(8 * latent_channels + 4 * vae_scale_factor**2)
    # The scheduler that black-forest-labs/FLUX.1-Fill-dev ships.
    scheduler = FlowMatchEulerDiscreteScheduler(
        num_train_timesteps=1000,
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    pipe = FluxFillPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_encoder_2=text_encoder_2,
        tokenizer_2=tokenizer_2,
        transformer=transformer,
    )
    pipe.save_pretrained(folder, safe_serialization=True)
    return folder


# --------------------------------------------------------------------------------------------------
# Fast-mode LoRAs and preview decoders
# --------------------------------------------------------------------------------------------------

#: The modules latent-consistency/lcm-lora-sdv1-5 adapts: every linear and conv layer of the UNet's
#: blocks (the default of diffusers' LCM-LoRA distillation script; 67.3M parameters at rank 64 on
#: SD 1.5's UNet, as the published 67.5M).
UNET_LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0", "proj_in", "proj_out", "ff.net.0.proj", "ff.net.2",
                     "conv1", "conv2", "conv_shortcut", "downsamplers.0.conv", "upsamplers.0.conv",
                     "time_emb_proj"]  # fmt: skip
#: FLUX.1 LoRAs adapt the patch embedding and the transformer blocks' linear layers.
FLUX_LORA_TARGETS = ["x_embedder", "to_q", "to_k", "to_v", "to_out.0", "add_q_proj", "add_k_proj", "add_v_proj",
                     "to_add_out", "proj_mlp", "proj_out", "ff.net.2", "ff_context.net.2"]  # fmt: skip
LORA_RANK = 4


def random_lora(model, targets: list[str], alpha: float, rank: int = LORA_RANK) -> dict:
    """A rank-``rank`` adapter with random (non-zero) A and B on ``model``, as a PEFT state dict
    (``module.lora_A.weight`` keys): a LoRA that visibly changes the output, so tests can tell it is on.
    Also used by the benchmarks for full-size twins of the published LoRAs."""
    from peft import LoraConfig, get_peft_model_state_dict

    model.add_adapter(LoraConfig(r=rank, lora_alpha=alpha, target_modules=targets, init_lora_weights=False))
    return get_peft_model_state_dict(model)


def save_kohya_unet_lora(layers: dict, alpha: float, folder: Path) -> Path:
    """Write a UNet LoRA in the kohya format diffusers' LCM-LoRA distillation script writes
    (``lora_unet_<module>.lora_down.weight``, ``.lora_up.weight`` and ``.alpha``)."""
    import torch
    from safetensors.torch import save_file

    state = {}
    for key, weight in layers.items():
        module, _, kind = key.partition(".lora_")  # "down_blocks.0.attentions.0.proj_in", "A.weight"
        name = "lora_unet_" + module.replace(".", "_")
        state[f"{name}.lora_{'down' if kind.startswith('A') else 'up'}.weight"] = weight.contiguous()
        state[f"{name}.alpha"] = torch.tensor(float(alpha))
    folder.mkdir(parents=True, exist_ok=True)
    save_file(state, str(folder / "pytorch_lora_weights.safetensors"))
    return folder


@_seeded_and_quiet
def build_lcm_lora(folder: Path) -> Path:
    """An LCM-LoRA for the SD 1.5 kit's UNet, in the kohya format of latent-consistency/lcm-lora-sdv1-5
    (see `save_kohya_unet_lora`), so loading goes through diffusers' conversion as the real one does.
    Its alpha is not its rank: the loader must apply the alpha / rank scale."""
    alpha = 2 * LORA_RANK
    return save_kohya_unet_lora(random_lora(_tiny_sd_unet(), UNET_LORA_TARGETS, alpha), alpha, folder)


@_seeded_and_quiet
def build_tcd_lora_sdxl(folder: Path) -> Path:
    """A TCD-style LoRA for the SDXL kit's UNet, in diffusers' own format (``unet.<module>.lora_A.weight``)."""
    from diffusers import StableDiffusionXLInpaintPipeline

    layers = random_lora(_tiny_sdxl_unet(), UNET_LORA_TARGETS, LORA_RANK)
    StableDiffusionXLInpaintPipeline.save_lora_weights(folder, unet_lora_layers=layers, safe_serialization=True)
    return folder


@_seeded_and_quiet
def build_flux_turbo_lora(folder: Path) -> Path:
    """A turbo LoRA trained on FLUX.1-dev's shape, like alimama-creative/FLUX.1-Turbo-Alpha: its patch
    embedding takes 4*c channels where Fill's takes more, so loading it into the Fill kit goes through
    diffusers' expansion of the LoRA's input features, as the real one does."""
    from diffusers import FluxFillPipeline

    layers = random_lora(_tiny_flux_transformer(4 * FLUX_LATENT_CHANNELS), FLUX_LORA_TARGETS, LORA_RANK)
    FluxFillPipeline.save_lora_weights(folder, transformer_lora_layers=layers, safe_serialization=True)
    return folder


@_seeded_and_quiet
def build_taesd(folder: Path) -> Path:
    """AutoencoderTiny (TAESD's architecture, 8 px per latent) for the kit's 4-channel latents, to
    decode live previews as madebyollin/taesd does for SD 1.5 (and taesdxl, taef1 for SDXL, FLUX)."""
    from diffusers import AutoencoderTiny

    AutoencoderTiny(encoder_block_out_channels=(8, 8, 8, 8), decoder_block_out_channels=(8, 8, 8, 8),
                    num_encoder_blocks=(1, 1, 1, 1), num_decoder_blocks=(1, 1, 1, 1),
                    latent_channels=4).save_pretrained(folder, safe_serialization=True)
    return folder


def build_lama(folder: str | Path, fixed_size: int | None = None) -> Path:
    """``lama.onnx`` with the interface of a public LaMa export.

    By default (g-ronimo/lama): one input ``input``: float32 [1, 4, H, W], channels 0-2 the RGB image
    in 0..1 with the hole zeroed, channel 3 the binary mask (1 = repaint); H and W dynamic (multiples
    of 32 in practice). One output ``output``: float32 [1, 3, H, W], RGB in 0..1.

    With ``fixed_size`` (Carve/LaMa-ONNX ``lama_fp32.onnx``, whose size is 512): inputs ``image``
    float32 [1, 3, S, S] RGB in 0..1 and ``mask`` float32 [1, 1, S, S] (1 = repaint); output
    ``output`` [1, 3, S, S] RGB in 0..255, the input image outside the hole.

    The network is Conv-Relu-Conv-Sigmoid with seeded random weights, built with ``onnx.helper``
    (no exporter dependency).
    """
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    folder = Path(folder)
    rng = np.random.default_rng(SEED)
    hidden = 8

    def weight(name: str, *shape: int) -> onnx.TensorProto:
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else 1
        data = (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(np.float32)
        return numpy_helper.from_array(data, name)

    initializers = [
        weight("conv1.weight", hidden, 4, 3, 3),
        weight("conv1.bias", hidden),
        weight("conv2.weight", 3, hidden, 3, 3),
        weight("conv2.bias", 3),
    ]
    conv = {"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}
    network = [
        helper.make_node("Conv", ["input", "conv1.weight", "conv1.bias"], ["h1"], name="conv1", **conv),
        helper.make_node("Relu", ["h1"], ["h2"], name="relu"),
        helper.make_node("Conv", ["h2", "conv2.weight", "conv2.bias"], ["h3"], name="conv2", **conv),
    ]
    if fixed_size is None:
        nodes = [*network, helper.make_node("Sigmoid", ["h3"], ["output"], name="sigmoid")]
        inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 4, "height", "width"])]
        spatial: list = ["height", "width"]
    else:
        nodes, inputs, constants = _lama_fixed_interface(network, fixed_size)
        initializers += constants
        spatial = [fixed_size, fixed_size]
    graph = helper.make_graph(
        nodes,
        "tiny_lama",
        inputs=inputs,
        outputs=[helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, *spatial])],
        initializer=initializers,
    )
    model = helper.make_model(
        graph, producer_name="promptpaint.testing", opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8  # readable by any onnxruntime from 1.10 on
    onnx.checker.check_model(model)
    folder.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(folder / "lama.onnx"))
    return folder


def _lama_fixed_interface(network: list, size: int) -> tuple[list, list, list]:
    """The Carve/LaMa-ONNX interface around ``network`` (``input`` -> ``h3``): the masked image and
    the mask go in, the prediction is pasted into the hole and scaled to 0..255, as that export does.
    Returns (nodes, graph inputs, constant initializers)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    constants = [numpy_helper.from_array(np.array(1.0, np.float32), "one"),
                 numpy_helper.from_array(np.array(255.0, np.float32), "scale")]
    nodes = [
        helper.make_node("Sub", ["one", "mask"], ["keep"]),
        helper.make_node("Mul", ["image", "keep"], ["masked"]),
        helper.make_node("Concat", ["masked", "mask"], ["input"], axis=1),
        *network,
        helper.make_node("Sigmoid", ["h3"], ["predicted"]),
        helper.make_node("Mul", ["predicted", "mask"], ["hole"]),
        helper.make_node("Add", ["hole", "masked"], ["composited"]),
        helper.make_node("Mul", ["composited", "scale"], ["output"]),
    ]
    inputs = [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, size, size]),
              helper.make_tensor_value_info("mask", TensorProto.FLOAT, [1, 1, size, size])]
    return nodes, inputs, constants


# --------------------------------------------------------------------------------------------------
# Matting
# --------------------------------------------------------------------------------------------------


@_seeded_and_quiet
def build_vitmatte(folder: Path) -> Path:
    """VitMatteImageProcessor + VitMatteForImageMatting (tiny ViTDet backbone, patch 16 like the real
    one, so the 4 fusion blocks still upsample back to full size).

    Default initialisation leaves every alpha at 0.5 (the BatchNorm scales start near 0), which would
    hide mistakes in windowing; the convolutions get He initialisation and unit BatchNorm scales so
    that alphas spread over (0, 1)."""
    from torch import nn
    from transformers import VitDetConfig, VitMatteConfig, VitMatteForImageMatting, VitMatteImageProcessor

    backbone = VitDetConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        mlp_ratio=2,
        num_channels=4,  # RGB + trimap
        image_size=64,
        pretrain_image_size=64,
        patch_size=16,
        window_size=2,
        window_block_indices=[0],  # block 1 attends globally, as every third block of the real one
        residual_block_indices=[1],
        use_relative_position_embeddings=True,
        out_features=["stage2"],
    )
    config = VitMatteConfig(backbone_config=backbone, hidden_size=32, convstream_hidden_sizes=[8, 16, 16],
                            fusion_hidden_sizes=[16, 16, 8, 8])
    model = VitMatteForImageMatting(config).eval()
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
    model.save_pretrained(folder, safe_serialization=True)
    VitMatteImageProcessor().save_pretrained(folder)
    return folder


# --------------------------------------------------------------------------------------------------
# Building a set of folders
# --------------------------------------------------------------------------------------------------

BUILDERS: dict[str, Callable[[str | Path], Path]] = {
    "grounding-dino": build_grounding_dino,
    "owlv2": build_owlv2,
    "sam": build_sam,
    "sam2": build_sam2,
    "sam3": build_sam3,
    "sd-inpaint": build_sd_inpaint,
    "sdxl-inpaint": build_sdxl_inpaint,
    "flux-fill": build_flux_fill,
    "lama": build_lama,
    "vitmatte": build_vitmatte,
    "lcm-lora": build_lcm_lora,
    "tcd-lora-sdxl": build_tcd_lora_sdxl,
    "flux-turbo-lora": build_flux_turbo_lora,
    "taesd": build_taesd,
}
MODEL_NAMES: tuple[str, ...] = tuple(BUILDERS)


def is_complete(folder: str | Path) -> bool:
    """Whether `folder` holds a model finished by this version of the kit."""
    marker = Path(folder) / MARKER_FILE
    try:
        return json.loads(marker.read_text()).get("kit_version") == KIT_VERSION
    except (OSError, ValueError):
        return False


def _build_one(name: str, target: Path, overwrite: bool) -> None:
    """Build model `name` into a temporary sibling of `target`, then rename it into place."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".tmp", dir=target.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private
    try:
        BUILDERS[name](tmp)
        (tmp / MARKER_FILE).write_text(json.dumps({"name": name, "kit_version": KIT_VERSION}) + "\n")
        if target.exists():
            if not overwrite and is_complete(target):  # another process finished it meanwhile
                return
            old = Path(tempfile.mkdtemp(prefix=f".{name}.", suffix=".old", dir=target.parent))
            os.replace(target, old / name)
            shutil.rmtree(old, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            if not is_complete(target):  # lost a race to a process that wrote something else
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def build_all(
    root: str | Path, only: Iterable[str] | None = None, overwrite: bool = False
) -> dict[str, Path]:
    """Write the tiny models into ``root/<name>`` and return ``{name: folder}``.

    `only` restricts the set (names from `MODEL_NAMES`). A folder already complete (see `is_complete`)
    is kept unless `overwrite`; each model is written to a temporary folder and renamed into place, so
    an interrupted build never leaves a folder that looks complete.
    """
    names = list(MODEL_NAMES) if only is None else list(dict.fromkeys(only))
    unknown = [name for name in names if name not in BUILDERS]
    if unknown:
        raise ValueError(f"unknown tiny model(s) {unknown}; known: {', '.join(MODEL_NAMES)}")
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    folders = {}
    for name in names:
        target = root / name
        if overwrite or not is_complete(target):
            _build_one(name, target, overwrite)
        folders[name] = target
    return folders


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m promptpaint.testing.tiny_models",
        description="Write tiny random models (same classes as production) for offline tests.",
    )
    parser.add_argument("root", type=Path, help="folder to write the models into (one subfolder each)")
    parser.add_argument("--only", nargs="+", choices=MODEL_NAMES, metavar="NAME",
                        help=f"build only these ({', '.join(MODEL_NAMES)})")  # fmt: skip
    parser.add_argument("--overwrite", action="store_true", help="rebuild folders that are already complete")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for name, folder in build_all(args.root, only=args.only, overwrite=args.overwrite).items():
        print(f"{name}\t{folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

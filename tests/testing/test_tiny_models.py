"""The tiny-model kit: every folder loads through the production loaders and runs a forward pass."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("diffusers")

from PIL import Image  # noqa: E402

from promptpaint.testing import tiny_models  # noqa: E402
from promptpaint.testing.tiny_models import MARKER_FILE, MODEL_NAMES, build_all  # noqa: E402

H, W = 60, 90  # an odd, non-square image size


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[dict[str, Path], float]:
    root = tmp_path_factory.mktemp("tiny")
    start = time.perf_counter()
    folders = build_all(root)
    return folders, time.perf_counter() - start


@pytest.fixture(scope="module")
def folders(built) -> dict[str, Path]:
    return built[0]


@pytest.fixture
def image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (H, W, 3), dtype=np.uint8))


@pytest.fixture
def mask() -> Image.Image:
    m = Image.new("L", (W, H), 0)
    m.paste(255, (20, 10, 60, 40))
    return m


def _env_with_src() -> dict[str, str]:
    """The environment for a child Python that imports this checkout's promptpaint."""
    src = str(Path(tiny_models.__file__).parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [src, os.environ.get("PYTHONPATH")]))}


def _total_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------ the kit


def test_build_all_writes_every_model(built, capsys):
    folders, seconds = built
    assert list(folders) == list(MODEL_NAMES)
    for name, folder in folders.items():
        assert folder.name == name and (folder / MARKER_FILE).is_file(), name
        assert tiny_models.is_complete(folder)
    assert not [p for p in folders["sam"].parent.iterdir() if p.name.startswith(".")]  # no temp folders left
    with capsys.disabled():
        print(f"\n[tiny models] build_all: {seconds:.2f} s")
    assert seconds < 60


def test_kit_is_small(folders, capsys):
    sizes = {name: _total_bytes(folder) for name, folder in folders.items()}
    with capsys.disabled():
        print("\n[tiny models] " + ", ".join(f"{n} {b / 1e6:.2f} MB" for n, b in sizes.items()))
        print(f"[tiny models] total {sum(sizes.values()) / 1e6:.2f} MB")
    assert all(size < 10e6 for size in sizes.values()), sizes
    assert sum(sizes.values()) < 40e6
    pickles = {".bin", ".pt", ".pth", ".ckpt"}
    weights = [p for folder in folders.values() for p in folder.rglob("*") if p.suffix in pickles]
    assert not weights, "everything is saved as safetensors"


def test_second_build_is_a_noop(folders):
    root = folders["sam"].parent
    stamps = {name: (folder / MARKER_FILE).stat().st_mtime_ns for name, folder in folders.items()}
    start = time.perf_counter()
    again = build_all(root)
    assert time.perf_counter() - start < 1.0
    assert again == folders
    assert {name: (folder / MARKER_FILE).stat().st_mtime_ns for name, folder in again.items()} == stamps


def test_incomplete_folder_is_rebuilt_and_overwrite_rebuilds(tmp_path):
    (tmp_path / "lama").mkdir()
    (tmp_path / "lama" / "junk.txt").write_text("half-written")
    folder = build_all(tmp_path, only=["lama"])["lama"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(["lama.onnx", MARKER_FILE])
    stamp = (folder / MARKER_FILE).stat().st_mtime_ns
    time.sleep(0.01)
    build_all(tmp_path, only=["lama"], overwrite=True)
    assert (folder / MARKER_FILE).stat().st_mtime_ns != stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["lama"]


def test_builds_are_deterministic(tmp_path, folders):
    def digest(folder: Path) -> dict[str, str]:
        return {
            str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in folder.rglob("*")
            if p.suffix in {".safetensors", ".onnx"}
        }

    torch.manual_seed(1234)
    state = torch.get_rng_state()
    again = build_all(tmp_path, only=["sam", "sd-inpaint", "lama"])
    assert torch.equal(torch.get_rng_state(), state), "the caller's RNG state is left alone"
    for name, folder in again.items():
        assert digest(folder) == digest(folders[name]), name


def test_unknown_name_is_rejected(tmp_path):
    with pytest.raises(ValueError, match="unknown tiny model"):
        build_all(tmp_path, only=["sam4"])


def test_cli(tmp_path):
    env = _env_with_src()
    result = subprocess.run(
        [sys.executable, "-m", "promptpaint.testing.tiny_models", str(tmp_path), "--only", "lama"],
        capture_output=True, text=True, env=env, timeout=120, check=True,
    )  # fmt: skip  (lama only: no torch import, so the child starts fast)
    assert result.stdout.split() == ["lama", str(tmp_path / "lama")]
    assert tiny_models.is_complete(tmp_path / "lama")


def test_import_is_light():
    code = (
        "import sys, promptpaint; before = set(sys.modules); "
        "import promptpaint.testing.tiny_models; "
        "heavy = {'torch', 'transformers', 'diffusers', 'onnx', 'numpy'} & (set(sys.modules) - before); "
        "print(sorted(heavy))"
    )
    env = _env_with_src()
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip() == "[]"


# -------------------------------------------------------------------------------------- detectors


def test_grounding_dino(folders, image):
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

    processor = AutoProcessor.from_pretrained(folders["grounding-dino"])
    model = AutoModelForZeroShotObjectDetection.from_pretrained(folders["grounding-dino"]).eval()
    assert type(processor).__name__ == "GroundingDinoProcessor"
    assert type(model).__name__ == "GroundingDinoForObjectDetection"

    inputs = processor(images=image, text="cat. dog.", return_tensors="pt")
    tokens = processor.tokenizer.convert_ids_to_tokens(inputs.input_ids[0])
    assert tokens == ["[CLS]", "cat", ".", "dog", ".", "[SEP]"]
    assert max(inputs.pixel_values.shape[-2:]) <= 192
    with torch.no_grad():
        outputs = model(**inputs)
    num_queries = model.config.num_queries
    assert outputs.pred_boxes.shape == (1, num_queries, 4)
    assert outputs.logits.shape[:2] == (1, num_queries)

    results = processor.post_process_grounded_object_detection(
        outputs, input_ids=inputs.input_ids, threshold=0.0, text_threshold=0.0, target_sizes=[(H, W)]
    )
    assert len(results) == 1
    result = results[0]
    assert result["boxes"].shape == (num_queries, 4)
    assert result["scores"].shape == (num_queries,)
    assert len(result["text_labels"]) == num_queries
    assert all(isinstance(label, str) for label in result["text_labels"])


def test_owlv2(folders, image):
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor, Owlv2ForObjectDetection

    processor = AutoProcessor.from_pretrained(folders["owlv2"])
    model = AutoModelForZeroShotObjectDetection.from_pretrained(folders["owlv2"]).eval()
    assert type(processor).__name__ == "Owlv2Processor"
    assert isinstance(model, Owlv2ForObjectDetection)

    queries = [["a cat", "a dog"]]
    inputs = processor(text=queries, images=image, return_tensors="pt")
    size = model.config.vision_config.image_size
    assert inputs.pixel_values.shape == (1, 3, size, size)
    assert (inputs.input_ids[:, 0] > 0).all(), "OWLv2 drops queries whose first id is 0"
    with torch.no_grad():
        outputs = model(**inputs)
    num_boxes = (size // model.config.vision_config.patch_size) ** 2
    assert outputs.logits.shape == (1, num_boxes, 2)
    assert outputs.pred_boxes.shape == (1, num_boxes, 4)

    results = processor.post_process_grounded_object_detection(
        outputs=outputs, threshold=0.0, target_sizes=[(H, W)], text_labels=queries
    )
    result = results[0]
    assert result["boxes"].shape == (num_boxes, 4)
    assert set(result["text_labels"]) <= {"a cat", "a dog"}
    assert result["labels"].max() <= 1


# ------------------------------------------------------------------------------------- segmenters


def test_sam_embedding_reused_for_many_boxes(folders, image):
    from transformers import SamModel, SamProcessor

    processor = SamProcessor.from_pretrained(folders["sam"])
    model = SamModel.from_pretrained(folders["sam"]).eval()
    boxes = [[[5, 5, 40, 30], [10, 20, 80, 55], [0, 0, W, H]]]
    inputs = processor(images=image, input_boxes=boxes, return_tensors="pt")
    assert inputs.pixel_values.shape == (1, 3, 128, 128)
    with torch.no_grad():
        embeddings = model.get_image_embeddings(inputs.pixel_values)
        outputs = model(image_embeddings=embeddings, input_boxes=inputs.input_boxes, multimask_output=True)
    assert embeddings.shape == (1, 32, 8, 8)
    assert outputs.pred_masks.shape == (1, 3, 3, 32, 32)
    assert outputs.iou_scores.shape == (1, 3, 3)
    masks = processor.post_process_masks(
        outputs.pred_masks, inputs.original_sizes, inputs.reshaped_input_sizes
    )
    assert masks[0].shape == (3, 3, H, W) and masks[0].dtype == torch.bool


def test_sam2_embedding_reused_for_many_boxes(folders, image):
    from transformers import AutoProcessor, Sam2Model, Sam2Processor

    processor = AutoProcessor.from_pretrained(folders["sam2"])
    assert isinstance(processor, Sam2Processor)
    model = Sam2Model.from_pretrained(folders["sam2"]).eval()
    pixels = processor(images=image, return_tensors="pt")
    boxes = processor(input_boxes=[[[5, 5, 40, 30], [10, 20, 80, 55]]], original_sizes=pixels.original_sizes,
                      return_tensors="pt")  # fmt: skip
    with torch.no_grad():
        embeddings = model.get_image_embeddings(pixels.pixel_values)  # a list, one tensor per level
        outputs = model(image_embeddings=embeddings, input_boxes=boxes.input_boxes, multimask_output=True)
    assert outputs.pred_masks.shape == (1, 2, 3, 32, 32)
    assert outputs.iou_scores.shape == (1, 2, 3)
    masks = processor.post_process_masks(outputs.pred_masks, pixels.original_sizes)
    assert masks[0].shape == (2, 3, H, W) and masks[0].dtype == torch.bool


def test_sam3_text_prompt(folders, image):
    from transformers import AutoProcessor, Sam3Model

    processor = AutoProcessor.from_pretrained(folders["sam3"])
    model = Sam3Model.from_pretrained(folders["sam3"]).eval()
    assert type(processor).__name__ == "Sam3Processor"
    inputs = processor(images=image, text="cat", return_tensors="pt")
    with torch.no_grad():
        outputs = model(**inputs)
    queries = model.config.detr_decoder_config.num_queries
    assert outputs.pred_masks.shape[:2] == (1, queries)
    assert outputs.pred_logits.shape == (1, queries)
    results = processor.post_process_instance_segmentation(
        outputs, threshold=0.0, mask_threshold=0.0, target_sizes=[(H, W)]
    )
    assert results[0]["masks"].shape == (queries, H, W)
    assert results[0]["boxes"].shape == (queries, 4)
    assert results[0]["scores"].shape == (queries,)


def test_sam3_many_prompts_one_image_embedding(folders, image):
    from transformers import AutoProcessor, Sam3Model
    from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

    processor = AutoProcessor.from_pretrained(folders["sam3"])
    model = Sam3Model.from_pretrained(folders["sam3"]).eval()
    prompts = ["cat", "a dog", "tree"]
    pixels = processor(images=image, return_tensors="pt")
    text = processor(text=prompts, return_tensors="pt")
    with torch.no_grad():
        vision = model.get_vision_features(pixel_values=pixels.pixel_values)
        # the vision batch must match the text batch: expand (a view, no copy) to one row per prompt
        n = len(prompts)
        expanded = Sam3VisionEncoderOutput(
            last_hidden_state=vision.last_hidden_state.expand(n, *vision.last_hidden_state.shape[1:]),
            fpn_hidden_states=tuple(t.expand(n, *t.shape[1:]) for t in vision.fpn_hidden_states),
            fpn_position_encoding=tuple(t.expand(n, *t.shape[1:]) for t in vision.fpn_position_encoding),
        )
        batched = model(vision_embeds=expanded, input_ids=text.input_ids, attention_mask=text.attention_mask)
        single = model(
            vision_embeds=vision, input_ids=text.input_ids[1:2], attention_mask=text.attention_mask[1:2]
        )
    assert batched.pred_masks.shape[0] == n
    torch.testing.assert_close(batched.pred_masks[1], single.pred_masks[0], atol=1e-5, rtol=1e-5)
    results = processor.post_process_instance_segmentation(
        batched, threshold=0.0, mask_threshold=0.0, target_sizes=[(H, W)] * n
    )
    assert len(results) == n


# ------------------------------------------------------------------------------------- inpainters


@pytest.mark.parametrize(
    ("name", "pipeline_class"),
    [("sd-inpaint", "StableDiffusionInpaintPipeline"), ("sdxl-inpaint", "StableDiffusionXLInpaintPipeline")],
)
def test_sd_family_inpaint(folders, image, mask, name, pipeline_class):
    from diffusers import AutoPipelineForInpainting

    pipe = AutoPipelineForInpainting.from_pretrained(folders[name])
    assert type(pipe).__name__ == pipeline_class
    pipe.set_progress_bar_config(disable=True)
    for height, width in [(64, 64), (64, 96)]:
        result = pipe(
            prompt="a cat", image=image, mask_image=mask, height=height, width=width,
            num_inference_steps=2, generator=torch.Generator().manual_seed(0),
        )  # fmt: skip
        assert result.images[0].size == (width, height)


def test_flux_fill(folders, image, mask):
    from diffusers import FluxFillPipeline

    pipe = FluxFillPipeline.from_pretrained(folders["flux-fill"])
    pipe.set_progress_bar_config(disable=True)
    for height, width in [(64, 64), (64, 96)]:
        result = pipe(
            prompt="a cat", image=image, mask_image=mask, height=height, width=width,
            num_inference_steps=2, generator=torch.Generator().manual_seed(0),
        )  # fmt: skip
        assert result.images[0].size == (width, height)


def test_lama_onnx(folders):
    ort = pytest.importorskip("onnxruntime")

    path = str(folders["lama"] / "lama.onnx")
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    (out,) = session.get_outputs()
    assert (inp.name, inp.type, inp.shape[:2]) == ("input", "tensor(float)", [1, 4])
    assert (out.name, out.shape[:2]) == ("output", [1, 3])
    for height, width in [(64, 96), (128, 64)]:
        x = np.random.default_rng(0).random((1, 4, height, width), dtype=np.float32)
        (y,) = session.run(None, {"input": x})
        assert y.shape == (1, 3, height, width) and y.dtype == np.float32
        assert 0.0 <= y.min() and y.max() <= 1.0


def test_vitmatte(folders, image):
    from transformers import AutoProcessor, VitMatteForImageMatting

    processor = AutoProcessor.from_pretrained(folders["vitmatte"])
    model = VitMatteForImageMatting.from_pretrained(folders["vitmatte"]).eval()
    assert type(processor).__name__ == "VitMatteImageProcessor"
    trimap = Image.new("L", (W, H), 0)
    trimap.paste(128, (10, 5, 70, 50))
    trimap.paste(255, (25, 15, 55, 40))
    inputs = processor(images=image, trimaps=trimap, return_tensors="pt")
    assert inputs.pixel_values.shape == (1, 4, 64, 96)  # RGB + trimap, padded to multiples of 32
    with torch.no_grad():
        alphas = model(**inputs).alphas
    assert alphas.shape == (1, 1, 64, 96)
    assert float(alphas.std()) > 0.02, "alphas spread over (0, 1): windowing mistakes would show"

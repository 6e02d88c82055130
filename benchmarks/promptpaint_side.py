"""promptpaint's side: the job through the public Pipeline API, in a process of its own.

Stages are charged by wrapping the loaded backends' ``detect``, ``segment`` and ``inpaint`` methods
with timers (glue here, not in the library); everything else (mask algebra, crop, resize, blend)
counts in ``total_s`` only.

    python -m benchmarks.promptpaint_side CONFIG.json RESULT.json
"""

from __future__ import annotations

import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.job import JOB, LABELS, WARMUP_PHOTO, SideConfig, changed_outside, choose_boxes, clip_to_box, photo
from benchmarks.measure import StepClock, Stopwatch, cuda_peak_mb, load_average, peak_rss_mb


def load(config: SideConfig, watch: Stopwatch):
    """A Pipeline with every model loaded. The remover is promptpaint's default, LaMa (big-lama with
    random weights as the public 512x512 ONNX export with full models, the kit's tiny LaMa with tiny
    ones); its calls count in the inpaint stage, and also in a ``remove`` stage of their own.
    The libraries are imported first, as the naive side does, so that ``load_s`` is loading alone."""
    from diffusers import AutoPipelineForInpainting, DPMSolverMultistepScheduler  # noqa: F401
    from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor, SamModel  # noqa: F401

    from promptpaint.pipeline.pipeline import Pipeline

    with watch.stage("load"):
        pipe = Pipeline(detector=config.models["grounding-dino"], segmenter=config.models["sam"],
                        inpainter=config.models["inpainter"], remover=config.models["remover"],
                        device=config.device, compile=config.compile, offload=config.offload)
        detector, segmenter, inpainter, remover = pipe.detector(), pipe.segmenter(), painter(pipe, config), pipe.remover()
    watch.wrap(detector, "detect", "detect")
    watch.wrap(segmenter, "segment", "segment")
    watch.wrap(inpainter, "inpaint", "inpaint")
    watch.wrap(remover, "inpaint", "remove")
    watch.wrap(remover, "inpaint", "inpaint")
    return pipe


def preset_options(config: SideConfig) -> dict:
    """The edit options of the preset: with ``fast``, fast mode with the benchmark's LoRA (the
    full-size random twin of the published one)."""
    return {"fast": True, "fast_lora": config.models["fast-lora"]} if config.preset == "fast" else {}


def painter(pipe, config: SideConfig):
    """The diffusion model the preset's edits call (the fast one shares the plain one's weights)."""
    inpainter = pipe.inpainter()
    return inpainter.fast(config.models["fast-lora"]) if config.preset == "fast" else inpainter


def describe_remover(remover) -> str:
    """e.g. "LaMa ONNX, fixed 512x512" (the input size the export takes)."""
    if remover.family != "lama":
        return remover.model_id
    size = remover.fixed_size
    return f"LaMa ONNX, {f'fixed {size[0]}x{size[1]}' if size else 'dynamic size'}"


def edit_photo(pipe, rgb: np.ndarray, config: SideConfig,
               clock: StepClock | None = None) -> tuple[np.ndarray, np.ndarray, list, list, float]:
    """The three-edit job: one detection pass for all labels, one image embedding and one decoder
    call for all boxes, then each edit repaints a window around its mask at the model's size.
    Returns (final image, union of the edit masks, boxes, where each box came from, seconds until
    the first edit was done: one replace edit's latency, end to end)."""
    started = time.perf_counter()
    h, w = rgb.shape[:2]
    found = pipe.detect(rgb, LABELS, box_threshold=config.box_threshold, text_threshold=config.text_threshold)
    boxes, sources = choose_boxes(found.xyxy, found.scores, found.labels, (w, h))
    segmentation = pipe.segment(rgb, box=boxes)
    masks = [clip_to_box(mask, box) for mask, box in zip(segmentation.detections.masks, boxes)]
    current, area, first_edit_s = rgb, np.zeros((h, w), bool), 0.0
    for edit, mask in zip(JOB, masks):
        common = {"mask": mask, "seed": edit.seed, "steps": config.steps, "progress": clock.tick if clock else None,
                  **preset_options(config)}
        if edit.op == "replace":
            result = pipe.replace(current, prompt=edit.prompt, **common)
        elif edit.op == "background":
            result = pipe.replace(current, keep=edit.label, prompt=edit.prompt, **common)
        else:
            result = pipe.remove(current, **common)
        current, area = result.image, area | result.mask
        first_edit_s = first_edit_s or time.perf_counter() - started
    return current, area, boxes, sources, first_edit_s


def run_batch(pipe, config: SideConfig) -> tuple[dict[str, list], float]:
    """Edit every batch file; one I/O thread decodes the next photo and encodes the last result
    while the models work on the current one."""
    from promptpaint.core.images import load_image, save_image

    files, boxes = config.batch, {}
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="io") as io:
        next_photo = io.submit(load_image, files[0])
        writes = []
        for i, file in enumerate(files):
            loaded = next_photo.result()
            if i + 1 < len(files):
                next_photo = io.submit(load_image, files[i + 1])
            image, _, boxes[file], _, _ = edit_photo(pipe, loaded.rgb, config)
            writes.append(io.submit(save_image, Path(config.out_dir) / f"promptpaint-{i}.png", image))
        for write in writes:
            write.result()
    return boxes, time.perf_counter() - started


def warm_up(pipe, config: SideConfig, size: tuple[int, int], watch: Stopwatch) -> float:
    """Run the job once on another photo of the same size: CUDA kernels chosen, torch.compile done."""
    with watch.stage("warmup"):
        edit_photo(pipe, photo(WARMUP_PHOTO, size), config)
    return watch.get("warmup")


def run(config: SideConfig) -> dict:
    from promptpaint.core.images import load_image, save_image

    watch = Stopwatch(config.device)
    pipe = load(config, watch)
    load_s = watch.get("load")
    rgb = load_image(config.photo).rgb
    warmup_s = warm_up(pipe, config, rgb.shape[1::-1], watch) if config.warmup else None
    watch.reset()
    clock = StepClock() if config.device == "cpu" else None
    loads = [load_average()]
    with watch.stage("total"):
        image, area, boxes, sources, first_edit_s = edit_photo(pipe, rgb, config, clock)
    save_image(Path(config.out_dir) / "promptpaint.png", image)
    inpainter = painter(pipe, config)
    result = {
        "load_s": load_s,
        **watch.figures(),
        "first_edit_s": round(first_edit_s, 3),
        "load_average": loads + [load_average()],
        "preset": config.preset,
        "steps": config.steps or inpainter.default_steps,
        "default_steps": inpainter.default_steps,
        "guidance": inpainter.default_guidance,
        "step_s": clock.step_s() if clock else None,
        "remover": describe_remover(pipe.remover()),
        "remove_s": watch.get("remove"),
        "diffusion_calls": watch.calls["inpaint"] - watch.calls["remove"],  # the calls that take steps
        "scheduler": inpainter.scheduler,
        "lora": inpainter.lora,
        **changed_outside(rgb, image, area),
        "boxes": boxes,
        "box_sources": dict(zip(LABELS, sources)),
    }
    if warmup_s is not None:
        result["warmup_s"] = warmup_s  # with --compile: the compile cost is in here
    if config.batch:
        watch.reset()
        result["batch_boxes"], batch_s = run_batch(pipe, config)
        result["batch"] = {"photos": len(config.batch), "total_s": round(batch_s, 3),
                           "per_photo_s": round(batch_s / len(config.batch), 3)}
    result["peak_rss_mb"] = peak_rss_mb()
    result["peak_cuda_mb"] = cuda_peak_mb(config.device)
    if config.device == "cuda":
        import torch

        result["gpu"] = torch.cuda.get_device_name()
    return result


def main(argv: list[str]) -> int:
    config_path, result_path = argv
    result = run(SideConfig.load(config_path))
    Path(result_path).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

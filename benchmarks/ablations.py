"""Each speed-up on its own, measured on promptpaint's loaded backends, in a process of its own.

Every entry compares the same work done without and with one speed-up (``speedup`` = without / with).
Entries that only mean something on a GPU say "n/a on CPU" there.

    python -m benchmarks.ablations CONFIG.json RESULT.json
"""

from __future__ import annotations

import gc
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.job import JOB, LABELS, SideConfig, box_mask, choose_boxes
from benchmarks.measure import Stopwatch, reset_cuda_peak
from benchmarks.promptpaint_side import describe_remover

NOT_ON_CPU = "n/a on CPU"


def compare(without: str, without_s: float, with_: str, with_s: float, **extra) -> dict:
    # Microseconds kept: a tiny model's call (the test kit's LaMa) takes well under a millisecond.
    return {"without": without, "without_s": round(without_s, 6), "with": with_, "with_s": round(with_s, 6),
            "speedup": round(without_s / with_s, 2) if with_s > 0 else None, **extra}


def seconds(watch: Stopwatch, fn, *args, **kwargs) -> float:
    watch.sync()
    started = time.perf_counter()
    fn(*args, **kwargs)
    watch.sync()
    return time.perf_counter() - started


def nudged(rgb: np.ndarray, k: int) -> np.ndarray:
    """The photo with one pixel changed: other content, so no embedding cached for it."""
    out = rgb.copy()
    out[0, 0, 0] ^= np.uint8(k + 1)
    return out


# ---------------------------------------------------------------- detection and segmentation

def one_detection_pass(detector, rgb, config: SideConfig, watch: Stopwatch) -> dict:
    thresholds = (config.box_threshold, config.text_threshold)
    per_label = sum(seconds(watch, detector.detect, rgb, [label], *thresholds) for label in LABELS)
    together = seconds(watch, detector.detect, rgb, LABELS, *thresholds)
    return compare(f"{len(LABELS)} passes, one per label", per_label, "one pass for all labels", together)


def segmentation(segmenter, rgb, boxes, watch: Stopwatch) -> tuple[dict, dict]:
    """Embedding reuse (encode once, not per prompt) and batched boxes (one decoder call for all)."""
    boxes = np.asarray(boxes, np.float32)
    re_encode = sum(seconds(watch, segmenter.segment, nudged(rgb, i + 1), boxes=boxes[i:i + 1])
                    for i in range(len(boxes)))
    fresh = nudged(rgb, 0)
    reuse = seconds(watch, segmenter.segment, fresh, boxes=boxes)  # one encode, one decoder call
    box_by_box = sum(seconds(watch, segmenter.segment, fresh, boxes=boxes[i:i + 1]) for i in range(len(boxes)))
    batched = seconds(watch, segmenter.segment, fresh, boxes=boxes)
    return (compare("image encoded per prompt", re_encode, "one embedding for all prompts", reuse),
            compare("one decoder call per box", box_by_box, "one decoder call for all boxes", batched,
                    note="embedding already cached"))


# ---------------------------------------------------------------- generation

@dataclass(frozen=True)
class Timing:
    total_s: float
    step_s: float | None  # the fastest denoising step (CPU only: on a GPU the callback does not wait)


class Generation:
    """Timed calls of one inpainter on the crop promptpaint would send it for a box-shaped edit."""

    def __init__(self, inpainter, rgb: np.ndarray, box: list[float], watch: Stopwatch):
        self.inpainter, self.rgb, self.box, self.watch = inpainter, rgb, box, watch
        self.crop, self.crop_mask, self.size = window_job(inpainter, rgb, box)

    def run(self, steps: int, whole_photo: bool = False) -> Timing:
        images, mask = [self.crop], self.crop_mask
        if whole_photo:  # the photo at its own resolution (cut to the model's multiple)
            m = self.inpainter.multiple
            h, w = (self.rgb.shape[0] // m) * m, (self.rgb.shape[1] // m) * m
            images, mask = [np.ascontiguousarray(self.rgb[:h, :w])], box_mask((h, w), self.box)
        marks: list[float] = []
        total = seconds(self.watch, self.inpainter.inpaint, images, mask, prompt=JOB[0].prompt, negative_prompt="",
                        seeds=[1], steps=steps, guidance=None, strength=1.0,
                        progress=lambda i, n: marks.append(time.perf_counter()))
        step = float(np.min(np.diff(marks))) if len(marks) > 1 and self.watch.device == "cpu" else None
        return Timing(total, step)


def window_job(model, rgb, box) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """The crop promptpaint sends ``model`` for a box-shaped edit: the window around it, at the size
    the model works at."""
    from promptpaint.core import masks as M
    from promptpaint.core.images import resize_image
    from promptpaint.pipeline.stitch import StitchSettings, job_size, plan_windows

    mask = box_mask(rgb.shape[:2], box)
    settings = StitchSettings(working_size=model.working_size, multiple=model.multiple, upscale=model.upscale)
    window = plan_windows(mask, settings)[0]
    size = job_size(window, settings)
    return resize_image(rgb[window.slices], size), M.resize_mask(mask[window.slices], size), size


def crop_window(gen: Generation, cropped: Timing, steps: int) -> dict:
    """Generating a window at the model's size vs generating the whole photo at its own resolution."""
    whole = gen.run(steps, whole_photo=True)
    h, w = gen.rgb.shape[:2]
    return compare(f"whole photo at {w}x{h}", whole.total_s, f"crop window at {gen.size[0]}x{gen.size[1]}",
                   cropped.total_s, steps=steps)


def step_count(gen: Generation, cropped: Timing, steps: int) -> dict:
    """Default step counts: naive 50 (the pipeline's default) vs promptpaint 25 (DPM++ 2M Karras).
    On a GPU both are run; on a CPU one step is timed and the defaults projected."""
    default = gen.inpainter.default_steps
    if cropped.step_s is None:
        return compare("50 steps", gen.run(50).total_s, f"{default} steps", gen.run(default).total_s)
    fixed = max(0.0, cropped.total_s - steps * cropped.step_s)
    return compare("50 steps (projected)", fixed + 50 * cropped.step_s,
                   f"{default} steps (projected)", fixed + default * cropped.step_s,
                   step_s=round(cropped.step_s, 3), fixed_s=round(fixed, 3),
                   note=f"fixed = text encoder + VAE encode/decode; measured at {steps} steps")


def attention(gen: Generation, cropped: Timing, steps: int) -> dict:
    """PyTorch's fused scaled-dot-product attention (diffusers' default) vs the classic matmul-softmax
    (per denoising step on a CPU, whole calls on a GPU)."""
    from diffusers.models.attention_processor import AttnProcessor

    pipe = gen.inpainter.pipe
    saved = {module: module.attn_processors for module in (pipe.unet, pipe.vae)}
    try:
        for module in saved:
            module.set_attn_processor(AttnProcessor())
        classic = gen.run(steps)
    finally:
        for module, processors in saved.items():
            module.set_attn_processor(processors)
    if cropped.step_s is not None and classic.step_s is not None:
        return compare("classic attention, one step", classic.step_s, "SDPA, one step", cropped.step_s,
                       whole_call_s={"classic": round(classic.total_s, 3), "sdpa": round(cropped.total_s, 3)})
    return compare("classic attention", classic.total_s, "SDPA", cropped.total_s, steps=steps)


def remover_choice(pipe, gen: Generation, cropped: Timing, steps: int, watch) -> dict:
    """Plain removal: promptpaint's default remover, LaMa (big-lama as ONNX with full models), vs the
    diffusion inpainter, on the same crop (the one ``cropped`` timed); OpenCV Telea as a third figure."""
    lama, telea = pipe.remover(), pipe.remover("telea")
    lama_s = seconds(watch, lama.inpaint, [gen.crop], gen.crop_mask)
    telea_s = seconds(watch, telea.inpaint, [gen.crop], gen.crop_mask)
    w, h = gen.size
    return compare(f"diffusion inpainter, {steps} steps", cropped.total_s, "LaMa", lama_s,
                   telea_s=round(telea_s, 3), telea_speedup=round(cropped.total_s / telea_s, 1) if telea_s else None,
                   note=f"the same {w}x{h} crop for all three; LaMa model: {describe_remover(lama)}")


# ---------------------------------------------------------------- GPU-only figures

def half_precision(config: SideConfig, gen: Generation, cropped: Timing, steps: int) -> dict | str:
    if config.device != "cuda":
        return NOT_ON_CPU
    from promptpaint.pipeline.pipeline import Pipeline

    fp32 = Pipeline(inpainter=config.models["inpainter"], device="cuda", dtype="float32").inpainter()
    fp32_s = Generation(fp32, gen.rgb, gen.box, gen.watch).run(steps).total_s
    del fp32
    _free_cuda()
    return compare("float32", fp32_s, str(gen.inpainter.dtype).removeprefix("torch."), cropped.total_s,
                   steps=steps)


def channels_last(config: SideConfig, gen: Generation, cropped: Timing, steps: int) -> dict | str:
    if config.device != "cuda":
        return NOT_ON_CPU
    import torch

    unet = gen.inpainter.pipe.unet
    unet.to(memory_format=torch.contiguous_format)
    try:
        contiguous = gen.run(steps).total_s
    finally:
        unet.to(memory_format=torch.channels_last)
    return compare("contiguous (NCHW)", contiguous, "channels-last", cropped.total_s, steps=steps)


def vae_tiling(config: SideConfig, inpainter, watch) -> dict | str:
    """Peak GPU memory of decoding a 2048x1536 image, tiled vs whole."""
    if config.device != "cuda":
        return NOT_ON_CPU
    import torch

    vae = inpainter.pipe.vae
    latents = torch.randn(1, vae.config.latent_channels, 1536 // 8, 2048 // 8, device="cuda", dtype=vae.dtype)
    seconds_, extra_mb = {}, {}
    for tiled in (False, True):
        vae.enable_tiling() if tiled else vae.disable_tiling()
        _free_cuda()
        reset_cuda_peak("cuda")
        base = torch.cuda.memory_allocated()
        with torch.inference_mode():
            seconds_[tiled] = seconds(watch, vae.decode, latents / vae.config.scaling_factor)
        extra_mb["tiled" if tiled else "whole"] = round((torch.cuda.max_memory_allocated() - base) / 2**20)
    vae.disable_tiling()
    return compare("whole decode", seconds_[False], "tiled decode", seconds_[True], peak_extra_mb=extra_mb)


def offload(config: SideConfig, rgb, box, steps, watch) -> dict | str:
    """Peak GPU memory of one edit with every model resident vs with model CPU offload (run last:
    it frees the resident models first)."""
    if config.device != "cuda":
        return NOT_ON_CPU
    import torch

    from promptpaint.backends import registry
    from promptpaint.pipeline.pipeline import Pipeline

    seconds_, peak_mb = {}, {}
    for offloaded in (False, True):
        registry.clear_cache()
        _free_cuda()
        inpainter = Pipeline(inpainter=config.models["inpainter"], device="cuda", offload=offloaded).inpainter()
        reset_cuda_peak("cuda")
        seconds_[offloaded] = Generation(inpainter, rgb, box, watch).run(steps).total_s
        peak_mb["offload" if offloaded else "resident"] = round(torch.cuda.max_memory_allocated() / 2**20)
        del inpainter
    return compare("resident", seconds_[False], "offload", seconds_[True], steps=steps, peak_cuda_mb=peak_mb)


def _free_cuda() -> None:
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


# ---------------------------------------------------------------- batches

def batched_photos(pipe, rgb, box, steps: int, watch: Stopwatch, count: int = 2) -> dict:
    """``count`` same-size photos edited one after another (``Pipeline.run``) vs together
    (``Pipeline.run_many``: one SAM encoder pass, one diffusion call for their same-size crops).
    Each mode gets photos of its own content, so neither finds the other's embeddings cached."""
    recipe = {"steps": steps, "edits": [{"op": "replace", "box": [list(box)], "prompt": JOB[0].prompt, "seed": 1}]}
    alone = [nudged(rgb, 10 + k) for k in range(count)]
    together = [nudged(rgb, 20 + k) for k in range(count)]
    alone_s = seconds(watch, lambda: [pipe.run(photo, recipe) for photo in alone])
    outcomes = []
    together_s = seconds(watch, lambda: outcomes.extend(pipe.run_many([(p, recipe) for p in together],
                                                                      batch_size=count)))
    failed = [repr(o) for o in outcomes if isinstance(o, Exception)]
    if failed:
        raise RuntimeError(f"run_many failed: {failed}")
    return compare(f"{count} photos one at a time", alone_s, f"{count} photos batched", together_s,
                   photos=count, steps=steps)


# ---------------------------------------------------------------- I/O

def io_overlap(pipe, config: SideConfig, watch: Stopwatch) -> dict | str:
    """Cutting the job's labels out of a folder of photos (detect, segment, write an RGBA PNG cut-out):
    decode the next photo and encode the last cut-out on an I/O thread while the models work, vs one
    step after the other."""
    from promptpaint.core.images import load_image, save_image

    files = config.batch
    if len(files) < 2:
        return "needs a batch of at least 2 photos"
    out = Path(config.out_dir)

    def cut_out(rgb: np.ndarray, name: str) -> tuple[Path, np.ndarray, np.ndarray]:
        h, w = rgb.shape[:2]
        found = pipe.detect(rgb, LABELS, box_threshold=config.box_threshold, text_threshold=config.text_threshold)
        boxes, _ = choose_boxes(found.xyxy, found.scores, found.labels, (w, h))
        alpha = pipe.segment(rgb, box=boxes).mask.astype(np.uint8) * 255
        return out / name, rgb, alpha

    def sequential() -> None:
        for i, file in enumerate(files):
            save_image(*cut_out(nudged(load_image(file).rgb, 1), f"cutout-seq-{i}.png"))

    def overlapped() -> None:
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="io") as io:
            next_photo, writes = io.submit(load_image, files[0]), []
            for i in range(len(files)):
                loaded = next_photo.result()
                if i + 1 < len(files):
                    next_photo = io.submit(load_image, files[i + 1])
                # nudged: other content than the sequential pass saw, so no cached embedding helps
                writes.append(io.submit(save_image, *cut_out(nudged(loaded.rgb, 2), f"cutout-io-{i}.png")))
            for write in writes:
                write.result()

    def io_alone() -> None:  # what there is to hide: reading and writing without the models
        for i, file in enumerate(files):
            rgb = load_image(file).rgb
            h, w = rgb.shape[:2]
            save_image(out / f"io-{i}.png", rgb, box_mask((h, w), [w / 4, h / 4, 3 * w / 4, 3 * h / 4]) * np.uint8(255))

    io_s = seconds(watch, io_alone)
    return compare("sequential I/O", seconds(watch, sequential), "I/O overlapped", seconds(watch, overlapped),
                   photos=len(files), io_s=round(io_s, 3))


def run(config: SideConfig) -> dict:
    from promptpaint.core.images import load_image
    from promptpaint.pipeline.pipeline import Pipeline

    watch = Stopwatch(config.device)
    pipe = Pipeline(detector=config.models["grounding-dino"], segmenter=config.models["sam"],
                    inpainter=config.models["inpainter"], remover=config.models["remover"],
                    device=config.device)  # compile: see the main side
    detector, segmenter, inpainter = pipe.detector(), pipe.segmenter(), pipe.inpainter()
    rgb = load_image(config.photo).rgb
    boxes = config.boxes[config.photo]
    steps = max(3, config.steps or 3)  # at least two step-to-step intervals to time a step
    result = {"one_detection_pass": one_detection_pass(detector, rgb, config, watch)}
    result["embedding_reuse"], result["batched_boxes"] = segmentation(segmenter, rgb, boxes, watch)
    gen = Generation(inpainter, rgb, boxes[0], watch)
    cropped = gen.run(steps)
    result["crop_window"] = crop_window(gen, cropped, steps)
    result["steps"] = step_count(gen, cropped, steps)
    result["sdpa"] = attention(gen, cropped, steps)
    result["remover"] = remover_choice(pipe, gen, cropped, steps, watch)
    result["io_overlap"] = io_overlap(pipe, config, watch)
    result["batched_photos"] = batched_photos(pipe, rgb, boxes[0], steps, watch)
    result["half_precision"] = half_precision(config, gen, cropped, steps)
    result["channels_last"] = channels_last(config, gen, cropped, steps)
    result["vae_tiling"] = vae_tiling(config, inpainter, watch)
    result["compile"] = ("see promptpaint.warmup_s" if config.compile else
                         "not measured: pass --compile (the warm-up takes minutes on a CPU)")
    del detector, segmenter, inpainter, gen
    result["offload"] = offload(config, rgb, boxes[0], steps, watch)
    return result


def main(argv: list[str]) -> int:
    config_path, result_path = argv
    Path(result_path).write_text(json.dumps(run(SideConfig.load(config_path)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

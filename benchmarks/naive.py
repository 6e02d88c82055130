"""The naive baseline: the job as the seed project and the peers' demos do it, in a process of its own.

Same libraries, same model folders, loaded the way their READMEs show. For each edit in turn:

1. detect: one Grounding DINO forward for that edit's label alone, then the processor's post-processing;
2. segment: ``SamProcessor(image, input_boxes=...)`` and a full ``SamModel`` forward (image encoder
   included) for that box;
3. inpaint: squash the whole photo and the mask to 512x512 (1024x1024 for SDXL), call
   ``StableDiffusionInpaintPipeline`` with its defaults (50 steps, the scheduler the model folder
   ships, guidance 7.5, safety checker on), stretch the result back to the photo's size.

The boxes are those promptpaint's side chose (the config carries them), so both sides segment and
repaint the same regions; the naive detector still runs once per label, as it would.

    python -m benchmarks.naive CONFIG.json RESULT.json
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.job import (JOB, REMOVE_PROMPT, WARMUP_PHOTO, SideConfig, changed_outside, choose_boxes,
                            clip_to_box, photo)
from benchmarks.measure import StepClock, Stopwatch, cuda_peak_mb, load_average, peak_rss_mb


class NaivePipeline:
    def __init__(self, config: SideConfig, watch: Stopwatch):
        import torch
        from transformers import AutoProcessor, GroundingDinoForObjectDetection, SamModel, SamProcessor

        if config.sdxl:
            from diffusers import StableDiffusionXLInpaintPipeline as InpaintPipeline
        else:
            from diffusers import StableDiffusionInpaintPipeline as InpaintPipeline

        self.config, self.watch, self.device = config, watch, config.device
        self.clock: StepClock | None = None  # set to time denoising steps
        self.square = 1024 if config.sdxl else 512
        folders = config.models
        # The model cards' loading code: fp32 for the detector and SAM, fp16 for diffusion on a GPU.
        dtype = torch.float16 if config.device == "cuda" else torch.float32
        with watch.stage("load"):
            self.gd_processor = AutoProcessor.from_pretrained(folders["grounding-dino"])
            self.gd = GroundingDinoForObjectDetection.from_pretrained(folders["grounding-dino"]).to(self.device)
            self.sam_processor = SamProcessor.from_pretrained(folders["sam"])
            self.sam = SamModel.from_pretrained(folders["sam"]).to(self.device)
            self.sd = InpaintPipeline.from_pretrained(folders["inpainter"], dtype=dtype).to(self.device)
        self.sd.set_progress_bar_config(disable=True)  # output only; the bar costs nothing measurable
        if getattr(self.sd, "safety_checker", None) is not None:
            watch.wrap(self.sd, "run_safety_checker", "safety_checker")

    def detect(self, image, label: str) -> None:
        import torch

        inputs = self.gd_processor(images=image, text=f"{label}.", return_tensors="pt").to(self.device)
        with torch.no_grad():
            outputs = self.gd(**inputs)
        self.gd_processor.post_process_grounded_object_detection(
            outputs, inputs.input_ids, threshold=self.config.box_threshold,
            text_threshold=self.config.text_threshold, target_sizes=[image.size[::-1]])

    def segment(self, image, box: list[float]) -> np.ndarray:
        import torch

        inputs = self.sam_processor(image, input_boxes=[[box]], return_tensors="pt").to(self.device)
        with torch.no_grad():
            outputs = self.sam(**inputs)
        masks = self.sam_processor.image_processor.post_process_masks(
            outputs.pred_masks.cpu(), inputs["original_sizes"].cpu(), inputs["reshaped_input_sizes"].cpu())[0]
        return masks[0, outputs.iou_scores[0, 0].argmax()].numpy()

    def inpaint(self, image, mask: np.ndarray, prompt: str, seed: int):
        import torch
        from PIL import Image

        square = (self.square, self.square)
        kwargs = {} if self.config.steps is None else {"num_inference_steps": self.config.steps}
        if self.clock is not None:  # the benchmark's step timer; the call is otherwise the demos' own
            kwargs["callback_on_step_end"] = self._tick
        mask_image = Image.fromarray(mask.astype(np.uint8) * 255)
        out = self.sd(prompt=prompt, image=image.resize(square), mask_image=mask_image.resize(square),
                      generator=torch.Generator("cpu").manual_seed(seed), **kwargs).images[0]
        return out.resize(image.size)

    def _tick(self, pipe, i: int, t, callback_kwargs: dict) -> dict:
        self.clock.tick(i + 1)
        return callback_kwargs

    def edit_photo(self, image, boxes: list[list[float]]):
        """The three edits, each one from scratch. Returns (final PIL image, union of the masks,
        seconds until the first edit was done)."""
        started, first_edit_s = time.perf_counter(), 0.0
        area = np.zeros(image.size[::-1], bool)
        for edit, box in zip(JOB, boxes):
            self.watch.time("detect", self.detect, image, edit.label)
            mask = clip_to_box(self.watch.time("segment", self.segment, image, box), box)
            if edit.op == "background":
                mask = ~mask
            prompt = REMOVE_PROMPT if edit.op == "remove" else edit.prompt
            image = self.watch.time("inpaint", self.inpaint, image, mask, prompt, edit.seed)
            area |= mask
            first_edit_s = first_edit_s or time.perf_counter() - started
        return image, area, first_edit_s


def warm_up(naive: NaivePipeline, size: tuple[int, int], watch: Stopwatch) -> float:
    """Run the job once on another photo of the same size (its fallback boxes), as a warm server would have."""
    from PIL import Image

    boxes, _ = choose_boxes(np.zeros((0, 4)), np.zeros(0), (), size)
    with watch.stage("warmup"):
        naive.edit_photo(Image.fromarray(photo(WARMUP_PHOTO, size)), boxes)
    return watch.get("warmup")


def run(config: SideConfig) -> dict:
    from PIL import Image

    watch = Stopwatch(config.device)
    naive = NaivePipeline(config, watch)
    load_s = watch.get("load")
    original = Image.open(config.photo).convert("RGB")
    warmup_s = warm_up(naive, original.size, watch) if config.warmup else None
    watch.reset()
    naive.clock = StepClock() if config.device == "cpu" else None
    loads = [load_average()]
    with watch.stage("total"):
        image, area, first_edit_s = naive.edit_photo(original, config.boxes[config.photo])
    image.save(Path(config.out_dir) / "naive.png")
    result = {
        "load_s": load_s,
        **watch.figures(),
        "first_edit_s": round(first_edit_s, 3),
        "load_average": loads + [load_average()],
        "steps": config.steps or 50,
        "default_steps": 50,
        "step_s": naive.clock.step_s() if naive.clock else None,
        "scheduler": type(naive.sd.scheduler).__name__,
        "safety_checker_s": watch.get("safety_checker"),
        **changed_outside(np.asarray(original), np.asarray(image), area),
    }
    if warmup_s is not None:
        result["warmup_s"] = warmup_s
    naive.clock = None
    if config.batch:
        started = time.perf_counter()
        for i, file in enumerate(config.batch):  # one photo after the other: read, edit, write
            edited, _, _ = naive.edit_photo(Image.open(file).convert("RGB"), config.boxes[file])
            edited.save(Path(config.out_dir) / f"naive-{i}.png")
        batch_s = time.perf_counter() - started
        result["batch"] = {"photos": len(config.batch), "total_s": round(batch_s, 3),
                           "per_photo_s": round(batch_s / len(config.batch), 3)}
    result["peak_rss_mb"] = peak_rss_mb()
    result["peak_cuda_mb"] = cuda_peak_mb(config.device)
    return result


def main(argv: list[str]) -> int:
    config_path, result_path = argv
    Path(result_path).write_text(json.dumps(run(SideConfig.load(config_path)), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

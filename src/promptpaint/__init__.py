"""promptpaint: edit images with words.

Find what text names (Grounding DINO, OWLv2, SAM 3), cut it out (SAM, SAM 2) and repaint it
(SD 1.5 / SDXL inpainting, FLUX.1 Fill, LaMa) at full resolution, leaving every other pixel
byte-identical. Heavy libraries are imported only when a model is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "Pipeline": "promptpaint.pipeline.pipeline",
    "Detections": "promptpaint.core.types",
    "Segmentation": "promptpaint.core.types",
    "EditResult": "promptpaint.core.types",
    "ModelOptions": "promptpaint.options",
    "SegmentOptions": "promptpaint.options",
    "EditOptions": "promptpaint.options",
    "Limits": "promptpaint.options",
    "Operation": "promptpaint.operations.base",
    "ReplaceEdit": "promptpaint.operations.replace",
    "RemoveEdit": "promptpaint.operations.remove",
    "OutpaintEdit": "promptpaint.operations.outpaint",
    "load_image": "promptpaint.core.images",
    "save_image": "promptpaint.core.images",
    "load_recipe": "promptpaint.pipeline.recipe",
}

if TYPE_CHECKING:
    from promptpaint.core.images import load_image, save_image
    from promptpaint.core.types import Detections, EditResult, Segmentation
    from promptpaint.operations.base import Operation
    from promptpaint.operations.outpaint import OutpaintEdit
    from promptpaint.operations.remove import RemoveEdit
    from promptpaint.operations.replace import ReplaceEdit
    from promptpaint.options import EditOptions, Limits, ModelOptions, SegmentOptions
    from promptpaint.pipeline.pipeline import Pipeline
    from promptpaint.pipeline.recipe import load_recipe


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'promptpaint' has no attribute {name!r}")


__all__ = [*_LAZY, "__version__"]

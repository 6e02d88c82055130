"""Test helpers shipped with promptpaint.

`promptpaint.testing.tiny_models` writes tiny, randomly initialised models of the same classes the
production code loads (Grounding DINO, OWLv2, SAM, SAM 2, SAM 3, SD 1.5 / SDXL inpainting, FLUX.1 Fill,
LaMa ONNX), so the whole pipeline can be exercised offline and on a CPU in seconds.
"""

"""What every transformers backend shares: loading a processor and a model from a folder, and a
small content-keyed cache for per-image work (encodings, raw scores)."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from promptpaint.backends.registry import ModelRef, load_error, local_folder
from promptpaint.backends.runtime import pick_dtype


class LRU:
    """A thread-safe least-recently-used map; ``get_or_compute`` counts the computations."""

    def __init__(self, size: int):
        self.size = size
        self.computed = 0
        self._items: OrderedDict[Any, Any] = OrderedDict()
        self._lock = threading.Lock()

    def __contains__(self, key: Any) -> bool:
        with self._lock:
            return key in self._items

    def put(self, key: Any, value: Any) -> None:
        """Store a value computed elsewhere (e.g. one of a batch); counts as a computation."""
        with self._lock:
            self.computed += 1
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def reserve(self, count: int) -> None:
        """Hold at least ``count`` items, so that a batch's results all stay until they are used."""
        with self._lock:
            self.size = max(self.size, count)

    def get_or_compute(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()  # outside the lock: model work can take long
        self.put(key, value)
        return value


class TransformersBackend:
    """Loads ``AutoProcessor`` and ``model_class`` from the model's folder, in eval mode on
    ``device``; subclasses say which class (``_model_class``)."""

    generative = False

    def __init__(self, ref: ModelRef, device: str, dtype: str):
        folder = local_folder(ref)  # fails fast, before the slow library imports
        self.ref = ref
        self.folder = folder
        self.model_id = ref.id
        self.device = device
        self.dtype = pick_dtype(dtype, device, generative=self.generative)
        try:
            self.processor = self._processor_class().from_pretrained(folder)
            self.model = self._model_class().from_pretrained(
                folder, dtype=self.dtype, use_safetensors=True).to(device).eval()
        except Exception as error:  # noqa: BLE001
            raise load_error(ref, error) from error

    def _model_class(self):
        raise NotImplementedError

    def _processor_class(self):
        from transformers import AutoProcessor

        return AutoProcessor

    def _to_device(self, inputs) -> dict:
        """Float tensors to the model's device and dtype, integer ones (ids, masks) to its device."""
        import torch

        return {k: (v.to(self.device, self.dtype) if torch.is_floating_point(v) else v.to(self.device))
                for k, v in inputs.items()}

"""Uploaded images kept by content for reuse: the page sends a photo once and then refers to it
by ``image_id`` while the user moves sliders, so nothing is uploaded or decoded twice (and the
segmenter's embedding cache, also keyed by content, answers without re-encoding)."""

from __future__ import annotations

import threading
from collections import OrderedDict

import numpy as np

from promptpaint.core.images import LoadedImage, image_hash
from promptpaint.server.errors import NotFoundError


def image_key(loaded: LoadedImage) -> str:
    """A content hash of the pixels (alpha included): the same photo always gets the same id."""
    pixels = loaded.rgb if loaded.alpha is None else np.dstack([loaded.rgb, loaded.alpha])
    return image_hash(pixels)


class ImageStore:
    """A small thread-safe LRU of decoded images, keyed by :func:`image_key`."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._images: OrderedDict[str, LoadedImage] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, loaded: LoadedImage) -> str:
        key = image_key(loaded)
        with self._lock:
            self._images[key] = self._images.get(key, loaded)
            self._images.move_to_end(key)
            while len(self._images) > self.capacity:
                self._images.popitem(last=False)
        return key

    def get(self, image_id: str) -> LoadedImage:
        with self._lock:
            loaded = self._images.get(image_id)
            if loaded is not None:
                self._images.move_to_end(image_id)
        if loaded is None:
            raise NotFoundError(f"image_id {image_id!r} is unknown or expired; upload the image again")
        return loaded

    def __len__(self) -> int:
        return len(self._images)

"""What the judge is shown: the image encoding and size, an option recorded with every run.

* ``format``: ``png`` (lossless, the default: JPEG blocking is exactly what the PQ question asks
  about) or ``jpeg`` with a ``quality`` (1-95, Pillow's scale; 4:2:0 chroma, Pillow's default).
* ``max_side``: the long side in pixels the images are shrunk to (Lanczos, never enlarged), or
  ``None`` / ``0`` for the native size.

The options are part of every answer's cache key and of the run's resume guard.
"""

from __future__ import annotations

import base64
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..clients.payload import png_bytes
from ..core.images import to_uint8
from ..core.resize import fit_long_side, shrink_to

FORMATS = ("png", "jpeg")
DEFAULT_MAX_SIDE = 1024
DEFAULT_JPEG_QUALITY = 90


@dataclass(frozen=True)
class ImageOptions:
    format: str = "png"
    quality: int | None = None  # jpeg only
    max_side: int | None = DEFAULT_MAX_SIDE  # None = native size

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"judge image format {self.format!r}: expected one of {', '.join(FORMATS)}")
        if self.format == "jpeg":
            q = DEFAULT_JPEG_QUALITY if self.quality is None else self.quality
            if not 1 <= int(q) <= 95:
                raise ValueError(f"judge JPEG quality must be 1-95, got {q}")
            object.__setattr__(self, "quality", int(q))
        elif self.quality is not None:
            raise ValueError("judge image quality applies to --judge-image-format jpeg only")
        if self.max_side is not None:
            if self.max_side == 0:
                object.__setattr__(self, "max_side", None)
            elif self.max_side < 64:
                raise ValueError(f"judge max image side must be >= 64 pixels (or 0 for native), got {self.max_side}")

    @property
    def mime(self) -> str:
        return "image/png" if self.format == "png" else "image/jpeg"

    def to_json(self) -> dict[str, Any]:
        """Recorded in run.json (``judge.image``) and in every cache key."""
        return {"format": self.format, "quality": self.quality, "max_side": self.max_side}

    def sent_size(self, h: int, w: int) -> tuple[int, int]:
        """``(w, h)`` the judge receives for an ``h x w`` image."""
        if self.max_side is None:
            return w, h
        return fit_long_side(h, w, self.max_side)[::-1]


def encode(image: np.ndarray, options: ImageOptions) -> tuple[bytes, tuple[int, int]]:
    """float ``[H, W, 3]`` in [0, 1] -> (encoded bytes, ``(w, h)`` sent)."""
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"judge image must be [H, W, 3], got {arr.shape}")
    if options.format == "png":
        data, (h, w) = png_bytes(arr, max_side=options.max_side)
        return data, (w, h)
    from PIL import Image

    u8 = to_uint8(arr)
    if options.max_side is not None:
        u8 = shrink_to(u8, options.max_side, "lanczos")
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="JPEG", quality=options.quality)
    return buf.getvalue(), (int(u8.shape[1]), int(u8.shape[0]))


def data_url(data: bytes, mime: str) -> str:
    return f"data:{mime};base64," + base64.b64encode(data).decode("ascii")

"""The one resizer of the suite.

Every resize the suite does goes through this module: a model output of the wrong size
brought back to its input's size (:func:`match_size`, the rule the README states), images
shrunk for a judge or a working copy (:func:`shrink_to`), photos prepared for a dataset,
masks brought to an image's size, and integer-factor block means for least-squares fits
(:func:`block_mean`).

Resampling is Pillow's (``Image.resize``): separable filters whose support widens with the
scale factor when shrinking, so a downscale is antialiased. uint8 RGB images are resized as
one RGB image; float images plane by plane in Pillow's 32-bit float mode ``"F"``, so no
precision is lost to 8 bits. Why Pillow and not ``torch.nn.functional.interpolate``: it is
the reference most published image pipelines use, it handles float planes without a tensor
round trip, and its ``BOX`` filter is the exact area average for any ratio.

Sizes are ``(height, width)`` everywhere in this module (numpy order), unlike Pillow's.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

#: Filter names accepted by :func:`resize`. ``area`` is Pillow's BOX filter (area average).
FILTERS = ("nearest", "bilinear", "bicubic", "lanczos", "area")

#: What :func:`match_size` does; recorded once per sample when an output is resized.
OUTPUT_RESIZE_RULE = "pillow-bicubic-float (antialiased when shrinking), clipped to [0, 1]"


def _pil_filter(name: str):
    table = {"nearest": Image.Resampling.NEAREST, "bilinear": Image.Resampling.BILINEAR,
             "bicubic": Image.Resampling.BICUBIC, "lanczos": Image.Resampling.LANCZOS,
             "area": Image.Resampling.BOX}
    if name not in table:
        raise ValueError(f"unknown resize filter {name!r}; expected one of {', '.join(FILTERS)}")
    return table[name]


def fit_long_side(height: int, width: int, long_side: int) -> tuple[int, int]:
    """``(h, w)`` scaled so ``max(h, w) <= long_side``, aspect kept, never upscaled, >= 1."""
    s = min(1.0, long_side / max(height, width))
    return max(1, round(height * s)), max(1, round(width * s))


def resize(image: np.ndarray, size: tuple[int, int], filter: str = "bicubic") -> np.ndarray:
    """Resize ``image`` to ``size = (H, W)``.

    Args:
        image: ``[h, w]`` or ``[h, w, C]``; uint8 (resized as an RGB/L image) or float
            (resized per plane in float32, values may overshoot the input range with
            bicubic/lanczos: callers that need [0, 1] clip).
        size: ``(H, W)`` of the result.
        filter: one of :data:`FILTERS`.

    Returns:
        An array of ``image``'s dtype (float input -> float32) and ``[H, W(, C)]`` shape.
    """
    arr = np.asarray(image)
    out_h, out_w = int(size[0]), int(size[1])
    if arr.shape[:2] == (out_h, out_w):
        return arr if arr.dtype == np.uint8 else arr.astype(np.float32, copy=False)
    filt = _pil_filter(filter)
    if arr.dtype == np.uint8 and (arr.ndim == 2 or arr.shape[2] in (1, 3, 4)):
        return np.asarray(Image.fromarray(np.ascontiguousarray(arr.squeeze(-1) if arr.ndim == 3 and arr.shape[2] == 1
                                                               else arr)).resize((out_w, out_h), filt))
    planes = arr[..., None] if arr.ndim == 2 else arr
    out = np.empty((out_h, out_w, planes.shape[2]), np.float32)
    for c in range(planes.shape[2]):
        plane = np.ascontiguousarray(planes[..., c], dtype=np.float32)
        out[..., c] = np.asarray(Image.fromarray(plane).resize((out_w, out_h), filt))
    return out[..., 0] if arr.ndim == 2 else out


def shrink_to(image: np.ndarray, long_side: int, filter: str = "area") -> np.ndarray:
    """``image`` downscaled so its long side is at most ``long_side`` (never upscaled)."""
    h, w = np.asarray(image).shape[:2]
    return resize(image, fit_long_side(h, w, long_side), filter)


def block_mean(image: np.ndarray, long_side: int) -> np.ndarray:
    """Mean over ``f x f`` blocks, ``f = ceil(max(h, w) / long_side)``; the ragged edge is dropped.

    The exact low-pass for an integer factor (every output pixel averages the same number of
    input pixels), used where a least-squares fit needs unbiased small copies.
    """
    img = np.asarray(image, dtype=np.float32)
    f = int(np.ceil(max(img.shape[:2]) / long_side))
    if f <= 1:
        return img
    h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    shape = (h // f, f, w // f, f) + img.shape[2:]
    return img[:h, :w].reshape(shape).mean(axis=(1, 3), dtype=np.float32)


def match_size(output: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, dict | None]:
    """The wrong-size output rule: bring ``output`` to ``shape = (H, W)`` of its input.

    Returns ``(image, note)``: ``note`` is None when no resize was needed, otherwise
    ``{"from": [h, w], "to": [H, W], "rule": OUTPUT_RESIZE_RULE}``, which the run records
    once per sample; every metric of that sample then sees the same resized image.
    """
    out = np.asarray(output, dtype=np.float32)
    if out.shape[:2] == tuple(shape):
        return out, None
    note = {"from": [int(out.shape[0]), int(out.shape[1])], "to": [int(shape[0]), int(shape[1])],
            "rule": OUTPUT_RESIZE_RULE}
    return np.clip(resize(out, shape, "bicubic"), 0.0, 1.0), note

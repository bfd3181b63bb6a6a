"""Images as request and answer payloads: float arrays <-> PNG bytes, base64, data URLs."""

from __future__ import annotations

import base64
import binascii
import io

import numpy as np

from ..core.images import to_uint8
from ..core.resize import resize, shrink_to


class PayloadError(ValueError):
    """An answer's image could not be decoded (the message says what was wrong)."""


def png_bytes(image: np.ndarray, max_side: int | None = None,
              fit: tuple[int, int] | None = None) -> tuple[bytes, tuple[int, int]]:
    """float ``[H, W, 3]`` in [0, 1] -> (8-bit PNG bytes, ``(h, w)`` encoded).

    ``max_side``: shrink (Lanczos, never enlarge) so the long side is at most this.
    ``fit = (h, w)``: shrink (area average, never enlarge) so the image fits inside that box,
    aspect kept. PNG, not JPEG: compression artefacts would be part of what the model sees.
    """
    from PIL import Image

    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"image must be [H, W, 3], got {arr.shape}")
    u8 = to_uint8(arr)
    if max_side is not None:
        u8 = shrink_to(u8, max_side, "lanczos")
    if fit is not None:
        h, w = u8.shape[:2]
        s = min(1.0, fit[0] / h, fit[1] / w)
        if s < 1.0:
            u8 = resize(u8, (max(1, round(h * s)), max(1, round(w * s))), "area")
    buf = io.BytesIO()
    Image.fromarray(u8).save(buf, format="PNG")
    return buf.getvalue(), (int(u8.shape[0]), int(u8.shape[1]))


def mask_png_bytes(mask: np.ndarray, size: tuple[int, int], *, edit_transparent: bool = True) -> bytes:
    """A mask ``[H, W]`` in [0, 1] (1 = the region to edit) as an RGBA PNG of ``size = (h, w)``.

    ``edit_transparent``: OpenAI's convention, fully transparent pixels (alpha 0) mark where the
    image may be edited; elsewhere alpha is 255.
    """
    from PIL import Image

    m = np.clip(resize(np.asarray(mask, np.float32), size, "bilinear"), 0.0, 1.0)
    alpha = np.where(m >= 0.5, 0, 255) if edit_transparent else np.where(m >= 0.5, 255, 0)
    rgba = np.zeros((*size, 4), np.uint8)
    rgba[..., 3] = alpha.astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG")
    return buf.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def b64decode(text: str, what: str = "image") -> bytes:
    """Strict base64 (a ``data:...;base64,`` prefix is allowed) -> bytes, or PayloadError."""
    if not isinstance(text, str) or not text:
        raise PayloadError(f"{what}: empty or missing base64 data")
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as err:
        raise PayloadError(f"{what}: not valid base64 ({err})") from err


def decode_image(data: bytes, what: str = "image") -> np.ndarray:
    """Encoded image bytes (PNG, JPEG, WebP) -> float32 ``[H, W, 3]`` in [0, 1] (8-bit).

    EXIF orientation is applied; alpha is dropped (retouching edits colour, not transparency).
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    if not data:
        raise PayloadError(f"{what}: no bytes")
    try:
        with Image.open(io.BytesIO(data)) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            arr = np.asarray(im, dtype=np.float32) / 255.0
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise PayloadError(f"{what}: cannot decode the image bytes ({type(err).__name__}: "
                           f"{' '.join(str(err).split())[:120]})") from err
    return np.ascontiguousarray(arr)

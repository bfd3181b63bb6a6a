"""Read and write images as float32 RGB arrays.

Convention used everywhere in the suite: an image is a ``numpy.ndarray`` of shape
``[H, W, 3]``, dtype ``float32``, values in ``[0, 1]``, at the file's native resolution
(never resized here). 8-bit files map by ``/255``, 16-bit files by ``/65535``.

Pillow decodes PNG/JPEG/BMP/most TIFFs; ``tifffile`` decodes TIFFs Pillow cannot
(16-bit RGB, as PPR10K ships). EXIF orientation is applied. Grayscale, RGBA (alpha
dropped, not composited: retouching edits colour, not transparency) and palette images
become RGB.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ImageReadError

_TIFF_SUFFIXES = {".tif", ".tiff"}


def _normalise(arr: np.ndarray, path: Path) -> np.ndarray:
    """Integer or float array ``[H, W]``/``[H, W, C]`` -> float32 ``[H, W, 3]`` in [0, 1]."""
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        out = arr.astype(np.float32) / 65535.0
    elif arr.dtype in (np.int32, np.uint32):
        out = arr.astype(np.float64) / float(np.iinfo(arr.dtype).max)
        out = out.astype(np.float32)
    elif np.issubdtype(arr.dtype, np.floating):
        out = arr.astype(np.float32)
    elif arr.dtype == bool:
        out = arr.astype(np.float32)
    else:
        raise ImageReadError(f"{path}: unsupported pixel type {arr.dtype}")
    if out.ndim == 2:
        out = np.repeat(out[:, :, None], 3, axis=2)
    elif out.ndim == 3:
        c = out.shape[2]
        if c == 1:
            out = np.repeat(out, 3, axis=2)
        elif c == 2:  # gray + alpha
            out = np.repeat(out[:, :, :1], 3, axis=2)
        elif c >= 3:
            out = out[:, :, :3]
    else:
        raise ImageReadError(f"{path}: unsupported image shape {arr.shape}")
    if not np.isfinite(out).all():
        raise ImageReadError(f"{path}: image holds NaN or infinite values")
    return np.ascontiguousarray(np.clip(out, 0.0, 1.0))


def _read_tiff(path: Path) -> np.ndarray:
    import tifffile

    arr = tifffile.imread(str(path))
    # Planar (C, H, W) storage -> (H, W, C).
    if arr.ndim == 3 and arr.shape[0] in (3, 4) and arr.shape[2] not in (3, 4):
        arr = np.moveaxis(arr, 0, 2)
    return arr


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read ``path`` into float32 ``[H, W, 3]`` in [0, 1]; one-line ImageReadError on failure."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: file not found")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image")
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                arr = np.asarray(im, dtype=np.uint16)
            elif mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
                arr = np.asarray(im.convert("RGB"))
            elif mode == "I":
                arr = np.asarray(im).astype(np.int64)
                arr = (np.clip(arr, 0, 65535)).astype(np.uint16)
            elif mode == "F":
                arr = np.asarray(im, dtype=np.float32)
            else:
                arr = np.asarray(im)
            return _normalise(arr, path)
    except ImageReadError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        if path.suffix.lower() in _TIFF_SUFFIXES:
            try:
                return _normalise(_read_tiff(path), path)
            except ImageReadError:
                raise
            except Exception as err2:  # tifffile raises many types for corrupt files
                raise ImageReadError(f"{path}: cannot decode TIFF ({err2})") from err2
        msg = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ImageReadError(f"{path}: cannot decode image ({msg})") from err


def to_uint8(image: np.ndarray) -> np.ndarray:
    """float ``[H, W, 3]`` in [0, 1] -> uint8 with round-half-to-even (numpy's rint)."""
    return np.clip(np.rint(np.asarray(image, dtype=np.float64) * 255.0), 0, 255).astype(np.uint8)


def write_image(path: str | os.PathLike, image: np.ndarray, bits: int = 8) -> Path:
    """Write float ``[H, W, 3]`` in [0, 1] as PNG (8 or 16 bit) or TIFF (by suffix).

    Written to a temporary name then renamed, so a killed process never leaves a
    truncated file under the final name (the runner treats an existing output as done).
    """
    path = Path(path)
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"{path}: expected an [H, W, 3] image, got shape {image.shape}")
    if not np.isfinite(image).all():
        raise ValueError(f"{path}: refusing to write an image with NaN or infinite values")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    suffix = path.suffix.lower()
    if bits == 16:
        arr16 = np.clip(np.rint(image.astype(np.float64) * 65535.0), 0, 65535).astype(np.uint16)
        if suffix in _TIFF_SUFFIXES:
            import tifffile

            tifffile.imwrite(str(tmp), arr16, photometric="rgb")
        else:
            _write_png16(tmp, arr16)
    else:
        fmt = "TIFF" if suffix in _TIFF_SUFFIXES else ("JPEG" if suffix in (".jpg", ".jpeg") else "PNG")
        Image.fromarray(to_uint8(image)).save(tmp, format=fmt)
    os.replace(tmp, path)
    return path


def _write_png16(path: Path, arr16: np.ndarray) -> None:
    """16-bit RGB PNG. Pillow cannot write 16-bit RGB PNGs, imageio (a scikit-image dependency) can."""
    import imageio.v3 as iio

    iio.imwrite(path, arr16, extension=".png")

"""Read and write images as float32 RGB arrays.

Convention used everywhere in the suite: an image is a ``numpy.ndarray`` of shape
``[H, W, 3]``, dtype ``float32``, values in ``[0, 1]``, at the file's native resolution
(never resized here). 8-bit files map by ``/255``, 16-bit files by ``/65535``.

Pillow decodes PNG/JPEG/BMP/8-bit TIFFs. Pillow opens 16-bit *colour* TIFFs and PNGs as
8-bit RGB without an error (the low byte is dropped), so those go to ``tifffile`` (TIFF;
PPR10K's sources are 16-bit RGB TIFFs) or OpenCV (16-bit colour PNG, and TIFFs whose
compression tifffile cannot decode without ``imagecodecs``, e.g. LZW). EXIF orientation is
applied whichever decoder ran. Grayscale, RGBA (alpha dropped, not composited: retouching
edits colour, not transparency) and palette images become RGB.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import tifffile
from PIL import Image, ImageOps, UnidentifiedImageError

from .atomic import atomic_path
from .errors import ImageReadError, error_line

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


# EXIF/TIFF orientation (tag 274) -> numpy operation on an [H, W, ...] array that shows the
# photo upright. Same mapping as PIL.ImageOps.exif_transpose (checked in tests for all 8 values);
# needed for the decoders that are not Pillow (tifffile, OpenCV), which ignore the tag.
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: np.swapaxes(a, 0, 1),
    6: lambda a: np.rot90(a, k=-1),
    7: lambda a: np.rot90(np.swapaxes(a, 0, 1), k=2),
    8: lambda a: np.rot90(a, k=1),
}


def apply_orientation(arr: np.ndarray, orientation: int | None) -> np.ndarray:
    """Rotate/flip ``arr`` (``[H, W]`` or ``[H, W, C]``) as EXIF ``orientation`` (1..8) asks."""
    op = _ORIENT.get(int(orientation)) if orientation else None
    return np.ascontiguousarray(op(arr)) if op else arr


def _orientation(im: Image.Image) -> int | None:
    try:
        value = im.getexif().get(0x0112)
    except Exception:  # a malformed EXIF block must not make a readable photo unreadable
        return None
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else None


def _png_is_deep_colour(path: Path) -> bool:
    """True for a 16-bit colour PNG (IHDR bit depth 16, colour type 2/4/6).

    Pillow opens these as 8-bit ``RGB``/``RGBA``/``LA`` and silently drops the low byte
    (measured with Pillow 13), so they go to another decoder. 16-bit grayscale (type 0)
    opens as ``I;16`` and stays with Pillow.
    """
    with open(path, "rb") as f:
        head = f.read(26)
    return len(head) == 26 and head[12:16] == b"IHDR" and head[24] == 16 and head[25] in (2, 4, 6)


def _tiff_is_deep_colour(im: Image.Image) -> bool:
    """True for a TIFF with more than 8 bits per sample and more than one sample per pixel.

    Pillow opens 16-bit RGB TIFFs (PPR10K's sources) as 8-bit ``RGB``, dropping the low byte.
    """
    tags = getattr(im, "tag_v2", None)
    if tags is None:
        return False
    bits = tags.get(258, (8,))
    bits = bits if isinstance(bits, tuple) else (bits,)
    return max(bits) > 8 and int(tags.get(277, 1)) > 1


def _read_tiff(path: Path) -> tuple[np.ndarray, int | None]:
    """First page of a TIFF as stored (uint8/uint16/float) plus its orientation tag.

    tifffile decodes uncompressed/deflate TIFFs itself; LZW and JPEG-compressed ones need the
    optional ``imagecodecs`` package, so on failure OpenCV's libtiff is tried.
    """
    try:
        with tifffile.TiffFile(str(path)) as tif:
            page = tif.pages[0]
            arr = page.asarray()
            orient_tag = page.tags.get(274)
            orientation = int(orient_tag.value) if orient_tag is not None else None
            photometric = int(page.photometric)
            planar = int(page.planarconfig)
    except Exception as err:  # tifffile raises many types (ValueError for missing codecs, ...)
        try:
            return _read_with_opencv(path), None
        except ImageReadError:
            raise ImageReadError(f"{path}: cannot decode TIFF ({error_line(err, where=False)})") from err
    if planar == 2 and arr.ndim == 3:  # separate planes: (C, H, W) -> (H, W, C)
        arr = np.moveaxis(arr, 0, 2)
    if photometric == 0 and np.issubdtype(arr.dtype, np.integer):  # MINISWHITE: 0 is white
        arr = np.iinfo(arr.dtype).max - arr
    elif photometric not in (0, 1, 2):  # palette, CMYK, YCbCr, ...: leave to Pillow/OpenCV
        return _read_with_opencv(path), orientation
    return arr, orientation


def _read_with_opencv(path: Path) -> np.ndarray:
    """Decode with OpenCV, keeping 16 bits; returns RGB(A) order. Needs opencv-python-headless."""
    try:  # lazy: cv2 loads ~60 MB of native code; only 16-bit and odd files take this path
        import cv2
    except ImportError as err:
        raise ImageReadError(
            f"{path}: a 16-bit colour image needs OpenCV to be read without losing precision "
            "(pip install opencv-python-headless)"
        ) from err
    # np.fromfile + imdecode instead of cv2.imread: imread fails on non-ASCII paths on Windows.
    # IMREAD_UNCHANGED keeps 16 bits and alpha, and ignores EXIF orientation (applied by caller).
    arr = cv2.imdecode(np.fromfile(str(path), dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageReadError(f"{path}: cannot decode image (OpenCV could not read it)")
    if arr.ndim == 3 and arr.shape[2] == 3:
        arr = arr[:, :, ::-1]
    elif arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[:, :, [2, 1, 0, 3]]
    return arr


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read ``path`` into float32 ``[H, W, 3]`` in [0, 1]; one-line ImageReadError on failure.

    Decoders: Pillow for everything it reads exactly; tifffile (then OpenCV) for TIFFs with
    more than 8 bits per colour sample; OpenCV for 16-bit colour PNGs. EXIF orientation is
    applied in every case. Resolution is never changed.
    """
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: file not found")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a folder, not an image")
    is_tiff = path.suffix.lower() in _TIFF_SUFFIXES
    try:
        with Image.open(path) as im:  # reads the header only
            fmt = im.format
            if fmt == "TIFF" and _tiff_is_deep_colour(im):
                arr, orientation = _read_tiff(path)
                return _normalise(apply_orientation(arr, orientation), path)
            if fmt == "PNG" and _png_is_deep_colour(path):
                orientation = _orientation(im)
                return _normalise(apply_orientation(_read_with_opencv(path), orientation), path)
            im = ImageOps.exif_transpose(im)
            mode = im.mode
            if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
                arr = np.asarray(im).astype(np.uint16)
            elif mode in ("P", "PA", "CMYK", "YCbCr", "LAB", "HSV", "1"):
                arr = np.asarray(im.convert("RGBA" if mode == "PA" else "RGB"))
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
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        if is_tiff and not isinstance(err, Image.DecompressionBombError):
            # Pillow cannot open some valid TIFFs (e.g. float or planar 16-bit); try tifffile.
            arr, orientation = _read_tiff(path)
            return _normalise(apply_orientation(arr, orientation), path)
        raise ImageReadError(f"{path}: cannot decode image ({error_line(err, where=False)})") from err
    except Exception as err:  # any other decoder failure is still a one-line, file-naming error
        raise ImageReadError(f"{path}: cannot decode image ({error_line(err, where=False)})") from err


def image_bit_depth(path: str | os.PathLike) -> int:
    """8 or 16: the precision a file stores per sample (header only, no decoding).

    16 for 16-bit PNGs (gray or colour), TIFFs with more than 8 bits per sample, and Pillow's
    ``I;16``/``I``/``F`` modes; 8 otherwise. Pillow's mode alone is not enough: it reports
    16-bit colour TIFFs and PNGs as ``RGB``. Unreadable files give 8 (reading them fails
    later with the real error).
    """
    path = Path(path)
    try:
        with Image.open(path) as im:
            if im.mode.startswith("I;16") or im.mode in ("I", "F"):
                return 16
            if im.format == "TIFF":
                bits = getattr(im, "tag_v2", {}).get(258, (8,))
                return 16 if max(bits if isinstance(bits, tuple) else (bits,)) > 8 else 8
            if im.format == "PNG":
                with open(path, "rb") as f:
                    head = f.read(26)
                return 16 if len(head) == 26 and head[24] == 16 else 8
            return 8
    except Exception:
        if path.suffix.lower() in _TIFF_SUFFIXES:
            try:
                with tifffile.TiffFile(str(path)) as tif:
                    return 16 if tif.pages[0].bitspersample > 8 else 8
            except Exception:
                return 8
        return 8


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
    suffix = path.suffix.lower()
    with atomic_path(path) as tmp:
        if bits == 16:
            arr16 = np.clip(np.rint(image.astype(np.float64) * 65535.0), 0, 65535).astype(np.uint16)
            if suffix in _TIFF_SUFFIXES:
                tifffile.imwrite(str(tmp), arr16, photometric="rgb")
            else:
                _write_png16(tmp, arr16)
        else:
            fmt = "TIFF" if suffix in _TIFF_SUFFIXES else ("JPEG" if suffix in (".jpg", ".jpeg") else "PNG")
            Image.fromarray(to_uint8(image)).save(tmp, format=fmt)
    return path


def _write_png16(path: Path, arr16: np.ndarray) -> None:
    """16-bit RGB PNG via OpenCV (Pillow cannot write 16-bit RGB PNGs, and imageio's Pillow
    plugin fails on them too: measured with Pillow 13 / imageio 2.38)."""
    try:  # lazy: cv2 loads ~60 MB of native code; only 16-bit and odd files take this path
        import cv2
    except ImportError as err:
        raise ValueError(f"{path}: writing a 16-bit PNG needs opencv-python-headless") from err
    ok, buf = cv2.imencode(".png", np.ascontiguousarray(arr16[:, :, ::-1]))
    if not ok:
        raise ValueError(f"{path}: OpenCV could not encode a 16-bit PNG")
    with open(path, "wb") as f:
        f.write(buf.tobytes())

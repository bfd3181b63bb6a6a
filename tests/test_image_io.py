"""Image I/O on real files written by the usual encoders (Pillow, tifffile, OpenCV).

Each fixture is built in ``tmp_path`` with a known pixel pattern, so the checks are exact
(value-for-value after the documented /255 or /65535 scaling), not just "it opened".
"""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

from iretouch_bench.core.errors import ImageReadError
from iretouch_bench.core.images import read_image, write_image
from iretouch_bench.core.images import apply_orientation, image_bit_depth

H, W = 11, 17  # odd and non-square so a transposition or resize cannot pass unnoticed


def _rgb8(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(H, W, 3), dtype=np.uint8)


def _rgb16(seed: int = 0) -> np.ndarray:
    # Values with non-zero low bytes: an 8-bit decode of them cannot match to 1/65535.
    return np.random.default_rng(seed).integers(0, 65536, size=(H, W, 3), dtype=np.uint16)


def _check(x: np.ndarray, shape=(H, W, 3)) -> None:
    assert x.dtype == np.float32
    assert x.shape == shape
    assert x.min() >= 0.0 and x.max() <= 1.0


def test_png_8bit_exact(tmp_path):
    a = _rgb8()
    Image.fromarray(a).save(tmp_path / "a.png")
    x = read_image(tmp_path / "a.png")
    _check(x)
    np.testing.assert_array_equal(np.rint(x * 255).astype(np.uint8), a)


def test_png_16bit_rgb_keeps_low_byte(tmp_path):
    cv2 = pytest.importorskip("cv2")
    a = _rgb16()
    ok, buf = cv2.imencode(".png", a[:, :, ::-1])  # OpenCV stores BGR
    assert ok
    (tmp_path / "a16.png").write_bytes(buf.tobytes())
    x = read_image(tmp_path / "a16.png")
    _check(x)
    # Exact to the 16-bit level: an 8-bit decode would be off by up to 255/65535.
    np.testing.assert_array_equal(np.rint(x.astype(np.float64) * 65535).astype(np.uint16), a)


def test_png_16bit_gray(tmp_path):
    g = _rgb16()[:, :, 0]
    Image.fromarray(g).save(tmp_path / "g16.png")  # Pillow writes mode I;16 as 16-bit gray
    x = read_image(tmp_path / "g16.png")
    _check(x)
    for c in range(3):
        np.testing.assert_array_equal(np.rint(x[:, :, c].astype(np.float64) * 65535).astype(np.uint16), g)


def test_write_read_png16_roundtrip(tmp_path):
    pytest.importorskip("cv2")
    img = np.random.default_rng(3).random((H, W, 3)).astype(np.float32)
    write_image(tmp_path / "o.png", img, bits=16)
    back = read_image(tmp_path / "o.png")
    assert np.abs(back - img).max() <= 0.5 / 65535 + 1e-7


def test_jpeg(tmp_path):
    a = np.full((H, W, 3), (200, 40, 90), dtype=np.uint8)  # flat colour: JPEG keeps it closely
    Image.fromarray(a).save(tmp_path / "a.jpg", quality=95)
    x = read_image(tmp_path / "a.jpg")
    _check(x)
    assert np.abs(x * 255 - a).max() < 4


def test_tiff_8bit(tmp_path):
    a = _rgb8(1)
    tifffile.imwrite(tmp_path / "a8.tif", a, photometric="rgb")
    x = read_image(tmp_path / "a8.tif")
    _check(x)
    np.testing.assert_array_equal(np.rint(x * 255).astype(np.uint8), a)


@pytest.mark.parametrize("compression", [None, "zlib"])
def test_tiff_16bit_rgb_exact(tmp_path, compression):
    """PPR10K sources: 16-bit RGB TIFF. Pillow alone would return the high byte only."""
    a = _rgb16(2)
    tifffile.imwrite(tmp_path / "a16.tif", a, photometric="rgb", compression=compression)
    x = read_image(tmp_path / "a16.tif")
    _check(x)
    np.testing.assert_array_equal(np.rint(x.astype(np.float64) * 65535).astype(np.uint16), a)


def test_tiff_16bit_lzw_via_opencv(tmp_path):
    """LZW needs imagecodecs in tifffile; OpenCV's libtiff reads it instead."""
    cv2 = pytest.importorskip("cv2")
    a = _rgb16(4)
    ok, buf = cv2.imencode(".tiff", a[:, :, ::-1], [cv2.IMWRITE_TIFF_COMPRESSION, 5])  # 5 = LZW
    assert ok
    (tmp_path / "lzw.tif").write_bytes(buf.tobytes())
    x = read_image(tmp_path / "lzw.tif")
    np.testing.assert_array_equal(np.rint(x.astype(np.float64) * 65535).astype(np.uint16), a)


def test_tiff_16bit_planar(tmp_path):
    a = _rgb16(5)
    tifffile.imwrite(tmp_path / "planar.tif", np.moveaxis(a, 2, 0), photometric="rgb", planarconfig="separate")
    x = read_image(tmp_path / "planar.tif")
    np.testing.assert_array_equal(np.rint(x.astype(np.float64) * 65535).astype(np.uint16), a)


def test_exif_orientation_6_rotates(tmp_path):
    a = _rgb8(6)
    a[:2, :, :] = 255  # a bright top band, to see where it ends up
    im = Image.fromarray(a)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    im.save(tmp_path / "o6.jpg", exif=exif, quality=95)
    x = read_image(tmp_path / "o6.jpg")
    assert x.shape == (W, H, 3)  # rotated
    # After a clockwise rotation the stored top rows become the rightmost columns.
    assert x[:, -2:, :].mean() > 0.95
    assert x[:, :2, :].mean() < 0.9


@pytest.mark.parametrize("orientation", range(1, 9))
def test_apply_orientation_matches_pillow(orientation):
    """The numpy mapping used for tifffile/OpenCV decodes equals Pillow's exif_transpose."""
    a = _rgb8(orientation)
    im = Image.fromarray(a)
    exif = im.getexif()
    exif[0x0112] = orientation
    im.info["exif"] = exif.tobytes()
    ref = np.asarray(ImageOps.exif_transpose(im))
    np.testing.assert_array_equal(apply_orientation(a, orientation), ref)


def test_exif_orientation_on_16bit_png(tmp_path):
    """Orientation is applied on the OpenCV path too (16-bit colour PNG with an eXIf chunk)."""
    pytest.importorskip("cv2")
    a16 = _rgb16(7)
    # Pillow cannot write 16-bit RGB PNG; write with write_image, then add an eXIf chunk.
    write_image(tmp_path / "p.png", a16.astype(np.float32) / 65535, bits=16)
    data = (tmp_path / "p.png").read_bytes()
    exif = Image.Exif()
    exif[0x0112] = 8
    payload = exif.tobytes()
    import struct
    import zlib

    chunk = struct.pack(">I", len(payload)) + b"eXIf" + payload
    chunk += struct.pack(">I", zlib.crc32(b"eXIf" + payload) & 0xFFFFFFFF)
    iend = data.rindex(b"IEND") - 4
    (tmp_path / "p8.png").write_bytes(data[:iend] + chunk + data[iend:])
    x = read_image(tmp_path / "p8.png")
    assert x.shape == (W, H, 3)
    np.testing.assert_array_equal(np.rint(x.astype(np.float64) * 65535).astype(np.uint16), np.rot90(a16, 1))


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "LA", "1", "CMYK"])
def test_modes_become_rgb(tmp_path, mode):
    a = _rgb8(8)
    im = Image.fromarray(a).convert(mode)
    suffix = ".jpg" if mode == "CMYK" else ".png"
    im.save(tmp_path / f"m{suffix}")
    x = read_image(tmp_path / f"m{suffix}")
    _check(x)
    # Reference: Pillow's own RGB conversion of the decoded file (for CMYK the JPEG is lossy,
    # so compare with what was stored, not with the array before encoding).
    with Image.open(tmp_path / f"m{suffix}") as stored:
        assert stored.mode == mode
        expected = np.asarray(stored.convert("RGB"), dtype=np.float32) / 255.0
    assert np.abs(x - expected).max() <= 1e-6
    if mode in ("L", "LA", "1"):
        assert np.array_equal(x[:, :, 0], x[:, :, 1]) and np.array_equal(x[:, :, 1], x[:, :, 2])


def test_rgba_alpha_dropped_not_composited(tmp_path):
    a = np.zeros((H, W, 4), dtype=np.uint8)
    a[..., 0] = 180
    a[..., 3] = 0  # fully transparent: compositing on white/black would change the colour
    Image.fromarray(a, "RGBA").save(tmp_path / "t.png")
    x = read_image(tmp_path / "t.png")
    assert np.allclose(x[..., 0], 180 / 255) and np.allclose(x[..., 1:], 0)


def test_native_resolution_kept(tmp_path):
    a = np.zeros((1001, 1503, 3), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "big.png")
    assert read_image(tmp_path / "big.png").shape == (1001, 1503, 3)


@pytest.mark.parametrize(
    "name,data",
    [
        ("garbage.png", b"this is not an image at all"),
        ("trunc.png", None),
        ("trunc.jpg", None),
        ("bad.tif", b"II*\x00" + b"\x00" * 20),
        ("empty.jpg", b""),
    ],
)
def test_corrupt_file_one_line_error_names_file(tmp_path, name, data):
    path = tmp_path / name
    if data is None:  # a real file cut in half
        buf_path = tmp_path / ("full" + path.suffix)
        Image.fromarray(_rgb8(9)).save(buf_path)
        full = buf_path.read_bytes()
        data = full[: len(full) // 2]
    path.write_bytes(data)
    with pytest.raises(ImageReadError) as info:
        read_image(path)
    msg = str(info.value)
    assert str(path) in msg
    assert "\n" not in msg


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageReadError, match="file not found"):
        read_image(tmp_path / "nope.png")
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


def test_image_bit_depth(tmp_path):
    """16-bit colour TIFF/PNG report 16 although Pillow's mode says RGB."""
    tifffile.imwrite(tmp_path / "a16.tif", _rgb16(), photometric="rgb")
    tifffile.imwrite(tmp_path / "a8.tif", _rgb8(), photometric="rgb")
    Image.fromarray(_rgb8()).save(tmp_path / "a8.png")
    Image.fromarray(_rgb16()[:, :, 0]).save(tmp_path / "g16.png")
    Image.fromarray(_rgb8()).save(tmp_path / "a.jpg")
    assert image_bit_depth(tmp_path / "a16.tif") == 16
    assert image_bit_depth(tmp_path / "a8.tif") == 8
    assert image_bit_depth(tmp_path / "a8.png") == 8
    assert image_bit_depth(tmp_path / "g16.png") == 16
    assert image_bit_depth(tmp_path / "a.jpg") == 8
    try:
        import cv2  # noqa: F401
    except ImportError:
        return
    write_image(tmp_path / "c16.png", _rgb16().astype(np.float32) / 65535, bits=16)
    assert image_bit_depth(tmp_path / "c16.png") == 16

"""Photos that installed packages ship (scikit-image, scikit-learn, matplotlib), with their
credits and licences (data_cards/embedded.md), and the split between the embedded
evaluation photos and the training photos (disjoint)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..core.resize import shrink_to

__all__ = ["PhotoInfo", "PHOTOS", "EVAL_PHOTOS", "TRAIN_PHOTOS", "load_photo", "find_face"]


@dataclass(frozen=True)
class PhotoInfo:
    """A photo shipped inside an installed package.

    Attributes:
        name: registry key.
        package: the distribution that ships it.
        where: how it is loaded (function or file inside the package).
        credit: author / origin as the package documents it.
        license: licence as the package documents it (see data_cards/embedded.md).
        face: (cx, cy, rx, ry) face box centre and half-sizes as fractions of width/height,
            measured once with scikit-image's LBP frontal-face cascade; None if no face.
    """

    name: str
    package: str
    where: str
    credit: str
    license: str
    face: tuple[float, float, float, float] | None = None


# The loaders below import their package on first use: building the list of photos (the embedded
# builder's fingerprint, `data list`) must not pay for importing scikit-learn and matplotlib.
def _skimage(fn: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        import skimage.data

        out = getattr(skimage.data, fn)()
        return out[0] if isinstance(out, tuple) else out

    return load


def _sklearn(fname: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from sklearn.datasets import load_sample_image

        return load_sample_image(fname)

    return load


def _matplotlib(fname: str) -> Callable[[], np.ndarray]:
    def load() -> np.ndarray:
        from matplotlib import cbook
        from PIL import Image

        with Image.open(cbook.get_sample_data(fname, asfileobj=False)) as im:
            return np.asarray(im.convert("RGB"))

    return load


PHOTOS: dict[str, PhotoInfo] = {
    p.name: p
    for p in [
        # face boxes: skimage.feature.Cascade(lbp_frontal_face_cascade_filename()) on the full
        # photo: astronaut r=70 c=175 93x93 of 512x512; grace_hopper r=125 c=169 196x196 of 512x600
        PhotoInfo("astronaut", "scikit-image", "skimage.data.astronaut()",
                  "Eileen Collins, NASA Great Images database", "public domain (no known copyright restrictions)",
                  face=(221.5 / 512, 116.5 / 512, 46.5 / 512, 46.5 / 512)),
        PhotoInfo("grace_hopper", "matplotlib", "matplotlib.cbook.get_sample_data('grace_hopper.jpg')",
                  "Rear Admiral Grace M. Hopper, U.S. Navy official portrait",
                  "not stated in the package; a U.S. Navy photograph (U.S. federal work, public domain)",
                  face=(267.0 / 512, 223.0 / 600, 98.0 / 512, 98.0 / 600)),
        PhotoInfo("coffee", "scikit-image", "skimage.data.coffee()",
                  "Rachel Michetti, courtesy of Pikolo Espresso Bar", "CC0"),
        PhotoInfo("chelsea", "scikit-image", "skimage.data.chelsea()", "Stefan van der Walt", "CC0"),
        PhotoInfo("rocket", "scikit-image", "skimage.data.rocket()",
                  "SpaceX (DSCOVR launch on Falcon 9)", "public domain (released by SpaceX)"),
        PhotoInfo("hubble_deep_field", "scikit-image", "skimage.data.hubble_deep_field()",
                  "NASA / HubbleSite (Hubble eXtreme Deep Field)", "public domain (NASA)"),
        PhotoInfo("stereo_motorcycle", "scikit-image", "skimage.data.stereo_motorcycle()[0]",
                  "Middlebury 2014 stereo benchmark (Scharstein et al.), left view, downsampled x4",
                  "not stated in the package (Middlebury stereo data, research use)"),
        PhotoInfo("china", "scikit-learn", "sklearn.datasets.load_sample_image('china.jpg')",
                  "danielbuechele on Flickr", "CC BY 2.0"),
        PhotoInfo("flower", "scikit-learn", "sklearn.datasets.load_sample_image('flower.jpg')",
                  "vultilion on Flickr", "CC BY 2.0"),
    ]
}

_LOADERS: dict[str, Callable[[], np.ndarray]] = {
    "astronaut": _skimage("astronaut"),
    "grace_hopper": _matplotlib("grace_hopper.jpg"),
    "coffee": _skimage("coffee"),
    "chelsea": _skimage("chelsea"),
    "rocket": _skimage("rocket"),
    "hubble_deep_field": _skimage("hubble_deep_field"),
    "stereo_motorcycle": _skimage("stereo_motorcycle"),
    "china": _sklearn("china.jpg"),
    "flower": _sklearn("flower.jpg"),
}

# Not registered: skimage.data.skin() and the other images outside scikit-image's wheel are
# downloaded with pooch on first use; the registry holds only photos installed on disk.

#: Photos of the embedded evaluation set (two portraits: astronaut, grace_hopper).
EVAL_PHOTOS: tuple[str, ...] = ("astronaut", "grace_hopper", "coffee", "rocket", "china")
#: Photos for training; disjoint from EVAL_PHOTOS.
TRAIN_PHOTOS: tuple[str, ...] = ("chelsea", "flower", "stereo_motorcycle", "hubble_deep_field")
assert not set(EVAL_PHOTOS) & set(TRAIN_PHOTOS)


def load_photo(name: str, max_side: int | None = None) -> np.ndarray:
    """A registered photo as float32 ``[H, W, 3]`` in [0, 1] (values / 255).

    Args:
        name: a key of :data:`PHOTOS`.
        max_side: if given and the photo is larger, downsample (Pillow Lanczos on the 8-bit
            pixels, aspect kept, deterministic) so the long side is ``max_side``. Used when
            *building* datasets; loaders of existing datasets never resize.
    """
    if name not in PHOTOS:
        raise KeyError(f"unknown photo {name!r}; known: {', '.join(PHOTOS)}")
    arr = np.asarray(_LOADERS[name](), dtype=np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    arr = arr[..., :3]
    if max_side is not None and max(arr.shape[:2]) > max_side:
        arr = shrink_to(arr, max_side, "lanczos")
    return np.ascontiguousarray(arr, dtype=np.float32) / np.float32(255.0)


def find_face(photo: np.ndarray) -> tuple[float, float, float, float] | None:
    """Largest frontal face found by scikit-image's LBP cascade, as (cx, cy, rx, ry) fractions
    of width/height, or None."""
    # lazy, like the loaders above
    import skimage.data
    from skimage.feature import Cascade

    img = np.clip(np.asarray(photo) * 255.0, 0, 255).astype(np.uint8)
    h, w = img.shape[:2]
    side = min(h, w)
    det = Cascade(skimage.data.lbp_frontal_face_cascade_filename())
    faces = det.detect_multi_scale(img=img, scale_factor=1.2, step_ratio=1,
                                   min_size=(max(24, side // 12),) * 2, max_size=(side, side))
    if not faces:
        return None
    f = max(faces, key=lambda d: d["width"] * d["height"])
    return ((f["c"] + f["width"] / 2) / w, (f["r"] + f["height"] / 2) / h, f["width"] / 2 / w, f["height"] / 2 / h)

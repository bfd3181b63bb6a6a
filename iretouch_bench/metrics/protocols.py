"""Named, versioned fidelity protocols: which preparation made an ssim/cw_ssim/gmsd/dists number.

The choices below move the fourth decimal (sometimes the second) of the paper's fidelity
columns, so a number is only comparable with another made by the same protocol. A run records
the protocol's ``name/version`` (``run.json`` ``config.fidelity_protocol`` and
``scoring.fidelity_protocol``, every sample record's ``fidelity_protocol``), and the
leaderboard's comparability key includes it.

* ``paper`` (default) - 8-bit BT.601 luma, histogram matching rounded back to 8 bits, every
  metric at native size (the steps are in :data:`PAPER_STEPS`; they are what
  :mod:`iretouch_bench.metrics.fidelity` documents).
* ``float`` - luma and histogram matching in floating point, no rounding; SSIM on the float
  luma (``ssim(..., quantize=False)``) and GMSD likewise (``gmsd(..., quantize=False)``), CW-SSIM
  and DISTS on the float gray.
* ``dists256`` - ``paper``, except DISTS sees both gray images resized as the official DISTS
  code prepares them (``DISTS_pytorch/DISTS_pt.py`` ``prepare_image``: when the short side is
  above 256, ``torchvision.transforms.functional.resize(PIL image, 256)``, i.e. the short side
  to 256 px, the long side ``int(256 * long / short)``, PIL bilinear with its antialiasing, on
  the 8-bit image; then ``ToTensor``). piq's DISTS prepares images the same way.
* ``ssim-downsample`` - ``paper``, except SSIM first average-pools both luma images by
  ``f = max(1, round(min(H, W) / 256))`` (the original ``ssim_index.m`` / ``ssim.m``
  downsampling, pyiqa's ``SSIM(downsample=True)``).

Any change to what a protocol does must bump its ``version``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

PAPER_STEPS: dict[str, str] = {
    "resize": "output resized to input size once per sample: core.resize.match_size (Pillow bicubic on float RGB, clip [0,1])",
    "gray": "BT.601 luma 0.299R+0.587G+0.114B on [0,1], x255, round half-to-even, uint8",
    "histogram_matching": "skimage.exposure.match_histograms(gray_output, gray_input), rounded half-to-even to uint8",
    "ssim": "pyiqa 'ssim' convention: 11x11 Gaussian sigma 1.5, valid, no downsampling, cs clamped at 0",
    "cw_ssim": "4 levels, 8 orientations, K=0, guard 0, coarsest level (official cwssim_index.m)",
    "gmsd": "official GMSD.m: 2x2 average + subsample, Prewitt, T=170, std (N-1)",
    "dists": "official DISTS (VGG16 IMAGENET1K_V1 + L2 pooling, official alpha/beta), float32 convs, native size",
}

#: Short side DISTS's official code resizes to (``prepare_image``).
DISTS_SHORT_SIDE = 256


@dataclass(frozen=True)
class Protocol:
    """One fidelity protocol. ``changes``: what differs from ``paper``, one line (``protocols`` prints it)."""

    name: str
    version: str
    changes: str
    steps: dict[str, str] = field(default_factory=dict)
    #: luma and histogram matching in float64, no rounding to 8 bits
    float_gray: bool = False
    #: SSIM's f x f average pooling (f = max(1, round(min(H, W) / 256)))
    ssim_downsample: bool = False
    #: DISTS on images whose short side is resized to this (official prepare_image); None = native
    dists_short_side: int | None = None

    @property
    def label(self) -> str:
        """``name/version``, the form recorded in run.json and sample records."""
        return f"{self.name}/{self.version}"

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "label": self.label, "changes": self.changes,
                "steps": dict(self.steps)}


def _steps(**changed: str) -> dict[str, str]:
    return {**PAPER_STEPS, **changed}


PROTOCOLS: dict[str, Protocol] = {p.name: p for p in (
    # version 2: wrong-size outputs resized by core.resize.match_size (was torch bicubic)
    Protocol("paper", "2", "the default: 8-bit luma, histogram matching rounded to 8 bits, native size",
             steps=dict(PAPER_STEPS)),
    # version 2: GMSD on the float luma too (version 1 rounded it to 8-bit levels inside GMSD)
    Protocol("float", "2",
             "luma and histogram matching in float64, no rounding; SSIM and GMSD on float luma; CW-SSIM and DISTS "
             "on the float gray",
             steps=_steps(gray="BT.601 luma 0.299R+0.587G+0.114B on [0,1] in float64, no rounding",
                          histogram_matching="skimage.exposure.match_histograms(gray_output, gray_input) in float64, "
                                             "no rounding",
                          ssim="as paper, on float luma x255 (no rounding)",
                          gmsd="as paper, on float luma x255 (no rounding)"),
             float_gray=True),
    Protocol("dists256", "1",
             "DISTS at a 256-px short side, resized as the official DISTS code prepares images (others as paper)",
             steps=_steps(dists="official DISTS on both 8-bit gray images resized like DISTS_pt.prepare_image: "
                                "short side > 256 -> torchvision resize(PIL image, 256) (PIL bilinear, antialiased; "
                                "long side int(256*long/short)), ToTensor"),
             dists_short_side=DISTS_SHORT_SIDE),
    Protocol("ssim-downsample", "1",
             "SSIM with the original code's downsampling (f x f average pool, f = max(1, round(min(H,W)/256))) "
             "(others as paper)",
             steps=_steps(ssim="as paper after an f x f average pool of both luma images, "
                               "f = max(1, round(min(H, W) / 256)) (ssim_index.m; pyiqa SSIM(downsample=True))"),
             ssim_downsample=True),
)}

DEFAULT_PROTOCOL = "paper"


def get_protocol(name: str | Protocol | None = None) -> Protocol:
    """The protocol called ``name`` (``None``: the default). Raises ValueError naming the known ones."""
    if isinstance(name, Protocol):
        return name
    key = (name or DEFAULT_PROTOCOL).strip().lower()
    if key not in PROTOCOLS:
        raise ValueError(f"unknown fidelity protocol {name!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[key]


def list_protocols() -> list[dict[str, Any]]:
    """Every protocol as JSON (name, version, label, what it changes, its steps), default first."""
    return [p.to_json() for p in PROTOCOLS.values()]

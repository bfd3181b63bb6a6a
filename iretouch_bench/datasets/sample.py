"""One evaluation pair: an input photo, the instruction, and (optionally) the target."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import DatasetError
from ..core.images import read_image

#: Categories the suite knows (paper Sec. 4.1); other strings are allowed and kept as given.
CATEGORIES = ("global", "style", "local", "portrait")


@dataclass
class Sample:
    """A retouching pair.

    Attributes:
        id: unique within the dataset, safe as a file name (``[A-Za-z0-9._-]``).
        input_path: the photo to edit.
        instruction: the edit, in words.
        target_path: the reference result, or ``None`` when the dataset has none.
        category: ``global``, ``style``, ``local``, ``portrait`` or a dataset's own label.
        mask_path: an optional region mask (grayscale, same size as the input).
        meta: anything else the dataset knows (pipeline parameters, instruction source, ...).
        problem: for a bad dataset row kept as a failed sample (:mod:`.base`), the one-line
            reason (file, row, problem); ``None`` for a good sample.
        row: the 1-based row of the source file the sample came from, where known.
    """

    id: str
    input_path: Path | None
    instruction: str
    target_path: Path | None = None
    category: str | None = None
    mask_path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    problem: str | None = None
    row: int | None = None

    def load_input(self) -> np.ndarray:
        """float32 ``[H, W, 3]`` in [0, 1]; a bad row raises its one-line reason."""
        if self.problem is not None or self.input_path is None:
            raise DatasetError(self.problem or f"sample {self.id}: no input file")
        return read_image(self.input_path)

    def load_target(self) -> np.ndarray | None:
        return None if self.target_path is None else read_image(self.target_path)

    def load_mask(self) -> np.ndarray | None:
        """float32 ``[H, W]`` in [0, 1] (first channel of the mask file), or None."""
        return None if self.mask_path is None else read_image(self.mask_path)[:, :, 0]

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("input_path", "target_path", "mask_path"):
            d[k] = None if d[k] is None else str(d[k])
        return d

"""The ``identity`` baseline: returns the input unchanged (the floor every model must beat)."""

from __future__ import annotations

import numpy as np

from iretouch_bench.adapters.base import RetouchModel


class IdentityModel(RetouchModel):
    name = "identity"
    description = "Returns the input unchanged (lower bound; perfect fidelity, no edit)."
    supports_strength = True
    supports_mask = True
    license = "Apache-2.0 (part of this suite)"
    paper_row = None  # not in the paper's Table 1: the floor, shown beside it

    def retouch(self, image, instruction, *, mask=None, strength=1.0):
        return np.array(image, dtype=np.float32, copy=True)

"""The light bilateral adapter: features -> bilateral grid + guidance-map parameters.

Shared by the full generator (features from the one-step UNet, :mod:`.generator`) and the
shipped small model (features from a small CNN, :mod:`.small`).

``BilateralAdapter(in_channels, global_channels)``:
``forward(local [B, C, h, w], glob [B, G]) -> (grid [B, 12, D, Hg, Wg], guide_delta [B, P])``

* the local feature map is area-pooled to the grid's spatial size ``(Hg, Wg)`` (any input
  size works), mixed with the global vector, and a 1x1 conv emits ``12*D`` values per cell;
* the grid is the identity plus that residual, whose last layer starts at zero, so an
  untrained adapter returns the input image unchanged;
* ``guide_delta`` offsets the shared :class:`~.guidance.GuidanceMap` parameters per image
  (also zero-initialised, so the guide starts as luma).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .kernels.reference import identity_grid
from .guidance import GuidanceMap

__all__ = ["BilateralAdapter"]


class BilateralAdapter(nn.Module):
    def __init__(self, in_channels: int, global_channels: int, *, grid_depth: int = 8,
                 grid_size: tuple[int, int] = (16, 16), hidden: int = 64, n_knots: int = 16) -> None:
        super().__init__()
        self.grid_depth = grid_depth
        self.grid_size = tuple(grid_size)
        self.local = nn.Conv2d(in_channels, hidden, 3, padding=1)
        self.glob = nn.Linear(global_channels, hidden)
        self.fuse = nn.Sequential(nn.SiLU(), nn.Conv2d(hidden, hidden, 1), nn.SiLU())
        self.to_grid = nn.Conv2d(hidden, 12 * grid_depth, 1)
        self.guidance = GuidanceMap(n_knots)
        self.to_guide = nn.Linear(global_channels, self.guidance.n_params)
        # Zero-init the outputs: the untrained adapter is the identity edit with a luma guide.
        for layer in (self.to_grid, self.to_guide):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def identity(self, batch: int = 1, device=None, dtype=torch.float32) -> torch.Tensor:
        return identity_grid(batch, self.grid_depth, *self.grid_size, dtype=dtype, device=device)

    def forward(self, local: torch.Tensor, glob: torch.Tensor):
        B = local.shape[0]
        x = F.adaptive_avg_pool2d(local, self.grid_size)
        x = self.local(x) + self.glob(glob).view(B, -1, 1, 1)
        x = self.fuse(x)
        res = self.to_grid(x).view(B, 12, self.grid_depth, *self.grid_size)
        grid = self.identity(B, device=local.device, dtype=res.dtype) + res
        return grid, self.to_guide(glob)

    def guidance_params(self, guide_delta: torch.Tensor):
        """``(knots [B, 3, K], mix [B, 3], bias [B, 1])`` for each image."""
        return self.guidance.params(guide_delta)

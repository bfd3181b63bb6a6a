"""The stateful form shared by the metrics: a running mean of a functional metric over pairs
(torchmetrics-style ``update``/``compute``/``reset``)."""

from __future__ import annotations

import math

import torch


class RunningMean:
    """Mean of ``self.metric(x, y)`` (a ``[B]`` tensor per call) over every pair seen.

    Subclasses set :meth:`metric`; ``update`` returns the per-pair values of the batch.
    """

    def __init__(self) -> None:
        self.reset()

    def metric(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def reset(self) -> None:
        self._sum = 0.0
        self._n = 0

    def update(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        v = self.metric(x, y)
        self._sum += float(v.sum())
        self._n += v.numel()
        return v

    def compute(self) -> float:
        """The mean so far, NaN before any update."""
        return self._sum / self._n if self._n else math.nan

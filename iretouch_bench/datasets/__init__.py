"""Reading pairs: a spec (``embedded``, ``iretouch:PATH``, ``ppr10k:PATH``, ``hf:PATH``) -> a
:class:`Dataset` of :class:`Sample` pairs, through the loader registry (:mod:`.registry`).
Loaders never write pixels; making pairs is :mod:`iretouch_bench.synth`'s job."""

from .base import BAD_ROWS, Dataset
from .registry import dataset_info, list_datasets, load_dataset
from .sample import Sample

__all__ = ["BAD_ROWS", "Dataset", "Sample", "dataset_info", "list_datasets", "load_dataset"]

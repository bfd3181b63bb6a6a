"""The InstantRetouch model, inference only (installed as ``iretouch_bench.models``): the
slice-and-apply kernels and their dispatch (``kernels/``, ``slicing``), the guidance map, the
bilateral adapter, the shipped small model and the paper-style generator, and the ``ours``
adapter with its shipped weights. Training lives in ``iretouch_bench.training``."""

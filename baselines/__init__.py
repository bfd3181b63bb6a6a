"""Baseline adapters (installed as ``iretouch_bench.baselines``). Each implements
:class:`iretouch_bench.registry.RetouchModel` and is listed in the registry."""

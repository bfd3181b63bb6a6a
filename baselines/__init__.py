"""Baseline adapters (installed as ``iretouch_bench.baselines``). Each implements
:class:`iretouch_bench.adapters.registry.RetouchModel` and is listed in the registry."""

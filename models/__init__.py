"""The InstantRetouch model (installed as ``iretouch_bench.models``): bilateral-grid engine,
guidance map, generator, training losses and the shipped ``ours`` weights."""

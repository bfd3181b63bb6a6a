"""Slice-and-apply kernels, one backend per module:

* :mod:`.reference` -- ``torch.nn.functional.grid_sample``; defines the DESIGN.md convention,
  differentiable, any device;
* :mod:`.numba_cpu` -- the fused CPU kernel (numba JIT, cached on disk);
* :mod:`.triton_cuda` -- the fused CUDA kernel (Triton).

Callers go through :mod:`iretouch_bench.models.slicing`, which picks the backend and says
when it had to fall back to the reference.
"""

"""GPU paths that can be checked without a GPU: the TF32 guard around DISTS and the GPU check
script's behaviour on a machine without CUDA (the checks themselves need one: gpu-marked)."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from iretouch_bench.metrics.dists import ieee_fp32_convolutions

ROOT = Path(__file__).resolve().parents[1]


def test_tf32_off_inside_and_restored_after_even_on_error():
    conv = torch.backends.cudnn.conv
    before = conv.fp32_precision
    with ieee_fp32_convolutions(torch.device("cuda")):
        assert conv.fp32_precision == "ieee"
    assert conv.fp32_precision == before
    with pytest.raises(KeyError):
        with ieee_fp32_convolutions(torch.device("cuda")):
            raise KeyError("boom")
    assert conv.fp32_precision == before
    with ieee_fp32_convolutions(torch.device("cpu")):  # CPU: nothing touched
        assert conv.fp32_precision == before


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA behaviour")
def test_gpu_check_says_so_and_exits_0_without_cuda():
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py")], capture_output=True,
                         text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert "no CUDA device" in res.stdout


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_gpu_check_passes_on_cuda(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--json", str(tmp_path / "g.json")],
                         capture_output=True, text=True, timeout=1800, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr

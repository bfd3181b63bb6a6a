"""Per-resolution latency records (paper Table 1 runtime columns) and the latency plot."""

from __future__ import annotations

import time

import numpy as np
import pytest

from iretouch_bench.core.errors import BenchError
from iretouch_bench.runner.latency import (
    METRIC_KEY,
    RESOLUTIONS,
    measure_latency,
    parse_resolutions,
    resolve_resolution,
)
from iretouch_bench.reporting.latency import format_table, plot_latency
from iretouch_bench.metrics.keys import LATENCY_KEYS
from iretouch_bench.adapters.base import RetouchModel
from iretouch_bench.adapters.registry import create_model

ALL = ["720p", "1k", "2k", "4k"]


class CountingSleeper(RetouchModel):
    """Sleeps a fixed time per call and counts calls (checks warm-up and repeat accounting)."""

    name = "test-sleeper"

    def __init__(self, *a, delay=0.02, **k):
        super().__init__(*a, **k)
        self.delay = delay
        self.calls = 0
        self.loads = 0

    def load(self):
        self.loads += 1
        super().load()

    def retouch(self, image, instruction, *, mask=None, strength=1.0):
        self.calls += 1
        time.sleep(self.delay)
        return image


class MaxSide2K(RetouchModel):
    """Like a diffusion model that runs out of memory above 2K."""

    name = "test-max2k"

    def retouch(self, image, instruction, *, mask=None, strength=1.0):
        if max(image.shape[:2]) > 2560:
            raise MemoryError("cannot allocate 12 GiB for the latent")
        return image * 0.9


class Downscaler(RetouchModel):
    name = "test-down"
    kind = "api"

    def retouch(self, image, instruction, *, mask=None, strength=1.0):
        return image[::2, ::2]


class BadOutput(RetouchModel):
    name = "test-bad"

    def retouch(self, image, instruction, *, mask=None, strength=1.0):
        return image[..., 0]


def test_resolutions_are_the_documented_sizes():
    assert RESOLUTIONS == {"720p": (1280, 720), "1k": (1920, 1080), "2k": (2560, 1440), "4k": (3840, 2160)}
    assert sorted(METRIC_KEY.values()) == sorted(LATENCY_KEYS)
    assert parse_resolutions("720p, 1K,4k,4k") == ["720p", "1k", "4k"]
    assert resolve_resolution("640x480") == ("640x480", 640, 480)
    with pytest.raises(BenchError, match="unknown resolution"):
        parse_resolutions("8k")


def test_identity_records_at_all_four_sizes():
    model = create_model("identity")
    res = measure_latency(model, ALL, repeats=2, warmup=1)
    assert [r["resolution"] for r in res["records"]] == ALL
    for rec in res["records"]:
        w, h = RESOLUTIONS[rec["resolution"]]
        assert (rec["width"], rec["height"]) == (w, h)
        assert (rec["output_width"], rec["output_height"]) == (w, h)
        assert rec["error"] is None and rec["repeats"] == 2 and len(rec["times_s"]) == 2
        assert 0 < rec["min_s"] <= rec["median_s"] <= rec["max_s"]
        assert rec["iqr_s"] >= 0 and rec["std_s"] >= 0
        assert rec["peak_mem_bytes"] is None or rec["peak_mem_bytes"] >= 0
    assert set(res["metrics"]) == set(LATENCY_KEYS)
    assert all(v is not None and v > 0 for v in res["metrics"].values())
    assert res["reasons"] == {}
    # the identity copy of a 4K float32 frame (~100 MB) must show in the sampled RSS peak
    rec4k = res["records"][-1]
    if rec4k["peak_mem_bytes"] is not None:
        assert rec4k["peak_mem_bytes"] > 20 * 2**20
    print("\n" + format_table({"identity": res}))


def test_warmup_untimed_and_timings_real():
    model = CountingSleeper(delay=0.03)
    res = measure_latency(model, ["720p", "1k"], repeats=3, warmup=2)
    assert model.loads == 1
    assert model.calls == 2 * (2 + 3)
    for rec in res["records"]:
        assert rec["repeats"] == 3
        assert 0.03 <= rec["min_s"] < 0.5


def test_size_the_model_cannot_run_is_null_with_reason():
    res = measure_latency(MaxSide2K(), ALL, repeats=1, warmup=0)
    m = res["metrics"]
    assert m["latency_2k"] is not None and m["latency_4k"] is None
    assert "MemoryError" in res["reasons"]["latency_4k"]
    rec = res["records"][-1]
    assert rec["median_s"] is None and rec["times_s"] == [] and "12 GiB" in rec["error"]
    assert "n/a (MemoryError" in format_table({"max2k": res})


def test_api_kind_and_output_size_recorded():
    res = measure_latency(Downscaler(), ["720p"], repeats=1, warmup=0)
    assert res["kind"] == "api"
    rec = res["records"][0]
    assert (rec["output_width"], rec["output_height"]) == (640, 360)


def test_bad_output_is_an_error_not_a_time():
    res = measure_latency(BadOutput(), ["720p"], repeats=1, warmup=0)
    assert res["metrics"]["latency_720p"] is None
    assert "expected [H, W, 3]" in res["reasons"]["latency_720p"]


def test_bad_arguments():
    with pytest.raises(BenchError):
        measure_latency(CountingSleeper(), ["720p"], repeats=0)


def test_plot_written(tmp_path):
    res = measure_latency(MaxSide2K(), ALL, repeats=1, warmup=0)
    ident = measure_latency(create_model("identity"), ["720p", "1k"], repeats=1, warmup=0)
    published = {"latency_720p": 0.01, "latency_1k": 0.02, "latency_2k": None, "latency_4k": 0.068}
    out = plot_latency({"max2k": res, "identity": ident, "paper": published}, tmp_path / "plots" / "latency.png")
    data = out.read_bytes()
    assert out.name == "latency.png" and data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    from PIL import Image

    with Image.open(out) as im:
        assert im.size[0] > 400 and im.size[1] > 300
        px = np.asarray(im.convert("RGB"))
    assert px.std() > 10  # something was drawn


@pytest.mark.skipif(not __import__("torch").cuda.is_available(), reason="needs CUDA")
def test_cuda_memory_recorded():
    res = measure_latency(create_model("identity", device="cuda"), ["720p"], repeats=1, warmup=1, device="cuda")
    rec = res["records"][0]
    assert rec["mem_method"].startswith("torch.cuda") and rec["peak_mem_bytes"] is not None

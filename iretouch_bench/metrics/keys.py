"""The metric keys of the DESIGN.md contract, their direction and their group."""

from __future__ import annotations

FIDELITY_KEYS = ("ssim", "cw_ssim", "gmsd", "dists")
DISTANCE_KEYS = ("l1", "l2")
JUDGE_KEYS = ("sc", "pq", "o")
OFFLINE_INSTRUCTION_KEYS = ("attr_acc",)
IDENTITY_KEYS = ("face_sim",)
LATENCY_KEYS = ("latency_720p", "latency_1k", "latency_2k", "latency_4k")

#: Every key a per-sample record carries (latency keys live on the run, not the sample).
SAMPLE_KEYS = FIDELITY_KEYS + DISTANCE_KEYS + JUDGE_KEYS + OFFLINE_INSTRUCTION_KEYS + IDENTITY_KEYS
METRIC_KEYS = SAMPLE_KEYS + LATENCY_KEYS

#: True where a larger value is better (used for arrows in tables and for ranking).
HIGHER_IS_BETTER = {
    "ssim": True, "cw_ssim": True, "gmsd": False, "dists": False,
    "l1": False, "l2": False, "sc": True, "pq": True, "o": True,
    "attr_acc": True, "face_sim": True,
    "latency_720p": False, "latency_1k": False, "latency_2k": False, "latency_4k": False,
}

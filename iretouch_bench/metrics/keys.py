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

#: The groups ``--metrics`` and ``--skip`` accept (a single key is accepted too).
METRIC_GROUPS: dict[str, tuple[str, ...]] = {
    "fidelity": FIDELITY_KEYS,
    "distance": DISTANCE_KEYS,
    "judge": JUDGE_KEYS,
    "instruction": OFFLINE_INSTRUCTION_KEYS,
    "identity": IDENTITY_KEYS,
}


def select_metrics(include: str | None = None, skip: str | None = None) -> tuple[str, ...]:
    """The per-sample keys a run computes, from ``--metrics`` and ``--skip`` (comma lists of
    groups or keys; ``include`` None or ``all`` means every key). Order follows SAMPLE_KEYS.

    Raises:
        ValueError: an unknown group or key (the message lists the known ones).
    """
    def expand(spec: str) -> set[str]:
        out: set[str] = set()
        for part in (p.strip().lower() for p in spec.split(",")):
            if not part:
                continue
            if part == "all":
                out.update(SAMPLE_KEYS)
            elif part in METRIC_GROUPS:
                out.update(METRIC_GROUPS[part])
            elif part in SAMPLE_KEYS:
                out.add(part)
            else:
                raise ValueError(f"unknown metric or group {part!r}; groups: {', '.join(METRIC_GROUPS)}; "
                                 f"keys: {', '.join(SAMPLE_KEYS)}")
        return out

    chosen = set(SAMPLE_KEYS) if not include else expand(include)
    if skip:
        chosen -= expand(skip)
    if {"sc", "pq", "o"} & chosen:  # o = sqrt(sc * pq): the judge group is all or nothing
        chosen |= set(JUDGE_KEYS)
    return tuple(k for k in SAMPLE_KEYS if k in chosen)

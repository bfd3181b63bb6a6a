"""Several judges in one run (``--judge openai:gpt-4o-2024-08-06,gemini:gemini-2.5-flash``).

The first judge is the *primary*: its scores are the record's plain ``sc``/``pq``/``o`` (so every
existing reader keeps working); every judge, the primary included, has its block in the record's
``judges`` map keyed by its spec. The judges answer each batch concurrently (one thread each,
each with its own concurrency, rate limiter and cache); with a budget they share one
:class:`~iretouch_bench.clients.BudgetLedger`, so ``--judge-budget`` bounds them together.
A judge that fails a whole batch (an outage) leaves its scores ``None`` with the reason; the
others' scores stand.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..core.errors import error_line
from .base import Judge, JudgeError, JudgeRequest, JudgeResult, all_none


class MultiJudge(Judge):
    def __init__(self, judges: list[Judge]):
        if len(judges) < 2:
            raise JudgeError("MultiJudge needs at least two judges")
        specs = [j.spec for j in judges]
        if len(set(specs)) != len(specs):
            raise JudgeError(f"judge spec lists the same judge twice: {','.join(specs)}")
        self.judges = judges
        self.primary = judges[0]
        self.spec = ",".join(specs)
        self.prompt_hash = getattr(self.primary, "prompt_hash", None)

    @property
    def specs(self) -> list[str]:
        return [j.spec for j in self.judges]

    def preflight(self) -> None:
        for j in self.judges:
            j.preflight()

    def close(self) -> None:
        for j in self.judges:
            j.close()

    def score_batch(self, requests: list[JudgeRequest]) -> list[JudgeResult]:
        def one(j: Judge) -> list[JudgeResult]:
            try:
                res = j.score_batch(requests)
            except Exception as err:  # one judge's outage must not cost the others' answers
                why = f"judge error: {error_line(err)}"
                res = [all_none(why) for _ in requests]
            for r in res:
                r.spec = r.spec or j.spec
            return res

        with ThreadPoolExecutor(max_workers=len(self.judges), thread_name_prefix="judges") as pool:
            per = list(pool.map(one, self.judges))
        out = []
        for k in range(len(requests)):
            primary = per[0][k]
            out.append(JudgeResult(values=dict(primary.values), reasons=dict(primary.reasons), raw=primary.raw,
                                   usage=primary.usage, cost_usd=primary.cost_usd, cached=primary.cached,
                                   spec=primary.spec, prompt_hash=primary.prompt_hash,
                                   per_judge={j.spec: per[i][k] for i, j in enumerate(self.judges)}))
        return out

    def info(self) -> dict[str, Any]:
        """The primary's info (what ``run.json`` ``judge`` has always held), plus every judge's."""
        return {**self.primary.info(), "specs": self.specs, "judges": [j.info() for j in self.judges]}

    def estimate(self, n_samples: int) -> dict[str, Any]:
        parts = [j.estimate(n_samples) for j in self.judges]
        costs = [p.get("est_cost_usd") for p in parts]
        return {"calls": sum(p.get("calls", 0) for p in parts),
                "est_cost_usd": None if any(c is None for c in costs) else round(sum(costs), 4),
                "note": "; ".join(f"{j.spec}: {p.get('note', '')}" for j, p in zip(self.judges, parts)),
                "judges": parts}


def judge_infos(judge: Judge) -> list[dict[str, Any]]:
    """Every judge's ``info()`` (one entry for a single judge), for ``run.json`` ``judges``."""
    if isinstance(judge, MultiJudge):
        return [j.info() for j in judge.judges]
    return [judge.info()]

"""``iretouch-bench submit RUN_DIR``: check a run folder and write a results-only submission file.

Every check runs and every problem is listed (a submitter fixes them all in one go). Nothing
from the run folder is executed or imported: only JSON is read. The submission file is the run's
:class:`~iretouch_bench.runner.result.Result` with ``kind: submission`` and a ``submission`` block
(who generated, who scored, the checks passed); no outputs, no per-sample records, no paths.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..core.atomic import write_text_atomic
from ..core.errors import BenchError
from ..core.provenance import now_iso
from ..metrics.keys import JUDGE_KEYS, LATENCY_KEYS, SAMPLE_KEYS
from ..runner.records import read_all
from ..runner.result import Result, dumps, validation_problems
from ..runner.summary import summarise

#: Inclusive ranges a value must lie in (None: unbounded on that side).
RANGES: dict[str, tuple[float | None, float | None]] = {
    "ssim": (-1.0, 1.0), "cw_ssim": (-1.0, 1.0), "gmsd": (0.0, None), "dists": (0.0, 1.0),
    "l1": (0.0, 1.0), "l2": (0.0, 1.0), "sc": (0.0, 10.0), "pq": (0.0, 10.0), "o": (0.0, 10.0),
    "attr_acc": (0.0, 1.0), "face_sim": (-1.0, 1.0),
    **{k: (0.0, None) for k in LATENCY_KEYS},
}
#: Relative tolerance of the recomputed summary and of o = sqrt(sc*pq) (float round-off only).
REL_TOL = 1e-9
RANGE_TOL = 1e-9
O_ABS_TOL = 1e-6
CHECKS = ("schema", "complete", "dataset_hash_known", "values_in_range", "summary_recomputes", "o_is_sqrt_sc_pq",
          "judge_and_device_recorded", "authors_stated", "no_absolute_paths", "no_secrets")

_HEX64 = re.compile(r"\b[0-9a-f]{64}\b")
#: Things that look like credentials: provider key prefixes, bearer tokens, key=value assignments.
_SECRET_PATTERNS = [
    re.compile(r"\bsk-(?:proj-|ant-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"\bAIza[0-9A-Za-z_\-]{30,}"),
    re.compile(r"\bAKIA[0-9A-Z]{16}\b"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),
    re.compile(r"\bhf_[A-Za-z0-9]{30,}"),
    re.compile(r"(?i)\bbearer\s+[A-Za-z0-9._\-]{12,}"),
    re.compile(r"(?i)(api[_-]?key|secret|password|token)\s*[:=]\s*[^\s,;]{6,}"),
]
#: An absolute POSIX path (two components or more), a Windows drive path, or a home-relative path.
_ABS_PATH = re.compile(r"(?:^|[\s\"'=(,;])(?:/[A-Za-z0-9._-]+/|[A-Za-z]:\\|~/)")


@dataclass
class Check:
    problems: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    def run(self, name: str, found: list[str]) -> None:
        if found:
            self.problems += [f"{name}: {p}" for p in found]
        else:
            self.passed.append(name)


def known_dataset_hashes(repo_root: Path | None = None) -> dict[str, str]:
    """``{content hash: where it is listed}``: the embedded set's (as built here) and every hash a
    data card lists (``data_cards/*.md`` of the checkout)."""
    known: dict[str, str] = {}
    root = repo_root or Path(__file__).resolve().parents[2]
    for card in sorted((root / "data_cards").glob("*.md")):
        for h in _HEX64.findall(card.read_text(encoding="utf-8")):
            known.setdefault(h, f"data_cards/{card.name}")
    try:
        from ..datasets import dataset_info

        h = dataset_info("embedded").get("content_hash")
        if h:
            known.setdefault(h, "the embedded set built on this machine")
    except Exception:  # noqa: BLE001 - the data cards still count; a broken build is reported elsewhere
        pass
    return known


def dataset_ids(info: dict[str, Any], content_hash: str) -> set[str] | None:
    """The sample ids of the run's dataset when it can be loaded here with the same content hash
    (else None: the record count is then the only completeness check)."""
    cfg = info.get("config") or {}
    try:
        from ..datasets import load_dataset

        ds = load_dataset(cfg.get("dataset") or info["dataset"]["spec"], expert=cfg.get("expert", "a"),
                          split=cfg.get("split"))
    except Exception:  # noqa: BLE001 - a dataset that is not on this machine is not a problem of the run
        return None
    return {s.id for s in ds.samples} if ds.content_hash == content_hash else None


def _walk_strings(obj: Any, where: str = ""):
    if isinstance(obj, str):
        yield where, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _walk_strings(str(k), f"{where}.{k}(key)" if where else f"{k}(key)")
            yield from _walk_strings(v, f"{where}.{k}" if where else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _walk_strings(v, f"{where}[{i}]")


def _in_range(key: str, v: Any) -> str | None:
    if v is None:
        return None
    if not isinstance(v, (int, float)) or isinstance(v, bool) or not math.isfinite(float(v)):
        return f"{v!r} is not a finite number"
    lo, hi = RANGES[key]
    # float round-off (a cosine of 1 + 4e-16) is not a range error
    if (lo is not None and v < lo - RANGE_TOL) or (hi is not None and v > hi + RANGE_TOL):
        return f"{v!r} outside [{lo}, {hi if hi is not None else 'inf'}]"
    return None


def _close(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(float(a), float(b), rel_tol=REL_TOL, abs_tol=1e-12)


def _compare_stats(label: str, stored: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    """One line per metric whose stored mean, counts or interval differ from the recomputed ones."""
    out = []
    for k in SAMPLE_KEYS:
        s, f = stored.get(k) or {}, fresh.get(k) or {}
        sci, fci = s.get("ci") or {}, f.get("ci") or {}
        fields = [n for n in ("mean", "n", "n_null") if not _close(s.get(n), f.get(n))]
        fields += [f"ci.{n}" for n in ("lo", "hi") if not _close(sci.get(n), fci.get(n))]
        if fields:
            out.append(f"{label} {k}: {', '.join(fields)} differ (stored mean {s.get('mean')!r}, n {s.get('n')!r}; "
                       f"samples.jsonl gives mean {f.get('mean')!r}, n {f.get('n')!r})")
    return out


def check_run(run_dir: str | Path, generated_by: str | None = None, scored_by: str | None = None,
              known_hashes: dict[str, str] | None = None) -> tuple[Result | None, Check]:
    """Run every check on a run folder; returns the validated result (None if the schema failed)
    and the problems found (an empty list means it may be submitted)."""
    run_dir = Path(run_dir)
    chk = Check()

    def read_json(name: str) -> dict[str, Any] | None:
        p = run_dir / name
        try:
            return json.loads(p.read_text(encoding="utf-8"), parse_constant=_no_constant)
        except FileNotFoundError:
            chk.problems.append(f"files: {name} missing")
        except (OSError, ValueError) as err:
            chk.problems.append(f"files: {name} unreadable ({err})")
        return None

    info, summary, raw = read_json("run.json"), read_json("summary.json"), read_json("result.json")
    records = read_all(run_dir, "samples")

    # 1. schema
    result = None
    if raw is not None:
        try:
            result = Result.model_validate(raw)
            chk.run("schema", [] if result.kind == "result" else ["result.json is already a submission"])
        except ValidationError as err:
            chk.run("schema", [f"result.json {p}" for p in validation_problems(err)])
    if result is None or info is None or summary is None:
        chk.problems.append("stopped: the checks below need run.json, summary.json and a valid result.json")
        return result, chk

    # 2. every sample of the dataset present, once, nothing left out by --limit/--shard
    found = []
    n_dataset = (info.get("dataset") or {}).get("n_samples")
    if (info.get("config") or {}).get("limit") is not None:
        found.append(f"run was limited to {info['config']['limit']} samples (--limit)")
    if len(records) != n_dataset:
        found.append(f"samples.jsonl has {len(records)} records, the dataset has {n_dataset} samples")
    if result.counts.n_dataset != n_dataset or result.counts.n_records != len(records):
        found.append(f"result.json counts {result.counts.n_records}/{result.counts.n_dataset}, "
                     f"the run folder has {len(records)}/{n_dataset}")
    bad_status = sorted(r["id"] for r in records.values() if r.get("status") not in ("ok", "failed", "refused"))
    if bad_status:
        found.append(f"unknown status in {len(bad_status)} record(s), e.g. {bad_status[0]}")
    n_failed = sum(1 for r in records.values() if r.get("status") == "failed")
    if n_failed:
        found.append(f"{n_failed} sample(s) failed; rerun the command to retry them")
    ids = dataset_ids(info, result.dataset.content_hash)
    if ids is not None:  # the dataset is here: the ids must be exactly its ids, not just as many
        missing, extra = sorted(ids - set(records)), sorted(set(records) - ids)
        if missing:
            found.append(f"{len(missing)} sample(s) of the dataset have no record, e.g. {missing[0]}")
        if extra:
            found.append(f"{len(extra)} record(s) are not samples of the dataset, e.g. {extra[0]}")
    chk.run("complete", found)

    # 3. dataset hash known
    hashes = known_dataset_hashes() if known_hashes is None else known_hashes
    h = result.dataset.content_hash
    found = [] if h in hashes else [f"dataset content hash {h[:16]}... is neither the embedded set's nor "
                                    f"one a data card lists"]
    if (info.get("dataset") or {}).get("content_hash") != h:
        found.append("run.json and result.json name different dataset hashes")
    chk.run("dataset_hash_known", found)

    # 4. values in range (every per-sample value, every latency)
    found = []
    for r in records.values():
        for k, v in (r.get("metrics") or {}).items():
            if k in RANGES and (why := _in_range(k, v)):
                found.append(f"{r.get('id')}: {k} {why}")
    for k, v in (result.latency.model_dump() if result.latency else {}).items():
        if v and (why := _in_range(k, v.get("median_s"))):
            found.append(f"latency {k} {why}")
    chk.run("values_in_range", found)

    # 5. the summary recomputed from samples.jsonl equals the stored one (summary.json and result.json)
    fresh = summarise(records.values())
    found = _compare_stats("summary.json", summary.get("metrics") or {}, fresh["metrics"])
    found += _compare_stats("result.json", result.metrics.model_dump(), fresh["metrics"])
    cats_fresh = fresh.get("by_category") or {}
    cats_stored = {c: b.model_dump() for c, b in result.by_category.items()}
    if set(cats_fresh) != set(cats_stored):
        found.append(f"result.json categories {sorted(cats_stored)} != samples.jsonl {sorted(cats_fresh)}")
    for c in sorted(set(cats_fresh) & set(cats_stored)):
        found += _compare_stats(f"result.json [{c}]", cats_stored[c]["metrics"], cats_fresh[c]["metrics"])
    chk.run("summary_recomputes", found)

    # 6. o = sqrt(sc * pq) per sample
    found = []
    for r in records.values():
        m = r.get("metrics") or {}
        sc, pq, o = (m.get(k) for k in JUDGE_KEYS)
        if o is None and sc is None and pq is None:
            continue
        if None in (sc, pq, o):
            found.append(f"{r.get('id')}: sc/pq/o must be all present or all null (sc={sc}, pq={pq}, o={o})")
        elif all(isinstance(x, (int, float)) for x in (sc, pq, o)) and sc * pq >= 0 and \
                abs(o - math.sqrt(sc * pq)) > O_ABS_TOL:
            found.append(f"{r.get('id')}: o={o} but sqrt(sc*pq)={math.sqrt(sc * pq):.6f}")
    chk.run("o_is_sqrt_sc_pq", found)

    # 7. judge and device recorded
    found = []
    judge = info.get("judge") or {}
    if not judge.get("spec"):
        found.append("run.json names no judge")
    elif judge.get("spec", "").startswith("openai") and not result.protocols.judge.snapshots:
        found.append("an API judge ran but no model snapshot was recorded")
    if not (info.get("device") or {}).get("requested_device") or result.environment.device in ("", "unknown"):
        found.append("run.json records no device")
    chk.run("judge_and_device_recorded", found)

    # 8. who generated and who scored
    chk.run("authors_stated", [f"--{n.replace('_', '-')} not given" for n, v in
                               (("generated_by", generated_by), ("scored_by", scored_by)) if not (v or "").strip()])

    # 9./10. the submission text: no absolute paths, no secrets
    body = result.model_dump(mode="json")
    paths, secrets = [], []
    for where, text in _walk_strings(body):
        if _ABS_PATH.search(text):
            paths.append(f"{where} = {text[:80]!r}")
        if any(p.search(text) for p in _SECRET_PATTERNS):
            secrets.append(f"{where} looks like a credential (value not shown)")
    chk.run("no_absolute_paths", paths)
    chk.run("no_secrets", secrets)
    return result, chk


def _no_constant(name: str):
    raise ValueError(f"{name} is not a number JSON allows")


def submission_name(result: Result) -> str:
    safe = lambda s: re.sub(r"[^A-Za-z0-9._-]+", "_", s).strip("_") or "x"  # noqa: E731
    parts = [safe(result.model.name)]
    if result.model.strength != 1.0:
        parts.append(f"s{result.model.strength:g}")
    if result.model.weights_sha256:
        parts.append(result.model.weights_sha256[:8])
    parts += [safe(result.dataset.name), result.dataset.content_hash[:8], safe(result.protocols.judge.spec)]
    return "__".join(parts) + ".json"


def submit(run_dir: str | Path, out_dir: str | Path, generated_by: str | None, scored_by: str | None,
           known_hashes: dict[str, str] | None = None) -> Path:
    """Check ``run_dir`` and write ``out_dir/<name>.json``; raises :class:`SubmissionRejected`
    listing every problem."""
    run_dir = Path(run_dir)
    result, chk = check_run(run_dir, generated_by, scored_by, known_hashes)
    if chk.problems or result is None:
        raise SubmissionRejected(run_dir, chk.problems)
    data = result.model_dump(mode="json")
    data["kind"] = "submission"
    data["submission"] = {"submitted": now_iso(), "generated_by": generated_by.strip(), "scored_by": scored_by.strip(),
                          "source_run": run_dir.resolve().name, "checks": list(chk.passed)}
    sub = Result.model_validate(data)
    path = Path(out_dir) / submission_name(sub)
    write_text_atomic(path, dumps(sub))
    return path


class SubmissionRejected(BenchError):
    def __init__(self, run_dir: Path, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(f"{run_dir}: not submitted, {len(problems)} problem(s):\n"
                         + "\n".join(f"  - {p}" for p in problems))

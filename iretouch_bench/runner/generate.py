"""Stage 1, generate: run the model on each sample and write its output PNG.

One ``generate*.jsonl`` record per sample: ``status`` (``ok`` | ``failed`` | ``refused``), the
per-sample ``seed``, sizes, ``latency_s``, the model's ``model_meta`` (working size, resize
policy, steps, snapshot, request id, cost, tokens, timing) and ``error`` (failed) or
``reason`` (refused). A sample whose record exists is not generated again, so a killed run
loses at most the samples in flight.

How the model is called
-----------------------
Always through :meth:`RetouchModel.run_batch` with :class:`RetouchRequest` objects (the default
wraps ``retouch()``), ``model.batch_size`` samples per call. With ``model.max_concurrency > 1``
(API editors) up to that many calls are in flight on a thread pool; records are appended by
this thread as each call completes, one per sample whatever the completion order
(:class:`RecordWriter` appends each record with one ``O_APPEND`` write). With 1, everything
runs on the calling thread (CUDA models keep their context).

Seeds: each sample's seed is :func:`sample_seed` of the run seed and the sample id, so a
resumed run, a shard and a rerun give every sample the same seed.

Paid calls (``kind == "api"``): an :class:`OutputCache` answers repeated requests without a
call, and a :class:`ModelBudget` admits a call only when what was spent, plus the estimates
of the calls in flight, plus this call's estimate stay within the budget. A sample that does
not fit gets no record (a rerun with a larger budget generates it) and the budget says so.
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..adapters.base import STATUS_OK, STATUS_REFUSED, RetouchModel, RetouchRequest, RetouchResult
from ..clients import BudgetLedger
from ..core.errors import ModelError, error_line, one_line
from ..core.images import image_bit_depth, write_image
from ..datasets.sample import Sample
from .model_cache import OutputCache, cache_key
from .records import RecordWriter


def output_path(run_dir: Path, sample_id: str) -> Path:
    return run_dir / "outputs" / f"{sample_id}.png"


def sample_seed(run_seed: int, sample_id: str) -> int:
    """The seed of one sample: the first 4 bytes of sha256(``run_seed``, ``sample_id``), an
    unsigned 32-bit int (numpy, torch and every API accept it). Independent of sample order,
    shard and resume; a different run seed gives unrelated sample seeds."""
    digest = hashlib.sha256(f"iretouch-bench/sample-seed/v1\0{int(run_seed)}\0{sample_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


class ModelBudget:
    """The USD budget of a run's paid model calls: :class:`~iretouch_bench.clients.BudgetLedger`
    (spent + in-flight estimates + this call's estimate <= limit; waits for calls in flight,
    then exhausted for good) with the adapter's price per call, and the samples left out.

    :meth:`settle` charges the real cost (sum of ``meta.cost_usd``, or the estimate when the
    adapter reports none) and frees the reservation. Cache hits never reach the budget.
    """

    def __init__(self, limit_usd: float, per_call_usd: float) -> None:
        if limit_usd is None or not limit_usd >= 0:
            raise ModelError(f"--model-budget must be >= 0 USD, got {limit_usd}")
        self.ledger = BudgetLedger(limit_usd)
        self.limit = float(limit_usd)
        self.per_call = float(per_call_usd)
        self.calls = 0
        self.skipped: list[str] = []  # sample ids not generated for want of budget
        self._lock = threading.Lock()

    @property
    def exhausted(self) -> bool:
        return self.ledger.exhausted

    @property
    def spent(self) -> float:
        return self.ledger.spent_usd

    def admit(self, n_requests: int = 1) -> float | None:
        """Reserve the estimate of one call carrying ``n_requests`` (a batch: one reservation, as a
        caller must never wait on its own reservation); the amount reserved, or None once the
        budget is exhausted."""
        need = self.per_call * n_requests
        return need if self.ledger.admit(need) else None

    def settle(self, reserved: float, cost: float | None) -> None:
        self.ledger.charge(reserved if cost is None else cost)  # charge first: a waiting admit sees it
        self.ledger.release(reserved)
        with self._lock:
            self.calls += 1

    def skip(self, sample_id: str) -> None:
        with self._lock:
            self.skipped.append(sample_id)

    def report(self) -> dict[str, Any]:
        snap = self.ledger.snapshot()
        return {"limit_usd": self.limit, "spent_usd": snap["spent_usd"], "calls": self.calls,
                "per_call_estimate_usd": self.per_call, "exhausted": snap["exhausted"],
                "not_generated": len(self.skipped)}


def _check_output(out: object) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"model returned {type(out).__name__}, expected numpy.ndarray")
    if out.ndim != 3 or out.shape[2] != 3:
        raise ValueError(f"model returned shape {out.shape}, expected [H, W, 3]")
    if not np.isfinite(out).all():
        raise ValueError("model output holds NaN or infinite values")
    return np.clip(out.astype(np.float32, copy=False), 0.0, 1.0)


def _json_safe(value: Any) -> Any:
    """``meta`` as a record can hold it: non-finite floats -> None, numpy scalars/arrays -> lists and
    numbers, anything else unknown -> its text. An adapter's odd meta never costs the sample."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_safe(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)


def _result_record(rec: dict, result: RetouchResult, sample: Sample, run_dir: Path) -> dict:
    """Fill ``rec`` from a model result: write the output (ok) or note the refusal."""
    rec["model_meta"] = _json_safe(dict(result.meta or {}))
    if result.status == STATUS_REFUSED:
        # never an output file: a refused sample is not scored, and the input must not stand in for it
        rec.update(status="refused", reason=one_line(result.reason or "refused without a reason"))
        return rec
    if result.status != STATUS_OK:
        raise ModelError(f"model returned status {result.status!r}; expected 'ok' or 'refused'")
    out = _check_output(result.image)
    path = output_path(run_dir, sample.id)
    # Outputs keep their input's precision: a 16-bit TIFF source gets a 16-bit PNG.
    write_image(path, out, bits=image_bit_depth(sample.input_path))
    rec.update(status="ok", output=str(path.relative_to(run_dir)), output_size=list(out.shape[:2]))
    return rec


class _Generator:
    """Turns batches of samples into generate records (runs on worker threads when concurrent)."""

    def __init__(self, model: RetouchModel, run_dir: Path, strength: float, seed: int,
                 cache: OutputCache | None, budget: ModelBudget | None) -> None:
        self.model, self.run_dir, self.strength, self.seed = model, run_dir, strength, seed
        self.cache, self.budget = cache, budget

    def work(self, batch: list[Sample]) -> list[dict]:
        """Records for ``batch`` in order; a sample left out was skipped by the budget."""
        recs: dict[str, dict] = {}
        calls: list[tuple[Sample, RetouchRequest, str | None]] = []
        for sample in batch:
            seed = sample_seed(self.seed, sample.id)
            rec: dict = {"id": sample.id, "stage": "generate", "seed": seed}
            recs[sample.id] = rec
            try:
                image = sample.load_input()
                mask = sample.load_mask() if sample.mask_path is not None else None
                rec["input_size"] = list(image.shape[:2])
                req = RetouchRequest(image=image, instruction=sample.instruction, mask=mask,
                                     strength=self.strength, seed=seed, sample_id=sample.id)
                key = cache_key(self.model, req) if self.cache is not None else None
                hit = self.cache.get(key) if key is not None else None
                if hit is not None:
                    result, latency = hit
                    # this run paid nothing: the cost moves to original_cost_usd (as the API editors'
                    # own cache reports it), the latency is the original call's
                    result.meta.update(cached=True, original_cost_usd=result.meta.get("cost_usd"), cost_usd=0.0)
                    rec["latency_s"] = latency
                    rec["cached"] = True
                    _result_record(rec, result, sample, self.run_dir)
                    continue
                calls.append((sample, req, key))
            except KeyboardInterrupt:
                raise
            except Exception as err:
                rec.update(status="failed", error=error_line(err))
        if calls:
            self._call(calls, recs)
        return [recs[s.id] for s in batch if s.id in recs]

    def _call(self, calls: list[tuple[Sample, RetouchRequest, str | None]], recs: dict[str, dict]) -> None:
        reserved = 0.0
        if self.budget is not None:
            got = self.budget.admit(len(calls))
            if got is None:  # over budget: no record, so a rerun with more budget makes them
                for sample, _, _ in calls:
                    self.budget.skip(sample.id)
                    recs.pop(sample.id, None)
                return
            reserved = got
        cost: float | None = None
        try:
            t0 = time.perf_counter()
            results = self.model.run_batch([req for _, req, _ in calls])
            wall = time.perf_counter() - t0
            if not isinstance(results, list) or len(results) != len(calls):
                raise ModelError(f"run_batch returned {type(results).__name__} of "
                                 f"{len(results) if isinstance(results, list) else '?'} results for {len(calls)} requests")
            costs = [(r.meta or {}).get("cost_usd") for r in results if isinstance(r, RetouchResult)]
            if costs and all(isinstance(c, (int, float)) for c in costs):
                cost = float(sum(costs))
        except KeyboardInterrupt:
            raise
        except Exception as err:
            for sample, _, _ in calls:
                recs[sample.id].update(status="failed", error=error_line(err))
            return
        finally:
            if self.budget is not None:
                self.budget.settle(reserved, cost)
        per_sample = wall / len(calls)
        for (sample, _, key), result in zip(calls, results):
            rec = recs[sample.id]
            rec["latency_s"] = per_sample
            if len(calls) > 1:
                rec["batch"] = {"size": len(calls), "wall_s": wall}
            try:
                if not isinstance(result, RetouchResult):
                    raise TypeError(f"run_batch returned {type(result).__name__}, expected RetouchResult")
                _result_record(rec, result, sample, self.run_dir)
                if key is not None and self.cache is not None:
                    self.cache.put(key, result, latency_s=per_sample)
            except KeyboardInterrupt:
                raise
            except Exception as err:
                rec.update(status="failed", error=error_line(err))


def generate(
    model: RetouchModel,
    samples: Iterable[Sample],
    run_dir: Path,
    writer: RecordWriter,
    done: dict[str, dict],
    strength: float = 1.0,
    progress=None,
    *,
    seed: int = 0,
    cache: OutputCache | None = None,
    budget: ModelBudget | None = None,
) -> dict[str, dict]:
    """Generate every sample not in ``done``; returns ``done`` updated with the new records."""
    todo: list[Sample] = []
    for sample in samples:
        if sample.id in done:
            if progress is not None:
                progress.update(1)
        elif sample.problem is not None:  # a bad dataset row: recorded as failed, the model is never called
            _emit({"id": sample.id, "stage": "generate", "status": "failed", "error": sample.problem,
                   "row": sample.row}, writer, done, progress)
        else:
            todo.append(sample)
    if not todo:
        return done
    model.ensure_loaded()  # deferred: a fully generated run never loads the model
    gen = _Generator(model, run_dir, strength, seed, cache, budget)
    size = max(1, int(getattr(model, "batch_size", 1) or 1))
    batches = [todo[i:i + size] for i in range(0, len(todo), size)]
    workers = max(1, int(getattr(model, "max_concurrency", 1) or 1))
    if workers == 1:
        for i, batch in enumerate(batches):
            if budget is not None and budget.exhausted:
                _skip_rest(batches[i:], budget)
                break
            for rec in gen.work(batch):
                _emit(rec, writer, done, progress)
        return done
    _generate_concurrently(gen, batches, workers, writer, done, progress, budget)
    return done


def _skip_rest(batches: Iterable[list[Sample]], budget: ModelBudget) -> None:
    for batch in batches:
        for s in batch:
            budget.skip(s.id)


def _generate_concurrently(gen: _Generator, batches: list[list[Sample]], workers: int, writer: RecordWriter,
                           done: dict[str, dict], progress, budget: ModelBudget | None) -> None:
    """Up to ``workers`` batches in flight; each record appended here as its batch completes."""
    queue = iter(batches)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="generate")
    pending: set[Future] = set()
    try:
        while True:
            while len(pending) < workers:  # at most `workers` submitted: a kill loses only those
                if budget is not None and budget.exhausted:
                    _skip_rest(queue, budget)
                    break
                batch = next(queue, None)
                if batch is None:
                    break
                pending.add(pool.submit(gen.work, batch))
            if not pending:
                break
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for fut in finished:
                for rec in fut.result():
                    _emit(rec, writer, done, progress)
    except BaseException:
        # Ctrl-C or a bug: queued batches never start; calls already in flight finish in their
        # threads but get no record, so a rerun makes them again (from the cache when it has them).
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def _emit(rec: dict, writer: RecordWriter, done: dict[str, dict], progress) -> None:
    writer.append(rec)
    done[rec["id"]] = rec
    if progress is not None:
        progress.update(1)
        if rec["status"] == "failed":
            progress.write(f"[failed] {rec['id']}: {rec['error']}")
        elif rec["status"] == "refused":
            progress.write(f"[refused] {rec['id']}: {rec['reason']}")

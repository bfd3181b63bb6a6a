"""``flux-kontext-pro``: Black Forest Labs' FLUX.1 Kontext [pro] through its HTTP API (``httpx``).

No SDK on the registry fits (one pins an old Pillow, another predates Kontext), so this speaks
the documented API directly:

1. submit: ``POST {base}/v1/flux-kontext-pro`` with the ``x-key`` header and JSON
   ``{prompt, input_image (base64 PNG), seed, aspect_ratio, output_format: "png",
   safety_tolerance, prompt_upsampling: false}`` -> ``{id, polling_url}``;
2. poll: ``GET polling_url`` every ``poll_interval_s`` until ``status`` is ``Ready``, within
   ``poll_timeout_s``; ``Pending`` keeps polling;
3. download: ``GET result.sample`` (a signed delivery URL: the key is *not* sent there, and the
   URL is recorded without its query).

Working size: Kontext answers at about one megapixel in the requested aspect ratio; the
ratio sent is the simple one nearest the input's (:data:`RATIOS`, between 21:9 and 9:21), or
the ``aspect_ratio`` model arg. The input is sent shrunk (area average, never enlarged) to
fit ``upload_max_side`` (default 2048 px) as a PNG. The answer is decoded and brought back to
the input size with the suite's one resizer (``core.resize.match_size``, bicubic).

A refusal: ``Request Moderated`` or ``Content Moderated`` -> ``refused`` with
``"moderated: <status> (<details>)"``. A failure: ``Error`` or ``Task not found`` (with the
API's details), still ``Pending`` past the deadline, retries spent on the submit, a poll or the
download. A 404 on the submit (an unknown or retired endpoint name) stops the adapter with one
line naming it (BFL calls Kontext [pro] legacy: ``--model-args model=flux-kontext-max`` or a
newer endpoint is a different row).

Timing: ``upload_s`` = the submit round trip, ``queue_s`` = time ``Pending`` before the API
reports progress (null when it never reports progress), ``generate_s`` = the rest of the
polling (all of it when no progress is reported), ``download_s`` = the sample download.
Cost: :data:`PRICE_PER_IMAGE_USD` per submitted task (the API's own ``cost`` figure, in
credits, is recorded beside it when present).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any
from urllib.parse import urlsplit

from iretouch_bench.adapters.base import RetouchRequest
from iretouch_bench.clients import Outcome, retry_call, sanitise_url
from iretouch_bench.core.errors import ModelError, one_line
from iretouch_bench.clients.payload import png_bytes

from .api_editor import Answer, ApiEditor, Prepared, nearest_bucket, parse_price

#: Aspect ratios sent (as "W:H") -> (w, h) ratio; Kontext accepts 21:9 .. 9:21.
RATIOS: dict[str, tuple[int, int]] = {r: tuple(int(v) for v in r.split(":")) for r in (
    "1:1", "5:4", "4:5", "4:3", "3:4", "3:2", "2:3", "16:9", "9:16", "2:1", "1:2", "21:9", "9:21")}
#: USD per image. Source: Black Forest Labs' pricing page, FLUX.1 Kontext [pro] (2025: $0.04 per
#: image); not re-checkable from this offline build: override with ``price=USD``.
PRICE_PER_IMAGE_USD = {"flux-kontext-pro": 0.04, "flux-kontext-max": 0.08}
MODERATED = ("Request Moderated", "Content Moderated")
FAILED = ("Error", "Task not found")


class FluxKontextProModel(ApiEditor):
    name = "flux-kontext-pro"
    description = ("Black Forest Labs FLUX.1 Kontext [pro] through its HTTP API (API; async submit/poll/"
                   "download with httpx)")
    requires = ("env:BFL_API_KEY", "package:httpx")
    supports_mask = False
    license = "Black Forest Labs API terms of service (proprietary service)"
    paper_row = "FLUX.1-Kontext-Pro"

    KEY_ENV = ("BFL_API_KEY",)
    BASE_URL_ENV = ("BFL_BASE_URL",)
    DEFAULT_BASE_URL = "https://api.bfl.ai"
    DEFAULT_MODEL = "flux-kontext-pro"
    RETIRED: dict[str, str] = {}
    SUBSTITUTE_HINT = "for example flux-kontext-max; BFL lists Kontext [pro] as legacy"
    EXTRA_OPTIONS = {"aspect_ratio": "auto", "safety_tolerance": 2, "upload_max_side": 2048,
                     "poll_interval_s": 0.5, "poll_timeout_s": 600.0, "price": None}
    ANSWER_OPTIONS = ("aspect_ratio", "safety_tolerance", "upload_max_side")

    def __init__(self, device: str = "cpu", weights: str | None = None, **options: Any) -> None:
        super().__init__(device=device, weights=weights, **options)
        self.aspect_ratio = self._opt("aspect_ratio", str, "auto", choices=("auto", *RATIOS))
        self.safety_tolerance = self._opt("safety_tolerance", int, 2, minimum=0)
        if self.safety_tolerance > 6:
            raise ModelError(f"model '{self.name}': option safety_tolerance={self.safety_tolerance}: expected 0..6")
        self.upload_max_side = self._opt("upload_max_side", int, 2048, minimum=64)
        self.poll_interval_s = self._opt("poll_interval_s", float, 0.5, minimum=0.0)
        self.poll_timeout_s = self._opt("poll_timeout_s", float, 600.0, minimum=0.001)
        price = self._opt("price", str, None)
        self.price = (parse_price(price, 1, "USD per image", self.name)[0] if price is not None
                      else PRICE_PER_IMAGE_USD.get(self.model_id))
        self.price_source = ("model arg price" if price is not None else
                             "BFL pricing page (2025), see baselines/flux_kontext.py" if self.price is not None
                             else "no price known for this endpoint")
        # polls wait in real time (the ``sleep`` option only shortens retry backoff): the deadline is real
        self._poll_sleep = time.sleep

    def _check_package(self) -> None:
        try:
            import httpx  # noqa: F401  (checked here, imported on use)
        except ImportError as err:
            raise ModelError(f"model '{self.name}' needs the httpx package (pip install httpx): {err}") from err

    def ratio(self, h: int, w: int) -> str:
        return self.aspect_ratio if self.aspect_ratio != "auto" else nearest_bucket(h, w, RATIOS)

    def resize_policy(self, prep: Prepared) -> str:
        return (f"input shrunk (area, never enlarged) to a long side of at most {self.upload_max_side} px and sent "
                f"as PNG with aspect_ratio {prep.payload['aspect_ratio']} (nearest the input's); Kontext answers at "
                "about one megapixel in that ratio; the answer is resized to the input size with "
                "core.resize.match_size (bicubic)")

    def estimate_call_usd(self) -> float | None:
        return self.price

    # ------------------------------------------------------------------ HTTP
    def _get_client(self):
        with self._lock:
            if self._client is None:
                import httpx  # imported on first call (``models list`` stays light)

                self._client = httpx.Client(timeout=self.timeout_s, follow_redirects=True)
            return self._client

    def _key_for(self, url: str) -> dict[str, str]:
        """The ``x-key`` header for the API's own hosts only: the submit host, or for BFL's API a
        regional ``api.*.bfl.ai`` polling host. Never for the sample download (a signed URL)."""
        host = urlsplit(url).hostname or ""
        base = urlsplit(self.base_url).hostname or ""
        api_host = host == base or (base.endswith("bfl.ai") and host.endswith(".bfl.ai") and host.startswith("api"))
        return {"x-key": self.api_key()} if api_host else {}

    def _prepare(self, request: RetouchRequest) -> Prepared:
        h, w = request.image.shape[:2]
        ratio = self.ratio(h, w)
        png, sent = png_bytes(request.image, fit=(self.upload_max_side, self.upload_max_side))
        body: dict[str, Any] = {
            "prompt": request.instruction, "input_image": base64.b64encode(png).decode("ascii"),
            "aspect_ratio": ratio, "output_format": "png", "safety_tolerance": self.safety_tolerance,
            "prompt_upsampling": False,
        }
        if request.seed is not None:
            body["seed"] = int(request.seed)
        return Prepared(payload=body, sent_size=sent, working_size=None,
                        meta={"aspect_ratio": ratio, "safety_tolerance": self.safety_tolerance},
                        timing={"upload_s": None, "queue_s": None, "generate_s": None, "download_s": None})

    def _get(self, url: str, what: str, headers: dict[str, str]) -> Any:
        """One GET through the retry loop (transient errors retried); returns the response."""
        client = self._get_client()

        def attempt(k: int):
            self._count_request()
            r = client.get(url, headers=headers)
            if r.status_code == 404 and what == "poll":
                return Outcome.fail("Task not found (HTTP 404 on the polling URL)", status=404)
            r.raise_for_status()
            return r

        res = retry_call(attempt, self.policy, redact=self.redact, rate_limiter=None, timeout_s=self.timeout_s)
        if not res.ok:
            raise _StepFailed(f"{what}: {res.reason}")
        return res.value

    def _attempt(self, prep: Prepared, attempt: int, state: dict[str, Any]) -> Outcome:
        """Submit (this attempt), then poll and download with their own bounded retries: the task,
        once accepted, is paid for, so a later failure is not a reason to submit again."""
        client = self._get_client()
        url = f"{self.base_url}/v1/{self.model_id}"
        self._count_request()
        t0 = time.perf_counter()
        r = client.post(url, json=prep.payload, headers={**self._key_for(url), "accept": "application/json"})
        if r.status_code == 404:
            return Outcome.fatal(self.unknown_model_line(f"HTTP 404 on POST /v1/{self.model_id}: {one_line(r.text, 120)}"),
                                 status=404)
        r.raise_for_status()  # 429 / 5xx / 4xx: classified by the retry loop
        try:
            doc = r.json()
        except ValueError:
            return Outcome.retry("malformed answer to the submit: not JSON")
        if not isinstance(doc, dict) or not (doc.get("polling_url") or doc.get("id")):
            return Outcome.retry("malformed answer to the submit: no id or polling_url")
        timing = state["timing"]
        timing["upload_s"] = time.perf_counter() - t0
        cost = self.price
        self.ledger.charge(cost or 0.0)  # an accepted task is billed
        task_id = str(doc.get("id")) if doc.get("id") is not None else None
        meta: dict[str, Any] = {"request_id": task_id, "snapshot": None, "cost_source": self.price_source,
                                "polling_url": sanitise_url(doc.get("polling_url"))}
        if isinstance(doc.get("cost"), (int, float)):
            meta["cost_reported_credits"] = doc["cost"]
        for k in ("input_mp", "output_mp"):
            if isinstance(doc.get(k), (int, float)):
                meta[k] = doc[k]
        poll_url = doc.get("polling_url") or f"{self.base_url}/v1/get_result?id={task_id}"
        try:
            return Outcome.ok(self._poll_and_download(poll_url, meta, timing, cost))
        except _StepFailed as err:
            # a failure after the submit: not retried by submitting again (that would pay twice)
            return Outcome.fail(str(err))

    def _poll_and_download(self, poll_url: str, meta: dict[str, Any], timing: dict[str, Any],
                           cost: float | None) -> Answer:
        t_poll = time.perf_counter()
        deadline = t_poll + self.poll_timeout_s
        first_progress: float | None = None
        polls = 0
        while True:
            r = self._get(poll_url, "poll", self._key_for(poll_url))
            polls += 1
            try:
                doc = r.json()
            except ValueError:
                raise _StepFailed("poll: malformed answer (not JSON)") from None
            if not isinstance(doc, dict):
                raise _StepFailed("poll: malformed answer (not an object)")
            status = str(doc.get("status"))
            progress = doc.get("progress")
            if first_progress is None and isinstance(progress, (int, float)) and progress > 0:
                first_progress = time.perf_counter()
            if status == "Ready":
                break
            details = doc.get("details") or (doc.get("result") if isinstance(doc.get("result"), (dict, str)) else None)
            detail = f" ({one_line(json.dumps(details) if not isinstance(details, str) else details, 200)})" \
                if details else ""
            if status in MODERATED:
                self._split_timing(timing, t_poll, first_progress)
                meta["polls"] = polls
                return Answer(refusal=f"moderated: {status}{detail}", meta=meta, cost_usd=cost)
            if status in FAILED:
                raise _StepFailed(f"task {meta.get('request_id')}: {status}{detail}")
            if status != "Pending":
                raise _StepFailed(f"task {meta.get('request_id')}: unexpected status {status!r}{detail}")
            if time.perf_counter() + self.poll_interval_s > deadline:
                raise _StepFailed(f"task {meta.get('request_id')}: still Pending after {self.poll_timeout_s:g} s "
                                  f"({polls} polls); raise poll_timeout_s to wait longer")
            self._poll_sleep(self.poll_interval_s)
        self._split_timing(timing, t_poll, first_progress)
        meta["polls"] = polls
        result = doc.get("result") if isinstance(doc.get("result"), dict) else {}
        sample = result.get("sample")
        if not sample or not isinstance(sample, str):
            return Answer(refusal="no image in the answer: Ready without result.sample", meta=meta, cost_usd=cost)
        if isinstance(result.get("seed"), int):
            meta["seed_returned"] = result["seed"]
        meta["sample_url"] = sanitise_url(sample)  # the signature (query) is a credential of sorts: dropped
        t0 = time.perf_counter()
        data = self._get(sample, "download", {}).content  # a signed URL: no key
        timing["download_s"] = time.perf_counter() - t0
        return Answer(image_bytes=data, meta=meta, cost_usd=cost)

    @staticmethod
    def _split_timing(timing: dict[str, Any], t_poll: float, first_progress: float | None) -> None:
        now = time.perf_counter()
        if first_progress is None:
            timing["generate_s"] = now - t_poll  # queue and generation together: no progress reported
        else:
            timing["queue_s"] = first_progress - t_poll
            timing["generate_s"] = now - first_progress


class _StepFailed(Exception):
    """A poll or the download failed after the task was accepted (one line)."""


"""Local fakes of the three image-editing APIs, for testing the API editors with their real clients.

Each server listens on ``127.0.0.1`` at a random port in a background thread and speaks the
wire format its client library expects:

* :class:`FakeOpenAIImages` - ``POST /v1/images/edits`` (multipart; JSON with ``b64_json`` back)
* :class:`FakeGemini` - ``POST /<version>/models/<model>:generateContent`` (JSON, ``inlineData``)
* :class:`FakeBFL` - ``POST /v1/<model>`` -> ``polling_url``; ``GET /v1/get_result?id=`` ->
  ``Pending`` / ``Ready`` with ``result.sample``; ``GET /delivery/<id>.png`` -> the image

By default each answers like the real service: the input image, tinted warmer, at the size the
request implies. :meth:`ScriptedServer.script` queues behaviours for the next requests (to the
API route; downloads and polls have their own queues in :class:`FakeBFL`):

    ("status", code, headers, json_body)   an HTTP error
    ("json", code, obj)                     any JSON answer
    ("raw", code, content_type, bytes)      any body (malformed answers)
    ("sleep", seconds)                      wait, then answer normally (client timeouts)
    callable(request) -> behaviour          decided from the request

Every request is recorded (method, path, headers lower-cased, raw body, parsed fields).
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image

TINT = np.array([1.08, 1.0, 0.9], np.float32)  # what every fake "edit" does: warmer


def edited_png(png: bytes, size: tuple[int, int] | None) -> bytes:
    """The fake edit: decode ``png``, tint it warmer, resize to ``size = (w, h)``, encode PNG."""
    with Image.open(io.BytesIO(png)) as im:
        im = im.convert("RGB")
        if size is not None and im.size != tuple(size):
            im = im.resize(tuple(size), Image.Resampling.BICUBIC)
        arr = np.asarray(im, np.float32) / 255.0
    out = np.clip(np.rint(np.clip(arr * TINT, 0, 1) * 255), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(out).save(buf, format="PNG", compress_level=1)  # fast: the tests time requests
    return buf.getvalue()


def b64any(text: str) -> bytes:
    """Standard or URL-safe base64, padded or not (google-genai sends URL-safe)."""
    return base64.urlsafe_b64decode(text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4))


def parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """multipart/form-data -> {name: str value | (filename, bytes)}."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    out: dict[str, Any] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        filename = part.get_filename()
        data = part.get_payload(decode=True) or b""
        out[name] = (filename, data) if filename else data.decode()
    return out


class ScriptedServer:
    """Base: threading HTTP server on 127.0.0.1, a behaviour queue, a request log."""

    def __init__(self) -> None:
        self.queue: deque = deque()
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self, method: str) -> None:
                length = int(self.headers.get("Content-Length", 0) or 0)
                body = self.rfile.read(length) if length else b""
                req = {"method": method, "path": self.path, "body": body,
                       "headers": {k.lower(): v for k, v in self.headers.items()}}
                with server._lock:
                    server.requests.append(req)
                try:
                    code, ctype, data, headers = server.respond(req)
                except Exception as err:  # a bug in the fake: answer it, so the test shows it
                    code, ctype, headers = 599, "text/plain", {}
                    data = f"fake server error: {type(err).__name__}: {err}".encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)

            def do_POST(self):
                self._handle("POST")

            def do_GET(self):
                self._handle("GET")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.root = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    # -- behaviours
    def script(self, *behaviours) -> None:
        with self._lock:
            self.queue.extend(behaviours)

    def _next(self, queue: deque) -> Any:
        with self._lock:
            return queue.popleft() if queue else None

    def play(self, behaviour: Any, req: dict[str, Any], default) -> tuple[int, str, bytes, dict]:
        """Turn a scripted behaviour (or None: ``default(req)``) into a response."""
        if callable(behaviour):
            behaviour = behaviour(req)
        if behaviour is None:
            return default(req)
        kind = behaviour[0]
        if kind == "status":
            _, code, headers, body = behaviour
            return code, "application/json", json.dumps(body or {"error": {"message": f"status {code}"}}).encode(), headers
        if kind == "json":
            return behaviour[1], "application/json", json.dumps(behaviour[2]).encode(), {}
        if kind == "raw":
            return behaviour[1], behaviour[2], behaviour[3], {}
        if kind == "sleep":
            time.sleep(behaviour[1])
            return default(req)
        raise AssertionError(f"bad script {behaviour!r}")

    #: consulted on every API request before the queue: ``hook(req) -> behaviour | None``
    hook = None

    def respond(self, req: dict[str, Any]) -> tuple[int, str, bytes, dict]:
        if self.hook is not None:
            behaviour = self.hook(req)
            if behaviour is not None:
                return self.play(behaviour, req, self.default)
        return self.play(self._next(self.queue), req, self.default)

    def default(self, req: dict[str, Any]) -> tuple[int, str, bytes, dict]:
        raise NotImplementedError

    def api_requests(self) -> list[dict[str, Any]]:
        return list(self.requests)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _json(code: int, obj: Any, headers: dict | None = None) -> tuple[int, str, bytes, dict]:
    return code, "application/json", json.dumps(obj).encode(), headers or {}


class FakeOpenAIImages(ScriptedServer):
    """``POST /v1/images/edits``: answers the tinted input at the requested ``size``."""

    def __init__(self) -> None:
        super().__init__()
        self.base_url = self.root + "/v1"

    @staticmethod
    def form(req: dict[str, Any]) -> dict[str, Any]:
        return parse_multipart(req["headers"]["content-type"], req["body"])

    def default(self, req):
        if req["method"] != "POST" or not urlsplit(req["path"]).path.endswith("/images/edits"):
            return _json(404, {"error": {"message": f"no route {req['path']}", "code": None}})
        form = self.form(req)
        size = form.get("size", "auto")
        wh = None if size == "auto" else tuple(int(v) for v in size.split("x"))
        png = edited_png(form["image"][1], wh)
        return _json(200, {
            "created": int(time.time()), "data": [{"b64_json": base64.b64encode(png).decode()}],
            "size": size, "quality": form.get("quality"), "output_format": "png",
            "usage": {"input_tokens": 1300, "output_tokens": 6240, "total_tokens": 7540,
                      "input_tokens_details": {"text_tokens": 20, "image_tokens": 1280}},
        }, {"x-request-id": "req_fake_123"})


#: gemini-2.5-flash-image's aspect-ratio buckets -> (w, h) of its answer.
GEMINI_SIZES = {"1:1": (1024, 1024), "2:3": (832, 1248), "3:2": (1248, 832), "3:4": (864, 1184),
                "4:3": (1184, 864), "4:5": (896, 1152), "5:4": (1152, 896), "9:16": (768, 1344),
                "16:9": (1344, 768), "21:9": (1536, 672)}


class FakeGemini(ScriptedServer):
    """``POST /<version>/models/<model>:generateContent``: an image part (and a text part) back."""

    def __init__(self, model_version: str = "gemini-2.5-flash-image") -> None:
        super().__init__()
        self.base_url = self.root
        self.model_version = model_version

    @staticmethod
    def answer(parts: list[dict], finish: str = "STOP", model_version: str = "gemini-2.5-flash-image",
               image_tokens: int = 1290) -> dict[str, Any]:
        return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}],
                "usageMetadata": {"promptTokenCount": 560, "candidatesTokenCount": image_tokens + 10,
                                  "totalTokenCount": 570 + image_tokens,
                                  "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": image_tokens},
                                                              {"modality": "TEXT", "tokenCount": 10}]},
                "modelVersion": model_version, "responseId": "resp-fake-1"}

    def default(self, req):
        path = urlsplit(req["path"]).path
        if req["method"] != "POST" or not path.endswith(":generateContent"):
            return _json(404, {"error": {"code": 404, "message": f"no route {path}", "status": "NOT_FOUND"}})
        body = json.loads(req["body"])
        parts = body["contents"][0]["parts"]
        png = b64any(next(p["inlineData"]["data"] for p in parts if "inlineData" in p))
        ratio = (body.get("generationConfig", {}).get("imageConfig") or {}).get("aspectRatio", "1:1")
        out = edited_png(png, GEMINI_SIZES[ratio])
        return _json(200, self.answer([{"text": "Here is the warmer photo."},
                                       {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(out).decode()}}],
                                      model_version=self.model_version))


class FakeBFL(ScriptedServer):
    """Black Forest Labs' async API: submit, poll, download.

    ``poll_script`` queues poll answers (default: Pending without progress, Pending at 0.5, then
    Ready); ``download_script`` queues download behaviours. ``tasks`` maps task id -> request JSON.
    """

    def __init__(self, pending_polls: int = 2) -> None:
        super().__init__()
        self.base_url = self.root
        self.poll_queue: deque = deque()
        self.download_queue: deque = deque()
        self.tasks: dict[str, dict[str, Any]] = {}
        self.polls: dict[str, int] = {}
        self.pending_polls = pending_polls

    #: consulted on every poll before the poll queue: ``poll_hook(req) -> behaviour | None``
    poll_hook = None

    def task_of(self, req: dict[str, Any]) -> dict[str, Any] | None:
        """The submitted JSON of the task a poll asks about."""
        return self.tasks.get(parse_qs(urlsplit(req["path"]).query).get("id", [""])[0])

    def poll_script(self, *behaviours) -> None:
        with self._lock:
            self.poll_queue.extend(behaviours)

    def download_script(self, *behaviours) -> None:
        with self._lock:
            self.download_queue.extend(behaviours)

    def respond(self, req):
        path = urlsplit(req["path"]).path
        if req["method"] == "GET" and path == "/v1/get_result":
            if self.poll_hook is not None and (behaviour := self.poll_hook(req)) is not None:
                return self.play(behaviour, req, self.poll)
            return self.play(self._next(self.poll_queue), req, self.poll)
        if req["method"] == "GET" and path.startswith("/delivery/"):
            return self.play(self._next(self.download_queue), req, self.download)
        return super().respond(req)

    def default(self, req):
        path = urlsplit(req["path"]).path
        if req["method"] != "POST" or path != "/v1/flux-kontext-pro":
            return _json(404, {"detail": "Not Found"})
        body = json.loads(req["body"])
        tid = f"task-{len(self.tasks) + 1}"
        with self._lock:
            self.tasks[tid] = body
        return _json(200, {"id": tid, "polling_url": f"{self.root}/v1/get_result?id={tid}", "cost": 4.0,
                           "input_mp": 1.0, "output_mp": 1.0})

    def poll(self, req):
        tid = parse_qs(urlsplit(req["path"]).query).get("id", [""])[0]
        if tid not in self.tasks:
            return _json(200, {"id": tid, "status": "Task not found", "result": None})
        with self._lock:
            n = self.polls[tid] = self.polls.get(tid, 0) + 1
        if n <= self.pending_polls:
            return _json(200, {"id": tid, "status": "Pending", "result": None,
                               "progress": None if n == 1 else 0.5})
        return _json(200, {"id": tid, "status": "Ready", "progress": 1.0,
                           "result": {"sample": f"{self.root}/delivery/{tid}.png?se=2026&sig=SIGNED",
                                      "seed": self.tasks[tid].get("seed"), "prompt": self.tasks[tid]["prompt"],
                                      "start_time": 1.0, "end_time": 2.0, "duration": 1.0}})

    def download(self, req):
        tid = urlsplit(req["path"]).path.rsplit("/", 1)[1].removesuffix(".png")
        task = self.tasks[tid]
        with Image.open(io.BytesIO(base64.b64decode(task["input_image"]))) as im:
            w, h = im.size
        # Kontext answers at about one megapixel, multiples of 16, in the requested aspect ratio
        rw, rh = (int(v) for v in task.get("aspect_ratio", f"{w}:{h}").split(":"))
        s = (1024 * 1024 / (rw * rh)) ** 0.5
        size = (max(16, round(rw * s / 16) * 16), max(16, round(rh * s / 16) * 16))
        return 200, "image/png", edited_png(base64.b64decode(task["input_image"]), size), {}

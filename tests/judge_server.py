"""A local fake of the chat-completions API, for testing the judge with the real ``openai`` client.

``FakeChatServer`` listens on ``127.0.0.1`` at a random port in a background thread and answers
``POST /v1/chat/completions``. Each request takes the next scripted behaviour from a queue
(:meth:`FakeChatServer.script`); with the queue empty it gives a valid answer chosen by
:meth:`default_answer` (SC questions -> ``[8, 6]``, PQ questions -> ``[7, 9]``). Every request is
recorded (path, headers, parsed JSON body) for the tests to inspect.

Behaviours (tuples):
    ("answer", text)                     200 with ``text`` as the message content
    ("refusal", text)                    200 with ``message.refusal = text`` and no content
    ("status", code, headers, body)      an HTTP error (``body`` is a dict sent as JSON)
    ("sleep", seconds, text)             wait, then answer ``text`` (to trigger client timeouts)
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SNAPSHOT = "gpt-4o-2024-08-06"


def completion(text: str | None, *, model: str = SNAPSHOT, refusal: str | None = None,
               prompt_tokens: int = 1000, completion_tokens: int = 50) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()),
        "model": model, "system_fingerprint": "fp_test",
        "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                     "message": {"role": "assistant", "content": text, "refusal": refusal}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


class FakeChatServer:
    def __init__(self, sc_answer: str = '{"score": [8, 6], "reasoning": "warmer as asked"}',
                 pq_answer: str = '{"score": [7, 9], "reasoning": "natural"}',
                 model: str = SNAPSHOT):
        self.queue: deque = deque()
        self.requests: list[dict[str, Any]] = []
        self.sc_answer, self.pq_answer, self.model = sc_answer, pq_answer, model
        self.delay = 0.0  # seconds each default answer waits (to observe concurrency)
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, code: int, body: dict, headers: dict | None = None):
                data = json.dumps(body).encode()
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append({"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}, "body": body})
                    behaviour = server.queue.popleft() if server.queue else None
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                if behaviour is None:
                    with server._lock:
                        server.in_flight += 1
                        server.max_in_flight = max(server.max_in_flight, server.in_flight)
                    time.sleep(server.delay)
                    with server._lock:
                        server.in_flight -= 1
                    behaviour = ("answer", server.default_answer(body))
                kind = behaviour[0]
                if kind == "answer":
                    self._send(200, completion(behaviour[1], model=server.model))
                elif kind == "refusal":
                    self._send(200, completion(None, model=server.model, refusal=behaviour[1]))
                elif kind == "status":
                    _, code, headers, err = behaviour
                    self._send(code, err or {"error": {"message": f"status {code}"}}, headers)
                elif kind == "sleep":
                    time.sleep(behaviour[1])
                    self._send(200, completion(behaviour[2], model=server.model))
                else:  # pragma: no cover - a broken test script
                    self._send(500, {"error": {"message": f"bad script {behaviour!r}"}})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)

    def default_answer(self, body: dict) -> str:
        system = body["messages"][0]["content"]
        return self.sc_answer if "ORIGINAL" in system else self.pq_answer

    def script(self, *behaviours) -> None:
        with self._lock:
            self.queue.extend(behaviours)

    def __enter__(self) -> "FakeChatServer":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

"""A local fake of the Gemini API's ``generateContent`` for the *judge*, spoken to by the real
``google-genai`` client (``http_options.base_url`` pointed at ``127.0.0.1``).

``FakeGeminiJudge`` answers ``POST /<version>/models/<model>:generateContent`` with a text
candidate. The default answer is decided by :meth:`FakeGeminiJudge.answer_text` (override or set
``scorer``): a request with two inline images is an SC question, one image a PQ question. Every
request is recorded; :meth:`FakeGeminiJudge.parsed` gives its JSON body. Scripted behaviours are
those of :class:`api_servers.ScriptedServer` (``status``, ``json``, ``raw``, ``sleep``, callables).
"""

from __future__ import annotations

import base64
import json
from typing import Any, Callable
from urllib.parse import urlsplit

from api_servers import ScriptedServer, _json

MODEL_VERSION = "gemini-2.5-flash-001"


def answer(text: str | None, *, finish: str = "STOP", model_version: str = MODEL_VERSION, block: str | None = None,
           prompt_tokens: int = 900, candidate_tokens: int = 40, thoughts_tokens: int = 0) -> dict[str, Any]:
    """A generateContent response body with one text candidate (or a blocked prompt)."""
    body: dict[str, Any] = {"modelVersion": model_version, "responseId": "resp-judge-1",
                            "usageMetadata": {"promptTokenCount": prompt_tokens,
                                              "candidatesTokenCount": candidate_tokens,
                                              "thoughtsTokenCount": thoughts_tokens,
                                              "totalTokenCount": prompt_tokens + candidate_tokens + thoughts_tokens}}
    if block:
        body["promptFeedback"] = {"blockReason": block}
        return body
    parts = [] if text is None else [{"text": text}]
    body["candidates"] = [{"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}]
    return body


class FakeGeminiJudge(ScriptedServer):
    def __init__(self, sc_answer: str = '{"score": [7, 5], "reasoning": "mostly as asked"}',
                 pq_answer: str = '{"score": [8, 6], "reasoning": "clean"}',
                 model_version: str = MODEL_VERSION):
        super().__init__()
        self.base_url = self.root
        self.sc_answer, self.pq_answer, self.model_version = sc_answer, pq_answer, model_version
        #: ``scorer(body, images: list[bytes]) -> text`` replaces the fixed answers when set
        self.scorer: Callable[[dict, list[bytes]], str] | None = None

    @staticmethod
    def parsed(req: dict[str, Any]) -> dict[str, Any]:
        return json.loads(req["body"])

    @staticmethod
    def images(body: dict[str, Any]) -> list[bytes]:
        parts = body["contents"][0]["parts"]
        return [base64.urlsafe_b64decode(p["inlineData"]["data"].replace("+", "-").replace("/", "_")
                                         + "=" * (-len(p["inlineData"]["data"]) % 4))
                for p in parts if "inlineData" in p]

    def answer_text(self, body: dict[str, Any]) -> str:
        imgs = self.images(body)
        if self.scorer is not None:
            return self.scorer(body, imgs)
        return self.sc_answer if len(imgs) == 2 else self.pq_answer

    def default(self, req):
        path = urlsplit(req["path"]).path
        if req["method"] != "POST" or not path.endswith(":generateContent"):
            return _json(404, {"error": {"code": 404, "message": f"no route {path}", "status": "NOT_FOUND"}})
        return _json(200, answer(self.answer_text(self.parsed(req)), model_version=self.model_version))

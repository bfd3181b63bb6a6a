"""On-disk cache of judge answers, so a rerun of the same judging makes no API call.

The storage is the shared :class:`iretouch_bench.clients.ResponseCache` (one JSON file per
answer, ``<root>/<key[:2]>/<key>.json``, written atomically). The key is the sha256 of a
canonical JSON of everything that determines the answer, the endpoint included (see
``OpenAIJudge._key_fields``), so two servers serving one model name never share answers. Only
valid, parsed answers are stored: failures are not cached, so a rerun tries them again.

Entries hold the answer text, parsed scores, model id the API returned, usage and cost; never a
request header or credential (the judge redacts the API key from every string it stores).
"""

from __future__ import annotations

import os

from ..clients.cache import CACHE_MODES, ResponseCache, array_digest, stable_key

#: sha256 of the key fields as canonical JSON (the shared :func:`~iretouch_bench.clients.stable_key`).
answer_key = stable_key

__all__ = ["AnswerCache", "CACHE_MODES", "answer_key", "array_digest"]


class AnswerCache(ResponseCache):
    """A folder of cached judge answers. ``mode``: ``use`` (read and write), ``refresh`` (write
    only: every answer is asked again and replaces the stored one), ``off`` (neither)."""

    def __init__(self, root: str | os.PathLike, mode: str = "use"):
        super().__init__(root, mode, label="judge cache")

"""Keeping credentials out of everything recorded: key redaction and URL sanitising."""

from __future__ import annotations

import os
from typing import Any, Iterable
from urllib.parse import urlsplit, urlunsplit

REDACTED = "[REDACTED]"


def sanitise_url(url: str | None) -> str | None:
    """``url`` without user info, query, fragment or trailing slash (what may be recorded).

    ``http://user:pw@host:8000/v1/?token=x`` -> ``http://host:8000/v1``. Two spellings of one
    endpoint (with and without the trailing slash) give one string, so cache keys agree.
    """
    if not url:
        return url
    parts = urlsplit(url.strip())
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/"), "", ""))


class Redactor:
    """Replaces secrets with ``[REDACTED]`` in strings, and in the strings inside dicts/lists.

    Secrets are the current values of the environment variables ``env`` (read at every call, so a
    key set after construction is covered too) plus ``extra``. Values shorter than 4 characters
    are ignored (redacting them would mangle ordinary text and hides nothing).
    """

    def __init__(self, env: Iterable[str] = (), extra: Iterable[str] = ()):
        self.env = tuple(env)
        self.extra = [s for s in extra if s]

    def secrets(self) -> list[str]:
        vals = [os.environ.get(name) for name in self.env] + list(self.extra)
        return sorted({v.strip() for v in vals if v and len(v.strip()) >= 4}, key=len, reverse=True)

    def __call__(self, value: Any) -> Any:
        secrets = self.secrets()
        if not secrets:
            return value
        return _apply(value, secrets)


def _apply(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        for s in secrets:
            if s in value:
                value = value.replace(s, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: _apply(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_apply(v, secrets) for v in value)
    return value

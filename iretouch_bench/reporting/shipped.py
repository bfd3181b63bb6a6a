"""Where the shipped leaderboard data is: ``leaderboard/`` (published tables, submissions, schema).

In a source checkout it is the repository's ``leaderboard/`` folder; an installed package carries
the same files as ``iretouch_bench/leaderboard/`` (pyproject's package-dir mapping), so
``iretouch-bench tables --paper`` and ``iretouch-bench leaderboard`` work from any directory.
"""

from __future__ import annotations

from pathlib import Path

from ..core.errors import BenchError

_PACKAGE = Path(__file__).resolve().parents[1]  # .../iretouch_bench


def leaderboard_dir() -> Path:
    """The folder holding ``published/``, ``submissions/`` and ``schema/``."""
    installed = _PACKAGE / "leaderboard"
    if (installed / "published").is_dir():
        return installed
    checkout = _PACKAGE.parent / "leaderboard"
    if (checkout / "published").is_dir() and (_PACKAGE.parent / "pyproject.toml").is_file():
        return checkout
    raise BenchError(f"{installed}: the shipped leaderboard data is missing (a broken install?)")


def published_dir() -> Path:
    return leaderboard_dir() / "published"


def submissions_dir() -> Path:
    return leaderboard_dir() / "submissions"


def schema_path() -> Path:
    return leaderboard_dir() / "schema" / "result.schema.json"

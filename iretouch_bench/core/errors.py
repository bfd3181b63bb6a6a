"""Exceptions whose message is the one line a user sees (file named, problem stated)."""

import traceback
from pathlib import Path


class BenchError(Exception):
    """Base class: the CLI prints ``str(err)`` as one line and exits non-zero."""


class ImageReadError(BenchError):
    """An image file could not be read; the message names the file."""


class DatasetError(BenchError):
    """A dataset spec, manifest or folder is malformed; the message names file and row."""


class ModelError(BenchError):
    """A model cannot be found, loaded or run."""


class WeightsError(BenchError):
    """A weight file is missing or fails verification; the message says how to get it."""


class ProtocolError(BenchError):
    """A run setting or stored artefact belongs to another protocol or vocabulary version."""


def one_line(text: object, limit: int = 500) -> str:
    """``text`` with all whitespace runs (newlines included) collapsed to one space."""
    return " ".join(str(text).split())[:limit]


def error_line(err: BaseException, *, where: bool = True, limit: int = 500) -> str:
    """The one line a user or a record sees for ``err``.

    A :class:`BenchError` already reads as a user-facing sentence (file named, problem
    stated), so it is shown as is. Anything else is a bug or a library failure: its type,
    the first line of its message and the frame it came from, so a record is enough to find
    it without a traceback (``where=False`` leaves the frame out, for messages about a
    user's file where the frame says nothing). This is the only error formatter of the suite.
    """
    lines = str(err).strip().splitlines()
    msg = lines[0].strip() if lines else ""
    if isinstance(err, BenchError):
        return (msg or type(err).__name__)[:limit]

    tb = traceback.extract_tb(err.__traceback__) if (where and err.__traceback__) else []
    frame = f" at {Path(tb[-1].filename).name}:{tb[-1].lineno}" if tb else ""
    head = f"{type(err).__name__}: {msg}" if msg else type(err).__name__
    return f"{head}{frame}"[:limit]

"""Parse a judge's answer of the form ``{"score": [a, b], "reasoning": "..."}``.

Tolerated around the object: prose before or after, a Markdown code fence (```json ... ```),
several JSON objects (the first one holding ``"score"`` wins). Tolerated inside: numbers given as
numeric strings (``"7"``), integer-valued or fractional numbers. Rejected (raises
:class:`AnswerError` with a one-line reason, which the judge retries and finally records):
no object with ``"score"``, a score that is not a list of exactly two numbers, a number outside
``[0, 10]`` or not finite, and booleans (``true`` is not a score).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)
# Last-resort pattern for answers that are almost JSON (single quotes, trailing commas, ...).
_LOOSE = re.compile(
    r"""["']?score["']?\s*[:=]\s*\[\s*(-?[0-9]+(?:\.[0-9]+)?)\s*,\s*(-?[0-9]+(?:\.[0-9]+)?)\s*,?\s*\]""",
    re.IGNORECASE,
)
_REFUSAL = re.compile(
    r"^\s*(i'?m sorry|i am sorry|sorry|i can(?:no|')t|i am unable|i'm unable|unable to|"
    r"i won'?t|as an ai)", re.IGNORECASE,
)


class AnswerError(ValueError):
    """The model's answer cannot be turned into a valid score pair (message: why, one line)."""


@dataclass
class ParsedAnswer:
    score: tuple[float, float]
    reasoning: str


def looks_like_refusal(text: str) -> bool:
    """True for answers that open like a refusal ("I'm sorry, I can't ...")."""
    return bool(_REFUSAL.match(text or ""))


def _number(v: object) -> float:
    if isinstance(v, bool):
        raise AnswerError(f"score entry {v!r} is a boolean, not a number")
    if isinstance(v, (int, float)):
        x = float(v)
    elif isinstance(v, str):
        try:
            x = float(v.strip())
        except ValueError:
            raise AnswerError(f"score entry {v!r} is not a number") from None
    else:
        raise AnswerError(f"score entry {v!r} is not a number")
    if not math.isfinite(x):
        raise AnswerError(f"score entry {v!r} is not finite")
    if not 0.0 <= x <= 10.0:
        raise AnswerError(f"score entry {x:g} is outside 0-10")
    return x


def _validate(obj: dict) -> ParsedAnswer:
    score = obj.get("score")
    if not isinstance(score, (list, tuple)):
        raise AnswerError(f'"score" is {type(score).__name__}, expected a list of two numbers')
    if len(score) != 2:
        raise AnswerError(f'"score" has {len(score)} entries, expected 2')
    a, b = (_number(v) for v in score)
    reasoning = obj.get("reasoning", "")
    if not isinstance(reasoning, str):
        reasoning = json.dumps(reasoning)
    return ParsedAnswer(score=(a, b), reasoning=reasoning)


def _objects(text: str):
    """Every JSON object that can be decoded starting at some ``{`` in ``text``, in order."""
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            yield obj


def parse_answer(text: str | None) -> ParsedAnswer:
    """Parse a judge answer; raises :class:`AnswerError` (one-line reason) when it is not usable."""
    if text is None or not text.strip():
        raise AnswerError("empty answer")
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    first_error: AnswerError | None = None
    for chunk in candidates:
        for obj in _objects(chunk):
            if "score" not in obj:
                continue
            try:
                return _validate(obj)
            except AnswerError as err:
                # Keep looking (a later object may be the real answer) but remember why this failed.
                first_error = first_error or err
    if first_error is not None:
        raise first_error
    m = _LOOSE.search(text)
    if m:
        a, b = _number(m.group(1)), _number(m.group(2))
        return ParsedAnswer(score=(a, b), reasoning="")
    snippet = " ".join(text.split())[:80]
    if looks_like_refusal(text):
        raise AnswerError(f"refusal: {snippet!r}")
    raise AnswerError(f'no JSON object with "score" in the answer: {snippet!r}')

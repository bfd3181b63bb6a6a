"""The judge's prompts as data: a versioned, hashed *prompt set*, the suite's own one the default.

Structure follows VIEScore / GEdit-Bench (Ku et al. 2024; Step1X-Edit): two questions per sample,

* **SC** (semantic consistency) - shown the source photo, the retouched photo and the instruction,
  the judge answers two 0-10 scores ``[editing success, over-editing]``; ``SC = min`` of the two.
* **PQ** (perceptual quality) - shown the retouched photo alone, it answers ``[naturalness,
  artifacts]``; ``PQ = min`` of the two.

and ``O = sqrt(SC * PQ)``. The answer form is VIEScore's JSON object
``{"score": [a, b], "reasoning": "..."}`` so any VLM that speaks that form can serve.

The wording below is this suite's own, written for photo *retouching* (tone, colour, local
adjustments, portrait finishing) rather than generic image editing. Any change to the text must
bump :data:`PROMPT_VERSION`; the set's hash (recorded in ``run.json``, in every sample record's
judge block and in every cache key) changes with any edit anyway, so a stale cache can never be
served for a new prompt.

Prompt-set file format (JSON, or TOML for files ending ``.toml``; ``judge-prompts export FILE``
writes the default set in it, ``--judge-prompts FILE`` loads one)::

    {
      "format": "iretouch-judge-prompts/1",
      "name": "retouch",                 # free text, recorded
      "version": "retouch-v1",           # free text, recorded; bump it when the text changes
      "description": "...",              # optional
      "questions": {
        "sc": {"system": "...", "user": "... {instruction} ...",
               "images": ["input", "output"],
               "score_names": ["editing_success", "over_editing"]},
        "pq": {"system": "...", "user": "...", "images": ["output"],
               "score_names": ["naturalness", "artifacts"]}
      },
      "answer": {"shape": "score_pair", "scale": [0, 10], "reduce": "min"}
    }

* ``system`` / ``user``: the system message and the text of the user turn, sent verbatim except
  that the one placeholder ``{instruction}`` (in either) is replaced by the sample's instruction,
  with double quotes turned into single quotes so it cannot close a quotation. No other brace is
  special: JSON examples such as ``{"score": [A, B]}`` pass through unchanged.
* ``images``: which images follow the user text, in order: ``"input"`` (the source photo) and/or
  ``"output"`` (the retouched photo); at least one. SC without the input, or PQ with it, is the
  file's choice and is part of its hash.
* ``answer``: the only shape the parser reads is ``score_pair`` - a JSON object with
  ``"score": [A, B]``, two numbers on the ``scale`` (``[0, 10]``), optionally ``"reasoning"``.
  ``reduce``: ``min`` (VIEScore: the question's score is the smaller of the two).
  A prompt must therefore ask for that shape; answers that do not parse are retried and then
  recorded as failures (never filled).
* ``score_names``: labels of A and B, recorded with each answer.

The set's hash is the sha256 of its canonical JSON (every field above, sorted keys), so two files
that differ in any character of a prompt have different hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROMPT_VERSION = "retouch-v1"

_ANSWER_FORM = (
    "Reply with one JSON object and nothing else, in exactly this form:\n"
    '{"score": [A, B], "reasoning": "one or two sentences"}\n'
    "where A and B are whole numbers from 0 to 10 in the order given above."
)

SC_SYSTEM = (
    "You are a senior photo retoucher reviewing work done by an automatic retouching tool. "
    "You are shown two photographs: the ORIGINAL and the RETOUCHED version the tool produced "
    "for a written instruction. Retouching changes how a photo looks (exposure, contrast, colour, "
    "white balance, saturation, tone of particular regions, skin finishing, mood or style); it "
    "should not change what the photo shows.\n\n"
    "Rate the retouch with two scores, each a whole number from 0 to 10:\n"
    "A. Instruction success: how fully and accurately the RETOUCHED photo carries out the "
    "instruction compared with the ORIGINAL. 0 = the requested change is absent or goes the "
    "opposite way; 5 = partly done, too weak or too strong; 10 = exactly what a skilled "
    "retoucher would deliver for this instruction.\n"
    "B. Restraint: how well everything the instruction did not ask for is kept as in the "
    "ORIGINAL - the scene, people and their identity, objects, composition, textures and the "
    "tones and colours of regions the instruction does not concern. 0 = the photo is changed far "
    "beyond the request or its content is altered; 5 = clearly noticeable side effects; "
    "10 = nothing besides the requested change differs.\n\n"
    "Judge only these two properties; do not reward or penalise the photo's subject matter or "
    "its quality as a photograph. " + _ANSWER_FORM
)

SC_USER = (
    "Instruction given to the retouching tool: \"{instruction}\"\n"
    "The first image is the ORIGINAL, the second image is the RETOUCHED result."
)

PQ_SYSTEM = (
    "You are a senior photo retoucher checking the technical quality of a finished photograph "
    "before delivery. You are shown one photograph.\n\n"
    "Rate it with two scores, each a whole number from 0 to 10:\n"
    "A. Naturalness: how believable the light, colour and tones are for a real photograph of "
    "this scene, and how natural skin, sky and surfaces look. 0 = obviously manipulated or "
    "unreal (wrong colours, impossible lighting, plastic skin); 10 = looks like an untouched, "
    "well-exposed professional photograph.\n"
    "B. Freedom from artifacts: 0 = severe artifacts such as banding or posterisation, halos "
    "around edges, blotchy or clipped regions, colour fringes, noise or blur introduced by "
    "processing, visible seams at the border of a locally adjusted region; 10 = no artifacts "
    "at all.\n\n"
    "Judge only these two properties; do not rate composition or subject matter. " + _ANSWER_FORM
)

PQ_USER = "The image is the photograph to rate."

#: Prompt kinds and how their two scores are named (recorded with every answer).
SCORE_NAMES = {
    "sc": ("editing_success", "over_editing"),
    "pq": ("naturalness", "artifacts"),
}


FORMAT = "iretouch-judge-prompts/1"
KINDS = ("sc", "pq")
IMAGE_ROLES = ("input", "output")
PLACEHOLDER = "{instruction}"
ANSWER = {"shape": "score_pair", "scale": [0, 10], "reduce": "min"}


class PromptSetError(ValueError):
    """A prompt-set file cannot be used (message: the file and the problem, one line)."""


@dataclass(frozen=True)
class Question:
    """One question of a prompt set (``sc`` or ``pq``)."""

    system: str
    user: str
    images: tuple[str, ...]
    score_names: tuple[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"system": self.system, "user": self.user, "images": list(self.images),
                "score_names": list(self.score_names)}


@dataclass(frozen=True)
class PromptSet:
    """A judge prompt set: the ``sc`` and ``pq`` questions, their answer shape, a name and a version.

    ``source``: where it came from (``"built-in"`` or the file path); recorded, not hashed.
    """

    name: str
    version: str
    questions: dict[str, Question]
    description: str = ""
    source: str = "built-in"

    def to_json(self) -> dict[str, Any]:
        """The file form (what ``judge-prompts export`` writes and :func:`load_prompt_set` reads)."""
        return {"format": FORMAT, "name": self.name, "version": self.version, "description": self.description,
                "questions": {k: self.questions[k].to_json() for k in KINDS}, "answer": dict(ANSWER)}

    @property
    def hash(self) -> str:
        """sha256 (hex) of the canonical JSON of :meth:`to_json` (sorted keys, ASCII)."""
        blob = json.dumps(self.to_json(), sort_keys=True, ensure_ascii=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def render(self, kind: str, instruction: str) -> tuple[str, str]:
        """``(system text, user text)`` of question ``kind`` for ``instruction`` (see the module docstring)."""
        if kind not in self.questions:
            raise ValueError(f"unknown prompt kind {kind!r}")
        q = self.questions[kind]
        value = (instruction or "").replace('"', "'").strip()
        return q.system.replace(PLACEHOLDER, value), q.user.replace(PLACEHOLDER, value)

    def images(self, kind: str) -> tuple[str, ...]:
        """The images question ``kind`` shows, in order (``"input"``, ``"output"``)."""
        return self.questions[kind].images

    def info(self) -> dict[str, Any]:
        """What run.json and records say about the set (never the full text: that is in the file)."""
        return {"name": self.name, "version": self.version, "hash": self.hash, "source": self.source}


DEFAULT_PROMPTS = PromptSet(
    name="retouch", version=PROMPT_VERSION,
    description="iretouch-bench's own retouching wording, VIEScore structure (SC: input+output+instruction, "
                "PQ: output only; two 0-10 scores each, min rule)",
    questions={"sc": Question(SC_SYSTEM, SC_USER, ("input", "output"), SCORE_NAMES["sc"]),
               "pq": Question(PQ_SYSTEM, PQ_USER, ("output",), SCORE_NAMES["pq"])},
)


def render(kind: str, instruction: str) -> tuple[str, str]:
    """``(system, user)`` of the default set (see :meth:`PromptSet.render`)."""
    return DEFAULT_PROMPTS.render(kind, instruction)


def prompt_hash() -> str:
    """The default set's hash (see :attr:`PromptSet.hash`)."""
    return DEFAULT_PROMPTS.hash


def _fail(path: str, problem: str) -> PromptSetError:
    return PromptSetError(f"{path}: {problem}")


def _text(obj: dict, key: str, where: str, path: str, required: bool = True) -> str:
    v = obj.get(key, None if required else "")
    if not isinstance(v, str) or (required and not v.strip()):
        raise _fail(path, f"{where}.{key} must be a non-empty string")
    return v


def prompt_set_from_json(data: Any, path: str = "<prompt set>") -> PromptSet:
    """Validate a prompt-set object (the file format) -> :class:`PromptSet`; one-line errors."""
    if not isinstance(data, dict):
        raise _fail(path, "a prompt set is a JSON object")
    if data.get("format") != FORMAT:
        raise _fail(path, f"format is {data.get('format')!r}, expected {FORMAT!r}")
    unknown = set(data) - {"format", "name", "version", "description", "questions", "answer"}
    if unknown:
        raise _fail(path, f"unknown field(s) {', '.join(sorted(unknown))}")
    name, version = _text(data, "name", "(top)", path), _text(data, "version", "(top)", path)
    answer = data.get("answer", ANSWER)
    if answer != ANSWER:
        raise _fail(path, f"answer must be {json.dumps(ANSWER)} (the one shape the parser reads), got {json.dumps(answer)}")
    qs = data.get("questions")
    if not isinstance(qs, dict) or set(qs) != set(KINDS):
        raise _fail(path, f"questions must hold exactly {' and '.join(KINDS)}")
    questions = {}
    for kind in KINDS:
        q = qs[kind]
        where = f"questions.{kind}"
        if not isinstance(q, dict):
            raise _fail(path, f"{where} must be an object")
        extra = set(q) - {"system", "user", "images", "score_names"}
        if extra:
            raise _fail(path, f"{where}: unknown field(s) {', '.join(sorted(extra))}")
        system = _text(q, "system", where, path)
        user = _text(q, "user", where, path)
        images = q.get("images")
        if (not isinstance(images, list) or not images or any(i not in IMAGE_ROLES for i in images)
                or len(set(images)) != len(images)):
            raise _fail(path, f"{where}.images must be a non-empty list of distinct {' / '.join(IMAGE_ROLES)}")
        names = q.get("score_names", list(SCORE_NAMES[kind]))
        if not isinstance(names, list) or len(names) != 2 or not all(isinstance(n, str) and n for n in names):
            raise _fail(path, f"{where}.score_names must be two strings")
        if kind == "sc" and PLACEHOLDER not in system + user:
            raise _fail(path, f"{where}: the SC question must contain the placeholder {PLACEHOLDER}")
        questions[kind] = Question(system, user, tuple(images), (names[0], names[1]))
    return PromptSet(name=name, version=version, questions=questions,
                     description=str(data.get("description") or ""), source=path)


def load_prompt_set(path: str | os.PathLike) -> PromptSet:
    """Read a prompt-set file (``.json``, or ``.toml``); raises :class:`PromptSetError` (one line)."""
    p = Path(path)
    try:
        raw = p.read_bytes()
    except OSError as err:
        raise _fail(str(p), f"cannot read the prompt set ({err.strerror or err})") from None
    try:
        if p.suffix.lower() == ".toml":
            import tomllib

            data = tomllib.loads(raw.decode("utf-8"))
        else:
            data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise _fail(str(p), f"not a valid {'TOML' if p.suffix.lower() == '.toml' else 'JSON'} file ({err})") from None
    return prompt_set_from_json(data, str(p))


def resolve_prompt_set(prompts: "PromptSet | str | os.PathLike | None") -> PromptSet:
    """``None`` -> the default set; a path -> the loaded file; a :class:`PromptSet` as it is."""
    if prompts is None:
        return DEFAULT_PROMPTS
    if isinstance(prompts, PromptSet):
        return prompts
    return load_prompt_set(prompts)


def export_prompt_set(path: str | os.PathLike, prompts: PromptSet = DEFAULT_PROMPTS) -> Path:
    """Write ``prompts`` (default: the suite's set) as a JSON prompt-set file; returns the path."""
    from ..core.atomic import write_text_atomic

    p = Path(path)
    write_text_atomic(p, json.dumps(prompts.to_json(), indent=2, ensure_ascii=False) + "\n")
    return p

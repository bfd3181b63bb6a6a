"""Rule-based instruction writer and checker.

The writer turns intended attributes (from :mod:`.attributes`) into a photographer's
instruction with varied, seeded phrasing ("Lift the shadows a little, and warm up the skin
tones.", "Give it a soft, dreamy look.", "Darken the sky a bit."). Three entry points:

* :func:`write_instruction` - intents (``AttributeMatch`` list) -> text.
* :func:`instruction_for_params` - the parameters of a *degradation* applied by the
  photo-finishing pipeline -> the instruction that undoes it (and its intents).

(:mod:`.describe` writes instructions for a *measured* source-to-target change with the
same writer.)

Every text the writer returns has been verified: :func:`check_instruction` finds no
problem with it (against ``seen``, when given) and :func:`~.attributes.match_attributes`
reads back exactly the intended (attribute, region, confidence) set. The writer draws
candidates from the phrase bank and keeps the first that passes; if none does it raises
:class:`InstructionError` rather than return an unverified sentence.

The checker (:func:`check_instruction`) rejects content-edit verbs (add, remove, replace,
insert, erase, delete, draw, paste, ... - retouching changes tone and colour, not content;
"add warmth" and "remove the green cast" are tonal and allowed), near-duplicates of
earlier instructions of the same dataset, and empty or over-long text.
"""

from __future__ import annotations

import difflib
import functools
import re
from typing import Sequence

import numpy as np

from ..core.errors import BenchError
from ..vocab.attributes import (
    CONF_HIGH,
    CONF_LOW,
    CONF_MEDIUM,
    AttributeMatch,
    match_attributes,
)
from .finishing import PARAM_RANGES, SAMPLE_RANGES, FinishingParams

__all__ = [
    "InstructionError",
    "MAX_CHARS",
    "MAX_WORDS",
    "DUPLICATE_RATIO",
    "check_instruction",
    "write_instruction",
    "intents_for_degradation",
    "instruction_for_params",
]

MAX_CHARS = 200
MAX_WORDS = 40
#: difflib ratio at or above which two (normalised) instructions count as near-duplicates.
DUPLICATE_RATIO = 0.9


class InstructionError(BenchError, ValueError):
    """An instruction cannot be written or fails the checker; the message says why."""


# ---------------------------------------------------------------------------------------
# Checker

_CONTENT_VERBS = re.compile(
    r"\b(?:add|adds|added|adding|remove|removes|removed|removing|replace|replaces|replaced|replacing|"
    r"insert|inserts|inserted|inserting|erase|erases|erased|erasing|delete|deletes|deleted|deleting|"
    r"draw|draws|drew|drawn|drawing|paste|pastes|pasted|pasting|paint in|paint out|clone|cloned|"
    r"swap|swaps|swapped|crop|crops|cropped|cropping|rotate|rotates|rotated|flip|flips|flipped|"
    r"generate|generates|generated|put|puts|place|places|placed|move|moves|moved|get rid of|take out|"
    r"cut out|photoshop|retouch out|inpaint|outpaint|turn (?:him|her|them|it) into|change (?:him|her|them) into)\b"
)
# Tonal uses of otherwise content verbs: these change tone/colour, not what is in the photo.
_TONAL_ALLOWED = re.compile(
    r"\badd(?:s|ed|ing)?\s+(?:some\s+|a\s+bit\s+of\s+|a\s+touch\s+of\s+|a\s+little\s+|more\s+|a\s+hint\s+of\s+|an?\s+)?"
    r"(?:(?:warm|warmer|cool|cooler|cold|soft|softer|subtle|gentle|strong|vintage|retro|film|cinematic|matte|golden|"
    r"blue|yellow|orange|teal|pink|green|magenta|dreamy|moody|dark|light|bright|faded|slight|natural|nice|"
    r"bit|little|more|overall)\s+){0,2}(?:warmth|contrast|punch|saturation|vibrance|clarity|texture|definition|glow|brightness|"
    r"exposure|light|depth|drama|color|colour|coolness|haze|filter|tone|tones|look|feel|mood|cast|tint|grade|vignette)\b"
    r"|\bremov(?:e|es|ed|ing)\s+(?:the\s+|any\s+|that\s+|this\s+)?(?:[a-z]+\s+){0,2}?(?:cast|tint|haze|color cast|colour cast)\b"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


@functools.lru_cache(maxsize=65536)
def _reading(normalised: str) -> frozenset:
    """What the attribute matcher reads in a (normalised) instruction."""
    return frozenset((m.name, m.region, m.confidence) for m in match_attributes(normalised))


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9' ]+", " ", text.lower())).strip()


def check_instruction(text: str, seen: Sequence[str] | None = None) -> list[str]:
    """Problems with ``text`` as a retouching instruction; an empty list means it passes.

    Args:
        text: the instruction.
        seen: instructions already in the dataset; ``text`` must not repeat one (same text
            after normalising case, punctuation and spaces), nor nearly repeat one (difflib
            ratio >= :data:`DUPLICATE_RATIO` and the same attributes read from both).
    Returns:
        One short sentence per problem: empty text, over :data:`MAX_CHARS` characters or
        :data:`MAX_WORDS` words, control characters, content-edit verbs, near-duplicates.
    """
    problems: list[str] = []
    if text is None or not str(text).strip():
        return ["empty instruction"]
    text = str(text)
    if not re.search(r"[A-Za-z]", text):
        problems.append("instruction has no words")
    if len(text) > MAX_CHARS:
        problems.append(f"too long ({len(text)} characters > {MAX_CHARS})")
    n_words = len(text.split())
    if n_words > MAX_WORDS:
        problems.append(f"too long ({n_words} words > {MAX_WORDS})")
    if _CONTROL.search(text):
        problems.append("contains control characters")
    low = text.lower()
    masked = _TONAL_ALLOWED.sub(" ", low)
    verbs = sorted({m.group(0) for m in _CONTENT_VERBS.finditer(masked)})
    if verbs:
        problems.append(f"content-edit verb(s) {', '.join(repr(v) for v in verbs)}: retouching changes tone and colour, not content")
    if seen:
        mine = _norm(text)
        for other in seen:
            theirs = _norm(other)
            if mine == theirs:
                problems.append(f"duplicate of an earlier instruction {other!r}")
                break
            sm = difflib.SequenceMatcher(None, mine, theirs)
            if (sm.real_quick_ratio() >= DUPLICATE_RATIO and sm.quick_ratio() >= DUPLICATE_RATIO
                    and sm.ratio() >= DUPLICATE_RATIO and _reading(mine) == _reading(theirs)):
                # similar wording AND the same meaning ("Saturate the sky" and "Desaturate the
                # sky" are close in characters but opposite requests, not duplicates)
                problems.append(f"near-duplicate of an earlier instruction {other!r} (similarity {sm.ratio():.2f})")
                break
    return problems


# ---------------------------------------------------------------------------------------
# Phrase bank
#
# Placeholders: {x} the object ("it", "the photo", or the region: "the sky"); {xo} an object
# after a preposition ("the photo", never "it"); {a} an adjective intensity for styles
# ("subtle " / "" / "strong "); {a2} an adverb intensity for styles ("slightly " / "" / "very ");
# {i} where a comparative takes its intensity ("a little brighter", "much brighter"). Templates
# without {a}/{a2}/{i} take the intensity as an adverb before the verb or at the end.
# A template without {x}/{xo} is global only.

_PHRASES: dict[str, list[str]] = {
    "brightness:up": ["Brighten {x}", "Make {x} {i}brighter", "Lighten {x}", "Raise the exposure",
                      "Increase the exposure", "Bring the exposure up", "Give {x} {i}more light", "Lift the exposure"],
    "brightness:down": ["Darken {x}", "Make {x} {i}darker", "Lower the exposure", "Bring the exposure down",
                        "Reduce the exposure", "Tone down the brightness", "Dim {x}"],
    "contrast:up": ["Boost the contrast", "Increase the contrast", "Raise the contrast", "Make {x} {i}punchier",
                    "Give {x} {i}more punch", "Push the contrast"],
    "contrast:down": ["Reduce the contrast", "Soften the contrast", "Lower the contrast", "Tone down the contrast",
                      "Make {x} {i}flatter", "Ease off the contrast"],
    "saturation:up": ["Boost the saturation", "Increase the saturation", "Make {x} {i}more saturated",
                      "Make the colors {i}richer", "Make the colors pop", "Saturate {x}",
                      "Boost the saturation in {xo}"],
    "saturation:down": ["Desaturate {x}", "Mute the colors", "Tone down the saturation", "Make {x} {i}less saturated",
                        "Reduce the saturation", "Calm the colors", "Mute the colors in {xo}"],
    "vibrance:up": ["Boost the vibrance", "Increase the vibrance", "Make {x} {i}more vibrant", "Raise the vibrance",
                    "Liven up the colors", "Boost the vibrance in {xo}", "Liven up the colors in {xo}"],
    "temperature:warm": ["Warm up {x}", "Make {x} {i}warmer", "Give {x} {i}more warmth", "Warm {x}",
                         "Neutralize the blue cast in {xo}", "Correct the cold cast in {xo}"],
    "temperature:cool": ["Cool down {x}", "Make {x} {i}cooler", "Cool {x}", "Reduce the warmth of {xo}",
                         "Neutralize the yellow cast in {xo}", "Correct the warm cast in {xo}"],
    "tint:magenta": ["Neutralize the green cast in {xo}", "Correct the green tint", "Shift {x} toward magenta",
                     "Make {x} {i}less green", "Push {x} towards magenta"],
    "tint:green": ["Neutralize the magenta cast in {xo}", "Make {x} {i}less magenta", "Shift {x} towards green",
                   "Correct the pink cast", "Make {x} {i}less pink"],
    "shadows:up": ["Lift the shadows", "Open up the shadows", "Brighten the shadows", "Recover the shadow detail",
                   "Bring the shadows up", "Make the shadows {i}lighter"],
    "shadows:down": ["Deepen the shadows", "Darken the shadows", "Crush the blacks", "Make the shadows {i}deeper",
                     "Bring the shadows down", "Give it {i}deeper shadows"],
    "highlights:up": ["Brighten the highlights", "Boost the highlights", "Make the highlights glow",
                      "Lift the highlights", "Bring the highlights up"],
    "highlights:down": ["Recover the highlights", "Tame the highlights", "Pull back the highlights",
                        "Bring the highlights down", "Tone down the highlights", "Soften the highlights"],
    "clarity:up": ["Boost the clarity", "Increase the clarity", "Bring out {i}more texture", "Give it {i}more definition",
                   "Sharpen up the details", "Make it {i}crisper"],
    "clarity:down": ["Soften the texture", "Reduce the clarity", "Smooth out the details", "Lower the clarity",
                     "Tone down the texture"],
    "style:vintage": ["Give it a {a}vintage look", "Make it look {a2}retro", "Go for a {a}vintage, faded-film feel",
                      "Give the photo a {a}nostalgic vintage feel"],
    "style:dreamy": ["Give it a {a}soft, dreamy look", "Make it look {a2}dreamy", "Go for a {a}dreamy, ethereal mood"],
    "style:cinematic": ["Give it a {a}cinematic grade", "Make it look {a2}cinematic", "Grade it like a {a}movie still"],
    "style:bw": ["Convert it to black and white", "Make it black-and-white", "Turn it into a monochrome photo",
                 "Go monochrome"],
    "style:matte": ["Give it a {a}matte finish", "Go for a {a}faded, matte look", "Make it look {a2}matte"],
    "mood:cozy": ["Make it feel {a2}cozy", "Give it a {a}cozy mood", "Give it a {a}warm and inviting feel"],
    "mood:moody": ["Make it {a2}moody", "Give it a {a}dark and moody feel", "Go for a {a}moody atmosphere"],
    "mood:fresh": ["Make it look {a2}fresh", "Give it a {a}fresh, clean look"],
    "mood:dramatic": ["Make it {a2}dramatic", "Give it a {a}dramatic look", "Go for a {a}dramatic feel"],
    "mood:airy": ["Make it {a2}bright and airy", "Give it a {a}light and airy feel"],
}

_GLOBAL_X = ["it", "the photo", "the image", "the picture", "the shot"]
_GLOBAL_XO = ["the photo", "the image", "the picture"]
_REGION_X: dict[str, list[str]] = {
    "sky": ["the sky"],
    "background": ["the background", "the backdrop"],
    "subject": ["the subject", "the main subject"],
    "skin": ["the face", "the skin tones", "the skin"],
    "edges": ["the edges", "the corners", "the edges of the frame"],
    "shadows": ["the shadows", "the dark areas"],
    "highlights": ["the highlights", "the bright areas"],
}
# objects after "in"/"of" ("the cast in the corners", not "in the edges")
_REGION_XO: dict[str, list[str]] = {"edges": ["the corners", "the edges of the frame"]}
_LOW_SUFFIX = [" a little", " a bit", " a touch", " slightly"]
_HIGH_SUFFIX = [" a lot", " strongly", " considerably", " significantly"]
_LOW_PREFIX = ["Slightly", "Gently", "Subtly"]
_HIGH_PREFIX = ["Strongly", "Significantly"]
_PREFIXABLE = {"brighten", "darken", "lighten", "warm", "cool", "lift", "deepen", "boost", "reduce", "desaturate",
               "lower", "raise", "increase", "soften", "mute", "recover", "tame", "open", "dim", "saturate",
               "neutralize", "correct", "push", "shift", "tone"}
_STYLE_A = {CONF_LOW: ["subtle ", "gentle "], CONF_MEDIUM: [""], CONF_HIGH: ["strong ", "bold "]}
_STYLE_A2 = {CONF_LOW: ["slightly ", "a little "], CONF_MEDIUM: [""], CONF_HIGH: ["very ", "really "]}
_COMPARATIVE_I = {CONF_LOW: ["a little ", "a bit ", "slightly "], CONF_MEDIUM: [""], CONF_HIGH: ["much ", "a lot ", "far "]}
_JOINERS_SAFE = [", and ", ", then ", "; ", ". ", ", "]


def _level(conf: float) -> float:
    """Snap a confidence to the writer's three levels."""
    return min((CONF_LOW, CONF_MEDIUM, CONF_HIGH), key=lambda c: abs(c - conf))


def _choice(rng: np.random.Generator, items: Sequence[str]) -> str:
    return items[int(rng.integers(len(items)))]


def _phrase(intent: AttributeMatch, rng: np.random.Generator) -> str:
    """One clause for one intent (no final punctuation), first letter capitalised."""
    level = _level(intent.confidence)
    templates = _PHRASES[intent.name]
    if intent.region is not None:
        templates = [t for t in templates if "{x}" in t or "{xo}" in t]
        if not templates:
            raise InstructionError(f"no phrasing for {intent.name} in a region ({intent.region})")
    t = _choice(rng, templates)
    if "{a}" in t or "{a2}" in t:  # styles and moods carry intensity inside the phrase
        t = t.replace("{a}", _choice(rng, _STYLE_A[level])).replace("{a2}", _choice(rng, _STYLE_A2[level]))
        return t[0].upper() + t[1:]
    if "{i}" in t:
        t = t.replace("{i}", _choice(rng, _COMPARATIVE_I[level]))
        level = CONF_MEDIUM  # intensity placed: no adverb below
    if intent.region is not None:
        t = t.replace("{x}", _choice(rng, _REGION_X[intent.region]))
        t = t.replace("{xo}", _choice(rng, _REGION_XO.get(intent.region, _REGION_X[intent.region])))
    else:
        t = t.replace("{x}", _choice(rng, _GLOBAL_X)).replace("{xo}", _choice(rng, _GLOBAL_XO))
    if level != CONF_MEDIUM:
        first = t.split()[0].lower()
        # "Neutralize the blue cast in the sky a lot" reads badly: those verbs take a prefix
        if first in ("neutralize", "correct") or (first in _PREFIXABLE and rng.random() < 0.35):
            pre = _choice(rng, _LOW_PREFIX if level == CONF_LOW else _HIGH_PREFIX)
            t = f"{pre} {t[0].lower()}{t[1:]}"
        else:
            t = t + _choice(rng, _LOW_SUFFIX if level == CONF_LOW else _HIGH_SUFFIX)
    return t[0].upper() + t[1:]


def _join(phrases: list[str], rng: np.random.Generator, allow_and: bool) -> str:
    out = phrases[0]
    for p in phrases[1:]:
        joiners = _JOINERS_SAFE + ([" and "] if allow_and else [])
        j = _choice(rng, joiners)
        nxt = p if j == ". " else p[0].lower() + p[1:]
        out = out + j + nxt
    end = "." if rng.random() < 0.85 else ""
    text = out + end
    if rng.random() < 0.08:
        text = text.rstrip(".") + ", please."
    return text


def _key(matches: Sequence[AttributeMatch]) -> set[tuple[str, str | None, float]]:
    return {(m.name, m.region, _level(m.confidence)) for m in matches}


def write_instruction(
    intents: Sequence[AttributeMatch],
    rng: np.random.Generator,
    seen: Sequence[str] | None = None,
    max_tries: int = 200,
) -> str:
    """A verified instruction asking for ``intents``.

    Args:
        intents: attributes to ask for (each name in ``ATTRIBUTES``; confidence snaps to the
            three intensity levels 0.5/0.8/1.0; region one of ``REGIONS`` or None).
            Order is kept. At most one entry per (name, region).
        rng: numpy Generator; the same seed and inputs give the same text.
        seen: earlier instructions of the dataset (near-duplicates are avoided).
        max_tries: candidates to draw before giving up.
    Returns:
        The text: it passes :func:`check_instruction` (given ``seen``) and
        ``match_attributes(text)`` equals ``intents`` as a set of (name, region, level).
    Raises:
        InstructionError: empty ``intents``, unknown attribute, or no verified candidate.
    """
    intents = list(intents)
    if not intents:
        raise InstructionError("nothing to ask for: no intended attributes")
    for it in intents:
        if it.name not in _PHRASES:
            raise InstructionError(f"unknown attribute {it.name!r}")
        if it.name.startswith("brightness:") and it.region in ("shadows", "highlights"):
            raise InstructionError(f"{it.name} in the {it.region} is the {it.region} attribute; ask for that instead")
        if it.name == "style:bw" and _level(it.confidence) != CONF_MEDIUM:
            raise InstructionError("style:bw has no intensity: write it at confidence 0.8")
    want = _key(intents)
    if len(want) != len(intents):
        raise InstructionError("duplicate (attribute, region) intents")
    last_problem = "no candidate"
    for _ in range(max_tries):
        phrases = [_phrase(it, rng) for it in intents]
        text = _join(phrases, rng, allow_and=all(it.region is None for it in intents))
        problems = check_instruction(text, seen)
        if problems:
            last_problem = problems[0]
            continue
        got = _key(match_attributes(text))
        if got != want:
            last_problem = f"{text!r} reads back as {sorted(got, key=str)}"
            continue
        return text
    raise InstructionError(f"could not write a verified instruction for {sorted(want, key=str)}: {last_problem}")


# ---------------------------------------------------------------------------------------
# From degradation parameters

# op -> (attribute that undoes a positive value, attribute that undoes a negative value)
_UNDO: dict[str, tuple[str, str]] = {
    "exposure": ("brightness:down", "brightness:up"),
    "gamma": ("brightness:down", "brightness:up"),  # gamma > 1 brightens
    "temperature": ("temperature:cool", "temperature:warm"),
    "tint": ("tint:green", "tint:magenta"),
    "contrast": ("contrast:down", "contrast:up"),
    "saturation": ("saturation:down", "saturation:up"),
    "vibrance": ("saturation:down", "vibrance:up"),
    "shadows": ("shadows:down", "shadows:up"),
    "highlights": ("highlights:down", "highlights:up"),
    "clarity": ("clarity:down", "clarity:up"),
}


def op_level(op: str, value: float) -> float:
    """Intensity level of a degradation: where |value| sits in SAMPLE_RANGES[op] (thirds)."""
    lo, hi = SAMPLE_RANGES[op]
    mag = abs(np.log(value)) if op == "gamma" else abs(value)
    f = (mag - lo) / (hi - lo)
    return CONF_LOW if f < 1 / 3 else CONF_MEDIUM if f < 2 / 3 else CONF_HIGH


def _global_intents(p: FinishingParams, region: str | None) -> list[AttributeMatch]:
    if p.tone_curve is not None or any(v != (0.0, 0.0, 0.0) for v in p.hsl.values()):
        raise InstructionError("the writer describes scalar operations only (no tone_curve / hsl degradations)")
    out = []
    for op, (pos, neg) in _UNDO.items():
        v = getattr(p, op)
        ident = PARAM_RANGES[op][2]
        if v == ident:
            continue
        signed = np.log(v) if op == "gamma" else v
        out.append(AttributeMatch(pos if signed > 0 else neg, op_level(op, v), region))
    return out


def intents_for_degradation(params: FinishingParams) -> list[AttributeMatch]:
    """The attributes that undo a degradation: one per non-identity scalar op (global ops
    with region None, each local edit's ops with its mask's ``region``), confidence from the
    op's magnitude within :data:`~.finishing.SAMPLE_RANGES` (lower third 0.5, middle 0.8,
    upper 1.0). Raises InstructionError for ops it cannot describe (tone curve, HSL)."""
    intents = _global_intents(params.global_part(), None)
    for e in params.local:
        region = e.mask.get("region")
        intents.extend(_global_intents(e.params, region))
    keys = [(i.name, i.region) for i in intents]
    if len(set(keys)) != len(keys):
        raise InstructionError(f"degradation maps to repeated attributes {keys}")
    return intents


def instruction_for_params(
    params: FinishingParams, rng: np.random.Generator, seen: Sequence[str] | None = None
) -> tuple[str, list[AttributeMatch]]:
    """The instruction that undoes the degradation ``params``, and its intents."""
    intents = intents_for_degradation(params)
    return write_instruction(intents, rng, seen=seen), intents

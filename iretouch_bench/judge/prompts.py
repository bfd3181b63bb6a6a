"""The judge's prompts for photo retouching, versioned and hashed.

Structure follows VIEScore / GEdit-Bench (Ku et al. 2024; Step1X-Edit): two questions per sample,

* **SC** (semantic consistency) - shown the source photo, the retouched photo and the instruction,
  the judge answers two 0-10 scores ``[editing success, over-editing]``; ``SC = min`` of the two.
* **PQ** (perceptual quality) - shown the retouched photo alone, it answers ``[naturalness,
  artifacts]``; ``PQ = min`` of the two.

and ``O = sqrt(SC * PQ)``. The answer form is VIEScore's JSON object
``{"score": [a, b], "reasoning": "..."}`` so any VLM that speaks that form can serve.

The wording below is this suite's own, written for photo *retouching* (tone, colour, local
adjustments, portrait finishing) rather than generic image editing. Any change to the text must
bump :data:`PROMPT_VERSION`; :func:`prompt_hash` (recorded in ``run.json`` and in every cache key)
changes with any edit to the text anyway, so a stale cache can never be served for a new prompt.
"""

from __future__ import annotations

import hashlib
import json

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


def render(kind: str, instruction: str) -> tuple[str, str]:
    """``(system text, user text)`` for prompt ``kind`` (``"sc"`` or ``"pq"``).

    The instruction is inserted verbatim except that double quotes become single quotes, so it
    cannot close the quotation it sits in.
    """
    if kind == "sc":
        return SC_SYSTEM, SC_USER.format(instruction=instruction.replace('"', "'").strip())
    if kind == "pq":
        return PQ_SYSTEM, PQ_USER
    raise ValueError(f"unknown prompt kind {kind!r}")


def prompt_hash() -> str:
    """sha256 (hex) of the prompt version and every template text, in a canonical JSON form."""
    blob = json.dumps(
        {"version": PROMPT_VERSION, "sc_system": SC_SYSTEM, "sc_user": SC_USER,
         "pq_system": PQ_SYSTEM, "pq_user": PQ_USER, "score_names": SCORE_NAMES},
        sort_keys=True, ensure_ascii=True,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()

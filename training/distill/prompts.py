"""The attribute prompt bank of the prompt-alignment loss (paper Sec. 3.4.2, Eq. 5-6).

Each atomic attribute of the suite's vocabulary (:data:`iretouch_bench.vocab.attributes.ATTRIBUTES`)
is paired with two short CLIP prompts, the direction it asks for and the opposite one
("Bright Image" vs "Dark Image" in the paper). The instruction -> attributes step is the
suite's rule-based matcher (:func:`~iretouch_bench.vocab.attributes.match_attributes`), whose
confidences are the weights ``w_a`` of Eq. 6. The wording is ours (the paper lists only the
example above).
"""

from __future__ import annotations

from iretouch_bench.vocab.attributes import ATTRIBUTES, match_attributes

__all__ = ["ATTRIBUTE_PROMPTS", "attributes_of"]

#: attribute -> (positive prompt p_a^+, negative prompt p_a^-)
ATTRIBUTE_PROMPTS: dict[str, tuple[str, str]] = {
    "brightness:up": ("a bright photo", "a dark photo"),
    "brightness:down": ("a dark photo", "a bright photo"),
    "contrast:up": ("a high contrast photo", "a flat low contrast photo"),
    "contrast:down": ("a soft low contrast photo", "a harsh high contrast photo"),
    "saturation:up": ("a photo with vivid saturated colors", "a photo with dull washed out colors"),
    "saturation:down": ("a photo with muted desaturated colors", "a photo with vivid saturated colors"),
    "vibrance:up": ("a vibrant colorful photo", "a dull colorless photo"),
    "temperature:warm": ("a warm toned photo", "a cool blue toned photo"),
    "temperature:cool": ("a cool blue toned photo", "a warm toned photo"),
    "tint:magenta": ("a photo with a magenta tint", "a photo with a green tint"),
    "tint:green": ("a photo with a green tint", "a photo with a magenta tint"),
    "shadows:up": ("a photo with bright open shadows", "a photo with deep dark shadows"),
    "shadows:down": ("a photo with deep dark shadows", "a photo with bright open shadows"),
    "highlights:up": ("a photo with bright glowing highlights", "a photo with dim muted highlights"),
    "highlights:down": ("a photo with soft recovered highlights", "a photo with blown out highlights"),
    "clarity:up": ("a crisp detailed photo", "a soft hazy photo"),
    "clarity:down": ("a soft hazy photo", "a crisp detailed photo"),
    "style:vintage": ("a vintage film photo", "a modern clean digital photo"),
    "style:dreamy": ("a dreamy soft glowing photo", "a harsh sharp photo"),
    "style:cinematic": ("a cinematic color graded film still", "a plain snapshot"),
    "style:bw": ("a black and white photo", "a color photo"),
    "style:matte": ("a matte faded photo", "a glossy punchy photo"),
    "mood:cozy": ("a cozy warm inviting photo", "a cold sterile photo"),
    "mood:moody": ("a dark moody photo", "a bright cheerful photo"),
    "mood:fresh": ("a fresh clean bright photo", "a dull stale photo"),
    "mood:dramatic": ("a dramatic intense photo", "a flat calm photo"),
    "mood:airy": ("a light airy photo", "a heavy dark photo"),
}

def attributes_of(instruction: str) -> list[tuple[int, float]]:
    """``A(c_T)``: ``[(index into ATTRIBUTES, confidence w_a), ...]`` from the rule-based matcher."""
    return [(ATTRIBUTES.index(m.name), float(m.confidence)) for m in match_attributes(instruction)]

"""The attribute bank (paper Sec. 3.4.2): instruction text -> atomic retouching attributes.

A rule-based matcher turns a photographer's instruction ("Lift the shadows a little and
warm up the skin tones") into atomic attributes, each with a confidence in (0, 1] and an
optional region::

    >>> match_attributes("Lift the shadows a little and warm up the skin tones")
    [AttributeMatch(name='shadows:up', confidence=0.5, region=None),
     AttributeMatch(name='temperature:warm', confidence=0.8, region='skin')]

Three consumers share it: the instruction writer (every sentence it writes must match back
to the attributes it intends), the offline instruction score ``attr_acc`` (which measures
the change each attribute predicts, see :data:`ATTRIBUTE_EFFECTS`), and the ``ours`` model
(conditioned on :func:`attribute_vector`).

Confidence encodes how strongly the text asks for the attribute:
``LOW`` (0.5) with softeners ("a little", "slightly", "a touch"), ``HIGH`` (1.0) with
intensifiers ("strongly", "a lot", "much", "dramatically"), ``MEDIUM`` (0.8) otherwise.
A negated clause ("don't brighten the sky", "keep the background as it is") yields no
attribute: the matcher never guesses the opposite of a negation.

How matching works (all on lower-cased text, British/American spellings unified):
1. Multi-word idioms that contain "and" ("black and white", "bright and airy",
   "dark and moody", ...) are fused into one token so clause splitting keeps them whole.
2. The text is split into clauses at punctuation and at "and", "but", "while", "then", ...
3. In each clause, rules run from most to least specific (styles and moods, then
   shadows/highlights, then nouns with verbs such as "reduce the contrast", then bare
   adjectives/verbs such as "warmer" or "darken"); every match blanks the words it used,
   so "lift the shadows" is ``shadows:up`` and not also ``brightness:up``. Flips come
   before plain forms: "too dark" and "less dark" mean ``brightness:up``.
4. Region words left over in the clause ("sky", "background", "face"/"skin", "shadows",
   ...) set the region of every attribute of that clause. A bare-verb fragment such as
   "Darken" in "Darken and cool the sky" takes the region of the fragment after it (or,
   failing that, "warmer" in "Brighten the face and warmer" that of the fragment before).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from .measures import lab_measures, to_lab

__all__ = [
    "VOCAB_VERSION",
    "ATTRIBUTES",
    "ATTRIBUTE_EFFECTS",
    "MEASURES",
    "REGIONS",
    "CONF_LOW",
    "CONF_MEDIUM",
    "CONF_HIGH",
    "AttributeMatch",
    "match_attributes",
    "attribute_vector",
    "attribute_index",
    "measure_image",
]

#: Version of the instruction language: the attribute list, the matcher's rules and the
#: measures. Bump it whenever the matcher's answer for some text changes or an attribute is
#: added; a model trained on one version records it (and its attribute list) with its
#: weights, and every run records the version it was scored with.
VOCAB_VERSION = "v1"

#: The atomic attributes, in the fixed order of :func:`attribute_vector`. Append only.
ATTRIBUTES: tuple[str, ...] = (
    "brightness:up",
    "brightness:down",
    "contrast:up",
    "contrast:down",
    "saturation:up",
    "saturation:down",
    "vibrance:up",
    "temperature:warm",
    "temperature:cool",
    "tint:magenta",
    "tint:green",
    "shadows:up",
    "shadows:down",
    "highlights:up",
    "highlights:down",
    "clarity:up",
    "clarity:down",
    "style:vintage",
    "style:dreamy",
    "style:cinematic",
    "style:bw",
    "style:matte",
    "mood:cozy",
    "mood:moody",
    "mood:fresh",
    "mood:dramatic",
    "mood:airy",
)

#: The quantities the offline score measures from input to output (all in CIELAB, D65):
#: ``lightness`` mean L*; ``contrast`` std of L*; ``chroma`` mean sqrt(a*^2+b*^2);
#: ``b`` mean b* (yellow-blue axis, warm = +); ``a`` mean a* (magenta-green, magenta = +);
#: ``shadows`` a low percentile of L*; ``highlights`` a high percentile of L*;
#: ``local_contrast`` the mean absolute high-pass of L* (detail/clarity).
MEASURES: tuple[str, ...] = ("lightness", "contrast", "chroma", "b", "a", "shadows", "highlights", "local_contrast")

#: Expected measurable effect of each attribute: ``{measure: +1 (goes up) | -1 (goes down)}``.
#: Only effects the attribute reliably produces are listed (e.g. "cinematic" grades differ
#: in colour, but all crush shadows and raise contrast). The style/mood presets of
#: :mod:`iretouch_bench.synth.finishing` are built to satisfy these rows (tested).
ATTRIBUTE_EFFECTS: dict[str, dict[str, int]] = {
    "brightness:up": {"lightness": +1},
    "brightness:down": {"lightness": -1},
    "contrast:up": {"contrast": +1},
    "contrast:down": {"contrast": -1},
    "saturation:up": {"chroma": +1},
    "saturation:down": {"chroma": -1},
    "vibrance:up": {"chroma": +1},
    "temperature:warm": {"b": +1},
    "temperature:cool": {"b": -1},
    "tint:magenta": {"a": +1},
    "tint:green": {"a": -1},
    "shadows:up": {"shadows": +1},
    "shadows:down": {"shadows": -1},
    "highlights:up": {"highlights": +1},
    "highlights:down": {"highlights": -1},
    "clarity:up": {"local_contrast": +1},
    "clarity:down": {"local_contrast": -1},
    # faded film: lower contrast, warm/yellowed cast. (Vintage looks also mute colour, but
    # the warm cast adds chroma to near-neutral photos, so mean chroma has no reliable sign.)
    "style:vintage": {"contrast": -1, "b": +1},
    # soft and bright: lower contrast, brighter, lifted shadows
    "style:dreamy": {"contrast": -1, "lightness": +1, "shadows": +1},
    # graded film look: crushed shadows, more contrast
    "style:cinematic": {"contrast": +1, "shadows": -1},
    # monochrome: chroma to (near) zero
    "style:bw": {"chroma": -1},
    # matte/faded blacks: lifted shadows, lower contrast
    "style:matte": {"shadows": +1, "contrast": -1},
    # warm and soft
    "mood:cozy": {"b": +1, "contrast": -1},
    # darker and muted
    "mood:moody": {"lightness": -1, "chroma": -1},
    # brighter and cooler/cleaner
    "mood:fresh": {"lightness": +1, "b": -1},
    # punchy: more global and local contrast
    "mood:dramatic": {"contrast": +1, "local_contrast": +1},
    # bright and airy: brighter, lower contrast, lifted shadows
    "mood:airy": {"lightness": +1, "contrast": -1, "shadows": +1},
}

#: Canonical region names a match can carry (None = the whole image).
#: ``skin`` covers face/skin/complexion words; ``edges`` the corners/border (vignette);
#: ``shadows``/``highlights`` as regions mean "in the dark/bright areas" ("cool the shadows").
REGIONS: tuple[str, ...] = ("sky", "background", "subject", "skin", "edges", "shadows", "highlights")

CONF_LOW = 0.5
CONF_MEDIUM = 0.8
CONF_HIGH = 1.0


@dataclass(frozen=True)
class AttributeMatch:
    """One atomic attribute found in an instruction.

    Attributes:
        name: one of :data:`ATTRIBUTES`.
        confidence: in (0, 1]; 0.5 softened ("a little"), 0.8 plain, 1.0 intensified ("strongly").
        region: one of :data:`REGIONS`, or None for the whole image.
    """

    name: str
    confidence: float
    region: str | None = None


# ---------------------------------------------------------------------------------------
# Text normalisation

# Idioms containing "and" (or a symbol) fused into one token before clause splitting.
_FUSE = [
    (r"black[\s-]*(?:and|&|n)[\s-]*white", "blackandwhite"),
    (r"\bb\s*&\s*w\b", "blackandwhite"),
    (r"\bbright[\s,]+and[\s]+airy\b", "brightandairy"),
    (r"\blight[\s,]+and[\s]+airy\b", "lightandairy"),
    (r"\bdark[\s,]+and[\s]+moody\b", "darkandmoody"),
    (r"\bwarm[\s,]+and[\s]+inviting\b", "warmandinviting"),
    (r"\bcrisp[\s,]+and[\s]+clean\b", "crispandclean"),
    (r"\bclean[\s,]+and[\s]+fresh\b", "crispandclean"),
    (r"\bteal[\s-]+and[\s-]+orange\b", "tealandorange"),
    (r"\borange[\s-]+and[\s-]+teal\b", "tealandorange"),
    (r"\bsoft[\s,]+and[\s]+dreamy\b", "dreamy"),
]
_SPELLING = [
    (r"colour", "color"),
    (r"\bgrey", "gray"),
    (r"\bcosy\b", "cozy"),
    (r"saturis", "saturiz"),
    (r"neutralis", "neutraliz"),
    (r"[’`´]", "'"),
    (r"\bsombre\b", "somber"),
]

_SPLIT_RE = re.compile(r"[.;,!?:\n]+|\b(?:and|but|while|whereas|then|plus|also|as well as)\b")

_NEG_RE = re.compile(
    r"\b(?:don'?t|do not|does not|doesn'?t|not|never|no|without|avoid|keep|leave|preserve|maintain|retain|"
    r"nothing|shouldn'?t|should not|mustn'?t)\b"
)
_LOW_RE = re.compile(
    r"\b(?:a (?:little|bit|touch|tad|hint|smidge)(?: bit)?|slightly|slight|subtly|subtle|gently|gentle|"
    r"somewhat|lightly|mildly|mild|barely|marginally|just a (?:little|bit|touch|tad)|a little more|"
    r"a bit more|faintly|softly)\b"
)
_HIGH_RE = re.compile(
    r"\b(?:strongly|strong|a lot|much|very|really|significantly|dramatically|heavily|considerably|way|"
    r"lots|far|greatly|substantially|boldly|massively|hugely|seriously|drastically|aggressively|"
    r"a great deal|intensely|deeply)\b"
)


def _normalise(text: str) -> str:
    t = text.lower()
    for pat, rep in _SPELLING:
        t = re.sub(pat, rep, t)
    for pat, rep in _FUSE:
        t = re.sub(pat, rep, t)
    t = re.sub(r"[\"()\[\]]", " ", t)
    t = re.sub(r"-", " ", t)
    return re.sub(r"\s+", " ", t).strip()


# ---------------------------------------------------------------------------------------
# Rules: ordered (attribute, regex). Earlier rules win because matches blank their words.

_UP = (
    r"(?:increase|raise|boost|bump up|bump|push|more|add|enhance|amplify|strengthen|heighten|turn up|"
    r"crank up|crank|give it more|give more|improve|bring up|dial up|pump up|punch up|intensify|extra|higher|(?<=^ )up|(?<=^ please )up)"
)
_DOWN = (
    r"(?:decrease|reduce|lower|cut|drop|tone down|pull back|pull down|bring down|soften|less|tame|"
    r"dial back|dial down|turn down|knock down|knock back|minimi[sz]e|diminish|weaken|ease|ease off|"
    r"back off|lessen|scale back|take down|calm|subdue|lower down)"
)
_ART = r"(?:\s+(?:the|its|some|a bit of|a little|a touch of|a little more|a bit more|overall|image|photo'?s?|picture'?s?))*"
_HL = r"(?:highlights?|bright areas|bright tones|brights|whites|light areas|brightest areas|bright parts)"
_SH = r"(?:shadows?|dark areas|dark tones|darks|blacks|shadow detail|shadow areas|darkest areas|dark parts|lows)"
_BRI = r"(?:brightness|exposure|lightness|luminosity|overall light)"
_CON = r"(?:contrast)"
_SAT = r"(?:saturation|color saturation|color intensity|colors?|color richness)"
_VIB = r"(?:vibrance|vibrancy)"
_WARM = r"(?:warmth|temperature|warm tones)"
_CLAR = r"(?:clarity|local contrast|micro ?contrast|texture|definition|detail|details|crispness|sharpness)"


def _nounrule(noun: str) -> tuple[str, str]:
    """(up_regex, down_regex) for "VERB the NOUN" and "turn the NOUN up/down" forms."""
    up = rf"\b{_UP}{_ART}\s+{noun}\b|\b(?:turn|bring|dial|crank|push|bump|pump|pull|knock|take)\b{_ART}\s+{noun}\s+up\b"
    down = rf"\b{_DOWN}{_ART}\s+{noun}\b|\b(?:turn|bring|dial|pull|knock|take|push)\b{_ART}\s+{noun}\s+(?:down|back)\b"
    return up, down


_RULES_SRC: list[tuple[str, str]] = [
    # --- styles and moods (fused idioms first)
    ("style:bw", r"\b(?:blackandwhite|monochrome|monochromatic|grayscale|black white|noir)\b"),
    ("mood:airy", r"\b(?:brightandairy|lightandairy|airy)\b"),
    ("mood:moody", r"\b(?:darkandmoody|moody|brooding|gloomy|somber|melancholic|melancholy|stormy mood)\b"),
    ("mood:cozy", r"\b(?:cozy|warmandinviting|snug|homey|homely|hygge)\b"),
    ("mood:fresh", r"\b(?:fresh|freshen(?: up)?|crispandclean|refreshing)\b"),
    ("mood:dramatic", r"\b(?:dramatic|more drama|epic)\b"),
    ("style:vintage", r"\b(?:vintage|retro|nostalgic|old film|old photo(?:graph)?|aged film|faded film|old school|70s|1970s|analog film)\b"),
    ("style:cinematic", r"\b(?:cinematic|cinema|filmic|movie(?: like| still| look)?|film grade|tealandorange|blockbuster)\b"),
    ("style:dreamy", r"\b(?:dreamy|dreamlike|ethereal|soft glow|hazy glow|fairytale)\b"),
    ("style:matte", r"\b(?:matte|faded look|faded|lifted blacks|washed film)\b"),
    # --- highlights and shadows (before brightness: "brighten the highlights" is not global)
    ("highlights:down", rf"\b{_HL}\s+(?:are\s+|look\s+)?(?:too bright|blown(?: out)?|clipped|too hot|too strong)\b"),
    ("highlights:down", rf"\b(?:blown(?: out)?|clipped|harsh|hot)\s+{_HL}\b"),
    ("highlights:down", rf"\b(?:{_DOWN}|recover|rescue|protect|save|darken|dim|pull in|compress|hold back){_ART}\s+{_HL}\b"),
    ("highlights:down", rf"\b(?:darker|softer|gentler|calmer|dimmer|lower)\s+{_HL}\b"),
    ("highlights:down", rf"\b(?:bring|pull|take|knock){_ART}\s+{_HL}\s+(?:down|back)\b"),
    ("highlights:down", rf"\b{_HL}\s+(?:look\s+)?(?:darker|softer|gentler|calmer|dimmer|less bright)\b"),
    ("highlights:up", rf"\b{_HL}\s+(?:are\s+|look\s+)?(?:too dull|too dim|too flat|muddy)\b"),
    ("highlights:up", rf"\b{_HL}\s+(?:look\s+)?(?:brighter|stronger|more luminous|glow|pop|shine|sparkle)\b"),
    ("highlights:up", rf"\b(?:make|let){_ART}\s+{_HL}\s+(?:glow|pop|shine|sparkle)\b"),
    ("highlights:up", rf"\b(?:{_UP}|brighten|lighten|lift){_ART}\s+{_HL}\b"),
    ("highlights:up", rf"\b(?:brighter|stronger|glowing|more luminous|punchier|higher)\s+{_HL}\b"),
    ("highlights:up", rf"\b(?:bring|pull|push|bump){_ART}\s+{_HL}\s+up\b"),
    ("shadows:up", rf"\b{_SH}\s+(?:are\s+|look\s+)?(?:too dark|too deep|crushed|blocked up|too heavy|muddy)\b"),
    ("shadows:up", rf"\b(?:crushed|blocked|murky|heavy)\s+{_SH}\b"),
    ("shadows:up", rf"\b{_SH}\s+(?:look\s+)?(?:brighter|lighter|more open|softer|airier)\b"),
    ("shadows:up", rf"\b(?:{_UP}|lift|open up|open|brighten|lighten|recover|fill in|fill|reveal|bring out){_ART}\s+{_SH}\b"),
    ("shadows:up", rf"\b(?:brighter|lifted|lighter|softer|open|more open|airier)\s+{_SH}\b"),
    ("shadows:up", rf"\b(?:bring|pull|push|bump|lift|open){_ART}\s+{_SH}\s+up\b"),
    ("shadows:down", rf"\b{_SH}\s+(?:are\s+|look\s+)?(?:too bright|too light|washed out|too flat|too lifted|muddy gray)\b"),
    ("shadows:down", rf"\b{_SH}\s+(?:look\s+)?(?:deeper|darker|richer|denser|inkier|heavier)\b"),
    ("shadows:down", rf"\b(?:{_DOWN}|deepen|darken|crush|sink|anchor|ground|richen|enrich){_ART}\s+{_SH}\b"),
    ("shadows:down", rf"\b(?:deeper|darker|richer|denser|inkier|heavier|stronger)\s+{_SH}\b"),
    ("shadows:down", rf"\b(?:bring|pull|push|knock){_ART}\s+{_SH}\s+down\b"),
    # --- clarity (before contrast: "local contrast")
    ("clarity:up", _nounrule(_CLAR)[0]),
    ("clarity:down", _nounrule(_CLAR)[1]),
    ("clarity:up", r"\b(?:crisper|crisp(?: up)?|more defined|sharper details|sharpen(?: up)? the details|punch up the details)\b"),
    ("clarity:down", r"\b(?:smooth out the details|softer details|less detailed|soften the texture)\b"),
    # --- contrast
    ("contrast:down", r"\b(?:too contrasty|too harsh|too punchy|harsh contrast|too much contrast|less contrasty|less punchy|less harsh)\b"),
    ("contrast:up", r"\b(?:too flat|too soft|less flat|lacks contrast|lacking contrast|low contrast|flat looking|looks flat|is flat|washed out contrast)\b"),
    ("contrast:up", _nounrule(_CON)[0]),
    ("contrast:down", _nounrule(_CON)[1]),
    ("contrast:up", r"\b(?:punchier|punchy|more punch|some punch|give it punch|more pop|contrastier|more contrasty|make (?:it|the (?:image|photo|picture|shot)) pop)\b"),
    ("contrast:down", r"\b(?:flatter|flatten(?: out)?|gentler tones|softer tones|soften the tones|softer look|soften it)\b"),
    # --- vibrance (before saturation: "vibrant colors")
    ("vibrance:up", _nounrule(_VIB)[0]),
    ("vibrance:up", r"\b(?:more vibrant|vibrant|liven up the colors|livelier colors)\b"),
    # --- saturation
    ("saturation:down", r"\b(?:too saturated|oversaturated|over saturated|too colorful|too vivid|colors are too strong|garish|less saturated|less colorful|less vivid)\b"),
    ("saturation:up", r"\b(?:undersaturated|under saturated|too muted|too dull|too desaturated|less muted|less dull|washed out|looks dull|dull colors|colors are dull|faded colors)\b"),
    ("saturation:up", r"\bcolors?\s+(?:look\s+)?(?:richer|more vivid|more saturated|stronger|bolder|deeper|pop|juicier)\b"),
    ("saturation:down", r"\bcolors?\s+(?:look\s+)?(?:calmer|more muted|less saturated|softer|quieter|less vivid)\b"),
    ("saturation:up", r"\b(?:deeper|richer|more vivid|stronger|bolder|more intense|more saturated)\s+(?:blues?|greens?|reds?|oranges?|yellows?|purples?|pinks?)\b"),
    ("saturation:down", _nounrule(_SAT)[1]),
    ("saturation:down", r"\b(?:desaturate|desaturated|desaturation|muted|mute|subdued colors|subdue|tone down the colors|calmer colors|quieter colors|pastel)\b"),
    ("saturation:up", _nounrule(_SAT)[0]),
    ("saturation:up", r"\b(?:saturate|more saturated|saturated|richer colors|rich colors|more colorful|colorful|colors pop|make the colors pop|vivid|more vivid|stronger colors|deeper colors|juicier colors)\b"),
    # --- colour casts named with a corrective verb (before the plain colour words)
    ("temperature:cool", rf"\b(?:reduce|remove|neutrali[sz]e|correct|cut|fix|lose|kill|get rid of|less|lower|tone down){_ART}\s+(?:yellow|orange|warm|amber)(?:ish)?\s+(?:tint|cast|tone|tones|hue)\b"),
    ("temperature:warm", rf"\b(?:reduce|remove|neutrali[sz]e|correct|cut|fix|lose|kill|get rid of|less|lower|tone down){_ART}\s+(?:blue|cold|cool|cyan)(?:ish)?\s+(?:tint|cast|tone|tones|hue)\b"),
    ("tint:magenta", rf"\b(?:reduce|remove|neutrali[sz]e|correct|cut|fix|lose|kill|get rid of|less|lower|tone down){_ART}\s+(?:green|olive)(?:ish)?\s+(?:tint|cast|tone|tones|hue)\b"),
    ("tint:green", rf"\b(?:reduce|remove|neutrali[sz]e|correct|cut|fix|lose|kill|get rid of|less|lower|tone down){_ART}\s+(?:magenta|pink|purple)(?:ish)?\s+(?:tint|cast|tone|tones|hue)\b"),
    # --- temperature (flips first)
    ("temperature:cool", r"\b(?:too warm|too yellow|too orange|too golden|less warm|less yellow|less orange|yellow cast|orange cast|warm cast)\b"),
    ("temperature:warm", r"\b(?:too cold|too cool|too blue|too icy|less cold|less cool|less blue|blue cast|cold cast|cool cast)\b"),
    ("temperature:cool", rf"\b{_DOWN}{_ART}\s+{_WARM}\b"),
    ("temperature:warm", rf"\b{_UP}{_ART}\s+{_WARM}\b"),
    ("temperature:warm", r"\b(?:warm(?:s|ed|ing)?(?: up)?|warmer|golden(?: tones)?|sunnier|more yellow|more amber|amber)\b"),
    ("temperature:cool", r"\b(?:cool(?:s|ed|ing)?(?: down| off)?|cooler|colder|cold|chillier|icier|icy|bluer|more blue)\b"),
    # --- tint (flips first)
    ("tint:green", r"\b(?:too magenta|too pink|too purple|too purplish|less magenta|less pink|less purple|magenta cast|pink cast|purple cast|magenta tint|pinkish cast)\b"),
    ("tint:magenta", r"\b(?:too green|too greenish|less green|green cast|greenish cast|green tint|greenish tint|olive cast)\b"),
    ("tint:magenta", r"\b(?:more magenta|magenta|pinker|rosier|more pink|toward magenta|towards magenta)\b"),
    ("tint:green", r"\b(?:more green|greener|toward green|towards green|green shift)\b"),
    # --- brightness (flips first)
    ("brightness:up", r"\b(?:too dark|too dim|underexposed|under exposed|less dark|less dim|too murky|too gloomy)\b"),
    ("brightness:down", r"\b(?:too bright|too light|overexposed|over exposed|less bright|less light|too washed|blown out)\b"),
    ("brightness:up", _nounrule(_BRI)[0]),
    ("brightness:down", _nounrule(_BRI)[1]),
    ("brightness:up", r"\b(?:brighten(?:s|ed|ing)?(?: up)?|brighter|lighten(?: up)?|lighter|more light|expose up|luminous|open up the exposure|lift the exposure|bright(?! (?:areas|tones|parts)))\b"),
    ("brightness:down", r"\b(?:darken(?:s|ed|ing)?|darker|dim(?: down)?|dimmer|less light|deepen the tones|deepen the exposure|burn down|dark(?! (?:areas|tones|parts)))\b"),
]

_RULES: list[tuple[str, re.Pattern[str]]] = [(a, re.compile(p)) for a, p in _RULES_SRC]
assert all(a in ATTRIBUTES for a, _ in _RULES), "rule names must be attributes"

_REGION_RULES: list[tuple[str, re.Pattern[str]]] = [
    ("skin", re.compile(r"\b(?:skin(?: tones?)?|face|faces|complexion|cheeks?|facial tones?)\b")),
    ("sky", re.compile(r"\b(?:sky|skies|clouds?)\b")),
    ("background", re.compile(r"\b(?:background|backdrop|surroundings|behind (?:him|her|them|the subject))\b")),
    ("subject", re.compile(r"\b(?:subject|person|people|foreground|center|centre|middle)\b")),
    ("edges", re.compile(r"\b(?:edges?|corners?|borders?|periphery|frame edges|outer areas)\b")),
    ("shadows", re.compile(rf"\b{_SH}\b")),
    ("highlights", re.compile(rf"\b{_HL}\b")),
]

# Words of a fragment that say nothing about where: a fragment made only of these (after
# its attribute words are blanked) is a bare verb and may take the next fragment's region.
_FILLER = {
    "it", "up", "down", "the", "a", "image", "photo", "picture", "shot", "slightly", "little", "bit",
    "touch", "tad", "lot", "much", "very", "more", "strongly", "just", "please", "make", "gently",
    "subtly", "somewhat", "really", "off", "too", "overall", "everything", "things", "all",
}


# Object nouns: a fragment naming one ("lift the shadows") is not a bare verb.
_OBJECT_RE = re.compile(rf"\b(?:{_SH}|{_HL}|{_BRI}|{_CON}|{_SAT}|{_VIB}|{_WARM}|{_CLAR})\b")


def attribute_index(name: str) -> int:
    """Position of ``name`` in :data:`ATTRIBUTES` (ValueError if unknown)."""
    return ATTRIBUTES.index(name)


def _intensity(clause: str) -> float:
    # High wins over low when both appear ("a little ... much" is rare; "much" usually intensifies).
    if _HIGH_RE.search(clause):
        return CONF_HIGH
    if _LOW_RE.search(clause):
        return CONF_LOW
    return CONF_MEDIUM


def _blank(text: str, start: int, end: int) -> str:
    return text[:start] + " " * (end - start) + text[end:]


def _match_fragment(frag: str) -> tuple[list[tuple[int, str]], str | None, str, bool]:
    """-> (matches [(position, attribute)], region, leftover text, negated)."""
    text = f" {frag} "
    negated = bool(_NEG_RE.search(text))
    found: list[tuple[int, str]] = []
    for attr, rx in _RULES:
        for m in list(rx.finditer(text)):
            # re-check: an earlier match of this same loop may have blanked this span
            if not text[m.start():m.end()].strip():
                continue
            if rx.fullmatch(text, m.start(), m.end()) is None:
                continue
            found.append((m.start(), attr))
            text = _blank(text, m.start(), m.end())
    region = None
    for name, rx in _REGION_RULES:
        if rx.search(text):
            region = name
            break
    # leftover without intensifier words, for the bare-verb test
    leftover = _HIGH_RE.sub(" ", _LOW_RE.sub(" ", text))
    return found, region, leftover, negated


def match_attributes(instruction: str) -> list[AttributeMatch]:
    """Atomic attributes an instruction asks for, in order of appearance.

    Args:
        instruction: free text in English.
    Returns:
        One :class:`AttributeMatch` per (attribute, region), confidence in {0.5, 0.8, 1.0}
        (the highest when repeated). Negated clauses contribute nothing. Empty for text
        that asks for no tonal/colour change.
    """
    if not instruction or not instruction.strip():
        return []
    text = _normalise(instruction)
    # Split into fragments, remembering whether the boundary was a plain "and" (only
    # then may a bare verb borrow the region of the following fragment).
    pieces: list[tuple[str, bool]] = []
    pos = 0
    for m in _SPLIT_RE.finditer(text):
        pieces.append((text[pos:m.start()], m.group(0).strip() == "and"))
        pos = m.end()
    pieces.append((text[pos:], False))

    parsed = []
    for frag, joined_by_and in pieces:
        if not frag.strip():
            parsed.append(None)
            continue
        found, region, leftover, negated = _match_fragment(frag)
        conf = _intensity(f" {frag} ")
        parsed.append((found, region, leftover, negated, conf, joined_by_and))

    out: dict[tuple[str, str | None], AttributeMatch] = {}
    order: list[tuple[str, str | None]] = []
    for i, item in enumerate(parsed):
        if item is None:
            continue
        found, region, leftover, negated, conf, joined_by_and = item
        if negated or not found:
            continue
        if region is None and joined_by_and:
            words = [w for w in re.findall(r"[a-z']+", leftover) if w not in _FILLER]
            nxt = parsed[i + 1] if i + 1 < len(parsed) else None
            bare = not words and not _OBJECT_RE.search(pieces[i][0])
            if bare and nxt is not None and not nxt[3]:
                region = nxt[1]
        if region is None and i > 0 and pieces[i - 1][1]:
            # "Make the skin look healthier and warmer": a bare fragment after "and" takes the
            # region of the fragment before it
            words = [w for w in re.findall(r"[a-z']+", leftover) if w not in _FILLER]
            prev = parsed[i - 1]
            if not words and not _OBJECT_RE.search(pieces[i][0]) and prev is not None and not prev[3]:
                region = prev[1]
        for _, attr in sorted(found):
            key = (attr, region)
            if key in out:
                if conf > out[key].confidence:
                    out[key] = AttributeMatch(attr, conf, region)
            else:
                out[key] = AttributeMatch(attr, conf, region)
                order.append(key)
    return [out[k] for k in order]


def attribute_vector(instruction: str, names: tuple[str, ...] = ATTRIBUTES) -> np.ndarray:
    """float32 ``[len(names)]``: per attribute of ``names`` (default: the whole bank, in its
    order), the highest confidence it was matched with (any region), 0 where absent.

    A model passes the attribute list it was trained with, so appending an attribute to the
    bank never changes the length or order of that model's input.
    """
    index = {n: i for i, n in enumerate(names)}
    vec = np.zeros(len(names), dtype=np.float32)
    for m in match_attributes(instruction):
        i = index.get(m.name)
        if i is not None:
            vec[i] = max(vec[i], m.confidence)
    return vec


def measure_image(image: np.ndarray, mask: np.ndarray | None = None) -> dict[str, float]:
    """The :data:`MEASURES` of an image, in CIELAB (D65) units, at the image's own size.

    One definition with the offline score: this is
    :func:`iretouch_bench.vocab.measures.lab_measures` (see there for each measure), used
    by the dataset builder to verify pairs and by :func:`iretouch_bench.synth.describe.describe_change`.

    Args:
        image: float32 ``[H, W, 3]`` sRGB in [0, 1].
        mask: optional float32 ``[H, W]`` in [0, 1]; pixels with mask >= 0.5 are measured
            (the whole image when the region is too small to measure, or when None).
    """
    lab = to_lab(image)
    out = lab_measures(lab, mask) if mask is not None else None
    if out is None:
        out = lab_measures(lab, None, min_pixels=1)  # the builder measures even tiny test images
    return out

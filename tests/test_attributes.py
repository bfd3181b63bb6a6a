"""The attribute bank: rule-based matching of instructions to atomic attributes."""

from __future__ import annotations

import numpy as np
import pytest

from iretouch_bench.vocab.attributes import (
    ATTRIBUTE_EFFECTS,
    ATTRIBUTES,
    CONF_HIGH,
    CONF_LOW,
    CONF_MEDIUM,
    MEASURES,
    REGIONS,
    AttributeMatch,
    attribute_vector,
    match_attributes,
)


def _m(text):
    return [(m.name, m.confidence, m.region) for m in match_attributes(text)]


def test_tables_consistent():
    assert len(set(ATTRIBUTES)) == len(ATTRIBUTES)
    assert set(ATTRIBUTE_EFFECTS) == set(ATTRIBUTES)
    for name, eff in ATTRIBUTE_EFFECTS.items():
        assert eff, name
        assert set(eff) <= set(MEASURES), name
        assert set(eff.values()) <= {-1, 1}, name
    # opposite pairs have opposite effects
    for a, b in [("brightness:up", "brightness:down"), ("contrast:up", "contrast:down"),
                 ("temperature:warm", "temperature:cool"), ("tint:magenta", "tint:green"),
                 ("shadows:up", "shadows:down"), ("highlights:up", "highlights:down")]:
        ea, eb = ATTRIBUTE_EFFECTS[a], ATTRIBUTE_EFFECTS[b]
        assert set(ea) == set(eb) and all(ea[k] == -eb[k] for k in ea)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Lift the shadows a little and warm up the skin tones",
         [("shadows:up", CONF_LOW, None), ("temperature:warm", CONF_MEDIUM, "skin")]),
        ("Give it a soft, dreamy look", [("style:dreamy", CONF_MEDIUM, None)]),
        ("Darken the sky a little", [("brightness:down", CONF_LOW, "sky")]),
        ("Darken and cool the sky", [("brightness:down", CONF_MEDIUM, "sky"), ("temperature:cool", CONF_MEDIUM, "sky")]),
        ("Warm up the shadows", [("temperature:warm", CONF_MEDIUM, "shadows")]),
        ("It's too dark, brighten it strongly", [("brightness:up", CONF_HIGH, None)]),
        ("Make it black and white", [("style:bw", CONF_MEDIUM, None)]),
        ("Reduce the contrast slightly", [("contrast:down", CONF_LOW, None)]),
        ("Recover the highlights and deepen the blacks", [("highlights:down", CONF_MEDIUM, None), ("shadows:down", CONF_MEDIUM, None)]),
        ("Neutralise the green cast", [("tint:magenta", CONF_MEDIUM, None)]),
        ("It looks too magenta", [("tint:green", CONF_MEDIUM, None)]),
        ("Too warm", [("temperature:cool", CONF_MEDIUM, None)]),
        ("Make the colours pop", [("saturation:up", CONF_MEDIUM, None)]),
        ("Desaturate the background a bit", [("saturation:down", CONF_LOW, "background")]),
        ("turn the exposure up a lot", [("brightness:up", CONF_HIGH, None)]),
        ("Give it a bright and airy feel", [("mood:airy", CONF_MEDIUM, None)]),
        ("A cozy vintage look", [("mood:cozy", CONF_MEDIUM, None), ("style:vintage", CONF_MEDIUM, None)]),
        ("Boost the vibrance", [("vibrance:up", CONF_MEDIUM, None)]),
        ("More clarity", [("clarity:up", CONF_MEDIUM, None)]),
        ("Brighten the face", [("brightness:up", CONF_MEDIUM, "skin")]),
        ("Cool down the background but keep the face warm", [("temperature:cool", CONF_MEDIUM, "background")]),
        ("Make it pop", [("contrast:up", CONF_MEDIUM, None)]),
        ("Give the sky a deeper blue", [("saturation:up", CONF_MEDIUM, "sky")]),
        ("Make the skin look healthier and warmer", [("temperature:warm", CONF_MEDIUM, "skin")]),
        ("Give it an orange and teal look", [("style:cinematic", CONF_MEDIUM, None)]),
        ("Reduce the yellow tint", [("temperature:cool", CONF_MEDIUM, None)]),
        ("Give it a warm tint", [("temperature:warm", CONF_MEDIUM, None)]),
        ("Punch up the colors", [("saturation:up", CONF_MEDIUM, None)]),
        ("Cool tones in the shadows, warm tones in the highlights",
         [("temperature:cool", CONF_MEDIUM, "shadows"), ("temperature:warm", CONF_MEDIUM, "highlights")]),
        ("Saturate the dark areas", [("saturation:up", CONF_MEDIUM, "shadows")]),
        ("Make the highlights more vibrant", [("vibrance:up", CONF_MEDIUM, "highlights")]),
    ],
)
def test_examples(text, expected):
    assert _m(text) == expected


def test_negation_drops_attribute():
    assert match_attributes("Don't brighten the sky") == []
    assert match_attributes("do not make it warmer") == []
    assert _m("Brighten it, but don't touch the contrast") == [("brightness:up", CONF_MEDIUM, None)]


def test_no_attributes_in_unrelated_text():
    assert match_attributes("") == []
    assert match_attributes("   ") == []
    assert match_attributes("A photo of a cat on a sofa") == []


def test_flip_words():
    assert _m("it is too bright")[0][0] == "brightness:down"
    assert _m("less dark please")[0][0] == "brightness:up"
    assert _m("the colors are too saturated")[0][0] == "saturation:down"
    assert _m("it looks too flat")[0][0] == "contrast:up"


def test_vector():
    v = attribute_vector("Warm it up a little and boost the contrast strongly")
    assert v.dtype == np.float32 and v.shape == (len(ATTRIBUTES),)
    assert v[ATTRIBUTES.index("temperature:warm")] == pytest.approx(CONF_LOW)
    assert v[ATTRIBUTES.index("contrast:up")] == pytest.approx(CONF_HIGH)
    assert np.count_nonzero(v) == 2
    assert not attribute_vector("hello").any()


def test_matches_valid():
    for text in ["Warm the skin and cool the sky", "Lift the shadows in the background", "moody cinematic grade"]:
        for m in match_attributes(text):
            assert isinstance(m, AttributeMatch)
            assert m.name in ATTRIBUTES
            assert 0 < m.confidence <= 1
            assert m.region is None or m.region in REGIONS

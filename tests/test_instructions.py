"""Instruction writer and checker: content verbs, duplicates, length; writer round trip
through the attribute matcher; instructions from parameters and from measured changes."""

from __future__ import annotations

import numpy as np
import pytest

from iretouch_bench.vocab.attributes import (
    ATTRIBUTES,
    CONF_HIGH,
    CONF_LOW,
    CONF_MEDIUM,
    REGIONS,
    AttributeMatch,
    match_attributes,
)
from iretouch_bench.synth.finishing import FinishingParams, LocalEdit, apply_finishing, sample_params
from iretouch_bench.synth.instructions import (
    MAX_CHARS,
    InstructionError,
    check_instruction,
    instruction_for_params,
    intents_for_degradation,
    write_instruction,
)
from iretouch_bench.synth.describe import describe_change, fit_finishing
from iretouch_bench.synth.photos import load_photo

# attributes the writer can place in a region (tone/colour edits; looks and tone-range
# attributes are global by nature)
REGIONAL = ["brightness:up", "brightness:down", "saturation:up", "saturation:down", "vibrance:up",
            "temperature:warm", "temperature:cool", "tint:magenta", "tint:green"]


def _key(ms):
    return {(m.name, m.region, m.confidence) for m in ms}


@pytest.mark.parametrize("text", [
    "Add a dog next to her", "Remove the person on the left", "Replace the sky with a sunset",
    "Insert a logo", "Erase the watermark", "Delete the tree", "Draw a moustache", "Paste a cat in the corner",
    "Crop it to a square", "Rotate the photo", "Brighten it and put a hat on him", "Add a dog filter to the cat",
])
def test_checker_rejects_content_edits(text):
    problems = check_instruction(text)
    assert any("content-edit" in p for p in problems), problems


@pytest.mark.parametrize("text", [
    "Add some warmth", "Remove the green cast", "Lift the shadows and warm up the skin tones",
    "Give it a soft, dreamy look", "Darken the sky a little", "Add more contrast to the background",
    "Add a warm filter", "Remove the yellowish color cast",
])
def test_checker_accepts_retouching(text):
    assert check_instruction(text) == []


def test_checker_empty_long_duplicates():
    assert check_instruction("") == ["empty instruction"]
    assert check_instruction("   ") == ["empty instruction"]
    assert check_instruction("...")  # no words
    long = "Brighten the photo a little " * 20
    assert len(long) > MAX_CHARS
    assert any("too long" in p for p in check_instruction(long))
    seen = ["Brighten the photo a little."]
    assert any("duplicate" in p for p in check_instruction("brighten the photo a little!", seen))
    assert any("near-duplicate" in p for p in check_instruction("Brighten the photos a little.", seen))
    assert check_instruction("Cool down the sky strongly.", seen) == []
    assert check_instruction("Line one\x07") != []


LEVELS = (CONF_LOW, CONF_MEDIUM, CONF_HIGH)


def test_writer_round_trips_every_attribute():
    rng = np.random.default_rng(0)
    seen: list[str] = []
    n = 0
    for name in ATTRIBUTES:
        levels = (CONF_MEDIUM,) if name == "style:bw" else LEVELS
        regions = [None] + (list(REGIONS) if name in REGIONAL else [])
        if name.startswith("brightness:"):  # brightening "the shadows" is shadows:up
            regions = [r for r in regions if r not in ("shadows", "highlights")]
        for level in levels:
            for region in regions:
                intent = AttributeMatch(name, level, region)
                for _ in range(2):  # several phrasings each
                    text = write_instruction([intent], rng, seen=seen)
                    assert check_instruction(text, seen) == []
                    assert _key(match_attributes(text)) == {(name, region, level)}, text
                    seen.append(text)
                    n += 1
    assert n > 250


def test_writer_round_trips_combinations():
    rng = np.random.default_rng(1)
    for _ in range(300):
        k = int(rng.integers(1, 4))
        names = list(rng.choice(ATTRIBUTES, size=k, replace=False))
        intents = []
        for nm in names:
            region = None
            if nm in REGIONAL and rng.random() < 0.5:
                region = str(rng.choice(["sky", "background", "skin", "edges", "subject"]))
            level = CONF_MEDIUM if nm == "style:bw" else float(rng.choice(LEVELS))
            intents.append(AttributeMatch(str(nm), level, region))
        keys = [(i.name, i.region) for i in intents]
        if len(set(keys)) < len(keys):
            continue
        text = write_instruction(intents, rng)
        assert _key(match_attributes(text)) == _key(intents), text
        assert check_instruction(text) == []


def test_writer_varies_phrasing_and_is_seeded():
    intent = [AttributeMatch("temperature:warm", CONF_MEDIUM, None)]
    texts = {write_instruction(intent, np.random.default_rng(s)) for s in range(40)}
    assert len(texts) >= 8
    a = write_instruction(intent, np.random.default_rng(7))
    b = write_instruction(intent, np.random.default_rng(7))
    assert a == b


def test_writer_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(InstructionError):
        write_instruction([], rng)
    with pytest.raises(InstructionError):
        write_instruction([AttributeMatch("brightness:sideways", 0.8, None)], rng)
    with pytest.raises(InstructionError):
        write_instruction([AttributeMatch("style:vintage", 0.8, "sky")], rng)
    with pytest.raises(InstructionError):
        write_instruction([AttributeMatch("brightness:up", 0.8, "shadows")], rng)
    with pytest.raises(InstructionError):
        write_instruction([AttributeMatch("style:bw", 0.5, None)], rng)


def test_intents_undo_degradation():
    p = FinishingParams(exposure=-1.0, temperature=0.4,
                        local=[LocalEdit({"kind": "sky", "region": "sky"}, FinishingParams(saturation=-0.36))])
    got = [(i.name, i.region, i.confidence) for i in intents_for_degradation(p)]
    assert got == [("brightness:up", None, CONF_HIGH), ("temperature:cool", None, CONF_LOW),
                   ("saturation:up", "sky", CONF_LOW)]
    assert intents_for_degradation(FinishingParams(gamma=0.7))[0].name == "brightness:up"
    assert intents_for_degradation(FinishingParams(vibrance=-0.6))[0].name == "vibrance:up"
    with pytest.raises(InstructionError):
        intents_for_degradation(FinishingParams(tone_curve=(0.1, 0.3, 0.5, 0.7, 0.9)))


def test_instruction_for_sampled_params_round_trips():
    seen: list[str] = []
    for seed in range(150):
        rng = np.random.default_rng(seed)
        params = sample_params(rng, n_ops=(1, 3))
        text, intents = instruction_for_params(params, rng, seen=seen)
        assert check_instruction(text, seen) == []
        assert _key(match_attributes(text)) == _key(intents), text
        seen.append(text)


@pytest.fixture(scope="module")
def photo():
    return load_photo("china", max_side=160)


@pytest.mark.parametrize("kw, expected", [
    (dict(exposure=0.8), "brightness:up"),
    (dict(exposure=-0.8), "brightness:down"),
    (dict(temperature=0.7), "temperature:warm"),
    (dict(temperature=-0.7), "temperature:cool"),
    (dict(saturation=-0.7), "saturation:down"),
    (dict(contrast=0.8), "contrast:up"),
    (dict(tint=0.7), "tint:magenta"),
])
def test_describe_change(photo, kw, expected):
    target = apply_finishing(photo, FinishingParams(**kw))
    text = describe_change(photo, target, np.random.default_rng(0))
    names = [m.name for m in match_attributes(text)]
    assert names and names[0] == expected, text
    assert check_instruction(text) == []


@pytest.mark.parametrize("kw", [dict(exposure=0.6, temperature=-0.4), dict(shadows=0.8), dict(tint=0.5, contrast=-0.5),
                                dict(saturation=-0.5, highlights=-0.7)])
def test_fit_finishing_recovers_params(photo, kw):
    target = apply_finishing(photo, FinishingParams(**kw))
    fitted = fit_finishing(photo, target).to_dict()
    for k, v in kw.items():
        assert fitted[k] == pytest.approx(v, abs=0.15), (k, fitted)
    for k, v in fitted.items():
        if k not in kw:
            assert abs(v) < 0.25, (k, fitted)  # exposure and contrast trade off a little


def test_describe_ignores_lightness_side_effects(photo):
    # brightening raises mean b* and lowers the shadow quartile's share; only "brighter" is said
    target = apply_finishing(photo, FinishingParams(exposure=0.7))
    names = [m.name for m in match_attributes(describe_change(photo, target))]
    assert names == ["brightness:up"]


def test_describe_no_change(photo):
    text = describe_change(photo, photo.copy())
    assert check_instruction(text) == []
    assert match_attributes(text) == []

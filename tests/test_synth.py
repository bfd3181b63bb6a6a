"""Pair synthesis: photo registry, make_pair per category, determinism, verification."""

from __future__ import annotations

import json

import numpy as np
import pytest

from iretouch_bench.vocab.attributes import match_attributes
from iretouch_bench.synth.instructions import InstructionError, check_instruction
from iretouch_bench.synth.pairs import PAIR_CATEGORIES, augment, make_pair, verify_effects
from iretouch_bench.synth.photos import EVAL_PHOTOS, PHOTOS, TRAIN_PHOTOS, find_face, load_photo


def test_registry():
    assert {"astronaut", "grace_hopper"} <= set(EVAL_PHOTOS)
    assert not set(EVAL_PHOTOS) & set(TRAIN_PHOTOS)
    assert set(EVAL_PHOTOS) | set(TRAIN_PHOTOS) <= set(PHOTOS)
    for name in PHOTOS:
        img = load_photo(name)
        assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3
        assert 0 <= img.min() and img.max() <= 1
        small = load_photo(name, max_side=128)
        assert max(small.shape[:2]) <= 128
    with pytest.raises(KeyError):
        load_photo("nope")


def test_registered_faces_match_detector():
    for name in ("astronaut", "grace_hopper"):
        got = find_face(load_photo(name))
        assert got is not None
        assert np.allclose(got[:2], PHOTOS[name].face[:2], atol=0.03)
    assert find_face(np.full((64, 64, 3), 0.5, np.float32)) is None


@pytest.fixture(scope="module")
def portrait():
    return load_photo("astronaut", max_side=160), PHOTOS["astronaut"].face


@pytest.mark.parametrize("category", PAIR_CATEGORIES)
def test_make_pair(category, portrait):
    photo, face = portrait
    pair = make_pair(photo, np.random.default_rng(3), category, face=face)
    assert set(pair) >= {"input", "target", "instruction", "category", "params", "mask", "attributes"}
    assert pair["category"] == category
    for k in ("input", "target"):
        assert pair[k].dtype == np.float32 and pair[k].shape == photo.shape
        assert 0 <= pair[k].min() and pair[k].max() <= 1
    if category == "style":
        assert np.array_equal(pair["input"], photo) and pair["params"]["applied_to"] == "target"
    else:
        assert np.array_equal(pair["target"], photo) and pair["params"]["applied_to"] == "input"
    assert not np.array_equal(pair["input"], pair["target"])
    if category in ("local", "portrait"):
        m = pair["mask"]
        assert m.dtype == np.float32 and m.shape == photo.shape[:2] and 0 <= m.min() and m.max() <= 1
        # the edit stays inside the mask
        outside = m == 0
        assert outside.any()
        assert np.abs(pair["input"][outside] - pair["target"][outside]).max() < 1e-6 or category == "portrait"
    else:
        assert pair["mask"] is None
    json.dumps(pair["params"])
    assert check_instruction(pair["instruction"]) == []
    assert [m.name for m in match_attributes(pair["instruction"])] == pair["attributes"]
    from iretouch_bench.vocab.attributes import AttributeMatch

    intents = [AttributeMatch(**d) for d in pair["intents"]]
    assert verify_effects(pair["input"], pair["target"], intents, pair["mask"]) == []


def test_make_pair_deterministic(portrait):
    photo, face = portrait
    for cat in PAIR_CATEGORIES:
        a = make_pair(photo, np.random.default_rng(11), cat, face=face)
        b = make_pair(photo, np.random.default_rng(11), cat, face=face)
        assert a["instruction"] == b["instruction"] and a["params"] == b["params"]
        assert np.array_equal(a["input"], b["input"]) and np.array_equal(a["target"], b["target"])


def test_portrait_needs_face():
    with pytest.raises(ValueError):
        make_pair(np.full((64, 64, 3), 0.5, np.float32), np.random.default_rng(0), "portrait")
    with pytest.raises(ValueError):
        make_pair(np.full((64, 64, 3), 0.5, np.float32), np.random.default_rng(0), "sepia")


def test_flat_photo_cannot_be_verified():
    # a flat grey card has no shadows/highlights/detail to move: most draws fail verification,
    # and make_pair says so instead of returning an unverified pair
    grey = np.full((32, 32, 3), 0.5, np.float32)
    with pytest.raises(InstructionError):
        make_pair(grey, np.random.default_rng(0), "style", styles=["mood:dramatic"], max_tries=3)


def test_augment_tracks_face():
    photo = load_photo("astronaut", max_side=128)
    face = PHOTOS["astronaut"].face
    out, f2 = augment(photo, np.random.default_rng(0), crop=(100, 100), flip=True, face=face)
    assert out.shape == (100, 100, 3)
    assert f2 is None or (0 <= f2[0] <= 1 and 0 <= f2[1] <= 1)
    out, f3 = augment(photo, np.random.default_rng(0), crop=None, flip=False, face=face)
    assert np.array_equal(out, photo) and f3 == face

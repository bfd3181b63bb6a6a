"""Photo-finishing pipeline: each op moves the image the documented way; identity is exact;
masks confine local edits; parameters serialise; sampling is seeded."""

from __future__ import annotations

import json

import numpy as np
import pytest

from iretouch_bench.vocab.attributes import ATTRIBUTE_EFFECTS, measure_image
from iretouch_bench.synth.finishing import (
    OP_GROUPS,
    PARAM_RANGES,
    SAMPLE_RANGES,
    STYLE_PRESETS,
    FinishingParams,
    LocalEdit,
    apply_finishing,
    sample_params,
)
from iretouch_bench.vocab.regions import (
    luminance_range,
    radial_vignette,
    render_mask,
    sky_gradient,
    subject_ellipse,
)
from iretouch_bench.synth.pairs import MIN_EFFECT
from iretouch_bench.synth.photos import load_photo


@pytest.fixture(scope="module")
def photo():
    return load_photo("astronaut", max_side=192)


@pytest.fixture(scope="module")
def noise():
    return np.random.default_rng(0).random((37, 53, 3), dtype=np.float32)


@pytest.mark.parametrize(
    "params",
    [
        FinishingParams(),
        FinishingParams(exposure=0.0, gamma=1.0, temperature=0.0, tint=0.0, contrast=0.0, saturation=0.0),
        FinishingParams(tone_curve=(0.0, 0.25, 0.5, 0.75, 1.0)),
        FinishingParams(hsl={"blue": (0.0, 0.0, 0.0)}, split_toning=(30.0, 0.0, 200.0, 0.0)),
        FinishingParams(local=[LocalEdit({"kind": "sky", "region": "sky"}, FinishingParams())]),
    ],
)
def test_identity_is_exact(params, photo, noise):
    assert params.is_identity()
    for img in (photo, noise):
        out = apply_finishing(img, params)
        assert out.dtype == np.float32 and out.shape == img.shape
        assert out is not img
        assert np.array_equal(out, img)  # bitwise
        assert out.tobytes() == img.tobytes()


# (params, measure, expected sign)
DIRECTIONS = [
    (dict(exposure=0.7), "lightness", +1),
    (dict(exposure=-0.7), "lightness", -1),
    (dict(gamma=1.5), "lightness", +1),
    (dict(gamma=0.7), "lightness", -1),
    (dict(tone_curve=(0.0, 0.35, 0.62, 0.85, 1.0)), "lightness", +1),
    (dict(temperature=0.6), "b", +1),
    (dict(temperature=-0.6), "b", -1),
    (dict(tint=0.6), "a", +1),
    (dict(tint=-0.6), "a", -1),
    (dict(saturation=0.5), "chroma", +1),
    (dict(saturation=-0.5), "chroma", -1),
    (dict(vibrance=0.6), "chroma", +1),
    (dict(vibrance=-0.6), "chroma", -1),
    (dict(contrast=0.6), "contrast", +1),
    (dict(contrast=-0.6), "contrast", -1),
    (dict(shadows=0.8), "shadows", +1),
    (dict(shadows=-0.8), "shadows", -1),
    (dict(highlights=0.8), "highlights", +1),
    (dict(highlights=-0.8), "highlights", -1),
    (dict(clarity=0.8), "local_contrast", +1),
    (dict(clarity=-0.8), "local_contrast", -1),
    (dict(split_toning=(40.0, 1.0, 50.0, 1.0)), "b", +1),
    (dict(split_toning=(220.0, 1.0, 220.0, 1.0)), "b", -1),
]


@pytest.mark.parametrize("kw, measure, sign", DIRECTIONS, ids=[f"{list(k)[0]}{s:+d}" for k, _, s in DIRECTIONS])
def test_op_direction(kw, measure, sign, photo):
    out = apply_finishing(photo, FinishingParams(**kw))
    assert out.dtype == np.float32 and out.min() >= 0 and out.max() <= 1
    before, after = measure_image(photo)[measure], measure_image(out)[measure]
    assert (after - before) * sign > 0.5, f"{kw}: {measure} {before:.2f} -> {after:.2f}"


def test_exposure_is_linear_light_gain():
    # mid grey 0.5 sRGB = 0.214 linear; +1 stop = 0.428 linear = 0.686 sRGB
    img = np.full((4, 4, 3), 0.5, np.float32)
    out = apply_finishing(img, FinishingParams(exposure=1.0))
    assert out[0, 0, 0] == pytest.approx(0.6858, abs=2e-3)


def test_white_balance_keeps_grey_luminance():
    img = np.full((4, 4, 3), 0.5, np.float32)
    out = apply_finishing(img, FinishingParams(temperature=0.8))
    assert out[0, 0, 0] > out[0, 0, 1] > out[0, 0, 2]  # warm: R > G > B
    lin = np.where(out <= 0.04045, out / 12.92, ((out + 0.055) / 1.055) ** 2.4)
    y = lin[0, 0] @ np.array([0.2126, 0.7152, 0.0722])
    assert y == pytest.approx(0.2140, abs=2e-3)


def test_vibrance_prefers_muted_colours():
    img = np.zeros((2, 2, 3), np.float32)
    img[0] = (0.5, 0.45, 0.45)  # muted
    img[1] = (0.9, 0.1, 0.1)  # saturated
    out = apply_finishing(img, FinishingParams(vibrance=0.8))
    gain = lambda a, b: (b.max() - b.min()) / (a.max() - a.min())  # noqa: E731
    assert gain(img[0, 0], out[0, 0]) > gain(img[1, 0], out[1, 0])


def test_hsl_band_only_moves_its_hue():
    img = np.zeros((2, 2, 3), np.float32)
    img[0] = (0.15, 0.25, 0.8)  # blue
    img[1] = (0.8, 0.2, 0.15)  # red
    out = apply_finishing(img, FinishingParams(hsl={"blue": (0.0, 0.6, 0.0)}))
    mb0, mb1 = measure_image(img[:1]), measure_image(out[:1])
    mr0, mr1 = measure_image(img[1:]), measure_image(out[1:])
    assert mb1["chroma"] > mb0["chroma"] + 3
    assert abs(mr1["chroma"] - mr0["chroma"]) < 0.5


def test_local_edit_confined_to_mask(photo):
    spec = {"kind": "sky", "start": 0.1, "end": 0.4, "region": "sky"}
    params = FinishingParams(local=[LocalEdit(spec, FinishingParams(exposure=-1.0, temperature=0.5))])
    out = apply_finishing(photo, params)
    mask = render_mask(spec, photo)
    outside = mask == 0
    inside = mask == 1
    assert outside.any() and inside.any()
    assert np.array_equal(out[outside], photo[outside])  # untouched, bit for bit
    assert out[inside].mean() < photo[inside].mean() - 0.05
    # soft edge: the change fades with the mask
    diff = np.abs(out - photo).mean(axis=(1, 2))
    assert np.all(np.diff(diff[int(0.4 * len(diff)):]) <= 1e-6)


def test_prerendered_masks_are_used(photo):
    m = np.zeros(photo.shape[:2], np.float32)
    m[:, : photo.shape[1] // 2] = 1
    params = FinishingParams(local=[LocalEdit({"kind": "sky"}, FinishingParams(exposure=1.0))])
    out = apply_finishing(photo, params, masks=[m])
    assert np.array_equal(out[:, photo.shape[1] // 2:], photo[:, photo.shape[1] // 2:])
    assert not np.array_equal(out[:, :5], photo[:, :5])


def test_json_round_trip():
    p = FinishingParams(exposure=-0.5, gamma=1.2, tone_curve=(0.05, 0.3, 0.5, 0.7, 0.95), hsl={"green": (5.0, -0.2, 0.1)},
                        split_toning=(30.0, 0.4, 200.0, 0.3),
                        local=[LocalEdit({"kind": "ellipse", "cx": 0.5, "region": "subject"}, FinishingParams(temperature=0.3))])
    d = json.loads(json.dumps(p.to_dict()))
    q = FinishingParams.from_dict(d)
    assert q == p
    assert FinishingParams().to_dict() == {}
    with pytest.raises(ValueError):
        FinishingParams.from_dict({"brightness": 1})


def test_range_validation():
    for name, (lo, hi, _, _) in PARAM_RANGES.items():
        with pytest.raises(ValueError):
            FinishingParams(**{name: hi + 0.5})
        with pytest.raises(ValueError):
            FinishingParams(**{name: lo - 0.5})
    with pytest.raises(ValueError):
        FinishingParams(tone_curve=(0.5, 0.4, 0.6, 0.8, 1.0))
    with pytest.raises(ValueError):
        FinishingParams(hsl={"teal": (0, 0, 0)})


def test_scaled():
    p = STYLE_PRESETS["style:vintage"]
    assert p.scaled(0.0).is_identity()
    assert p.scaled(1.0) == p


def test_sample_params_seeded_and_in_range():
    group_of = {op: g for g, ops in OP_GROUPS.items() for op in ops}
    for seed in range(50):
        a = sample_params(np.random.default_rng(seed), n_ops=(1, 3))
        b = sample_params(np.random.default_rng(seed), n_ops=(1, 3))
        assert a == b
        d = a.to_dict()
        assert 1 <= len(d) <= 3
        assert len({group_of[k] for k in d}) == len(d)  # at most one op per group
        for k, v in d.items():
            lo, hi = SAMPLE_RANGES[k]
            mag = abs(np.log(v)) if k == "gamma" else abs(v)
            assert lo - 1e-9 <= mag <= hi + 1e-9
    assert sample_params(np.random.default_rng(1), ops=["exposure"], n_ops=1, strength=1.0).exposure in (-1.1, 1.1)


@pytest.mark.parametrize("name", ["astronaut", "grace_hopper", "china", "flower"])
def test_style_presets_have_documented_effects(name):
    img = load_photo(name, max_side=160)
    m0 = measure_image(img)
    for style, params in STYLE_PRESETS.items():
        m1 = measure_image(apply_finishing(img, params))
        for measure, sign in ATTRIBUTE_EFFECTS[style].items():
            assert (m1[measure] - m0[measure]) * sign >= MIN_EFFECT[measure], (style, measure)


def test_masks_shapes_and_smoothness(photo):
    h, w = 120, 180
    for m in (radial_vignette(h, w), sky_gradient(h, w), subject_ellipse(h, w), subject_ellipse(h, w, invert=True),
              luminance_range(photo, blur=0.03)):
        assert m.dtype == np.float32 and m.min() >= 0 and m.max() <= 1
        # no hard edges: neighbouring pixels differ by a small step
        assert np.abs(np.diff(m, axis=0)).max() < 0.2 and np.abs(np.diff(m, axis=1)).max() < 0.2
    sky = sky_gradient(h, w, 0.1, 0.5)
    assert sky[0].min() == 1 and sky[-1].max() == 0
    ell = subject_ellipse(h, w, 0.5, 0.5, 0.2, 0.2)
    assert ell[h // 2, w // 2] == 1 and ell[0, 0] == 0
    assert np.allclose(subject_ellipse(h, w, invert=True), 1 - subject_ellipse(h, w))
    vig = radial_vignette(h, w)
    assert vig[h // 2, w // 2] == 0 and vig[0, 0] > 0.9
    dark = luminance_range(photo, 0.0, 0.3, blur=0)
    y = photo @ np.array([0.2126, 0.7152, 0.0722], np.float32)
    assert dark[y < 0.2].mean() > 0.95 and dark[y > 0.5].max() == 0


def test_apply_is_vectorised_at_size():
    # a 1-megapixel image with every op on runs in well under the time a per-pixel loop takes
    import time

    img = np.random.default_rng(0).random((750, 1334, 3), dtype=np.float32)
    p = FinishingParams(exposure=0.3, gamma=1.1, temperature=0.2, tint=0.1, contrast=0.3, tone_curve=(0, .26, .5, .76, 1),
                        saturation=0.2, vibrance=0.1, shadows=0.2, highlights=-0.2, clarity=0.3,
                        split_toning=(30, 0.3, 200, 0.3), hsl={"blue": (5, 0.2, 0)})
    t = time.perf_counter()
    out = apply_finishing(img, p)
    assert time.perf_counter() - t < 10.0
    assert out.shape == img.shape and np.isfinite(out).all()

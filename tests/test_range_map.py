"""Range-aware editing: the map onto the training photographs' range, and its place in the pipeline."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from code_cli.errors import ConfigError
from code_cli.method import range_map as R
from code_cli.pipeline import CODEPipeline
from code_cli.presets import build_config


def photo_like(n: int = 1, size: int = 32, seed: int = 0) -> torch.Tensor:
    """Smooth colour images spanning most of [-1, 1], like an ordinary photograph."""
    g = torch.Generator().manual_seed(seed)
    x = torch.nn.functional.interpolate(torch.rand(n, 3, 4, 4, generator=g), size=size, mode="bilinear",
                                        align_corners=True)
    lo, hi = x.flatten(1).min(1)[0].view(-1, 1, 1, 1), x.flatten(1).max(1)[0].view(-1, 1, 1, 1)
    return (x - lo) / (hi - lo) * 1.9 - 0.95


def low_contrast(n: int = 1, size: int = 32, seed: int = 0, k: float = 0.3, centre: float = 0.25) -> torch.Tensor:
    return photo_like(n, size, seed) * k + centre


def quantiles(x: torch.Tensor) -> torch.Tensor:
    return torch.quantile(x.flatten(1), torch.tensor(R.QUANTILES), dim=1)


def test_an_ordinary_photograph_is_passed_through_exactly():
    x = photo_like(2)
    a, b = R.fit(x)
    assert torch.equal(a, torch.ones(2)) and torch.equal(b, torch.zeros(2))
    assert torch.equal(R.invert(R.apply(x, a, b), a, b), x)


def test_a_low_contrast_image_lands_on_the_training_range_and_maps_back():
    x = low_contrast(3, seed=1)
    a, b = R.fit(x)
    y = R.apply(x, a, b)
    assert torch.all(a > R.MIN_GAIN)
    q = quantiles(y)
    torch.testing.assert_close(q[0], torch.full((3,), R.TRAIN_LOW), atol=1e-5, rtol=0)
    torch.testing.assert_close(q[1], torch.full((3,), R.TRAIN_HIGH), atol=1e-5, rtol=0)
    torch.testing.assert_close(R.invert(y, a, b), x, atol=1e-6, rtol=0)


def test_one_gain_for_all_channels_keeps_the_colour_balance():
    x = low_contrast(1, seed=2)
    a, b = R.fit(x)
    y = R.apply(x, a, b)
    # differences between channels scale by the one gain: hue directions are kept
    torch.testing.assert_close(y[:, 0] - y[:, 1], a * (x[:, 0] - x[:, 1]), atol=1e-6, rtol=0)


def test_the_gain_is_capped_for_an_almost_flat_image():
    x = low_contrast(1, seed=3, k=0.001)
    a, _ = R.fit(x)
    assert float(a) == R.MAX_GAIN


def test_the_gain_starts_at_its_threshold():
    # a range just wide enough is left alone, one a little narrower is stretched
    span = R.TRAIN_HIGH - R.TRAIN_LOW
    base = photo_like(1, seed=4)
    q = quantiles(base)
    unit = (base - q[0]) / (q[1] - q[0])  # 1st and 99th percentiles at 0 and 1
    wide = unit * span / (R.MIN_GAIN * 0.99) - 0.4
    narrow = unit * span / (R.MIN_GAIN * 1.01) - 0.4
    assert float(R.fit(wide)[0]) == 1.0
    assert float(R.fit(narrow)[0]) == pytest.approx(R.MIN_GAIN * 1.01, rel=1e-4)


@pytest.fixture(scope="module")
def tiny_pipe(tiny_model) -> CODEPipeline:
    return CODEPipeline.from_pretrained(str(tiny_model))


def fixed(**kw):
    cfg, _ = build_config("default", {"device": "cpu", "steps": 20, "depth": 2, "langevin_steps": 1, **kw})
    return cfg


def test_a_fixed_edit_of_a_low_contrast_image_runs_on_the_training_range(tiny_pipe):
    x = low_contrast(2, seed=5)
    a, b = R.fit(x)
    on = tiny_pipe(x, seeds=[3, 4], config=fixed())  # range_map "auto": on for a fixed depth
    # the same edit, mapped by hand: the pipeline maps in, edits with the same seeds, maps back
    by_hand = tiny_pipe(R.apply(x, a, b), seeds=[3, 4], config=fixed(range_map="off"))
    for i, (r, h) in enumerate(zip(on, by_hand)):
        torch.testing.assert_close(r.image, R.invert(h.image, a[i:i + 1], b[i:i + 1]).clamp(-1, 1), atol=1e-5, rtol=0)
        assert r.info["range_gain"] == pytest.approx(float(a[i]), abs=1e-4) and float(a[i]) > R.MIN_GAIN
    off = tiny_pipe(x, seeds=[3, 4], config=fixed(range_map="off"))
    assert not torch.equal(off[0].image, on[0].image) and "range_gain" not in off[0].info


def test_an_ordinary_photograph_edits_the_same_with_the_map_on_or_off(tiny_pipe):
    x = photo_like(1, seed=6)
    on = tiny_pipe(x, seeds=[5], config=fixed())[0]
    off = tiny_pipe(x, seeds=[5], config=fixed(range_map="off"))[0]
    assert torch.equal(on.image, off.image) and on.info["range_gain"] == 1.0


def test_auto_mode_maps_only_when_asked(tiny_pipe):
    noise = 0.08 * torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))  # 0.04 on [0, 1]
    x = torch.cat([low_contrast(1, seed=7), low_contrast(1, seed=8) + noise])
    auto = build_config("auto", {"device": "cpu", "steps": 20})[0]
    plain = tiny_pipe(x, seeds=[1, 2], config=auto)
    off = tiny_pipe(x, seeds=[1, 2], config=replace(auto, range_map="off"))
    assert [torch.equal(p.image, o.image) for p, o in zip(plain, off)] == [True, True]
    on_cfg = replace(auto, range_map="on")
    on = tiny_pipe(x, seeds=[1, 2], config=on_cfg)
    # the noiseless low-contrast image is still left alone, bit for bit; the noisy one is edited on the map
    assert torch.equal(on[0].image, x[0]) and on[0].info["auto"]["edit"] is False
    assert on[1].info["auto"]["edit"] is True and on[1].info["range_gain"] > 1
    assert [c.as_dict() for c in tiny_pipe.choose(x, on_cfg)] == [r.info["auto"] for r in on]


def test_the_preset_key_is_checked():
    with pytest.raises(ConfigError, match="range.map"):
        build_config("default", {"range_map": "sideways"})


@pytest.mark.parametrize(("line", "value"), [("range_map: on", "on"), ("range_map: off", "off"),
                                             ("range_map: 'on'", "on"), ("range_map: auto", "auto")])
def test_unquoted_on_and_off_in_a_preset_file_mean_what_they_say(tmp_path, line, value):
    """YAML 1.1 (yaml.safe_load) reads an unquoted on / off as a boolean; the docs write them unquoted."""
    p = tmp_path / "mine.yaml"
    p.write_text(f"depth: 6\n{line}\n")
    assert build_config(str(p))[0].range_map == value

"""The model-card evaluation: several models in one table on the same noise draws."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from code_cli.bench import prior_eval
from code_cli.bench.baselines import t_for_pixel_noise


def test_timestep_matches_pixel_noise(abar_T):
    """sqrt(abar) (x + s n) has the noise-to-signal of x_t when abar = 1 / (1 + s^2), s = 2 sigma."""
    for sigma in (0.05, 0.1, 0.2):
        t = int(t_for_pixel_noise(abar_T, torch.tensor([sigma]))[0])
        target = 1 / (1 + (2 * sigma) ** 2)
        assert abs(float(abar_T[t]) - target) <= float((abar_T[:-1] - abar_T[1:]).abs().max())


def test_compare_labels_are_checked():
    assert prior_eval.parse_models("runs/new", ["old=code-prior-s"]) == {"new": "runs/new", "old": "code-prior-s"}
    with pytest.raises(SystemExit, match="LABEL=MODEL"):
        prior_eval.parse_models("runs/new", ["code-prior-s"])
    with pytest.raises(SystemExit, match="already taken"):
        prior_eval.parse_models("runs/new", ["new=code-prior-s"])


def test_one_table_for_two_models_on_the_same_noise(tiny_model, tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)).save(photos / f"{name}.png")
    out = tmp_path / "card"
    prior_eval.main(["--model", str(tiny_model), "--compare", f"twin={tiny_model}", "--photos", str(photos),
                     "--out", str(out), "--cap", "32", "--round-trip-cap", "32", "--round-trip-photos", "1",
                     "--samples", "4"])
    report = json.loads((out / "eval.json").read_text())
    rows = report["denoising"]
    assert [(r["photo"], r["sigma"]) for r in rows] == [(p, s) for p in ("a", "b") for s in prior_eval.NOISE_LEVELS]
    first = tiny_model.name
    for r in rows:
        # The same model on the same noise draw: the columns can differ only by the model.
        assert r["models"][first] == r["models"]["twin"] == r["model"]
        assert r["noisy"] < max(r[f] for f in prior_eval.FAMILIES)  # the classical filters do denoise
    assert {t["model"] for t in report["round_trip"]} == {first, "twin"}
    md = (out / "eval.md").read_text()
    assert md.count("**mean of 2**") == len(prior_eval.NOISE_LEVELS)
    assert (out / "denoising.png").is_file() and (out / "samples.png").is_file()

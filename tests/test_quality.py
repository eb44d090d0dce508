"""The shipped prior still restores: cheap regression checks on held-out photographs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from code_cli.bench.metrics import psnr
from code_cli.bench.prior_eval import one_step_denoise
from code_cli.cli import app
from code_cli.pipeline import CODEPipeline

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"

pytestmark = pytest.mark.slow


def crop(path: Path, size: int = 96) -> np.ndarray:
    im = np.asarray(Image.open(path).convert("RGB"), np.float64) / 255
    h, w = im.shape[:2]
    return im[(h - size) // 2:(h + size) // 2, (w - size) // 2:(w + size) // 2]


@pytest.fixture(scope="module")
def prior() -> CODEPipeline:
    return CODEPipeline.from_pretrained("code-prior-s")


def test_shipped_weights_denoise_in_one_step(prior):
    """At pixel noise 0.1 the one-step clean estimate must gain well over the noisy input."""
    clean = crop(EXAMPLES / "clean" / "chelsea.png")
    noisy = clean + 0.1 * np.random.default_rng(0).standard_normal(clean.shape)
    before = psnr(np.clip(noisy, 0, 1), clean)
    after = psnr(one_step_denoise(prior, noisy, 0.1), clean)
    assert after > before + 6.0, (before, after)


def test_code_restores_a_noisy_example_end_to_end(tmp_path):
    """The CLI with the embedded prior at a small budget raises PSNR on a noisy held-out crop."""
    clean = crop(EXAMPLES / "clean" / "ladybird.png")
    noisy = crop(EXAMPLES / "corrupted" / "ladybird-gaussian_noise-3.png")
    Image.fromarray((noisy * 255).round().astype(np.uint8)).save(tmp_path / "noisy.png")
    args = ["--preset", "default", "--steps", "50", "--depth", "8", "--langevin-steps", "4"]
    r = CliRunner().invoke(app, [str(tmp_path / "noisy.png"), str(tmp_path / "out"), *args])
    assert r.exit_code == 0, r.output
    restored = np.asarray(Image.open(tmp_path / "out" / "noisy.png"), np.float64) / 255
    assert psnr(restored, clean) > psnr(noisy, clean) + 3.0


def test_embedded_prior_is_fully_convolutional(prior):
    assert prior.size_mode("auto") == "native"
    x = torch.zeros(1, 3, 37, 53)
    padded, back = prior.to_model_size(x, "native")
    assert padded.shape[-2] % 8 == 0 and padded.shape[-1] % 8 == 0
    assert back(padded).shape == x.shape


def test_auto_denoises_the_noisy_example_and_leaves_the_jpeg_one(tmp_path):
    """The default preset (auto) on held-out crops: a large gain on noise, the JPEG crop returned as it was."""
    clean = crop(EXAMPLES / "clean" / "ladybird.png")
    (tmp_path / "in").mkdir()
    for name in ("noise", "jpeg"):
        src = {"noise": "ladybird-gaussian_noise-3", "jpeg": "ladybird-jpeg_compression-5"}[name]
        arr = (crop(EXAMPLES / "corrupted" / f"{src}.png") * 255).round().astype(np.uint8)
        Image.fromarray(arr).save(tmp_path / "in" / f"{name}.png")
    r = CliRunner().invoke(app, [str(tmp_path / "in"), str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    noisy = np.asarray(Image.open(tmp_path / "in" / "noise.png"), np.float64) / 255
    restored = np.asarray(Image.open(tmp_path / "out" / "noise.png"), np.float64) / 255
    # auto's measured gain on the noise corruptions is 8 to 10 dB; the default preset's about 5
    assert psnr(restored, clean) > psnr(noisy, clean) + 7.0
    jpeg_in = np.asarray(Image.open(tmp_path / "in" / "jpeg.png"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "jpeg.png")), jpeg_in)

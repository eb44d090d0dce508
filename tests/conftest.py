"""Shared fixtures: no network, no writes outside tmp_path, an exact Gaussian prior."""

from __future__ import annotations

import math

import pytest
import torch
from diffusers import DDPMScheduler


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every cache and home directory points into tmp_path; the hub is offline."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def abar_T() -> torch.Tensor:
    """alphas_cumprod of the google/ddpm-* schedule (linear 1e-4..0.02, T = 1000)."""
    return DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02).alphas_cumprod


class GaussianEps:
    """The exact noise prediction for data x0 ~ N(mu, s^2) per pixel.

    x_t ~ N(sqrt(a) mu, a s^2 + 1 - a), so E[eps | x_t] = sigma (x_t - sqrt(a) mu) / (a s^2 + 1 - a).
    """

    def __init__(self, abar_T: torch.Tensor, mu: float = 0.2, s: float = 0.3):
        self.abar_T, self.mu, self.s = abar_T.double(), mu, s
        self.calls = 0
        self.inputs: list[tuple[torch.Tensor, torch.Tensor]] = []

    def var(self, a):
        return a * self.s**2 + 1 - a

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        self.inputs.append((x.clone(), t.clone()))
        a = self.abar_T[t].view(-1, 1, 1, 1).to(x.dtype)
        return (1 - a).sqrt() * (x - a.sqrt() * self.mu) / self.var(a)

    def log_density(self, x: torch.Tensor, a: float) -> torch.Tensor:
        """Exact log p_t(x) per image, summed over pixels."""
        v = self.var(a)
        lp = -0.5 * (x - math.sqrt(a) * self.mu) ** 2 / v - 0.5 * math.log(2 * math.pi * v)
        return lp.flatten(1).sum(1)


@pytest.fixture
def gaussian(abar_T) -> GaussianEps:
    return GaussianEps(abar_T)


def gens(*seeds: int) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(s) for s in seeds]


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A small random UNet saved as a DDPMPipeline folder: exercises every loading and
    restoring path in milliseconds. It restores nothing well; quality tests use the embedded prior."""
    from diffusers import DDPMPipeline, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(
        sample_size=16, block_out_channels=(32, 32), layers_per_block=1,
        down_block_types=("DownBlock2D", "DownBlock2D"), up_block_types=("UpBlock2D", "UpBlock2D"),
    )
    folder = tmp_path_factory.mktemp("tiny-model")
    sched = DDPMScheduler(num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02)
    DDPMPipeline(unet=unet, scheduler=sched).save_pretrained(folder, safe_serialization=True)
    return folder


def write_image(path, size=(20, 14), mode="RGB", seed=0, **save):
    """A small real image file with smooth content and some texture."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx / max(w - 1, 1), yy / max(h - 1, 1), 0.5 + 0.0 * xx], -1)
    arr = np.clip(base + 0.1 * rng.standard_normal((h, w, 3)), 0, 1)
    im = Image.fromarray((arr * 255).astype("uint8"), "RGB")
    if mode == "RGBA":
        im.putalpha(Image.fromarray((rng.random((h, w)) * 255).astype("uint8"), "L"))
    elif mode != "RGB":
        im = im.convert(mode)
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, **save)
    return path

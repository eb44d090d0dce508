"""Blind reference methods for the benchmark: they see only the corrupted image, like CODE.

All three take the noise level from Immerkaer's estimate on the corrupted image, so none is told
the corruption; on a corruption that is not noise the estimate is small and they change little."""

from __future__ import annotations

import time

import numpy as np
import torch

from code_cli.bench.metrics import immerkaer_sigma


def nl_means(image: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """scikit-image NL-means, h = 0.8 sigma (its documentation's advice for fast_mode). HWC in [0, 1]."""
    from skimage.restoration import denoise_nl_means

    s = immerkaer_sigma(image) if sigma is None else sigma
    out = denoise_nl_means(image, h=0.8 * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6, channel_axis=-1)
    return np.clip(out, 0, 1)


def bm3d(image: np.ndarray, sigma: float | None = None) -> np.ndarray:
    """BM3D (Dabov et al.; the `bm3d` package) at the estimated noise std. HWC in [0, 1]."""
    import bm3d as _bm3d

    s = immerkaer_sigma(image) if sigma is None else sigma
    if s <= 0:
        return np.asarray(image, np.float64)
    return np.clip(np.asarray(_bm3d.bm3d(image, sigma_psd=s), np.float64), 0, 1)


def timed(name: str, image: np.ndarray, sigma: float) -> tuple[np.ndarray, float]:
    """Run the classical baseline `name` (nl_means, bm3d); return its output and its seconds.
    Module-level so a process pool can run it on many images at once."""
    start = time.perf_counter()
    out = {"nl_means": nl_means, "bm3d": bm3d}[name](image, sigma)
    return out, time.perf_counter() - start


def t_for_pixel_noise(abar: torch.Tensor, sigma01: torch.Tensor) -> torch.Tensor:
    """Timesteps whose noise-to-signal ratio matches pixel noise std sigma on [0, 1] (2 sigma on
    [-1, 1]): sqrt(abar) (x + s n) = sqrt(abar) x + sqrt(1 - abar) n  <=>  abar = 1 / (1 + s^2)."""
    s = 2 * sigma01.double()
    return torch.argmin((abar.double()[None] - 1 / (1 + s[:, None] ** 2)).abs(), dim=1)


@torch.no_grad()
def one_step(pipe, images: torch.Tensor, sigmas01: list[float], device: str, dtype: str) -> torch.Tensor:
    """The prior's clean estimate x0(sqrt(abar_t) y, t) in one network call per image, t from each
    image's estimated noise: the posterior mean E[x0 | x_t] under the prior, the PSNR-optimal
    answer if the corruption were that Gaussian noise. images: (B, 3, H, W) in [-1, 1]."""
    from code_cli.pipeline import DTYPES, resolve_device

    dev, dt = resolve_device(device), DTYPES[dtype]
    pipe.unet.to(device=dev, dtype=dt)
    abar_all = pipe.scheduler.alphas_cumprod
    t = t_for_pixel_noise(abar_all, torch.tensor(sigmas01))
    a = abar_all[t].float().view(-1, 1, 1, 1).to(dev)
    x_t, back = pipe.to_model_size(a.sqrt() * images.to(dev, torch.float32), pipe.size_mode("auto"))
    eps, _ = pipe.eps_model(dt)
    x0 = (x_t - (1 - a).sqrt() * eps(x_t, t.to(dev))) / a.sqrt()
    return back(x0).clamp(-1, 1).float().cpu()

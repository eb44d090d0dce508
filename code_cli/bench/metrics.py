"""Image quality metrics on float arrays in [0, 1] (HWC), and the blind noise estimate the baselines use."""

from __future__ import annotations

import math

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Structural similarity of two HWC images in [0, 1] (scikit-image, Gaussian window as in Wang et al.)."""
    from skimage.metrics import structural_similarity

    return float(structural_similarity(a, b, channel_axis=-1, data_range=1.0, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))


def to_unit(x) -> np.ndarray:
    """(3, H, W) tensor in [-1, 1] -> HWC float64 array in [0, 1]."""
    return ((x.detach().double().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).cpu().numpy()


def to_uint8(x: np.ndarray) -> np.ndarray:
    return (np.clip(x, 0, 1) * 255).round().astype(np.uint8)


def immerkaer_sigma(image: np.ndarray) -> float:
    """Blind noise std of an HWC image in [0, 1] (Immerkaer 1996), averaged over channels.

    The same estimate auto mode chooses by (code_cli.method.auto.noise_std), on a numpy image."""
    import torch

    from code_cli.method.auto import noise_std

    img = np.asarray(image, np.float64)
    img = img[..., None] if img.ndim == 2 else img
    return float(noise_std(torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None])[0])


class Brisque:
    """BRISQUE (Mittal et al. 2012; lower is better) from the `brisque` package, offline.

    brisque 0.2.0 under NumPy 2 fails in scale_features: some features come back as 1-element
    arrays, which float() refuses. Flattening every feature to a scalar first fixes it."""

    def __init__(self):
        from brisque import BRISQUE

        class _Fixed(BRISQUE):
            def scale_features(self, features):
                flat = np.array([np.asarray(f, np.float64).reshape(-1)[0] for f in features])
                return super().scale_features(flat)

        self._impl = _Fixed(url=False)

    def __call__(self, image: np.ndarray) -> float:
        """image: HWC RGB, uint8 or float in [0, 1]."""
        img = np.asarray(image)
        if img.dtype != np.uint8:
            img = to_uint8(img)
        return float(self._impl.score(img))

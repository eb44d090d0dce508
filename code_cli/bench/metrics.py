"""Image quality metrics on float arrays or tensors in [0, 1]."""

from __future__ import annotations

import math

import numpy as np


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """Peak signal-to-noise ratio in dB for images in [0, 1]."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def to_unit(x) -> np.ndarray:
    """(3, H, W) tensor in [-1, 1] -> HWC float64 array in [0, 1]."""
    return ((x.detach().double().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).cpu().numpy()

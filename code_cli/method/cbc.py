"""Confidence-based clipping (CODE, sec. 3.3).

For any clean image in [-1, 1], x_t = sqrt(abar) x0 + sigma n lies within
sqrt(abar) + eta sigma of zero in each pixel with the probability of eta
standard deviations. Clamping the latent there lets the model disregard pixels
a corruption pushed far out of range.
"""

from __future__ import annotations

import math

import torch


def cbc_bound(abar: float, eta: float) -> float:
    return math.sqrt(abar) + eta * math.sqrt(1 - abar)


def cbc_clip(x: torch.Tensor, abar: float, eta: float) -> torch.Tensor:
    b = cbc_bound(abar, eta)
    return x.clamp(-b, b)

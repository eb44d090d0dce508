"""The deterministic DDIM move (Song et al. 2021, eq. 12 with eta = 0) and its
stochastic eta = 1 sibling, between two noise levels given a noise prediction."""

from __future__ import annotations

import math

import torch

from code_cli.method.threshold import Threshold


def clean_estimate(x: torch.Tensor, eps: torch.Tensor, abar: float) -> torch.Tensor:
    """x0(x_t, t) = (x_t - sigma_t eps) / sqrt(abar_t)."""
    return (x - math.sqrt(1 - abar) * eps) / math.sqrt(abar)


def thresholded(
    x: torch.Tensor, eps: torch.Tensor, abar: float, threshold: Threshold
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, eps) with x0 thresholded and eps recomputed to match it.

    At abar = 1 (sigma = 0) eps cannot be recovered from x0, and the move does
    not need it to be consistent, so it is kept as predicted.
    """
    x0 = threshold(clean_estimate(x, eps, abar))
    if abar < 1:
        eps = (x - math.sqrt(abar) * x0) / math.sqrt(1 - abar)
    return x0, eps


def ddim_move(
    x: torch.Tensor, eps: torch.Tensor, abar_from: float, abar_to: float, threshold: Threshold
) -> torch.Tensor:
    """One probability-flow ODE step from level abar_from to abar_to (either direction)."""
    # 1. clean estimate at the current level, thresholded; eps made consistent
    x0, eps = thresholded(x, eps, abar_from, threshold)
    # 2. re-noise it deterministically to the target level with the same eps
    return math.sqrt(abar_to) * x0 + math.sqrt(1 - abar_to) * eps


def ancestral_move(
    x: torch.Tensor, eps: torch.Tensor, abar_from: float, abar_to: float, threshold: Threshold, z: torch.Tensor
) -> torch.Tensor:
    """One DDIM step with eta = 1 (DDPM posterior variance) towards the cleaner level abar_to."""
    x0, eps = thresholded(x, eps, abar_from, threshold)
    # sigma_eta^2 = (1 - abar_to)/(1 - abar_from) * (1 - abar_from/abar_to)  (DDIM eq. 16, eta = 1)
    var = (1 - abar_to) / (1 - abar_from) * (1 - abar_from / abar_to)
    direction = math.sqrt(max(1 - abar_to - var, 0.0)) * eps
    return math.sqrt(abar_to) * x0 + direction + math.sqrt(var) * z

"""A second-order decode in few steps: DPM-Solver++(2M) (Lu et al. 2022, "DPM-Solver++: Fast Solver
for Guided Sampling of Diffusion Probabilistic Models", algorithm 2).

The probability-flow ODE written in the data prediction x0 and the half log-SNR
lambda = log(sqrt(abar) / sqrt(1 - abar)) has an exact linear part; integrating it leaves

    x_t = (sigma_t / sigma_s) x_s + sqrt(abar_t) (1 - e^-h) D,    h = lambda_t - lambda_s,

with D = x0(x_s) for a first-order step (which is exactly DDIM's move) and, from the second step on,
D = x0_i + (x0_i - x0_{i-1}) h_i / (2 h_{i-1}): x0 extrapolated linearly in lambda from the previous
step's estimate, which costs no extra call. The last step lands on the clean level (lambda = inf),
where the extrapolation has no finite step: it is the clean estimate at the last level, as in every
few-step solver. The x0 estimates are thresholded, as DDIM's are here.
"""

from __future__ import annotations

import math

import torch

from code_cli.method.cbc import cbc_clip
from code_cli.method.code import EpsModel, Progress
from code_cli.method.ddim import thresholded
from code_cli.method.schedule import Levels
from code_cli.method.threshold import Threshold


def half_log_snr(abar: float) -> float:
    """lambda = log(alpha / sigma) for abar = alpha^2 < 1."""
    return 0.5 * math.log(abar / (1 - abar))


def dpm_step(x: torch.Tensor, x0: torch.Tensor, abar_from: float, abar_to: float,
             previous: tuple[torch.Tensor, float] | None) -> tuple[torch.Tensor, float]:
    """One DPM-Solver++(2M) step from abar_from to abar_to < 1 given the clean estimate x0 at abar_from;
    `previous` = (x0, h) of the step before, or None for a first-order step. Returns (x, h)."""
    h = half_log_snr(abar_to) - half_log_snr(abar_from)
    d = x0 if previous is None else x0 + (x0 - previous[0]) * (h / (2 * previous[1]))
    return math.sqrt((1 - abar_to) / (1 - abar_from)) * x + math.sqrt(abar_to) * -math.expm1(-h) * d, h


def dpm_decode(
    model: EpsModel, x: torch.Tensor, levels: Levels, depth: int, threshold: Threshold,
    cbc_eta: float | None = None, progress: Progress | None = None,
) -> tuple[torch.Tensor, int]:
    """From level `depth` of `levels` to level 0 (the clean estimate) in `depth` calls, second order
    after the first step. Same interface as code.decode."""
    previous = None
    for k in range(depth, 0, -1):
        a_from, a_to = float(levels.abar[k]), float(levels.abar[k - 1])
        if cbc_eta is not None:
            x = cbc_clip(x, a_from, cbc_eta)
        x0, _ = thresholded(x, model(x, levels.timesteps(k, len(x), x.device)), a_from, threshold)
        if progress:
            progress(1)
        if a_to >= 1:
            return x0, depth
        x, h = dpm_step(x, x0, a_from, a_to, previous)
        previous = (x0, h)
    return x, depth

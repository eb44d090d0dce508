"""Which of several priors explains an image better, from the priors' own denoising error.

A diffusion model's evidence lower bound is a weighted sum over timesteps of its noise-prediction
error on the image (Ho et al. 2020, eq. 12; Kingma et al. 2021): the lower the error, the likelier the
image under that model. Comparing two priors needs only the difference, so every prior sees the
same noisy copies of the image (common random numbers): the noise drawn cancels out of the
difference instead of adding its own variance, and a handful of levels decides.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def denoising_errors(
    eps: EpsModel, x: torch.Tensor, timesteps: Sequence[int], abar: torch.Tensor, generators: Sequence[torch.Generator],
) -> torch.Tensor:
    """(B, len(timesteps)) mean squared error of the predicted noise, per image and timestep, with
    x_t = sqrt(abar_t) x + sqrt(1 - abar_t) e. The noise e comes from each image's generator (drawn on
    the CPU: the same on every device), in timestep order: a fresh generator with the same seed gives
    every prior the same noisy images. One network call per timestep."""
    out = torch.empty(len(x), len(timesteps), dtype=torch.float64)
    for k, t in enumerate(timesteps):
        e = torch.stack([torch.randn(x.shape[1:], generator=g) for g in generators]).to(x.device, x.dtype)
        a = abar[t].to(x.device, torch.float64)
        xt = (a.sqrt() * x.double() + (1 - a).sqrt() * e.double()).to(x.dtype)
        pred = eps(xt, torch.full((len(x),), int(t), device=x.device, dtype=torch.long))
        out[:, k] = ((pred.float() - e.float()) ** 2).flatten(1).mean(1).double().cpu()
    return out


def pick(errors: Mapping[str, torch.Tensor]) -> list[str]:
    """Per image, the prior with the lowest summed error over the levels; a tie goes to the prior
    named first (the default)."""
    names = list(errors)
    total = torch.stack([errors[n].sum(1) for n in names])  # (priors, B)
    return [names[int(i)] for i in total.argmin(0)]

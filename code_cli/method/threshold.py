"""Dynamic thresholding of the clean estimate (Imagen), reusing diffusers."""

from __future__ import annotations

from collections.abc import Callable

import torch
from diffusers import DDIMScheduler

Threshold = Callable[[torch.Tensor], torch.Tensor]

# torch.quantile refuses inputs above 2**24 elements; larger images take the
# quantile on an evenly strided subsample, which changes s by a hair.
_QUANTILE_LIMIT = 2**24


def make_threshold(quantile: float, max_value: float) -> Threshold:
    """x0 -> clamp(x0, -s, s) / s with s the per-image quantile of |x0| in [1, max_value]."""
    sched = DDIMScheduler(thresholding=True, dynamic_thresholding_ratio=quantile, sample_max_value=max_value)

    def threshold(x0: torch.Tensor) -> torch.Tensor:
        if x0[0].numel() * len(x0) <= _QUANTILE_LIMIT:
            return sched._threshold_sample(x0)
        return torch.cat([_threshold_large(xi[None], quantile, max_value) for xi in x0])

    return threshold


def _threshold_large(x0: torch.Tensor, quantile: float, max_value: float) -> torch.Tensor:
    flat = x0.abs().flatten()
    stride = -(-flat.numel() // _QUANTILE_LIMIT)
    s = torch.quantile(flat[::stride].float(), quantile).clamp(1, max_value).to(x0.dtype)
    return x0.clamp(-s, s) / s


def no_threshold(x0: torch.Tensor) -> torch.Tensor:
    return x0

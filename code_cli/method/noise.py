"""Per-image Gaussian noise, so an image's result never depends on its batch."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def randn_like_per_image(x: torch.Tensor, generators: Sequence[torch.Generator]) -> torch.Tensor:
    if len(generators) != len(x):
        raise ValueError(f"need one generator per image: {len(generators)} for a batch of {len(x)}")
    # Drawn on the generator's device, then moved: the same seed gives the same
    # noise on CPU, CUDA and MPS.
    return torch.stack(
        [torch.randn(x.shape[1:], generator=g, device=g.device, dtype=torch.float32) for g in generators]
    ).to(device=x.device, dtype=x.dtype)

"""Timestep grids and noise levels shared by CODE and SDEdit.

A grid of N steps has N + 1 levels. Level 0 is the clean image (abar = 1), so
decoding lands on the clean estimate with no leftover noise; the network is
still evaluated at timestep 0 there, which matches the 0.01 jitter the encoder
adds (sigma at t = 0 is sqrt(beta_0) = 0.01). Levels 1..N use "trailing"
spacing so that level N is t = T - 1, the full depth SDEdit needs to reach the
prior's marginal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Levels:
    t: torch.Tensor  # (N + 1,) int64 timesteps fed to the network
    abar: torch.Tensor  # (N + 1,) float64, abar[0] = 1

    @property
    def steps(self) -> int:
        return len(self.t) - 1

    def sigma(self, k: int) -> float:
        return float((1 - self.abar[k]).sqrt())

    def sqrt_abar(self, k: int) -> float:
        return float(self.abar[k].sqrt())

    def timesteps(self, k: int, batch: int, device: torch.device) -> torch.Tensor:
        """Level k's timestep for each image of a batch, as the network takes it."""
        return self.t[k].expand(batch).to(device)


def make_levels(alphas_cumprod: torch.Tensor, steps: int) -> Levels:
    """Levels of an N-step grid over a schedule with T = len(alphas_cumprod)."""
    T = len(alphas_cumprod)
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be in [1, {T}], got {steps}")
    trailing = torch.round(torch.arange(1, steps + 1, dtype=torch.float64) * T / steps).long() - 1
    t = torch.cat([torch.zeros(1, dtype=torch.long), trailing])
    abar = alphas_cumprod.double()[t].clone()
    abar[0] = 1.0
    return Levels(t=t, abar=abar)

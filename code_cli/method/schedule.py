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
    # the whole training schedule (T,) float64, for grids other than this one (decode_levels)
    schedule: torch.Tensor | None = None

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
    return Levels(t=t, abar=abar, schedule=alphas_cumprod.double())


# Decode spacing: t_i = t_L ((n - i) / n) ** DECODE_RHO. rho > 1 puts the steps closer together near
# the clean end, where the image's detail is decided (Karras et al. 2022 space sigma the same way, with
# rho = 7 over the whole range). Measured from auto's noise entry (docs/auto.md, "Fewer calls"):
# 3 steps at rho 2 gave +0.19 dB and equal patch SWD against one DDIM step per level of the
# 100-step grid (9 calls); rho 1.5 lost 0.15 dB, rho 2.5 tied with 2.
DECODE_RHO = 2.0


def decode_levels(levels: Levels, depth: int, steps: int, rho: float = DECODE_RHO) -> Levels:
    """A grid of `steps` levels from levels' level `depth` down to the clean image, spaced by rho:
    what a few-step solver decodes on. Timesteps are rounded to integers and kept distinct."""
    if levels.schedule is None:
        raise ValueError("these levels carry no schedule to place other timesteps on")
    t_entry = int(levels.t[depth])
    n = max(1, min(steps, depth, t_entry + 1))
    ts = [round(t_entry * ((n - i) / n) ** rho) for i in range(n)]
    for i in range(1, n):  # distinct and decreasing: rounding can merge the last few
        ts[i] = min(ts[i], ts[i - 1] - 1)
    ts = [max(t, n - 1 - i) for i, t in enumerate(ts)]  # ... and never below 0
    t = torch.tensor([0, *reversed(ts)], dtype=torch.long)
    abar = levels.schedule[t].clone()
    abar[0] = 1.0
    return Levels(t=t, abar=abar, schedule=levels.schedule)


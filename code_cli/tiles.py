"""Evaluate a network over overlapping tiles and blend the outputs smoothly.

Tiling happens at each network call, not per image: the latent, the noise and
the whole trajectory stay global, only the noise prediction is computed tile by
tile and cross-faded in the overlaps. So there are no independent per-tile
trajectories to disagree, and no seams beyond the network's own border effects,
which the linear cross-fade hides.
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def starts(n: int, tile: int, overlap: int) -> list[int]:
    """Window starts along one axis of length n: the fewest windows whose neighbours overlap by at
    least `overlap`, spread evenly from 0 to n - tile (so the spare overlap is shared, not all put on
    the last window as a fixed stride would)."""
    if n <= tile:
        return [0]
    k = -(-(n - overlap) // (tile - overlap))  # windows needed: ceil((n - overlap) / (tile - overlap))
    return [round(i * (n - tile) / (k - 1)) for i in range(k)]


def ramp(n: int, overlap: int, fade_start: bool, fade_end: bool) -> torch.Tensor:
    """1 inside, rising linearly over `overlap` pixels at the faded ends (never reaching 0)."""
    w = torch.ones(n)
    k = min(overlap, n // 2)
    if k > 0:
        edge = torch.arange(1, k + 1, dtype=torch.float32) / (k + 1)
        if fade_start:
            w[:k] = edge
        if fade_end:
            w[n - k:] = edge.flip(0)
    return w


def tiled(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, tile: int, overlap: int) -> torch.Tensor:
    """fn applied to overlapping tile x tile windows of x (B, C, H, W), blended."""
    H, W = x.shape[-2:]
    if H <= tile and W <= tile:
        return fn(x)
    out = torch.zeros_like(x)
    weight = torch.zeros(H, W, device=x.device, dtype=x.dtype)
    ys, xs = starts(H, tile, overlap), starts(W, tile, overlap)
    for y0 in ys:
        h = min(tile, H)
        wy = ramp(h, overlap, y0 > 0, y0 + h < H)
        for x0 in xs:
            w = min(tile, W)
            wx = ramp(w, overlap, x0 > 0, x0 + w < W)
            win = (wy[:, None] * wx[None, :]).to(x.device, x.dtype)
            out[..., y0:y0 + h, x0:x0 + w] += fn(x[..., y0:y0 + h, x0:x0 + w]) * win
            weight[y0:y0 + h, x0:x0 + w] += win
    return out / weight


def count(H: int, W: int, tile: int, overlap: int) -> int:
    return len(starts(H, tile, overlap)) * len(starts(W, tile, overlap))

"""SDEdit (Meng et al., 2021), the baseline: noise the input straight to depth
t0, then run the reverse SDE (ancestral DDIM with eta = 1) to the clean image."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from code_cli.cost import sdedit_calls
from code_cli.method.code import EpsModel, MethodOutput, Progress
from code_cli.method.ddim import ancestral_move
from code_cli.method.noise import randn_like_per_image
from code_cli.method.schedule import Levels
from code_cli.method.threshold import Threshold


@dataclass(frozen=True)
class SDEditParams:
    depth: int  # level index of t0 on the grid

    @classmethod
    def from_knobs(cls, *, depth: int, **_: object) -> SDEditParams:
        """From a flat set of knobs (a run's config); SDEdit has one, the rest is CODE's."""
        return cls(depth=depth)

    @property
    def nfe(self) -> int:
        return sdedit_calls(self.depth)


def sdedit(
    model: EpsModel, x: torch.Tensor, levels: Levels, params: SDEditParams, threshold: Threshold,
    generators: Sequence[torch.Generator], progress: Progress | None = None,
) -> MethodOutput:
    L = params.depth
    # 1. x_t0 = sqrt(abar) x + sigma n
    x = levels.sqrt_abar(L) * x + levels.sigma(L) * randn_like_per_image(x, generators)
    # 2. ancestral steps down the grid; the last one (to abar = 1) adds no noise
    for k in range(L, 0, -1):
        eps = model(x, levels.timesteps(k, len(x), x.device))
        z = randn_like_per_image(x, generators)
        x = ancestral_move(x, eps, float(levels.abar[k]), float(levels.abar[k - 1]), threshold, z)
        if progress:
            progress(1)
    assert L == params.nfe  # one call per level, as code_cli.cost states
    return MethodOutput(x=x, nfe=L, info={"t_latent": int(levels.t[L])})

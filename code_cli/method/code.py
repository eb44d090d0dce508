"""CODE: Confident Ordinary Differential Editing (van Delft, Martorella, Alahi, 2024).

encode (probability-flow ODE up to depth L) -> correct (annealed Langevin in
the latent) -> decode (probability-flow ODE down to the clean estimate).
Every function takes a noise predictor `eps = model(x, t)`, tensors and
per-image generators, and counts the network calls it spends.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

from code_cli.cost import code_calls
from code_cli.method.cbc import cbc_clip
from code_cli.method.ddim import ddim_move, thresholded
from code_cli.method.noise import randn_like_per_image
from code_cli.method.schedule import Levels
from code_cli.method.threshold import Threshold

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Progress = Callable[[int], None]  # called with the number of network calls just spent


@dataclass(frozen=True)
class Correction:
    """K annealed Langevin steps at grid level `depth`; the step is relative to sigma^2."""

    depth: int
    steps: int
    epsilon: float
    stages: int = 4
    factor: float = 0.8


@dataclass(frozen=True)
class CODEParams:
    corrections: tuple[Correction, ...]  # deepest first; the first sets the latent depth L
    jitter: float = 0.01
    cbc: bool = True
    cbc_everywhere: bool = False  # also clip during correction and decoding
    eta: float = 1.7

    @classmethod
    def from_knobs(
        cls, *, depth: int, langevin_steps: int, epsilon: float, annealing_stages: int = 4,
        annealing_factor: float = 0.8, extra_corrections: tuple[tuple[int, float], ...] = (), jitter: float = 0.01,
        cbc: bool = True, cbc_everywhere: bool = False, eta: float = 1.7, **_: object,
    ) -> CODEParams:
        """From a flat set of knobs (a run's config): K steps at depth, then at each extra (depth, epsilon)."""
        shared = dict(steps=langevin_steps, stages=annealing_stages, factor=annealing_factor)
        corrections = [Correction(depth=d, epsilon=e, **shared) for d, e in [(depth, epsilon), *extra_corrections]]
        return cls(corrections=tuple(corrections), jitter=jitter, cbc=cbc, cbc_everywhere=cbc_everywhere, eta=eta)

    @property
    def depth(self) -> int:
        return self.corrections[0].depth

    @property
    def nfe(self) -> int:
        return code_calls(self.depth, [c.steps for c in self.corrections])


@dataclass(frozen=True)
class MethodOutput:
    x: torch.Tensor
    nfe: int
    info: dict = field(default_factory=dict)


def encode(
    model: EpsModel, x: torch.Tensor, levels: Levels, depth: int, threshold: Threshold,
    cbc_eta: float | None = None, progress: Progress | None = None,
) -> tuple[torch.Tensor, int]:
    """DDIM inversion (eta = 0) from level 0 up to level `depth`: exactly `depth` calls."""
    for k in range(depth):
        if cbc_eta is not None:
            x = cbc_clip(x, float(levels.abar[k]), cbc_eta)
        eps = model(x, levels.timesteps(k, len(x), x.device))
        x = ddim_move(x, eps, float(levels.abar[k]), float(levels.abar[k + 1]), threshold)
        if progress:
            progress(1)
    return x, depth


def decode(
    model: EpsModel, x: torch.Tensor, levels: Levels, depth: int, threshold: Threshold,
    cbc_eta: float | None = None, progress: Progress | None = None, stop: int = 0,
) -> tuple[torch.Tensor, int]:
    """DDIM (eta = 0) from level `depth` down to level `stop`; level 0 is the clean estimate."""
    for k in range(depth, stop, -1):
        if cbc_eta is not None:
            x = cbc_clip(x, float(levels.abar[k]), cbc_eta)
        eps = model(x, levels.timesteps(k, len(x), x.device))
        x = ddim_move(x, eps, float(levels.abar[k]), float(levels.abar[k - 1]), threshold)
        if progress:
            progress(1)
    return x, depth - stop


def langevin_schedule(c: Correction) -> list[float]:
    """Relative step size of each of the K noisy steps: A stages, each c times the last."""
    sizes = []
    for stage in range(c.stages):
        n = c.steps // c.stages + (1 if stage < c.steps % c.stages else 0)
        sizes += [c.epsilon * c.factor**stage] * n
    return sizes


def correct(
    model: EpsModel, x: torch.Tensor, levels: Levels, c: Correction, threshold: Threshold,
    generators: Sequence[torch.Generator], cbc_eta: float | None = None, progress: Progress | None = None,
) -> tuple[torch.Tensor, int]:
    """Annealed Langevin dynamics at level c.depth, then one noise-free step: K + 1 calls.

    x <- x + e score + sqrt(2 e) z with score = -eps / sigma and e = epsilon sigma^2
    (Song and Ermon's noise-relative step), i.e. x <- x - epsilon sigma eps + sqrt(2 epsilon) sigma z.
    """
    abar = float(levels.abar[c.depth])
    sigma = levels.sigma(c.depth)
    t = levels.timesteps(c.depth, len(x), x.device)
    sizes = langevin_schedule(c)
    last = sizes[-1] if sizes else c.epsilon
    for rel in [*sizes, None]:
        if cbc_eta is not None:
            x = cbc_clip(x, abar, cbc_eta)
        _, eps = thresholded(x, model(x, t), abar, threshold)
        step = (last if rel is None else rel) * sigma**2
        x = x - step / sigma * eps
        if rel is not None:
            x = x + (2 * step) ** 0.5 * randn_like_per_image(x, generators)
        if progress:
            progress(1)
    return x, len(sizes) + 1


def code_restore(
    model: EpsModel, x: torch.Tensor, levels: Levels, params: CODEParams, threshold: Threshold,
    generators: Sequence[torch.Generator], progress: Progress | None = None,
) -> MethodOutput:
    """The full CODE edit of a batch x in [-1, 1]; one generator per image."""
    eta = params.eta if params.cbc else None
    late_eta = eta if params.cbc_everywhere else None
    # 1. jitter: makes the input a sample of the level-0 noise the network expects
    x = x + params.jitter * randn_like_per_image(x, generators)
    # 2. encode only as deep as the deepest correction
    x, nfe = encode(model, x, levels, params.depth, threshold, eta, progress)
    level = params.depth
    raw_steps = []
    for c in params.corrections:
        # 3. walk down to the next correction depth, then raise the likelihood there
        x, n = decode(model, x, levels, level, threshold, late_eta, progress, stop=c.depth)
        nfe += n
        x, n = correct(model, x, levels, c, threshold, generators, late_eta, progress)
        nfe += n
        level = c.depth
        raw_steps.append(c.epsilon * levels.sigma(c.depth) ** 2)
    # 4. decode to the clean estimate
    x, n = decode(model, x, levels, level, threshold, late_eta, progress)
    nfe += n
    assert nfe == params.nfe, f"CODE spent {nfe} calls where its cost formula says {params.nfe}"
    return MethodOutput(x=x, nfe=nfe, info={"raw_langevin_step": raw_steps, "t_latent": int(levels.t[params.depth])})

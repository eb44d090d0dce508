"""`--model auto`: each image goes to the embedded prior under which it is more likely.

    pipe = PriorRouter.load()                                  # code-prior-s and code-prior-doc
    results = pipe(batch, seeds=[0], config=cfg)               # cfg.model == "auto"

The choice compares the priors' own noise-prediction errors on a centre window of the image at a few
timesteps (method/prior_choice.py: the terms of each prior's likelihood bound, on the same noisy
copies). An image routed to the document prior is restored as the `doc` preset restores pages (auto
mode's page readings on); one routed to the photo prior as the config says. The router answers the
pipeline's interface, so the runner, the CLI and --dry-run drive it as they drive one prior.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from code_cli import method as M
from code_cli import models
from code_cli.cost import MODEL_AUTO, MODEL_AUTO_PRIORS, MODEL_AUTO_TIMESTEPS, prior_choice_calls
from code_cli.pipeline import CODEPipeline, RestoreResult

if TYPE_CHECKING:
    from code_cli.presets import RestoreConfig

# The priors and timesteps of the comparison are stated in cost.py (MODEL_AUTO_PRIORS, the default
# first: a tie goes to it; MODEL_AUTO_TIMESTEPS, chosen on training photographs and pages, then
# measured on held-out ones: docs/model-auto.md). Here: the priors whose images auto mode reads as
# printed pages, and the window the errors are read on.
PAGE_PRIORS = frozenset({"code-prior-doc"})
SCORE_WINDOW = 256


@dataclass(frozen=True)
class Route:
    model: str
    errors: dict[str, list[float]]  # per prior, its error at each of MODEL_AUTO_TIMESTEPS

    def as_dict(self) -> dict:
        return {"model": self.model, "timesteps": list(MODEL_AUTO_TIMESTEPS), "errors": self.errors,
                "calls": prior_choice_calls(len(self.errors), len(MODEL_AUTO_TIMESTEPS))}


class PriorRouter:
    """Several pipelines behind one: the same call, each image restored by the prior it chose."""

    def __init__(self, pipes: dict[str, CODEPipeline], pages: frozenset[str] = PAGE_PRIORS):
        self.pipes, self.pages = pipes, pages
        self.default = next(iter(pipes.values()))
        digest = hashlib.sha256("".join(p.model_info.weights_sha256 for p in pipes.values()).encode()).hexdigest()
        self.model_info = models.ModelInfo(spec=MODEL_AUTO, path=models.WEIGHTS_DIR, weights_sha256=digest,
                                           prediction_type="epsilon")

    @classmethod
    def load(cls) -> PriorRouter:
        return cls({name: CODEPipeline.from_pretrained(name) for name in MODEL_AUTO_PRIORS})

    # The priors share one architecture: sizes, tiles and the timing calibration are the default's.
    @property
    def unet(self):
        return self.default.unet

    @property
    def scheduler(self):
        return self.default.scheduler

    @property
    def layout(self) -> str:
        return self.default.layout

    @layout.setter
    def layout(self, value: str) -> None:
        for p in self.pipes.values():
            p.layout = value

    def size_mode(self, policy: str) -> str:
        return self.default.size_mode(policy)

    def tile_size(self, requested: int, size: tuple[int, int]) -> int:
        return self.default.tile_size(requested, size)

    def config_for(self, config: RestoreConfig, model: str) -> RestoreConfig:
        return replace(config, model=model, page=config.auto_mode and model in self.pages)

    def route(self, image: torch.Tensor, seeds: Sequence[int], config: RestoreConfig) -> list[Route]:
        """The prior each image of a (B, 3, H, W) batch in [-1, 1] goes to, and the errors behind it."""
        errors = {name: pipe.denoising_errors(image, MODEL_AUTO_TIMESTEPS, seeds, config, SCORE_WINDOW)
                  for name, pipe in self.pipes.items()}
        chosen = M.prior_choice.pick(errors)
        return [Route(c, {n: [round(float(v), 6) for v in e[i]] for n, e in errors.items()})
                for i, c in enumerate(chosen)]

    @torch.no_grad()
    def __call__(
        self, image: torch.Tensor, *, seeds: Sequence[int], config: RestoreConfig,
        progress: Callable[[int], None] | None = None,
    ) -> list[RestoreResult]:
        routes = self.route(image, seeds, config)
        spent = prior_choice_calls(len(self.pipes), len(MODEL_AUTO_TIMESTEPS))
        if progress is not None:
            progress(spent)
        results: list[RestoreResult | None] = [None] * len(image)
        for name, pipe in self.pipes.items():
            idx = [i for i, r in enumerate(routes) if r.model == name]
            if not idx:
                continue
            out = pipe(image[idx], seeds=[seeds[i] for i in idx], config=self.config_for(config, name),
                       progress=progress)
            for i, r in zip(idx, out):
                info = {**r.info, "prior": routes[i].as_dict()}
                if "auto" in info:  # auto's record counts the choosing too
                    info["auto"] = {**info["auto"], "choice_calls": spent, "nfe": info["auto"]["nfe"] + spent}
                results[i] = replace(r, nfe=r.nfe + spent, info=info)
        return [r for r in results if r is not None]

    def choose(self, image: torch.Tensor, config: RestoreConfig, seeds: Sequence[int] | None = None
               ) -> list[M.AutoChoice]:
        """What each image would get (--dry-run): its prior, then that prior's auto choice. Unlike a
        single prior's choice this spends network calls (the comparison's), on the window only."""
        seeds = [0] * len(image) if seeds is None else seeds
        routes = self.route(image, seeds, config)
        out = []
        for i, r in enumerate(routes):
            [c] = self.pipes[r.model].choose(image[i:i + 1], self.config_for(config, r.model))
            out.append(replace(c, reason=f"{r.model}: {c.reason}", choice_calls=r.as_dict()["calls"]))
        return out


def load_pipeline(spec: str):
    """The pipeline for a model spec: the router for `auto`, else one prior."""
    return PriorRouter.load() if spec == MODEL_AUTO else CODEPipeline.from_pretrained(spec)

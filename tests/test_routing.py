"""--model auto: the priors' denoising errors against their closed form for Gaussian data, the
choice they make, and the router that sends each image to its prior."""

from __future__ import annotations

import json
import math

import pytest
import torch
from diffusers import DDPMScheduler
from typer.testing import CliRunner

from code_cli import method as M
from code_cli import models
from code_cli.cli import app
from code_cli.cost import MODEL_AUTO_TIMESTEPS, prior_choice_calls
from code_cli.pipeline import CODEPipeline
from code_cli.presets import RestoreConfig, build_config
from code_cli.routing import PriorRouter
from tests.conftest import GaussianEps, gens, write_image


def expected_error(abar: float, s_data: float, s_model: float, mu_gap: float = 0.0) -> float:
    """E (e - eps_model(x_t))^2 per pixel, data N(mu, s_data^2), x_t = sqrt(a) x + sqrt(1 - a) e, and
    the exact predictor of N(mu - mu_gap, s_model^2): c (x_t - sqrt(a) (mu - mu_gap)), c = sqrt(1 - a) / var."""
    c = math.sqrt(1 - abar) / (abar * s_model**2 + 1 - abar)
    return (1 - c * math.sqrt(1 - abar)) ** 2 + c**2 * abar * (s_data**2 + mu_gap**2)


@pytest.mark.parametrize("s_model", [0.2, 0.5, 0.8])
def test_denoising_error_matches_its_closed_form(abar_T, s_model):
    torch.manual_seed(0)
    x = 0.5 * torch.randn(2, 3, 64, 64)  # data N(0, 0.5^2)
    model = GaussianEps(abar_T, mu=0.0, s=s_model)
    ts = (50, 200, 600)
    err = M.prior_choice.denoising_errors(model, x, ts, abar_T, gens(1, 2))
    assert err.shape == (2, 3) and model.calls == 3
    for k, t in enumerate(ts):
        want = expected_error(float(abar_T[t]), 0.5, s_model)
        torch.testing.assert_close(err[:, k], torch.full((2,), want, dtype=torch.float64), rtol=0.05, atol=0)


def test_the_true_prior_has_the_lowest_error(abar_T):
    """The MMSE predictor of the data's own distribution beats every other at every level."""
    torch.manual_seed(1)
    for s_true in (0.2, 0.8):
        x = s_true * torch.randn(4, 3, 32, 32)
        errors = {f"s={s}": M.prior_choice.denoising_errors(GaussianEps(abar_T, 0.0, s), x, (50, 100, 200), abar_T,
                                                             gens(7, 8, 9, 10))
                  for s in (0.2, 0.8)}
        assert M.prior_choice.pick(errors) == [f"s={s_true}"] * 4


def test_every_prior_sees_the_same_noise_and_a_tie_goes_to_the_first(abar_T):
    """Common random numbers: the same seeds give every prior the same noisy copies."""
    zero = lambda x, t: torch.zeros_like(x)  # noqa: E731 - predicts no noise: its error is mean(e^2)
    x = torch.zeros(2, 3, 8, 8)
    a = M.prior_choice.denoising_errors(zero, x, (10, 20), abar_T, gens(3, 4))
    b = M.prior_choice.denoising_errors(zero, x, (10, 20), abar_T, gens(3, 4))
    assert torch.equal(a, b) and not torch.equal(a[0], a[1])
    assert M.prior_choice.pick({"first": a, "second": b}) == ["first", "first"]


class EpsNet(torch.nn.Module):
    """An exact Gaussian noise predictor with the UNet contract."""

    def __init__(self, eps: GaussianEps):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.eps = eps

    def forward(self, x, t):
        return type("Out", (), {"sample": self.eps(x.double(), t).float()})()


def gaussian_router(abar_T) -> PriorRouter:
    pipes = {}
    for name, s in (("smooth", 0.1), ("busy", 0.9)):
        pipe = CODEPipeline(unet=EpsNet(GaussianEps(abar_T, mu=0.0, s=s)), scheduler=DDPMScheduler())
        pipe.model_info = models.ModelInfo(name, models.WEIGHTS_DIR, name * 4, "epsilon")
        pipes[name] = pipe
    return PriorRouter(pipes, pages=frozenset({"busy"}))


def test_router_sends_each_image_to_its_prior_and_counts_the_calls(abar_T):
    router = gaussian_router(abar_T)
    torch.manual_seed(2)
    x = torch.cat([0.1 * torch.randn(1, 3, 24, 24), 0.9 * torch.randn(1, 3, 24, 24).clamp(-1, 1)])
    cfg = RestoreConfig(steps=20, depth=2, langevin_steps=1, mode="fixed")
    res = router(x, seeds=[5, 6], config=cfg)
    assert [r.info["prior"]["model"] for r in res] == ["smooth", "busy"]
    spent = prior_choice_calls(2, len(MODEL_AUTO_TIMESTEPS))
    assert [r.nfe for r in res] == [spent + 2 + 2 + 2] * 2  # 2 to encode, K + 1 = 2 to correct, 2 to decode
    assert res[0].info["prior"]["calls"] == spent == 4
    # the same seed, the same route: independent of the batch the image came in
    [alone] = router(x[1:], seeds=[6], config=cfg)
    assert alone.info["prior"] == res[1].info["prior"] and torch.equal(alone.image, res[1].image)


def test_router_reads_pages_only_for_the_page_prior(abar_T):
    router = gaussian_router(abar_T)
    cfg, _ = build_config("auto", {})
    assert router.config_for(cfg, "busy").page and not router.config_for(cfg, "smooth").page
    assert router.config_for(cfg, "busy").model == "busy"
    fixed = RestoreConfig(steps=20, depth=2, langevin_steps=1, mode="fixed")
    assert not router.config_for(fixed, "busy").page  # the page readings are auto mode's


def test_model_auto_costs_are_stated_in_the_preset():
    cfg, _ = build_config("auto", {"model": "auto"})
    plain, _ = build_config("auto", {})
    assert cfg.nfe == plain.nfe + prior_choice_calls() and cfg.hash() != plain.hash()


def page_and_photo(tmp_path):
    """A small crop of a held-out page and a smooth photo-like image, as files."""
    from PIL import Image

    from code_cli.bench.doc import make_pages

    [page] = make_pages(1, (384, 256), seed=0)
    src = tmp_path / "mixed"
    src.mkdir()
    Image.fromarray(page.clean[64:192, 64:192]).save(src / "page.png")
    write_image(src / "photo.png", size=(128, 128), seed=3)
    return src


@pytest.mark.slow
def test_cli_model_auto_routes_a_page_and_a_photo(tmp_path):
    src = page_and_photo(tmp_path)
    out = tmp_path / "out"
    r = CliRunner().invoke(app, [str(src), str(out), "--model", "auto", "--seed", "0"])
    assert r.exit_code == 0, r.output
    lines = [json.loads(s) for s in (out / "run.jsonl").read_text().splitlines()]
    ok = {rec["relpath"]: rec for rec in lines if rec.get("status") == "ok"}
    assert ok["page.png"]["params"]["prior"]["model"] == "code-prior-doc"
    assert ok["photo.png"]["params"]["prior"]["model"] == "code-prior-s"
    assert all(rec["nfe"] >= prior_choice_calls() for rec in ok.values())
    assert ok["page.png"]["params"]["model"] == "auto"
    # --dry-run shows the same routes
    r = CliRunner().invoke(app, [str(src), str(tmp_path / "dry"), "--model", "auto", "--seed", "0", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "page.png" in r.output and "code-prior-doc:" in r.output and "code-prior-s:" in r.output


def test_router_dry_run_choice_names_the_prior_and_its_calls(abar_T):
    router = gaussian_router(abar_T)
    torch.manual_seed(3)
    x = 0.9 * torch.randn(1, 3, 24, 24).clamp(-1, 1)
    cfg, _ = build_config("auto", {"model": "auto"})
    [c] = router.choose(x, cfg, seeds=[4])
    assert c.reason.startswith("busy: ") and c.choice_calls == prior_choice_calls()
    assert c.nfe == prior_choice_calls() + M.AutoChoice(**{**c.__dict__, "choice_calls": 0}).nfe
    # what the run then does with it: the same route, and the same calls in all
    [r] = router(x, seeds=[4], config=cfg)
    assert r.info["prior"]["model"] == "busy" and r.nfe == c.nfe
    assert r.info["auto"]["choice_calls"] == prior_choice_calls()

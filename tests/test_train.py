"""The prior's training loop: learning-rate schedule, seeding, resume, export.

A tiny network on synthetic photographs stands in for the real run, so these
need neither the training photographs nor more than a few seconds.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from code_cli import models
from code_cli.prior.train import TrainConfig, build_unet, export, learning_rate, train

TINY = TrainConfig(
    channels=(32, 32), layers_per_block=1, crop=16, batch=2, warmup=1, scales=(1.0, 0.5),
    lr_end=1.0,  # a constant rate: a time-based schedule would not repeat exactly
)


def photos() -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)) for _ in range(2)]


def weights(ckpt) -> dict[str, torch.Tensor]:
    state = torch.load(ckpt, weights_only=True)
    return {**{f"unet.{k}": v for k, v in state["unet"].items()}, **{f"ema.{k}": v for k, v in state["ema"].items()}}


def test_learning_rate_warms_up_then_decays_to_lr_end():
    cfg = TrainConfig(lr=2e-4, warmup=100, lr_end=0.1)
    assert learning_rate(cfg, 0, 0.0) == pytest.approx(2e-6)
    assert learning_rate(cfg, 99, 0.0) == pytest.approx(2e-4)
    assert learning_rate(cfg, 500, 0.5) == pytest.approx(2e-4 * 0.55)
    assert learning_rate(cfg, 500, 1.0) == pytest.approx(2e-5)
    assert learning_rate(cfg, 500, 3.0) == pytest.approx(2e-5)  # past the budget: stays at the floor
    rates = [learning_rate(cfg, 500, p) for p in np.linspace(0, 1, 11)]
    assert all(a > b for a, b in zip(rates, rates[1:]))


def test_training_is_seeded_and_resume_continues_the_same_run(tmp_path):
    once = train(tmp_path / "once", minutes=60, max_steps=4, cfg=TINY, photos=photos())
    again = train(tmp_path / "again", minutes=60, max_steps=4, cfg=TINY, photos=photos())
    train(tmp_path / "split", minutes=60, max_steps=2, cfg=TINY, photos=photos())
    split = train(tmp_path / "split", minutes=60, max_steps=4, cfg=TINY, photos=photos())
    a, b, c = weights(once), weights(again), weights(split)
    assert torch.load(split, weights_only=True)["step"] == 4
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0, msg=f"{k} differs between seeded runs")
        torch.testing.assert_close(a[k], c[k], rtol=0, atol=0, msg=f"{k} differs after resume")
    # Training did move the weights.
    torch.manual_seed(TINY.seed)
    init = build_unet(TINY).state_dict()
    assert any(not torch.equal(a[f"unet.{k}"], v) for k, v in init.items())


def test_resume_refuses_another_architecture(tmp_path):
    train(tmp_path / "run", minutes=60, max_steps=1, cfg=TINY, photos=photos())
    wider = TrainConfig(**{**TINY.__dict__, "channels": (32, 64)})
    with pytest.raises(SystemExit, match="another architecture"):
        train(tmp_path / "run", minutes=60, max_steps=2, cfg=wider, photos=photos())


def test_export_loads_through_the_model_loader(tmp_path):
    ckpt = train(tmp_path / "run", minutes=60, max_steps=2, cfg=TINY, photos=photos())
    export(ckpt, tmp_path / "prior")
    unet, scheduler, info = models.load(str(tmp_path / "prior"))
    state = torch.load(ckpt, weights_only=True)
    for k, v in unet.state_dict().items():
        torch.testing.assert_close(v, state["ema"][k], msg=f"exported {k} is not the EMA weight")
    assert scheduler.config.num_train_timesteps == 1000
    assert scheduler.config.prediction_type == "epsilon"
    assert (tmp_path / "prior" / "unet" / "diffusion_pytorch_model.safetensors").exists()


def test_a_resumed_phase_cools_down_over_its_own_steps(tmp_path):
    """Resuming with lr_end < 1 starts a new phase whose cosine runs from lr at
    the resume point to lr * lr_end at the phase's last step."""
    run = tmp_path / "run"
    train(run, minutes=60, max_steps=2, cfg=TINY, photos=photos())
    cool = TrainConfig(**{**TINY.__dict__, "lr_end": 0.1})
    ckpt = train(run, minutes=60, max_steps=6, cfg=cool, photos=photos())
    state = torch.load(ckpt, weights_only=True)
    assert [p["from_step"] for p in state["phases"]] == [0, 2]
    assert state["phases"][-1]["lr_end"] == 0.1
    # The last update (step index 5) was taken at 3/4 of this 4-step phase, not
    # at 5/6 of the whole run; an hour's budget makes the time share negligible.
    last_lr = state["opt"]["param_groups"][0]["lr"]
    assert last_lr == pytest.approx(learning_rate(cool, 5, 0.75), rel=1e-3)
    assert last_lr != pytest.approx(learning_rate(cool, 5, 5 / 6), rel=1e-3)

"""Model resolution: embedded name, local folders in both layouts, hub ids offline."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from code_cli import models
from code_cli.errors import ModelError
from code_cli.pipeline import CODEPipeline
from code_cli.presets import RestoreConfig


def test_pipeline_folder_and_bare_unet_folder_load_the_same(tiny_model, tmp_path):
    bare = tmp_path / "bare"
    shutil.copytree(tiny_model / "unet", bare)
    shutil.copy(tiny_model / "scheduler" / "scheduler_config.json", bare / "scheduler_config.json")
    u1, s1, i1 = models.load(str(tiny_model))
    u2, s2, i2 = models.load(str(bare))
    assert i1.weights_sha256 == i2.weights_sha256
    torch.testing.assert_close(s1.alphas_cumprod, s2.alphas_cumprod)
    assert i1.prediction_type == "epsilon"


def test_offline_hub_id_is_one_clear_line():
    with pytest.raises(ModelError) as e:
        models.load("google/ddpm-ema-celebahq-256")
    msg = str(e.value)
    assert msg.startswith("google/ddpm-ema-celebahq-256: the Hugging Face hub cannot be reached")
    assert "--model PATH" in msg and "\n" not in msg


@pytest.mark.parametrize(
    "make,message",
    [
        (lambda d: (d / "notes.txt").write_text("hi"), "not a diffusers model"),
        (lambda d: (d / "config.json").write_text("{}"), "no scheduler_config.json"),
    ],
)
def test_folders_that_are_not_models(tmp_path, make, message):
    d = tmp_path / "m"
    d.mkdir()
    make(d)
    with pytest.raises(ModelError, match=message):
        models.load(str(d))


def test_unknown_prediction_type_is_refused(tiny_model, tmp_path):
    d = tmp_path / "m"
    shutil.copytree(tiny_model, d)
    cfg_file = d / "scheduler" / "scheduler_config.json"
    cfg = json.loads(cfg_file.read_text())
    cfg["prediction_type"] = "flow"
    cfg_file.write_text(json.dumps(cfg))
    with pytest.raises(ModelError, match="prediction_type 'flow' is not one of"):
        models.load(str(d))


def test_embedded_model_loads_through_the_same_loader():
    assert models.DEFAULT_MODEL in models.embedded_models()
    unet, sched, info = models.load(models.DEFAULT_MODEL)
    assert info.path == models.WEIGHTS_DIR / models.DEFAULT_MODEL
    assert (info.path / "model_index.json").is_file()
    assert sched.config.prediction_type == "epsilon" and sched.config.num_train_timesteps == 1000
    assert unet.config.in_channels == 3


class Wrapped(torch.nn.Module):
    """A plain module with the UNet contract, predicting v or x0 from an exact eps."""

    def __init__(self, eps_fn, abar, kind):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(1))
        self.eps_fn, self.abar, self.kind = eps_fn, abar, kind

    def forward(self, x, t):
        eps = self.eps_fn(x.double(), t).float()
        a = self.abar[t].float().view(-1, 1, 1, 1)
        x0 = (x - (1 - a).sqrt() * eps) / a.sqrt()
        out = a.sqrt() * eps - (1 - a).sqrt() * x0 if self.kind == "v_prediction" else x0
        return type("Out", (), {"sample": out})()


@pytest.mark.parametrize("kind", ["v_prediction", "sample"])
def test_v_and_sample_prediction_are_converted_to_eps(gaussian, abar_T, kind):
    from diffusers import DDPMScheduler

    sched = DDPMScheduler(prediction_type=kind)
    pipe = CODEPipeline(unet=Wrapped(gaussian, abar_T, kind), scheduler=sched)
    eps, calls = pipe.eps_model(torch.float32)
    x = torch.randn(2, 3, 8, 8)
    t = torch.tensor([300, 300])
    torch.testing.assert_close(eps(x, t), gaussian(x.double(), t).float(), atol=1e-4, rtol=1e-4)
    assert calls[0] == 1


def test_pipeline_pads_odd_sizes_and_counts_calls(tiny_model):
    pipe = CODEPipeline.from_pretrained(str(tiny_model))
    x = torch.rand(2, 3, 11, 7) * 2 - 1
    cfg = RestoreConfig(steps=10, depth=2, langevin_steps=3)
    res = pipe(x, seeds=[1, 2], config=cfg)
    assert [r.image.shape for r in res] == [(3, 11, 7)] * 2
    assert all(r.nfe == cfg.nfe == 2 + 4 + 2 for r in res)
    assert all(r.finite for r in res)
    assert res[0].info["size_mode"] == "native"


@pytest.mark.parametrize("tile", [0, 16])
def test_channels_last_on_cpu_changes_the_layout_not_the_result(tiny_model, tile):
    """The CPU default runs the network in channels_last; the images are those of the
    contiguous layout up to float32 rounding (a different order of sums)."""
    from code_cli.pipeline import memory_format

    assert memory_format(torch.device("cpu")) == torch.channels_last
    assert memory_format(torch.device("cuda")) == torch.contiguous_format  # not measured on a GPU
    pipe = CODEPipeline.from_pretrained(str(tiny_model))
    x = torch.rand(1, 3, 24, 40, generator=torch.Generator().manual_seed(0)) * 2 - 1
    cfg = RestoreConfig(steps=10, depth=2, langevin_steps=3, dtype="float32", device="cpu", tile=tile)
    out = {}
    for layout in ("contiguous", "auto"):
        pipe.layout = layout
        out[layout] = pipe(x, seeds=[3], config=cfg)[0].image
        conv = next(p for p in pipe.unet.parameters() if p.ndim == 4)
        assert conv.is_contiguous(memory_format=memory_format(torch.device("cpu"), layout))
    assert not conv.is_contiguous()  # auto really switched the weights to channels_last
    assert torch.allclose(out["auto"], out["contiguous"], atol=1e-4)

"""The prior's training loop: learning-rate schedule, seeding, resume, export,
training on a manifest, and the GPU recipe's code path (minus CUDA).

A tiny network on synthetic photographs stands in for the real run, so these
need neither the training photographs nor more than a few seconds.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch
from PIL import Image

from code_cli import models
from code_cli.prior.device import bundle, pack, unbundle
from code_cli.prior.manifest import PhotoEntry, read_manifest, write_manifest
from code_cli.prior.train import (
    SIZES,
    Runtime,
    TrainConfig,
    branch,
    build_unet,
    export,
    learning_rate,
    main,
    manifest_data,
    train,
)

TINY = TrainConfig(
    channels=(32, 32),
    layers_per_block=1,
    crop=16,
    batch=2,
    warmup=1,
    scales=(1.0, 0.5),
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


def test_a_branch_cools_a_copy_and_resumes_until_its_source_moves_on(tmp_path):
    """branch() copies the constant-rate run, resumes the copy while the source stays
    at the step it was copied from, and starts over from the source once it trained on."""
    src, cool = tmp_path / "run", tmp_path / "cool"
    train(src, minutes=60, max_steps=2, cfg=TINY, photos=photos())
    cooling = TrainConfig(**{**TINY.__dict__, "lr_end": 0.1})
    branch(src, cool)
    train(cool, minutes=60, max_steps=3, cfg=cooling, photos=photos())
    branch(src, cool)  # same source step: the copy resumes
    state = torch.load(train(cool, minutes=60, max_steps=4, cfg=cooling, photos=photos()), weights_only=True)
    assert state["step"] == 4 and [p["from_step"] for p in state["phases"]] == [0, 2]
    assert torch.load(src / "checkpoint.pt", weights_only=True)["step"] == 2  # the source is untouched
    train(src, minutes=60, max_steps=3, cfg=TINY, photos=photos())
    branch(src, cool)  # the source moved on: the copy starts again from it
    state = torch.load(train(cool, minutes=60, max_steps=4, cfg=cooling, photos=photos()), weights_only=True)
    assert [p["from_step"] for p in state["phases"]] == [0, 3]
    with pytest.raises(SystemExit, match="no checkpoint to branch from"):
        branch(tmp_path / "missing", tmp_path / "other")


def photo_folder(tmp_path, sizes: dict[str, tuple[int, int, str]]):
    """A photo folder with a manifest: {name: (width, height, split)}, random pixels saved as PNG."""
    rng = np.random.default_rng(1)
    entries = []
    for name, (w, h, split) in sizes.items():
        path = tmp_path / f"{name}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        entries.append(
            PhotoEntry(
                name=name,
                file=path.name,
                source="test",
                source_version="1",
                licence="CC0-1.0",
                attribution="test",
                width=w,
                height=h,
                subject="objects",
                split=split,
                sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
            )
        )
    return write_manifest(tmp_path, entries)


def test_training_on_a_manifest_uses_its_train_split_and_records_it(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    manifest = photo_folder(
        folder, {"a": (56, 40, "train"), "b": (40, 48, "train"), "h": (64, 64, "heldout"), "x": (50, 50, "excluded")}
    )
    data = manifest_data(folder, TINY.cap)
    assert data.names == ["a", "b"] and data.manifest == manifest.sha256
    ckpt = train(tmp_path / "run", minutes=60, max_steps=2, cfg=TINY, data=data)
    state = torch.load(ckpt, weights_only=True)
    assert state["photos"] == ["a", "b"]
    assert state["phases"][-1]["data"] == manifest.sha256
    export(ckpt, tmp_path / "prior")
    assert json.loads((tmp_path / "prior" / "training.json").read_text())["photos"] == ["a", "b"]


def test_size_m_is_the_24m_parameter_unet_of_issue_13():
    m = SIZES["m"]
    assert (m.channels, m.layers_per_block, m.crop, m.batch) == ((64, 128, 256, 256), 2, 64, 128)
    assert 23.5e6 < sum(p.numel() for p in build_unet(m).parameters()) < 24.5e6


def test_gpu_recipe_runs_on_cpu_and_its_fp16_shards_load_back(tmp_path):
    """bfloat16 autocast and channels_last through the same loop, then the export a
    device call returns: fp16 shards under a size limit, bundled, unbundled, loaded."""
    gpu_like = Runtime(device="cpu", bf16=True, channels_last=True)
    ckpt = train(tmp_path / "run", minutes=60, max_steps=3, cfg=TINY, photos=photos(), runtime=gpu_like)
    state = torch.load(ckpt, weights_only=True)
    assert state["step"] == 3 and state["runtime"]["bf16"] and np.isfinite(state["loss_avg"])
    limit_mb = 0.15
    export(ckpt, tmp_path / "exported", fp16=True, max_shard_mb=limit_mb)
    shards = sorted((tmp_path / "exported" / "unet").glob("*.safetensors"))
    assert len(shards) > 1
    # The limit counts tensor bytes; each file adds a small JSON header.
    assert all(s.stat().st_size < limit_mb * 1e6 + 8_000 for s in shards)
    returned = bundle(tmp_path / "exported", tmp_path / "out")
    assert len(returned) == len(shards) + 1 and all(f.parent == tmp_path / "out" for f in returned)
    unbundle(tmp_path / "out", tmp_path / "model")
    unet, _, info = models.load(str(tmp_path / "model"))
    assert next(unet.parameters()).dtype == torch.float32
    for k, v in unet.state_dict().items():
        torch.testing.assert_close(
            v, state["ema"][k].half().float(), rtol=0, atol=0, msg=f"{k} is not the fp16 EMA weight"
        )
    joined = hashlib.sha256(
        b"".join(s.read_bytes() for s in sorted((tmp_path / "model" / "unet").glob("*.safetensors")))
    )
    assert info.weights_sha256 == joined.hexdigest()


def test_a_cuda_run_without_cuda_says_so(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(SystemExit, match="no CUDA device"):
        main(["--out", str(tmp_path / "run"), "--size", "m", "--device", "cuda"])


def test_pack_keeps_small_photos_as_they_are_and_caps_large_ones(tmp_path):
    src = tmp_path / "photos"
    src.mkdir()
    photo_folder(src, {"big": (300, 200, "train"), "small": (90, 60, "train"), "held": (80, 80, "heldout")})
    pack(src, tmp_path / "pack", cap=120)
    packed = read_manifest(tmp_path / "pack", verify_files=True)
    by_name = {p.name: p for p in packed.photos}
    assert set(by_name) == {"big", "small"}
    assert (by_name["big"].width, by_name["big"].height, by_name["big"].file) == (120, 80, "big.png.webp")
    assert (tmp_path / "pack" / "small.png").read_bytes() == (src / "small.png").read_bytes()

"""What a new user met: foreign files under --skip-existing, file modes, threads, a failed start,
interruption, and the messages around them."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from code_cli import threads
from code_cli.cli import app
from code_cli.presets import build_config
from code_cli.runner import Events, Run, RunSpec
from tests.conftest import write_image

runner = CliRunner()
FAST = ["--preset", "default", "--steps", "10", "--depth", "2", "--langevin-steps", "2"]


def restore(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]


@pytest.fixture
def one(tmp_path) -> Path:
    return write_image(tmp_path / "in" / "a.png", (20, 14))


# -- 1. --skip-existing never replaces a file it cannot prove it made ------------------------------


def test_a_foreign_file_survives_skip_existing_and_is_reported(one, tmp_path, tiny_model):
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"the user's own file")
    r = restore(one, out, "--model", tiny_model, *FAST, "--skip-existing")
    assert r.exit_code == 1
    assert f"error: {out / 'a.png'}: exists and {out / 'run.jsonl'} has no record of making it; " \
           "use --overwrite to replace it" in r.output
    assert (out / "a.png").read_bytes() == b"the user's own file"
    assert [x["status"] for x in records(out)] == ["failed"]


def test_skip_existing_refuses_outputs_of_another_config_a_lost_log_or_a_changed_file(one, tmp_path, tiny_model):
    out = tmp_path / "out"
    assert restore(one, out, "--model", tiny_model, *FAST).exit_code == 0
    made = (out / "a.png").read_bytes()
    # same config: skipped, untouched
    r = restore(one, out, "--model", tiny_model, *FAST, "--skip-existing")
    assert r.exit_code == 0 and records(out)[-1]["status"] == "skipped"
    # another seed: the file is another run's result, not this one's
    r = restore(one, out, "--model", tiny_model, *FAST, "--seed", "7", "--skip-existing")
    assert r.exit_code == 1 and "exists and was made with another config" in r.output
    assert (out / "a.png").read_bytes() == made
    # changed by someone since it was written
    (out / "a.png").write_bytes(made + b"edited")
    r = restore(one, out, "--model", tiny_model, *FAST, "--skip-existing")
    assert r.exit_code == 1 and "exists and was changed since it was written" in r.output
    assert (out / "a.png").read_bytes() == made + b"edited"
    # the log is gone: nothing proves anything
    (out / "a.png").write_bytes(made)
    (out / "run.jsonl").unlink()
    r = restore(one, out, "--model", tiny_model, *FAST, "--skip-existing")
    assert r.exit_code == 1 and "has no record of making it" in r.output
    assert (out / "a.png").read_bytes() == made
    # --overwrite is the one way to replace it
    r = restore(one, out, "--model", tiny_model, *FAST, "--seed", "7", "--overwrite")
    assert r.exit_code == 0 and (out / "a.png").read_bytes() != made


def test_skip_existing_refuses_an_output_made_from_another_input(tmp_path, tiny_model):
    a = write_image(tmp_path / "one" / "x.png", seed=1)
    b = write_image(tmp_path / "two" / "x.png", seed=2)
    out = tmp_path / "out"
    assert restore(a, out, "--model", tiny_model, *FAST).exit_code == 0
    r = restore(b, out, "--model", tiny_model, *FAST, "--skip-existing")
    assert r.exit_code == 1 and f"was made from another input ({a})" in r.output


# -- 2. outputs honour the umask ----------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o022, 0o077])
def test_every_file_written_honours_the_umask(one, tmp_path, tiny_model, mask):
    out = tmp_path / "out"
    old = os.umask(mask)
    try:
        r = restore(one, out, "--model", tiny_model, *FAST, "--grid")
    finally:
        os.umask(old)
    assert r.exit_code == 0, r.output
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"a.png", "run.jsonl"} and any(p.suffix == ".yaml" for p in files)
    for p in files:
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~mask, p


# -- 3. CPU threads -------------------------------------------------------------------------------


def test_cgroup_quota_caps_the_cpu_count(tmp_path):
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert threads.cgroup_cpu_limit(tmp_path) == 1.5
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert threads.cgroup_cpu_limit(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("200000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert threads.cgroup_cpu_limit(v1) == 2.0
    assert threads.cgroup_cpu_limit(tmp_path / "nothing") is None


def test_available_cpus_follows_the_affinity_mask_and_the_quota(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: None)
    assert threads.available_cpus() == 4
    monkeypatch.setattr(threads, "cgroup_cpu_limit", lambda: 1.5)
    assert threads.available_cpus() == 2


def test_openmp_waits_passively_unless_the_user_said_otherwise(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    threads.passive_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    threads.passive_openmp()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"


def test_threads_flag_sets_torch_threads(one, tmp_path, tiny_model):
    before = torch.get_num_threads()
    try:
        r = restore(one, tmp_path / "out", "--model", tiny_model, *FAST, "--threads", "1")
        assert r.exit_code == 0, r.output
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    r = restore(one, tmp_path / "out2", "--model", tiny_model, *FAST, "--threads", "-1")
    assert r.exit_code == 2 and "--threads" in r.output


# -- 5. a failed start leaves nothing -------------------------------------------------------------


def test_no_output_folder_after_a_device_error(one, tmp_path, tiny_model, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = tmp_path / "out"
    r = restore(one, out, "--model", tiny_model, *FAST, "--device", "cuda")
    assert r.exit_code == 2
    assert "--device cuda: no CUDA device is available here" in r.output
    assert not out.exists()


def test_no_output_folder_after_a_model_error(one, tmp_path):
    out = tmp_path / "out"
    r = restore(one, out, "--model", tmp_path / "not-a-model", *FAST)
    assert r.exit_code == 2
    assert not out.exists()


def test_each_config_is_kept_beside_the_outputs_it_made(one, tmp_path, tiny_model):
    out = tmp_path / "out"
    restore(one, out, "--model", tiny_model, *FAST)
    restore(one, out, "--model", tiny_model, *FAST, "--seed", "3", "--suffix", "_3")
    hashes = {r["config_hash"] for r in records(out)}
    assert len(hashes) == 2
    assert sorted(p.stem for p in (out / "configs").glob("*.yaml")) == sorted(hashes)
    for r in records(out):
        cfg = (out / "configs" / f"{r['config_hash']}.yaml").read_text()
        assert f"seed: {r['params']['seed']}" in cfg


# -- 6. interruption and progress -----------------------------------------------------------------


class StopAfter(Events):
    def __init__(self, n: int):
        self.n, self.finished = n, 0

    def done(self, job, seconds, nfe, edited=True):
        self.finished += 1


def test_a_stop_keeps_finished_images_and_counts_what_is_left(tmp_path, tiny_model):
    from code_cli.pipeline import CODEPipeline

    for i in range(4):
        write_image(tmp_path / "in" / f"{i}.png", (16, 16), seed=i)
    cfg, name = build_config("default", {"model": str(tiny_model), "steps": 10, "depth": 2, "langevin_steps": 2})
    events = StopAfter(1)
    run = Run(RunSpec(input=str(tmp_path / "in"), output=tmp_path / "out"), cfg, name, events)
    plan = run.plan()
    pipe = CODEPipeline.from_pretrained(cfg.model)
    run.start(pipe)
    summary = run.execute(pipe, plan, stop=lambda: events.finished >= 1)
    assert summary.interrupted and summary.ok == 1 and summary.left == 3
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["0.png"]


def test_dry_run_estimates_time_and_says_when_tiles_are_used(tmp_path, tiny_model):
    write_image(tmp_path / "in" / "small.png", (20, 14))
    r = restore(tmp_path / "in", tmp_path / "out", "--model", tiny_model, *FAST, "--dry-run")
    assert r.exit_code == 0, r.output
    assert "1 restoration, 7 network calls each, 7 network calls in all (preset default); about " in r.output
    assert "tiles" not in r.output
    r = restore(tmp_path / "in", tmp_path / "out", "--model", tiny_model, *FAST, "--dry-run", "--tile", "32")
    assert "small.png: 20x14" not in r.output  # smaller than a tile: not tiled
    write_image(tmp_path / "in" / "wide.png", (80, 40))
    r = restore(tmp_path / "in", tmp_path / "out", "--model", tiny_model, *FAST, "--dry-run", "--tile", "32")
    assert "2 restorations" in r.output
    assert "wide.png: 80x40 runs each network call on 6 tiles of 32 px" in r.output
    assert not (tmp_path / "out").exists()


# -- 7. help and messages -------------------------------------------------------------------------


def test_an_unquoted_glob_gets_a_hint_to_quote_it(tmp_path):
    r = runner.invoke(app, ["a.png", "b.png", "c.png", str(tmp_path / "out")])
    assert r.exit_code == 2
    assert "quote a glob ('photos/*.jpg')" in r.output


def test_help_lists_every_output_format():
    r = runner.invoke(app, ["--help"], terminal_width=200)
    assert "same | png | jpg | jpeg | webp | tif | tiff | bmp" in " ".join(r.output.split())


def test_file_names_with_brackets_print_as_they_are(tmp_path, tiny_model):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "photo[1].png").write_bytes(b"")
    r = restore(tmp_path / "in", tmp_path / "out", "--model", tiny_model, *FAST)
    assert r.exit_code == 1
    assert f"error: {tmp_path / 'in' / 'photo[1].png'}: empty file (0 bytes)" in r.output


def test_dry_run_shows_what_auto_would_do_with_each_image(tmp_path, tiny_model):
    import numpy as np
    from PIL import Image

    d = tmp_path / "in"
    d.mkdir()
    rng = np.random.default_rng(0)
    smooth = np.tile(np.linspace(40, 200, 32, dtype=np.uint8), (32, 1))
    Image.fromarray(np.stack([smooth] * 3, -1)).save(d / "clean.png")
    noisy = np.clip(smooth[..., None] + rng.normal(0, 40, (32, 32, 3)), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(d / "noisy.png")
    r = restore(d, tmp_path / "out", "--model", tiny_model, "--preset", "auto", "--dry-run")
    assert r.exit_code == 0, r.output
    lines = {line.split(" -> ")[0].rsplit("/", 1)[-1]: line for line in r.output.splitlines() if " -> " in line}
    assert "left unedited (0 calls)" in lines["clean.png"]
    assert "is the diffusion noise at t = " in lines["noisy.png"] and "left unedited" not in lines["noisy.png"]
    assert "2 restorations, chosen per image, 1 left unedited, " in r.output
    assert not (tmp_path / "out").exists()

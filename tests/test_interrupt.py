"""Interrupting a run (SIGINT, SIGKILL) and resuming it gives the uninterrupted run's files."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import write_image

pytestmark = pytest.mark.slow
ARGS = ["--steps", "20", "--depth", "4", "--langevin-steps", "6"]


def images(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in folder.glob("*.png")}


def start(inp: Path, out: Path, model: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "code_cli", str(inp), str(out), "--model", str(model), *ARGS, *extra]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_first_output(out: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if list(out.glob("*.png")) or proc.poll() is not None:
            return
        time.sleep(0.05)
    raise AssertionError("no output appeared")


@pytest.fixture
def batch(tmp_path, tiny_model):
    d = tmp_path / "in"
    for i in range(6):
        write_image(d / f"img{i}.png", (48, 40), seed=i)
    ref = tmp_path / "reference"
    done = start(d, ref, tiny_model)
    assert done.wait(300) == 0, done.stdout.read()
    return d, images(ref)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_interrupt_then_resume_matches_an_uninterrupted_run(tmp_path, tiny_model, batch, sig):
    d, reference = batch
    out = tmp_path / "out"
    proc = start(d, out, tiny_model)
    wait_for_first_output(out, proc)
    proc.send_signal(sig)
    code = proc.wait(120)
    log = proc.stdout.read()
    if sig == signal.SIGINT:
        assert code == 130, log
        assert "stopping at the next network call" in log
        assert "interrupted: " in log and " left; resume with --skip-existing" in log
    else:
        assert code == -signal.SIGKILL
    partial = images(out)
    assert 1 <= len(partial) < 6, "interrupt came too late to test anything"
    for name, data in partial.items():
        assert data == reference[name]  # every finished output intact
    resumed = start(d, out, tiny_model, "--skip-existing")
    assert resumed.wait(300) == 0, resumed.stdout.read()
    assert images(out) == reference  # byte for byte
    assert not list(out.rglob("*.part"))

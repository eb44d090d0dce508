"""Several processes under torchrun give exactly the files of one process, and one merged log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from code_cli import distributed
from code_cli.runlog import finished_outputs, merge_rank_logs
from tests.conftest import write_image

ARGS = ["--preset", "default", "--steps", "10", "--depth", "2", "--langevin-steps", "2"]


def test_rank_comes_from_the_launchers_environment():
    assert distributed.from_env({}) == distributed.Rank(0, 1, 0, 1)
    r = distributed.from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert (r.rank, r.world, r.local_rank, r.local_world, r.is_main, r.multi) == (3, 4, 1, 2, False, True)
    with pytest.raises(ValueError):
        distributed.from_env({"RANK": "2", "WORLD_SIZE": "2"})


def test_shards_cover_the_list_once_whatever_the_world_size():
    items = list(range(11))
    for world in (1, 2, 3, 8, 16):
        parts = [distributed.shard(items, distributed.Rank(r, world)) for r in range(world)]
        assert sorted(x for p in parts for x in p) == items


def test_rank_logs_merge_into_run_jsonl_and_a_crashed_ranks_log_still_proves_its_outputs(tmp_path):
    (tmp_path / "run.jsonl").write_text('{"status": "ok", "output": "o/a.png", "relpath": "a.png"}\n')
    (tmp_path / "run.rank1.jsonl").write_text('{"status": "ok", "output": "o/c.png", "relpath": "c.png"}\n')
    (tmp_path / "run.rank0.jsonl").write_text('{"status": "ok", "output": "o/b.png", "relpath": "b.png"}\n')
    assert set(finished_outputs(tmp_path)) == {"a.png", "b.png", "c.png"}  # before the merge too
    assert merge_rank_logs(tmp_path) == 2
    lines = [json.loads(x)["relpath"] for x in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert lines == ["a.png", "b.png", "c.png"]
    assert not list(tmp_path.glob("run.rank*"))


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_two_cpu_processes_under_torchrun_write_the_files_of_one(tmp_path, tiny_model):
    d = tmp_path / "in"
    for i in range(5):
        write_image(d / f"img{i}.png", (24, 16), seed=i)
    one, two = tmp_path / "one", tmp_path / "two"
    # same threads per process: the summation order of a convolution may depend on the thread count
    common = ["--model", str(tiny_model), *ARGS, "--device", "cpu", "--threads", "1"]
    r = run([sys.executable, "-m", "code_cli", str(d), str(one), *common])
    assert r.returncode == 0, r.stderr
    r = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
             "-m", "code_cli", str(d), str(two), *common])
    assert r.returncode == 0, r.stdout + r.stderr
    files = lambda p: {f.name: f.read_bytes() for f in Path(p).glob("*.png")}  # noqa: E731
    assert files(two) == files(one) and len(files(one)) == 5
    recs = [json.loads(x) for x in (two / "run.jsonl").read_text().splitlines()]
    assert sorted(x["relpath"] for x in recs) == [f"img{i}.png" for i in range(5)]
    assert {x["status"] for x in recs} == {"ok"} and len({x["run_id"] for x in recs}) == 1
    assert not list(two.glob("run.rank*"))
    assert "[rank 1] ok " in r.stderr and r.stdout.count("log") == 1  # one summary, from rank 0
    # a second run resumes across ranks: everything is proved, nothing redone
    r = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
             "-m", "code_cli", str(d), str(two), *common, "--skip-existing"])
    assert r.returncode == 0, r.stderr
    recs = [json.loads(x) for x in (two / "run.jsonl").read_text().splitlines()]
    assert [x["status"] for x in recs[5:]].count("skipped") == 5

"""The command line with CliRunner on small real files and a tiny model."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from PIL import Image
from typer.testing import CliRunner

from code_cli.cli import app
from code_cli.presets import DEFAULT_PRESET
from tests.conftest import write_image

runner = CliRunner()
FAST = ["--steps", "10", "--depth", "2", "--langevin-steps", "2"]


def restore(*args: str):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def records(out):
    return [json.loads(line) for line in (out / "run.jsonl").read_text().splitlines()]


@pytest.fixture
def inputs(tmp_path):
    d = tmp_path / "in"
    write_image(d / "a.png", (20, 14))
    write_image(d / "b.jpg", (17, 9), seed=1)
    write_image(d / "grey.png", (12, 12), mode="L", seed=2)
    write_image(d / "rgba.png", (10, 13), mode="RGBA", seed=3)
    return d


def test_restores_a_folder_with_sizes_modes_and_log(inputs, tmp_path, tiny_model):
    out = tmp_path / "out"
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    r = restore(inputs, out, "--model", tiny_model, *FAST, "--grid")
    assert r.exit_code == 0, r.output
    for name in before:
        src, dst = Image.open(inputs / name), Image.open(out / name)
        assert dst.size == src.size
        assert dst.mode == src.mode
    alpha_in = Image.open(inputs / "rgba.png").getchannel("A").tobytes()
    assert Image.open(out / "rgba.png").getchannel("A").tobytes() == alpha_in
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before  # inputs untouched
    recs = records(out)
    assert [r["status"] for r in recs] == ["ok"] * 4
    rec = recs[0]
    for key in ("input", "output", "status", "error", "seed", "nfe", "seconds", "config_hash"):
        assert key in rec
    keys = ("method", "preset", "model", "model_sha256", "steps", "depth", "epsilon", "device", "dtype", "cbc", "eta")
    for key in keys:
        assert key in rec["params"], key
    assert rec["nfe"] == 2 + 3 + 2
    assert rec["params"]["preset"] == DEFAULT_PRESET
    cfg = yaml.safe_load((out / "configs" / f"{rec['config_hash']}.yaml").read_text())
    assert cfg["steps"] == 10 and cfg["depth"] == 2
    assert (out / "grids" / "a.png").is_file()
    assert not list(out.rglob("*.part"))


def test_same_seed_same_output_alone_or_with_others(inputs, tmp_path, tiny_model):
    restore(inputs, tmp_path / "all", "--model", tiny_model, *FAST)
    restore(inputs / "a.png", tmp_path / "one", "--model", tiny_model, *FAST)
    assert (tmp_path / "all" / "a.png").read_bytes() == (tmp_path / "one" / "a.png").read_bytes()
    restore(inputs / "a.png", tmp_path / "seed1", "--model", tiny_model, *FAST, "--seed", "1")
    assert (tmp_path / "seed1" / "a.png").read_bytes() != (tmp_path / "one" / "a.png").read_bytes()


# Batched convolutions sum in another order: one grey level at most in float32; bfloat16's
# 8-bit mantissa turns the same reordering into a few levels (2 measured on this model).
@pytest.mark.parametrize("dtype,levels", [("float32", 1), ("bfloat16", 4)])
def test_batching_does_not_change_results(tmp_path, tiny_model, dtype, levels):
    d = tmp_path / "in"
    for i in range(3):
        write_image(d / f"{i}.png", (16, 16), seed=i)
    restore(d, tmp_path / "b1", "--model", tiny_model, *FAST, "--batch-size", "1", "--dtype", dtype)
    restore(d, tmp_path / "b3", "--model", tiny_model, *FAST, "--batch-size", "3", "--dtype", dtype)
    for i in range(3):
        a = Image.open(tmp_path / "b1" / f"{i}.png").tobytes()
        b = Image.open(tmp_path / "b3" / f"{i}.png").tobytes()
        assert max(abs(x - y) for x, y in zip(a, b)) <= levels


def test_sdedit_and_samples(inputs, tmp_path, tiny_model):
    out = tmp_path / "out"
    r = restore(inputs / "a.png", out, "--model", tiny_model, "--method", "sdedit", "--steps", "10", "--depth", "3",
                "--samples", "2")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.glob("*.png")) == ["a_s0.png", "a_s1.png"]
    recs = records(out)
    assert [x["nfe"] for x in recs] == [3, 3]
    assert recs[0]["seed"] != recs[1]["seed"]


def test_half_precision_is_a_flag_and_stays_close_to_float32(inputs, tmp_path, tiny_model):
    restore(inputs / "a.png", tmp_path / "f32", "--model", tiny_model, *FAST, "--dtype", "float32")
    assert records(tmp_path / "f32")[0]["params"]["dtype"] == "float32"
    r = restore(inputs / "a.png", tmp_path / "bf16", "--model", tiny_model, *FAST, "--dtype", "bfloat16")
    assert r.exit_code == 0, r.output
    assert records(tmp_path / "bf16")[0]["params"]["dtype"] == "bfloat16"
    a = Image.open(tmp_path / "f32" / "a.png").tobytes()
    b = Image.open(tmp_path / "bf16" / "a.png").tobytes()
    assert a != b  # the flag reached the network
    assert max(abs(x - y) for x, y in zip(a, b)) <= 8


def test_dtype_auto_is_bfloat16_only_on_a_cpu_with_bfloat16_instructions(inputs, tmp_path, tiny_model):
    from code_cli.pipeline import cpu_has_native_bf16, resolve_dtype

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_dtype("auto", cpu, native_bf16=True) == "bfloat16"
    assert resolve_dtype("auto", cpu, native_bf16=False) == "float32"
    assert resolve_dtype("auto", cuda, native_bf16=True) == "float32"  # not measured on a GPU
    assert resolve_dtype("float16", cpu, native_bf16=False) == "float16"  # a given dtype is kept
    zen4 = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16 avx512_vnni\n"
    icelake = "flags\t\t: fpu sse avx2 avx512f avx512bw avx512_vnni\n"
    sapphire = "flags\t\t: avx512f amx_bf16 amx_tile\n"
    assert cpu_has_native_bf16(zen4) and cpu_has_native_bf16(sapphire)
    assert not cpu_has_native_bf16(icelake) and not cpu_has_native_bf16("")
    # The run log records the dtype the network really ran in, not "auto".
    r = restore(inputs / "a.png", tmp_path / "out", "--model", tiny_model, *FAST)
    assert r.exit_code == 0, r.output
    expected = "bfloat16" if cpu_has_native_bf16() else "float32"
    assert records(tmp_path / "out")[0]["params"]["dtype"] == expected


def test_recursive_mirrors_and_excludes_output_inside_input(tmp_path, tiny_model):
    d = tmp_path / "in"
    write_image(d / "top.png")
    write_image(d / "sub" / "deep.png")
    out = d / "restored"
    r = restore(d, out, "--model", tiny_model, *FAST, "--recursive")
    assert r.exit_code == 0, r.output
    assert (out / "sub" / "deep.png").is_file() and (out / "top.png").is_file()
    r = restore(d, out, "--model", tiny_model, *FAST, "--recursive", "--overwrite")
    assert r.exit_code == 0
    assert not (out / "restored").exists()  # its own outputs were not scanned as inputs


def test_glob_input_and_suffix_and_format(inputs, tmp_path, tiny_model):
    out = tmp_path / "out"
    r = restore(str(inputs / "*.png"), out, "--model", tiny_model, *FAST, "--suffix", "_r", "--format", "webp")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in out.glob("*.webp")) == ["a_r.webp", "grey_r.webp", "rgba_r.webp"]


def test_existing_outputs_are_not_overwritten_unless_asked(inputs, tmp_path, tiny_model):
    out = tmp_path / "out"
    restore(inputs / "a.png", out, "--model", tiny_model, *FAST)
    stamp = (out / "a.png").stat().st_mtime_ns
    r = restore(inputs / "a.png", out, "--model", tiny_model, *FAST)
    assert r.exit_code == 1
    assert "exists" in r.output and "--overwrite" in r.output
    assert (out / "a.png").stat().st_mtime_ns == stamp
    r = restore(inputs / "a.png", out, "--model", tiny_model, *FAST, "--skip-existing")
    assert r.exit_code == 0
    assert records(out)[-1]["status"] == "skipped"
    # another config's output is not this run's to skip nor to replace
    r = restore(inputs / "a.png", out, "--model", tiny_model, *FAST[:-1], "3", "--skip-existing")
    assert r.exit_code == 1 and "exists and was made with another config" in r.output
    assert records(out)[-1]["status"] == "failed"
    assert (out / "a.png").stat().st_mtime_ns == stamp


def test_a_bad_image_does_not_stop_the_batch(inputs, tmp_path, tiny_model):
    (inputs / "empty.png").write_bytes(b"")
    (inputs / "text.jpg").write_text("not an image")
    out = tmp_path / "out"
    r = restore(inputs, out, "--model", tiny_model, *FAST)
    assert r.exit_code == 1
    assert "empty.png: empty file (0 bytes)" in r.output
    assert "text.jpg: not an image" in r.output
    assert "Traceback" not in r.output
    recs = {x["input"].rsplit("/", 1)[-1]: x for x in records(out)}
    assert recs["empty.png"]["status"] == "failed" and recs["a.png"]["status"] == "ok"
    assert not (out / "empty.png").exists()


def test_output_name_collisions_are_refused(tmp_path, tiny_model):
    d = tmp_path / "in"
    write_image(d / "x.png")
    write_image(d / "x.jpg", seed=1)
    r = restore(d, tmp_path / "out", "--model", tiny_model, *FAST, "--format", "png")
    assert r.exit_code == 1
    assert "already the output of" in r.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["--preset", "nosuch"], "unknown preset 'nosuch'"),
        (["--depth", "50"], "error: --depth: must be in [1, steps=10], got 50"),
        (["--epsilon", "-1"], "error: --epsilon: must be >= 0, got -1.0"),
        (["--quantile", "1.5"], "error: --quantile: must be in (0, 1], got 1.5"),
        (["--method", "ddpm"], "error: --method: must be one of code, sdedit, got 'ddpm'"),
        (["--dtype", "float8"], "error: --dtype: must be one of auto, float32, float16, bfloat16, got 'float8'"),
        (["--model", "no/such-model"], "no/such-model: the Hugging Face hub cannot be reached"),
    ],
)
def test_usage_and_config_errors_exit_2_with_one_line(inputs, tmp_path, tiny_model, args, message):
    base = ["--model", tiny_model, "--steps", "10"]
    r = restore(inputs, tmp_path / "out", *base, *args)
    assert r.exit_code == 2
    assert message in r.output
    assert "Traceback" not in r.output


@pytest.mark.parametrize("flag,value", [
    ("--steps", "0"), ("--depth", "0"), ("--epsilon", "-0.5"), ("--samples", "0"), ("--batch-size", "0"),
    ("--tile", "7"), ("--quantile", "0"), ("--eta", "0"), ("--seed", "-1"),
])
def test_a_bad_flag_value_names_the_flag_not_the_preset(inputs, tmp_path, tiny_model, flag, value):
    r = restore(inputs, tmp_path / "out", "--model", tiny_model, flag, value)
    assert r.exit_code == 2
    [line] = [x for x in r.output.splitlines() if x.startswith("error:")]
    assert line.startswith(f"error: {flag}: must be "), line
    assert ".yaml" not in line
    assert not (tmp_path / "out").exists()


def test_steps_below_the_presets_depth_names_the_flag_and_the_preset_line(inputs, tmp_path, tiny_model):
    p = tmp_path / "mine.yaml"
    p.write_text("steps: 100\ndepth: 20\n")
    r = restore(inputs, tmp_path / "out", "--model", tiny_model, "--preset", p, "--steps", "10")
    assert r.exit_code == 2
    assert f"error: --steps: must be >= depth 20 (from {p}:2), got 10" in r.output
    p.write_text("steps: 10\ndepth: 20\n")
    r = restore(inputs, tmp_path / "out", "--model", tiny_model, "--preset", p)
    assert f"error: {p}:2: key 'depth' must be in [1, steps=10], got 20" in r.output


def test_preset_yaml_errors_name_file_line_and_key(inputs, tmp_path, tiny_model):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: 10\ndepht: 3\n")
    r = restore(inputs, tmp_path / "out", "--preset", bad)
    assert r.exit_code == 2
    assert f"{bad}:2: unknown key 'depht' (did you mean 'depth'?)" in r.output
    bad.write_text("steps: [1\n")
    r = restore(inputs, tmp_path / "out", "--preset", bad)
    assert r.exit_code == 2 and f"{bad}:2: YAML syntax error" in r.output
    bad.write_text("steps: ten\n")
    r = restore(inputs, tmp_path / "out", "--preset", bad)
    assert r.exit_code == 2 and f"{bad}:1: key 'steps' expects int, got 'ten'" in r.output


def test_output_equal_to_input_is_refused(inputs, tiny_model):
    r = restore(inputs, inputs, "--model", tiny_model)
    assert r.exit_code == 2 and "inputs are never modified" in r.output


def test_dry_run_lists_and_writes_nothing(inputs, tmp_path):
    r = restore(inputs, tmp_path / "out", "--dry-run", "--preset", "default")
    assert r.exit_code == 0
    assert "4 restorations, 33 network calls each, 132 network calls in all (preset default); about " in r.output
    assert not (tmp_path / "out").exists()


def test_version_and_list_presets():
    r = restore("--version")
    assert r.exit_code == 0 and r.output.startswith("code-restore ")
    r = restore("--list-presets")
    assert r.exit_code == 0 and "default" in r.output


def test_missing_input_is_a_usage_error(tmp_path):
    r = restore(tmp_path / "nope", tmp_path / "out")
    assert r.exit_code == 2 and "no such file, folder or matching glob" in r.output


def test_sdedit_over_auto_asks_for_a_depth(inputs, tmp_path, tiny_model):
    r = restore(inputs / "a.png", tmp_path / "out", "--model", tiny_model, "--method", "sdedit")
    assert r.exit_code == 2
    assert "error: --method sdedit: needs --depth (the preset leaves the depth to auto mode)" in r.output
    r = restore(inputs / "a.png", tmp_path / "out", "--model", tiny_model, "--method", "sdedit", "--depth", "3")
    assert r.exit_code == 0, r.output


def test_file_names_print_as_they_are(tmp_path, tiny_model):
    # neither rich markup ("[1]") nor emoji codes (":smile:") may rewrite a file name in the report
    d = tmp_path / "in"
    write_image(d / "a:smile:[1].png", (12, 10))
    r = restore(d, tmp_path / "out", "--model", tiny_model, *FAST)
    assert r.exit_code == 0, r.output
    assert "a:smile:[1].png" in r.output and "\U0001f604" not in r.output

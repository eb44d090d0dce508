"""The speed benchmark runs on CPU and reports what it claims to measure."""

from __future__ import annotations

import pytest
import torch

from code_cli.bench import speed


def test_speed_bench_prints_one_row_per_dtype_and_batch(tiny_model, capsys):
    speed.main(["--model", str(tiny_model), "--device", "cpu", "--size", "16", "--batch", "1", "2",
                "--dtype", "float32", "bfloat16", "--preset", "fine",
                "--layout", "contiguous", "channels_last"])
    out = capsys.readouterr().out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith(("| float", "| bfloat"))]
    assert [(r[0].strip(), r[1].strip(), r[2].strip()) for r in rows] == [
        (d, b, v) for v in ("contiguous", "channels_last") for d in ("float32", "bfloat16") for b in "12"]
    for r in rows:
        s_image, s_call, ms_call_image, bare_ms, overhead, peak = (float(r[i]) for i in (3, 4, 5, 6, 7, 9))
        assert min(s_image, s_call, bare_ms, peak) > 0
        assert s_call == pytest.approx(s_image * int(r[1]) / 25, rel=0.01, abs=1e-4)  # 25 calls per image
        # s / call is printed to 0.1 ms: its rounding bounds the agreement (a tiny model takes a few ms)
        assert ms_call_image == pytest.approx(s_call * 1e3 / int(r[1]), rel=0.01, abs=0.051)
        # from the printed (rounded) columns: ms/call/image has 2 decimals, ms/call of the bare network too
        assert overhead == pytest.approx(ms_call_image * int(r[1]) / bare_ms, rel=0.05)
    assert [r[10].strip() for r in rows[:2]] == ["-", "-"]
    bf16 = [float(r[10]) for r in rows[2:4] + rows[6:]]  # PSNR of bfloat16 against float32: close, not identical
    assert all(30 < p < 200 for p in bf16), bf16
    # channels_last in float32 changes the order of sums at most: the same result to rounding
    assert all(float(r[10]) > 60 for r in rows[4:6]), rows[4:6]
    assert "(25 calls)" in out


def test_flops_per_call_counts_a_convolution_exactly():
    class Conv(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False)

        def forward(self, x, t):
            return self.conv(x)

    x = torch.zeros(1, 3, 16, 12)
    assert speed.flops_per_call(Conv(), x) == 2 * 3 * 8 * 3 * 3 * 16 * 12  # a multiply and an add per weight and pixel


def test_examples_mode_times_and_scores_each_photo_per_dtype(tiny_model, tmp_path, capsys):
    import numpy as np
    from PIL import Image

    clean, corrupted = tmp_path / "clean", tmp_path / "corrupted"
    clean.mkdir()
    corrupted.mkdir()
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    Image.fromarray(photo).save(clean / "cat.png")
    noisy = np.clip(photo + rng.normal(0, 40, photo.shape), 0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(corrupted / "cat-gaussian_noise-3.png")
    Image.fromarray(photo).save(corrupted / "cat-none-0.png")
    speed.main(["--model", str(tiny_model), "--device", "cpu", "--preset", "fine", "--dtype", "float32", "bfloat16",
                "--examples", str(corrupted), "--clean", str(clean)])
    out = capsys.readouterr().out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| cat-")]
    assert [r[0].strip() for r in rows] == ["cat-gaussian_noise-3.png", "cat-none-0.png"]
    assert float(rows[1][2]) == float("inf") or float(rows[1][2]) > 90  # the clean photo against itself
    assert float(rows[0][2]) < 25
    for r in rows:
        assert int(r[1]) == 25 and min(float(r[3]), float(r[5])) > 0
    assert "bfloat16 auto: " in out and "the speed of float32 auto" in out

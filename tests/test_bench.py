"""The speed benchmark runs on CPU and reports what it claims to measure."""

from __future__ import annotations

import pytest
import torch

from code_cli.bench import speed


def test_speed_bench_prints_one_row_per_dtype_and_batch(tiny_model, capsys):
    speed.main(["--model", str(tiny_model), "--device", "cpu", "--size", "16", "--batch", "1", "2",
                "--dtype", "float32", "bfloat16", "--preset", "fine"])
    out = capsys.readouterr().out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith(("| float", "| bfloat"))]
    assert [(r[0].strip(), r[1].strip()) for r in rows] == [
        ("float32", "1"), ("float32", "2"), ("bfloat16", "1"), ("bfloat16", "2")]
    for r in rows:
        s_image, s_call, ms_call_image, bare_ms, overhead, peak = (float(r[i]) for i in (3, 4, 5, 6, 7, 9))
        assert min(s_image, s_call, bare_ms, peak) > 0
        assert s_call == pytest.approx(s_image * int(r[1]) / 25, rel=0.01, abs=1e-4)  # 25 calls per image
        assert ms_call_image == pytest.approx(s_call * 1e3 / int(r[1]), rel=0.01, abs=0.01)
        # from the printed (rounded) columns: ms/call/image has 2 decimals, ms/call of the bare network too
        assert overhead == pytest.approx(ms_call_image * int(r[1]) / bare_ms, rel=0.05)
    assert [r[10].strip() for r in rows[:2]] == ["-", "-"]
    bf16 = [float(r[10]) for r in rows[2:]]  # PSNR of bfloat16 against float32: close, not identical
    assert all(30 < p < 200 for p in bf16), bf16
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

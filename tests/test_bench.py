"""The speed benchmark runs on CPU and reports what it claims to measure."""

from __future__ import annotations

from code_cli.bench import speed


def test_speed_bench_prints_one_row_per_dtype_and_batch(tiny_model, capsys):
    speed.main(["--model", str(tiny_model), "--device", "cpu", "--size", "16", "--batch", "1", "2",
                "--dtype", "float32", "bfloat16", "--preset", "fine"])
    out = capsys.readouterr().out
    rows = [line.split("|")[1:-1] for line in out.splitlines() if line.startswith("| float") or line.startswith("| bfloat")]
    assert [(r[0].strip(), r[1].strip()) for r in rows] == [
        ("float32", "1"), ("float32", "2"), ("bfloat16", "1"), ("bfloat16", "2")]
    for r in rows:
        assert float(r[3]) > 0 and float(r[4]) > 0 and float(r[5]) > 0  # s/image, calls/s, peak MB
    assert [r[6].strip() for r in rows[:2]] == ["-", "-"]
    bf16 = [float(r[6]) for r in rows[2:]]  # PSNR of bfloat16 against float32: close, not identical
    assert all(30 < p < 200 for p in bf16), bf16
    assert "(25 calls)" in out

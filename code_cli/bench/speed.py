"""Throughput, memory and precision of the restoration pipeline on one device.

    python -m code_cli.bench.speed --device cuda --size 256 --batch 1 8 32 --dtype float32 bfloat16 float16

For each dtype and batch size: seconds per image, network calls per second and
peak memory, after one untimed warm-up batch; and the PSNR of each result
against the float32 result of the same image and seed on the same device (how
much a lower precision changes the output). With --reference-cpu the float32
result is also compared with the CPU's (same seeds: noise is drawn on the CPU).
Prints a Markdown table; figures are from one run: compare ratios, not seconds
across machines.
"""

from __future__ import annotations

import argparse
import resource
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from code_cli.bench.metrics import psnr, to_unit
from code_cli.pipeline import DTYPES, CODEPipeline, RestoreResult, resolve_device
from code_cli.presets import build_config

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "corrupted" / "chelsea-gaussian_noise-3.png"


def example_batch(size: int, batch: int) -> torch.Tensor:
    """`batch` crops of a bundled example (or a seeded random image) at size x size, in [-1, 1]."""
    if EXAMPLE.exists():
        im = Image.open(EXAMPLE).convert("RGB").resize((size, size), Image.Resampling.BICUBIC)
        x = torch.from_numpy(np.asarray(im, np.float32) / 127.5 - 1).permute(2, 0, 1)
    else:
        x = torch.rand(3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1
    return x.unsqueeze(0).repeat(batch, 1, 1, 1)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # process peak RSS (Linux: KiB)


def worst_psnr(results: list[RestoreResult], reference: list[RestoreResult]) -> float:
    """The lowest PSNR of a batch's results against the same images' reference results."""
    return min(psnr(to_unit(r.image), to_unit(q.image)) for r, q in zip(results, reference))


def timed(pipe: CODEPipeline, x: torch.Tensor, cfg, device: torch.device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    results = pipe(x, seeds=list(range(len(x))), config=cfg)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return results, time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model spec (default: the preset's)")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--dtype", nargs="+", default=["float32"], choices=list(DTYPES))
    ap.add_argument("--compile", action="store_true", help="also time torch.compile(unet) at the largest batch")
    ap.add_argument("--reference-cpu", action="store_true", help="compare float32 on --device with the CPU")
    a = ap.parse_args(argv)

    device = resolve_device(a.device)
    cfg, _ = build_config(a.preset, {"device": device.type, "model": a.model})
    pipe = CODEPipeline.from_pretrained(cfg.model)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    print(f"device {name}, torch {torch.__version__}, model {cfg.model}, preset {a.preset} "
          f"({cfg.nfe} calls), {a.size} x {a.size} px\n")
    print("| dtype | batch | compiled | s / image | calls / s | peak MB | PSNR vs float32 (dB) |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    reference: dict[int, list] = {}
    runs = [(d, b, False) for d in a.dtype for b in a.batch]
    if a.compile:
        runs.append((a.dtype[0], max(a.batch), True))
    for dtype, batch, compiled in runs:
        run_cfg = replace(cfg, dtype=dtype)
        x = example_batch(a.size, batch)
        if compiled:
            pipe.unet = torch.compile(pipe.unet)  # the pipeline moves it to the device and dtype
        timed(pipe, x, run_cfg, device)  # warm-up: kernels, allocator, compilation
        results, seconds = timed(pipe, x, run_cfg, device)
        if dtype == "float32" and not compiled:
            reference.setdefault(batch, results)
        ref = reference.get(batch)
        close = f"{worst_psnr(results, ref):.1f}" if ref is not None and (dtype != "float32" or compiled) else "-"
        print(f"| {dtype} | {batch} | {'yes' if compiled else 'no'} | {seconds / batch:.3f} | "
              f"{results[0].nfe * batch / seconds:.1f} | {peak_memory_mb(device):.0f} | {close} |", flush=True)
    if a.reference_cpu and device.type != "cpu" and reference:
        batch = min(reference)
        cpu_results = pipe(example_batch(a.size, batch), seeds=list(range(batch)), config=replace(cfg, device="cpu"))
        print(f"\nfloat32 on {device.type} vs CPU, batch {batch}: "
              f"PSNR {worst_psnr(cpu_results, reference[batch]):.1f} dB (same seeds)")


if __name__ == "__main__":
    main()

"""Throughput, memory and precision of the restoration pipeline on one device.

    python -m code_cli.bench.speed --device cuda --size 256 --batch 1 8 32 --dtype float32 bfloat16 float16

For each dtype and batch size, after one untimed warm-up batch: seconds per
image, per network call and per call and image; the bare network's seconds per
call at the same batch and dtype, and the overhead ratio (pipeline / bare
network: what the loop costs beyond the network); peak memory; and the PSNR of
each result against the float32 result of the same image and seed on the same
device (how much a lower precision changes the output). With --reference-cpu
the float32 result is also compared with the CPU's (same seeds: noise is drawn
on the CPU).

    python -m code_cli.bench.speed --arch google-256 --device cuda --batch 8 --dtype float32 bfloat16 --peak-tflops 790

`--arch google-256` times the architecture of google/ddpm-ema-*-256 (same config,
random weights: the time does not depend on the weights, so no download), and
reports its FLOPs per call (counted with torch.utils.flop_counter) and the ratio
of the measured time to the compute floor at --peak-tflops.
    python -m code_cli.bench.speed --examples examples/corrupted --clean examples/clean --preset auto \
        --dtype float32 bfloat16

`--examples DIR` restores each photograph of DIR at its own size, once per dtype and
memory layout (interleaved per photo, so a load change hits all), and prints the
seconds and the PSNR against the clean photograph of the same name in --clean
(`chelsea-gaussian_noise-3.png` -> `chelsea.png`): what a dtype costs and
changes on real inputs, not only on a synthetic batch.

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

from code_cli.bench.make_examples import photo_of
from code_cli.bench.metrics import psnr, to_unit
from code_cli.pipeline import DTYPES, LAYOUTS, CODEPipeline, RestoreResult, image_seed, memory_format, resolve_device
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


def timed(pipe: CODEPipeline, x: torch.Tensor, cfg, device: torch.device, seeds: list[int] | None = None):
    """The pipeline's results and wall seconds (device synchronised); seeds 0..B-1 unless given."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    results = pipe(x, seeds=list(range(len(x))) if seeds is None else seeds, config=cfg)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return results, time.perf_counter() - start


# google/ddpm-ema-{celebahq,church,bedroom}-256: the UNet2DModel config they share.
GOOGLE_256 = dict(
    sample_size=256, in_channels=3, out_channels=3, layers_per_block=2,
    block_out_channels=(128, 128, 256, 256, 512, 512),
    down_block_types=("DownBlock2D", "DownBlock2D", "DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"),
    norm_eps=1e-6, downsample_padding=0, flip_sin_to_cos=False, freq_shift=1,
)


def google_256_pipeline() -> CODEPipeline:
    """The google 256 px architecture with seeded random weights and the DDPM schedule."""
    from diffusers import DDPMScheduler, UNet2DModel

    torch.manual_seed(0)
    return CODEPipeline(unet=UNet2DModel(**GOOGLE_256).eval(), scheduler=DDPMScheduler(num_train_timesteps=1000))


def flops_per_call(unet: torch.nn.Module, x: torch.Tensor) -> int:
    """FLOPs of one forward pass on x (as PyTorch's counter counts them: 2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        unet(x, torch.full((len(x),), 500, device=x.device))
    return counter.get_total_flops()


def bare_seconds_per_call(pipe: CODEPipeline, x: torch.Tensor, dtype: str, device: torch.device, calls: int) -> float:
    """The network alone, as the pipeline calls it (same batch, dtype, device), after one warm-up call."""
    x = x.to(device=device, dtype=DTYPES[dtype], memory_format=memory_format(device, pipe.layout))
    t = torch.full((len(x),), 500, device=device)
    with torch.no_grad():
        pipe.unet(x, t)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        for _ in range(calls):
            pipe.unet(x, t)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / calls


def load_unit(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), np.float64) / 255


def clean_for(path: Path, clean_dir: Path) -> Path:
    """The clean photograph an example was made from, in clean_dir under any image suffix."""
    stem = photo_of(path)
    hits = [q for q in sorted(clean_dir.iterdir()) if q.stem == stem]
    if not hits:
        raise SystemExit(f"{path}: no clean photograph named {stem}.* in {clean_dir}")
    return hits[0]


def examples_table(pipe: CODEPipeline, cfg, device: torch.device, examples: Path, clean_dir: Path,
                   variants: list[tuple[str, str]]) -> None:
    """Per photo and (dtype, layout): calls, seconds and PSNR against the clean photo; then the totals,
    the speed-up of each variant over the first and the largest PSNR change from the first."""
    paths = sorted(q for q in examples.iterdir() if q.suffix.lower() in {".png", ".jpg", ".jpeg", ".bmp", ".webp"})
    if not paths:
        raise SystemExit(f"{examples}: no images")
    names = [f"{d} {lay}" for d, lay in variants]
    warm = torch.from_numpy(load_unit(paths[0])[:64, :64] * 2 - 1).permute(2, 0, 1)[None].float()
    for dtype, layout in variants:  # untimed: first-call costs (allocator, oneDNN kernels) out of the table
        pipe.layout = layout
        timed(pipe, warm, replace(cfg, dtype=dtype, mode="fixed", depth=2, langevin_steps=1, epsilon=0.1), device)
    head = " | ".join(f"s {n} | PSNR {n}" for n in names)
    print(f"| photo | calls | input PSNR | {head} |")
    print("| --- " * (3 + 2 * len(variants)) + "|")
    total = dict.fromkeys(names, 0.0)
    worst = dict.fromkeys(names, 0.0)
    for path in paths:
        clean = load_unit(clean_for(path, clean_dir))
        y = load_unit(path)
        x = torch.from_numpy(y * 2 - 1).permute(2, 0, 1)[None].float()
        row, first = [], None
        for name, (dtype, layout) in zip(names, variants):
            pipe.layout = layout
            # the seed the CLI would give this file (run seed, file name)
            results, seconds = timed(pipe, x, replace(cfg, dtype=dtype), device, [image_seed(cfg.seed, path.name)])
            out = np.round(to_unit(results[0].image) * 255) / 255  # as the CLI writes it: 8 bits
            p = psnr(out, clean)
            first = p if first is None else first
            worst[name] = max(worst[name], abs(p - first))
            total[name] += seconds
            row.append(f"{seconds:.2f} | {p:.2f}")
        print(f"| {path.name} | {results[0].nfe} | {psnr(y, clean):.2f} | " + " | ".join(row) + " |", flush=True)
    pipe.layout = "auto"
    base = names[0]
    for name in names:
        speed_up = total[base] / total[name] if total[name] else float("nan")
        print(f"\n{name}: {total[name]:.1f} s in all, {speed_up:.2f}x the speed of {base}; "
              f"largest PSNR change from {base} {worst[name]:.3f} dB", end="")
    print()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model spec (default: the preset's)")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--dtype", nargs="+", default=["float32"], choices=list(DTYPES))
    ap.add_argument("--compile", action="store_true", help="also time torch.compile(unet) at the largest batch")
    ap.add_argument("--layout", nargs="+", default=["auto"], choices=["auto", *LAYOUTS],
                    help="memory formats to time (auto: the pipeline's choice for the device)")
    ap.add_argument("--reference-cpu", action="store_true", help="compare float32 on --device with the CPU")
    ap.add_argument("--arch", choices=["model", "google-256"], default="model",
                    help="time the preset's model, or the google 256 px architecture with random weights")
    ap.add_argument("--peak-tflops", type=float, default=0.0,
                    help="the device's peak rate for the compute-floor ratio (e.g. 790 for H200 bfloat16)")
    ap.add_argument("--bare-calls", type=int, default=10, help="calls timed for the bare network")
    ap.add_argument("--examples", type=Path, help="restore each photo of DIR per dtype instead (see above)")
    ap.add_argument("--clean", type=Path, default=EXAMPLE.parents[1] / "clean", help="clean photos for --examples")
    a = ap.parse_args(argv)

    device = resolve_device(a.device)
    cfg, _ = build_config(a.preset, {"device": device.type, "model": a.model})
    if a.arch == "google-256":
        pipe, a.size = google_256_pipeline(), 256
    else:
        pipe = CODEPipeline.from_pretrained(cfg.model)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    model = "google-256 architecture (random weights)" if a.arch == "google-256" else cfg.model
    where = f"photos of {a.examples} at their own size" if a.examples else f"{a.size} x {a.size} px"
    print(f"device {name}, torch {torch.__version__}, threads {torch.get_num_threads()}, model {model}, "
          f"preset {a.preset} ({'at most ' if cfg.mode == 'auto' else ''}{cfg.nfe} calls), {where}")
    if a.examples:
        print()
        examples_table(pipe, cfg, device, a.examples, a.clean, [(d, lay) for lay in a.layout for d in a.dtype])
        return
    flops = flops_per_call(pipe.unet, example_batch(a.size, 1))
    floor = f", compute floor {flops / (a.peak_tflops * 1e12) * 1e3:.2f} ms at {a.peak_tflops:g} TFLOP/s" \
        if a.peak_tflops else ""
    print(f"{flops / 1e9:.1f} GFLOP per call and image{floor}\n")
    print("| dtype | batch | variant | s / image | s / call | ms / call / image | bare network ms / call "
          "| overhead (pipeline / bare) | x compute floor | peak MB | PSNR vs float32 (dB) |")
    print("| --- " * 11 + "|")
    reference: dict[int, list] = {}
    runs = [(d, b, layout) for layout in a.layout for d in a.dtype for b in a.batch]
    if a.compile:
        runs.append((a.dtype[0], max(a.batch), "compile"))
    eager = pipe.unet
    for dtype, batch, variant in runs:
        run_cfg = replace(cfg, dtype=dtype)
        x = example_batch(a.size, batch)
        # The pipeline moves whichever module it is given to the device, dtype and memory format.
        pipe.layout = "auto" if variant == "compile" else variant
        pipe.unet = torch.compile(eager) if variant == "compile" else eager
        timed(pipe, x, run_cfg, device)  # warm-up: kernels, allocator, compilation
        results, seconds = timed(pipe, x, run_cfg, device)
        per_call = seconds / results[0].nfe
        bare = bare_seconds_per_call(pipe, x, dtype, device, a.bare_calls)
        floor_x = f"{per_call / batch / (flops / (a.peak_tflops * 1e12)):.1f}" if a.peak_tflops else "-"
        if dtype == "float32" and variant == a.layout[0]:
            reference.setdefault(batch, results)
        ref = reference.get(batch)
        is_ref = (dtype, variant) == ("float32", a.layout[0])
        close = f"{worst_psnr(results, ref):.1f}" if ref is not None and not is_ref else "-"
        print(f"| {dtype} | {batch} | {variant} | {seconds / batch:.3f} | {per_call:.4f} | "
              f"{per_call / batch * 1e3:.2f} | {bare * 1e3:.2f} | {per_call / bare:.3f} | {floor_x} | "
              f"{peak_memory_mb(device):.0f} | {close} |", flush=True)
    pipe.unet, pipe.layout = eager, "auto"
    if a.reference_cpu and device.type != "cpu" and reference:
        batch = min(reference)
        cpu_results = pipe(example_batch(a.size, batch), seeds=list(range(batch)), config=replace(cfg, device="cpu"))
        print(f"\nfloat32 on {device.type} vs CPU, batch {batch}: "
              f"PSNR {worst_psnr(cpu_results, reference[batch]):.1f} dB (same seeds)")


if __name__ == "__main__":
    main()

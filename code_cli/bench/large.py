"""A real photo size, end to end on this machine: one clean photograph, Gaussian noise of a given std
(seeded), the `code-restore` command as a user runs it, timed.

    python -m code_cli.bench.large data/photos/digikam/body-background.jpg --noise 0.08 --out bench-out/large \\
        --run "auto=" --run "512 px tiles=--tile 512"

Each --run is NAME=EXTRA-FLAGS for `code-restore INPUT OUT/NAME`. For each run: the --dry-run estimate,
the wall time of the command (loading the model included), the network calls and tiles per call from
its run.jsonl, PSNR to the clean photo over the whole image and over its centre 512 px crop, and patch
SWD (bench.realism) of that crop against the clean crop. --reference PNG scores another restoration of
the same noisy input the same way (e.g. one made by an earlier release). One run per row; compare
ratios on the same machine, not seconds across machines.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from code_cli.bench.metrics import psnr
from code_cli.bench.realism import swd

CROP = 512


def noisy_copy(clean: np.ndarray, std: float, seed: int) -> np.ndarray:
    """uint8 HWC + Gaussian noise of std (on [0, 1]), rounded and clipped like a saved photo."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal(clean.shape, dtype=np.float32) * (255 * std)
    return np.clip(np.round(clean.astype(np.float32) + noise), 0, 255).astype(np.uint8)


def centre(a: np.ndarray, size: int = CROP) -> np.ndarray:
    h, w = a.shape[:2]
    top, left = (h - size) // 2, (w - size) // 2
    return a[top:top + size, left:left + size]


def scores(out: np.ndarray, clean: np.ndarray) -> dict:
    o, c = out.astype(np.float64) / 255, clean.astype(np.float64) / 255
    return {"psnr": psnr(o, c), "psnr_crop": psnr(centre(o), centre(c)), "swd_crop": swd([centre(o)], [centre(c)])}


def dry_run_estimate(text: str) -> str:
    """The time --dry-run states for the image (or, untiled, for the run)."""
    for line in text.splitlines():
        if "tiles of" in line and "(about " in line:
            return line.split("(about ")[1].split(" for")[0]
    for line in text.splitlines():
        if " about " in line and " on " in line:
            return line.split(" about ")[1].split(" on ")[0]
    return "?"


def run_cli(args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "code_cli", *args], capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"code-restore {' '.join(args)}: exit {p.returncode}: {p.stderr.strip()[-500:]}")
    return time.perf_counter() - start, p.stdout + p.stderr


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photo", type=Path, help="a clean photograph")
    ap.add_argument("--noise", type=float, default=0.08, help="Gaussian noise std on [0, 1]")
    ap.add_argument("--seed", type=int, default=0, help="seed of the noise")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--run", action="append", default=[], metavar="NAME=FLAGS", help="a code-restore run (repeat)")
    ap.add_argument("--reference", action="append", default=[], metavar="NAME=PNG",
                    help="score an existing restoration of the same noisy input (repeat)")
    a = ap.parse_args(argv)
    with Image.open(a.photo) as im:
        clean = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    inputs = a.out / "input"
    inputs.mkdir(parents=True, exist_ok=True)
    noisy_path = inputs / f"{a.photo.stem}-noise{a.noise:g}.png"
    if not noisy_path.exists():
        Image.fromarray(noisy_copy(clean, a.noise, a.seed)).save(noisy_path)
    h, w = clean.shape[:2]
    print(f"{a.photo.name}: {w} x {h} ({w * h / 1e6:.1f} MP), Gaussian noise std {a.noise:g} (seed {a.seed}) "
          f"-> {noisy_path}\n")
    rows = [("noisy input", "", "", "", "", scores(np.asarray(Image.open(noisy_path)), clean))]
    for spec in a.run:
        name, _, flags = spec.partition("=")
        dest = a.out / name.replace(" ", "-")
        extra = shlex.split(flags)
        _, dry = run_cli([str(inputs), str(dest), "--dry-run", *extra])
        estimate = dry_run_estimate(dry)
        seconds, _ = run_cli([str(inputs), str(dest), "--overwrite", "--quiet", *extra])
        records = [json.loads(ln) for ln in (dest / "run.jsonl").read_text().splitlines()]
        rec = [r for r in records if r["status"] == "ok"][-1]
        out = np.asarray(Image.open(rec["output"]).convert("RGB"))
        rows.append((name, estimate, f"{seconds:.0f} s ({seconds / 60:.1f} min)", str(rec["nfe"]),
                     str(rec["params"].get("tiles_per_call", "")), scores(out, clean)))
        print(f"{name}: {rows[-1][2]}", flush=True)
    for spec in a.reference:
        name, _, png = spec.partition("=")
        rows.append((name, "", "", "", "", scores(np.asarray(Image.open(png).convert("RGB")), clean)))
    print(f"\n| run | --dry-run estimate | wall time | calls | tiles/call | PSNR | PSNR, centre {CROP} px | "
          f"patch SWD, centre {CROP} px |\n| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, est, sec, calls, tiles, s in rows:
        print(f"| {name} | {est} | {sec} | {calls} | {tiles} | {s['psnr']:.2f} | {s['psnr_crop']:.2f} | "
              f"{s['swd_crop']:.1f} |")


if __name__ == "__main__":
    main()

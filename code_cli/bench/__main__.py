"""Restoration benchmark on a folder of corrupted images with clean originals.

    python -m code_cli.bench examples --out bench-out [--presets default,fine,global]

For every preset it runs CODE, and SDEdit at the same latent timestep and the
same number of network calls, and reports PSNR to the clean originals. Writes
results.csv, results.md and a comparison grid; prints the table.
"""

from __future__ import annotations

import argparse
import csv
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image

from code_cli import imageio
from code_cli.bench.make_examples import clean_for
from code_cli.bench.metrics import psnr, to_unit
from code_cli.pipeline import CODEPipeline, image_seed
from code_cli.presets import RestoreConfig, build_config


def sdedit_twin(cfg: RestoreConfig, T: int = 1000) -> RestoreConfig:
    """SDEdit from CODE's latent timestep with CODE's network-call budget.

    SDEdit spends one call per grid level, so a grid of N' = nfe * steps / depth
    levels reaches the same timestep in exactly nfe calls (capped at T levels)."""
    steps = min(T, round(cfg.nfe * cfg.steps / cfg.depth))
    t_latent = round(cfg.depth * T / cfg.steps)
    depth = max(1, min(steps, round(t_latent * steps / T)))
    return replace(cfg, method="sdedit", steps=steps, depth=depth)


def run_config(pipe: CODEPipeline, cfg: RestoreConfig, items: list[imageio.InputItem], root: Path) -> list[dict]:
    rows = []
    for item in items:
        im = imageio.load(item.path)
        seed = image_seed(cfg.seed, item.rel.as_posix())
        r = pipe(im.rgb[None], seeds=[seed], config=cfg)[0]
        clean = np.asarray(Image.open(clean_for(item.path, root)).convert("RGB"), np.float64) / 255
        rows.append({"image": item.rel.stem, "psnr": psnr(to_unit(r.image), clean), "nfe": r.nfe,
                     "seconds": r.seconds, "restored": r.image})
    return rows


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path, help="folder with corrupted/ and clean/")
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    ap.add_argument("--presets", default="default")
    ap.add_argument("--model", default=None)
    a = ap.parse_args(argv)
    items = imageio.discover(str(a.root / "corrupted"), a.out)
    a.out.mkdir(parents=True, exist_ok=True)
    flags = {"model": a.model}
    table: dict[str, dict[str, float]] = {}
    restored: dict[str, dict[str, object]] = {}
    meta = {}
    pipe = None
    for name in a.presets.split(","):
        cfg, _ = build_config(name, flags)
        if pipe is None:
            pipe = CODEPipeline.from_pretrained(cfg.model)
        for label, c in ((f"CODE {name}", cfg), (f"SDEdit ({name} budget)", sdedit_twin(cfg))):
            start = time.perf_counter()
            rows = run_config(pipe, c, items, a.root)
            table[label] = {r["image"]: r["psnr"] for r in rows}
            restored[label] = {r["image"]: r["restored"] for r in rows}
            meta[label] = (rows[0]["nfe"], c.steps, c.depth, (time.perf_counter() - start) / len(rows))
            print(f"{label}: mean PSNR {np.mean(list(table[label].values())):.2f} dB, {rows[0]['nfe']} calls", flush=True)
    inputs = {}
    for item in items:
        clean = np.asarray(Image.open(clean_for(item.path, a.root)).convert("RGB"), np.float64) / 255
        inputs[item.rel.stem] = psnr(np.asarray(Image.open(item.path).convert("RGB"), np.float64) / 255, clean)
    names = [i.rel.stem for i in items]
    labels = list(table)
    with (a.out / "results.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image", "input", *labels])
        for n in names:
            w.writerow([n, f"{inputs[n]:.3f}", *(f"{table[lab][n]:.3f}" for lab in labels)])
    md = ["| image | corrupted input | " + " | ".join(labels) + " |", "| --- " * (len(labels) + 2) + "|"]
    for n in names:
        md.append(f"| {n} | {inputs[n]:.2f} | " + " | ".join(f"{table[lab][n]:.2f}" for lab in labels) + " |")
    md.append(f"| **mean** | {np.mean(list(inputs.values())):.2f} | "
              + " | ".join(f"**{np.mean(list(table[lab].values())):.2f}**" for lab in labels) + " |")
    md.append("| calls/image (N, L) | | " + " | ".join(f"{meta[lab][0]} ({meta[lab][1]}, {meta[lab][2]})" for lab in labels) + " |")
    md.append("| s/image (this CPU) | | " + " | ".join(f"{meta[lab][3]:.1f}" for lab in labels) + " |")
    text = "\n".join(md) + "\n"
    (a.out / "results.md").write_text(text)
    print(text)
    grid_rows = []
    for item in items:
        n = item.rel.stem
        ims = [Image.open(clean_for(item.path, a.root)).convert("RGB"), Image.open(item.path).convert("RGB")]
        ims += [Image.fromarray((to_unit(restored[lab][n]) * 255).round().astype(np.uint8)) for lab in labels]
        grid_rows.append(imageio.strip(ims))
    sheet = Image.new("RGB", (max(r.width for r in grid_rows), sum(r.height + 4 for r in grid_rows)), "white")
    y = 0
    for r in grid_rows:
        sheet.paste(r, (0, y))
        y += r.height + 4
    sheet.save(a.out / "grid.png")
    print(f"columns of {a.out / 'grid.png'}: clean | corrupted | " + " | ".join(labels))


if __name__ == "__main__":
    main()

"""Measure CODE over a grid of depths and step sizes on part of the examples, to choose presets.

    python -m code_cli.bench.sweep examples --match noise --steps 100 --depth 10 20 30 --epsilon 0.1 0.5
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np

from code_cli import imageio
from code_cli.bench.__main__ import run_config, sdedit_twin
from code_cli.pipeline import CODEPipeline
from code_cli.presets import build_config


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    ap.add_argument("--match", default="", help="substring of the corrupted file names to use")
    ap.add_argument("--preset", default="default")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--depth", type=int, nargs="+", required=True)
    ap.add_argument("--epsilon", type=float, nargs="+", default=[0.2])
    ap.add_argument("--langevin-steps", type=int, nargs="+", default=[20])
    ap.add_argument("--sdedit", action="store_true", help="also SDEdit at each CODE budget")
    a = ap.parse_args(argv)
    base, _ = build_config(a.preset)
    items = [i for i in imageio.discover(str(a.root / "corrupted"), Path("/nonexistent")) if a.match in i.rel.name]
    pipe = CODEPipeline.from_pretrained(base.model)
    print(f"{len(items)} images: {', '.join(i.rel.stem for i in items)}")
    print("| depth (t) | K | epsilon | NFE | CODE PSNR |" + (" SDEdit PSNR |" if a.sdedit else ""))
    for depth, k, eps in itertools.product(a.depth, a.langevin_steps, a.epsilon):
        cfg = replace(base, steps=a.steps, depth=depth, langevin_steps=k, epsilon=eps)
        code = np.mean([r["psnr"] for r in run_config(pipe, cfg, items, a.root)])
        line = f"| {depth} ({round(depth * 1000 / a.steps) - 1}) | {k} | {eps} | {cfg.nfe} | {code:.2f} |"
        if a.sdedit:
            line += f" {np.mean([r['psnr'] for r in run_config(pipe, sdedit_twin(cfg), items, a.root)]):.2f} |"
        print(line, flush=True)


if __name__ == "__main__":
    main()

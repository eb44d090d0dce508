"""How often `--model auto` sends an image to the right prior: held-out photographs (clean and
corrupted, at two scales) to code-prior-s, held-out pages (clean and degraded) to code-prior-doc.

    python -m code_cli.bench.model_auto --photos data/photos/manifest.json --pages 6 --out docs/bench/model-auto.json

Photographs: the benchmark's held-out set, each as a 256 px centre crop of the whole scene and a
256 x 256 window at full resolution, clean and with ImageNet-C corruptions at severity 3. Pages: the
document benchmark's pages (held-out fonts and texts, 512 x 384) with each degradation. Prints the
accuracy per group, the calls per image and the seconds the choice took; writes every decision
(the errors behind it too) as JSON.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from code_cli.bench.corrupt import corrupt
from code_cli.bench.doc import make_pages
from code_cli.bench.doc_degrade import DEGRADATIONS, degrade
from code_cli.bench.photos import DEFAULT_MANIFEST, centre_crop, list_photos
from code_cli.pipeline import image_seed
from code_cli.presets import build_config
from code_cli.routing import SCORE_WINDOW, PriorRouter

PHOTO_CORRUPTIONS = ("gaussian_noise", "jpeg_compression", "defocus_blur", "contrast")
PAGE_SIZE = (512, 384)


def full_resolution_window(path: Path, size: int = SCORE_WINDOW) -> np.ndarray:
    """The centre size x size pixels of the photograph at its own resolution (uint8 HWC RGB)."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        left, top = max(0, (im.width - size) // 2), max(0, (im.height - size) // 2)
        return np.asarray(im.crop((left, top, left + size, top + size))).copy()


def cases(photos_spec: Path, n_pages: int, seed: int):
    """(group, name, uint8 HWC image, expected prior) for every test image."""
    for p in list_photos(photos_spec):
        scales = (("scene", centre_crop(p.path, SCORE_WINDOW)), ("full-res", full_resolution_window(p.path)))
        for scale, clean in scales:
            yield f"photo {scale} clean", f"{p.name}-{scale}", clean, "code-prior-s"
            for c in PHOTO_CORRUPTIONS:
                yield f"photo {scale} corrupted", f"{p.name}-{scale}-{c}", corrupt(clean, c, 3, seed), "code-prior-s"
    for page in make_pages(n_pages, PAGE_SIZE, seed=seed):
        yield "page clean", page.name, page.clean, "code-prior-doc"
        for d in DEGRADATIONS:
            yield "page degraded", f"{page.name}-{d}", degrade(page.clean, d, seed), "code-prior-doc"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m code_cli.bench.model_auto", description=__doc__.splitlines()[0])
    ap.add_argument("--photos", type=Path, default=DEFAULT_MANIFEST, help="manifest.json (held-out split) or a folder")
    ap.add_argument("--pages", type=int, default=6, help="held-out pages (each with every degradation)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dtype", default="auto")
    ap.add_argument("--out", type=Path, default=None, help="write every decision here (JSON)")
    a = ap.parse_args(argv)

    cfg, _ = build_config("auto", {"model": "auto", "dtype": a.dtype, "seed": a.seed})
    router = PriorRouter.load()
    rows = []
    for group, name, im, expected in cases(a.photos, a.pages, a.seed):
        x = torch.from_numpy(np.ascontiguousarray(im)).permute(2, 0, 1)[None].float() / 127.5 - 1
        start = time.perf_counter()
        [route] = router.route(x, [image_seed(a.seed, name)], cfg)
        seconds = time.perf_counter() - start
        rows.append({"group": group, "name": name, "expected": expected, "chosen": route.model,
                     "seconds": round(seconds, 3), "size": list(im.shape[:2]), **route.as_dict()})
        mark = "" if route.model == expected else "   <- wrong"
        print(f"{name:60s} {route.model}{mark}", flush=True)
    print()
    print(report(rows))
    if a.out:
        a.out.parent.mkdir(parents=True, exist_ok=True)
        a.out.write_text(json.dumps(rows, indent=1) + "\n")


def report(rows: list[dict]) -> str:
    lines = ["| images | n | sent to the right prior | seconds per image (mean) |", "| --- | ---: | ---: | ---: |"]
    groups = list(dict.fromkeys(r["group"] for r in rows)) + ["all"]
    for g in groups:
        sel = [r for r in rows if g == "all" or r["group"] == g]
        right = sum(r["chosen"] == r["expected"] for r in sel)
        secs = float(np.mean([r["seconds"] for r in sel]))
        lines.append(f"| {g} | {len(sel)} | {right} ({100 * right / len(sel):.0f} %) | {secs:.2f} |")
    calls = rows[0]["calls"]
    lines.append("")
    lines.append(f"{calls} network calls per image ({len(rows[0]['errors'])} priors x {len(rows[0]['timesteps'])} "
                 f"timesteps on a window of at most {SCORE_WINDOW} x {SCORE_WINDOW} pixels).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()

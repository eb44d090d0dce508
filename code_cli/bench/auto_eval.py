"""A quick check of auto mode against fixed presets, the corrupted input and blind NL-means, on
photographs the prior never trained on (one sample each, no selection with the clean image).

    python -m code_cli.bench.auto_eval PHOTO.png [...] --presets auto,default,fine --out table.md

Photos are resized so their short side is `--cap` pixels, then centre-cropped to `--size`; each gets
the 19 ImageNet-C corruptions at `--severity`. Writes a markdown table of mean PSNR per corruption and
the network calls per image, and prints each image's auto choice. A stopgap until the benchmark runs auto.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from code_cli.bench.corrupt import corrupt
from code_cli.bench.metrics import psnr, to_unit
from code_cli.pipeline import CODEPipeline, image_seed
from code_cli.presets import build_config


def imagenet_c() -> list[str]:
    from imagecorruptions import get_corruption_names

    return list(get_corruption_names("all"))


def load_crop(path: Path, size: int, cap: int) -> np.ndarray:
    """uint8 HWC: short side resized to `cap` (so a crop holds a scene, not a texture), centre crop."""
    im = Image.open(path).convert("RGB")
    s = cap / min(im.size)
    im = im.resize((max(size, round(im.width * s)), max(size, round(im.height * s))), Image.LANCZOS)
    a = np.asarray(im)
    top, left = (a.shape[0] - size) // 2, (a.shape[1] - size) // 2
    return a[top:top + size, left:left + size].copy()


def nl_means_blind(noisy01: np.ndarray) -> np.ndarray:
    """scikit-image NL-means with its own noise estimate (h = 0.8 sigma, the documented fast setting)."""
    from skimage.restoration import denoise_nl_means, estimate_sigma

    s = float(np.mean(estimate_sigma(noisy01, channel_axis=-1)))
    if s == 0:
        return noisy01
    return np.clip(denoise_nl_means(noisy01, h=0.8 * s, sigma=s, fast_mode=True, patch_size=5, patch_distance=6,
                                    channel_axis=-1), 0, 1)


def evaluate(photos: list[Path], presets: list[str], size: int, cap: int, severity: int) -> tuple[list[dict], list]:
    pipe = CODEPipeline.from_pretrained("code-prior-s")
    names = imagenet_c()
    rows, choices = [], []
    for photo in photos:
        clean = load_crop(photo, size, cap)
        corrupted = [corrupt(clean, n, severity, seed=0) for n in names]
        batch = torch.from_numpy(np.stack(corrupted)).permute(0, 3, 1, 2).float() / 127.5 - 1
        seeds = [image_seed(0, f"{photo.stem}/{n}") for n in names]
        ref = clean / 255.0
        for n, c in zip(names, corrupted):
            rows.append({"photo": photo.stem, "corruption": n, "method": "input", "nfe": 0,
                         "psnr": psnr(c / 255.0, ref)})
            rows.append({"photo": photo.stem, "corruption": n, "method": "nl-means", "nfe": 0,
                         "psnr": psnr(nl_means_blind(c / 255.0), ref)})
        for preset in presets:
            cfg, _ = build_config(preset, {"device": "cpu"})
            t0 = time.perf_counter()
            results = pipe(batch, seeds=seeds, config=cfg)
            print(f"{photo.stem} {preset}: {time.perf_counter() - t0:.0f} s", flush=True)
            for n, r in zip(names, results):
                # The written PNG is what a user gets: quantise to 8 bits before scoring.
                out = np.round(to_unit(r.image) * 255) / 255
                rows.append({"photo": photo.stem, "corruption": n, "method": preset, "psnr": psnr(out, ref),
                             "nfe": r.nfe})
                if "auto" in r.info:
                    choices.append({"photo": photo.stem, "corruption": n, **r.info["auto"]})
    return rows, choices


def table(rows: list[dict]) -> str:
    methods = list(dict.fromkeys(r["method"] for r in rows))
    corruptions = list(dict.fromkeys(r["corruption"] for r in rows))

    def mean(key: str, **match) -> float:
        return float(np.mean([r[key] for r in rows if all(r[k] == v for k, v in match.items())]))

    out = ["| corruption | " + " | ".join(methods) + " |", "| --- |" + " --- |" * len(methods)]
    for c in corruptions:
        out.append(f"| {c} | " + " | ".join(f"{mean('psnr', corruption=c, method=m):.2f}" for m in methods) + " |")
    out.append("| **mean** | " + " | ".join(f"**{mean('psnr', method=m):.2f}**" for m in methods) + " |")
    out.append("| calls / image | " + " | ".join(f"{mean('nfe', method=m):.1f}" for m in methods) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("photos", nargs="+", type=Path)
    ap.add_argument("--presets", default="auto,default,fine")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--cap", type=int, default=192)
    ap.add_argument("--severity", type=int, default=3)
    ap.add_argument("--out", type=Path, required=True, help="markdown table; a .json of the rows goes beside it")
    a = ap.parse_args(argv)
    rows, choices = evaluate(a.photos, a.presets.split(","), a.size, a.cap, a.severity)
    text = table(rows)
    a.out.write_text(text + "\n")
    a.out.with_suffix(".json").write_text(json.dumps({"rows": rows, "auto_choices": choices}, indent=1))
    print(text)


if __name__ == "__main__":
    main()

"""Model-card figures of a prior: one-step denoising vs classical denoisers, DDIM
round trip, unconditional samples. Held-out photographs only.

    python -m code_cli.bench.prior_eval --model code-prior-s --out code_cli/weights/code-prior-s
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from code_cli import method as M
from code_cli.bench.metrics import psnr, to_unit
from code_cli.pipeline import CODEPipeline
from code_cli.prior_data import HELDOUT_PHOTOS, cap_long_side, to_unit_array

NOISE_LEVELS = (0.1, 0.2)  # pixel std on a [0, 1] scale


def t_for_pixel_noise(abar: torch.Tensor, sigma01: float) -> int:
    """Timestep whose noise-to-signal matches pixel noise sigma on [0, 1] (2 sigma on [-1, 1]):
    sqrt(abar) (x + s n) = sqrt(abar) x + sqrt(1 - abar) n  <=>  abar = 1 / (1 + s^2)."""
    s = 2 * sigma01
    return int(torch.argmin((abar - 1 / (1 + s**2)).abs()))


@torch.no_grad()
def one_step_denoise(pipe: CODEPipeline, noisy01: np.ndarray, sigma01: float) -> np.ndarray:
    abar = pipe.scheduler.alphas_cumprod
    t = t_for_pixel_noise(abar, sigma01)
    a = float(abar[t])
    y = torch.from_numpy(noisy01).permute(2, 0, 1)[None].float() * 2 - 1
    x_t, back = pipe.to_model_size(a**0.5 * y, "native")
    eps, _ = pipe.eps_model(torch.float32)
    e = eps(x_t, torch.tensor([t]))
    x0 = back((x_t - (1 - a) ** 0.5 * e) / a**0.5)
    return to_unit(x0[0])


def classical(noisy: np.ndarray, sigma: float) -> dict[str, float | np.ndarray]:
    """The best of scikit-image's denoisers, each given the true sigma and its best setting."""
    from skimage.restoration import denoise_nl_means, denoise_tv_chambolle, denoise_wavelet

    cands = {}
    # Grids wide enough that the best setting lies inside them, not at an edge.
    for h in (0.4, 0.5, 0.6, 0.7, 0.8, 1.0):
        cands[f"nl_means h={h}s"] = ("nl_means", lambda h=h: denoise_nl_means(
            noisy, h=h * sigma, sigma=sigma, fast_mode=True, patch_size=5, patch_distance=6, channel_axis=-1))
    for w in (0.04, 0.08, 0.12, 0.16, 0.24, 0.32, 0.4):
        cands[f"tv w={w}"] = ("tv_chambolle", lambda w=w: denoise_tv_chambolle(noisy, weight=w, channel_axis=-1))
    for m in ("BayesShrink", "VisuShrink"):
        cands[f"wavelet {m}"] = ("wavelet", lambda m=m: denoise_wavelet(
            noisy, sigma=sigma, method=m, mode="soft", channel_axis=-1, convert2ycbcr=True, rescale_sigma=True))
    return {k: (fam, np.clip(f(), 0, 1)) for k, (fam, f) in cands.items()}


def denoising_table(pipe: CODEPipeline, photos: dict[str, np.ndarray], seed: int = 0) -> tuple[list[dict], dict]:
    rows, figs = [], {}
    rng = np.random.default_rng(seed)
    for name, clean in photos.items():
        for sigma in NOISE_LEVELS:
            noisy = clean + sigma * rng.standard_normal(clean.shape)
            model = one_step_denoise(pipe, noisy, sigma)
            best = {}
            for setting, (fam, out) in classical(noisy, sigma).items():
                p = psnr(out, clean)
                if p > best.get(fam, (-1, ""))[0]:
                    best[fam] = (p, setting)
            rows.append({
                "photo": name, "sigma": sigma, "noisy": psnr(np.clip(noisy, 0, 1), clean), "model": psnr(model, clean),
                **{fam: p for fam, (p, _) in best.items()}, "settings": {fam: s for fam, (_, s) in best.items()},
            })
            figs[(name, sigma)] = (np.clip(noisy, 0, 1), model, clean)
    return rows, figs


@torch.no_grad()
def round_trip(pipe: CODEPipeline, photos: dict[str, np.ndarray], steps: int = 50) -> list[dict]:
    levels = M.make_levels(pipe.scheduler.alphas_cumprod, steps)
    eps, _ = pipe.eps_model(torch.float32)
    rows = []
    for name, clean in photos.items():
        x = torch.from_numpy(clean).permute(2, 0, 1)[None].float() * 2 - 1
        x, back = pipe.to_model_size(x, "native")
        for depth in (steps // 2, steps):
            z, _ = M.encode(eps, x, levels, depth, M.no_threshold)
            y, _ = M.decode(eps, z, levels, depth, M.no_threshold)
            rows.append({"photo": name, "steps": steps, "depth": depth, "t": int(levels.t[depth]),
                         "psnr": psnr(to_unit(back(y)[0]), clean)})
    return rows


@torch.no_grad()
def sample_grid(pipe: CODEPipeline, n: int = 16, size: int = 64, steps: int = 50, seed: int = 0) -> Image.Image:
    levels = M.make_levels(pipe.scheduler.alphas_cumprod, steps)
    eps, _ = pipe.eps_model(torch.float32)
    z = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
    x, _ = M.decode(eps, z, levels, steps, M.make_threshold(0.995, 1.0))
    tiles = [Image.fromarray((to_unit(xi) * 255).round().astype(np.uint8)) for xi in x]
    side = int(np.ceil(np.sqrt(n)))
    sheet = Image.new("RGB", (side * (size + 2), side * (size + 2)), "white")
    for i, im in enumerate(tiles):
        sheet.paste(im, ((i % side) * (size + 2), (i // side) * (size + 2)))
    return sheet.resize((sheet.width * 2, sheet.height * 2), Image.Resampling.NEAREST)


def denoise_figure(figs: dict, crop: int = 128) -> Image.Image:
    rows = []
    for (_, sigma), trio in figs.items():
        if sigma != max(NOISE_LEVELS):
            continue
        h, w = trio[0].shape[:2]
        y0, x0 = (h - crop) // 2, (w - crop) // 2
        ims = [Image.fromarray((a[y0:y0 + crop, x0:x0 + crop] * 255).round().astype(np.uint8)) for a in trio]
        rows.append(ims)
    sheet = Image.new("RGB", (3 * crop + 8, len(rows) * (crop + 4)), "white")
    for r, ims in enumerate(rows):
        for c, im in enumerate(ims):
            sheet.paste(im, (c * (crop + 4), r * (crop + 4)))
    return sheet.resize((sheet.width * 2, sheet.height * 2), Image.Resampling.NEAREST)


def markdown(rows: list[dict], trips: list[dict]) -> str:
    fams = ("nl_means", "tv_chambolle", "wavelet")
    out = ["| photo | pixel noise | noisy | NL-means | TV | wavelet | best classical | **model, one step** |",
           "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        best = max(r[f] for f in fams)
        out.append(f"| {r['photo']} | {r['sigma']} | {r['noisy']:.2f} | " + " | ".join(f"{r[f]:.2f}" for f in fams)
                   + f" | {best:.2f} | **{r['model']:.2f}** ({r['model'] - best:+.2f}) |")
    out += ["", "| photo | DDIM steps | depth (t) | round-trip PSNR |", "| --- | --- | --- | --- |"]
    out += [f"| {t['photo']} | {t['steps']} | {t['depth']} ({t['t']}) | {t['psnr']:.2f} |" for t in trips]
    return "\n".join(out) + "\n"


def load_heldout(cap: int) -> dict[str, np.ndarray]:
    return {p.name: to_unit_array(cap_long_side(p.load(), cap)).astype(np.float64) for p in HELDOUT_PHOTOS}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="code-prior-s")
    ap.add_argument("--out", type=Path, required=True, help="folder for eval.json, eval.md and the figures")
    ap.add_argument("--cap", type=int, default=512, help="long side of the held-out photos for denoising")
    ap.add_argument("--round-trip-cap", type=int, default=256, help="long side for the 150-call round trips")
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    start = time.perf_counter()
    pipe = CODEPipeline.from_pretrained(a.model)
    photos = load_heldout(a.cap)
    rows, figs = denoising_table(pipe, photos)
    trips = round_trip(pipe, load_heldout(a.round_trip_cap))
    a.out.mkdir(parents=True, exist_ok=True)
    denoise_figure(figs).save(a.out / "denoising.png")
    sample_grid(pipe).save(a.out / "samples.png")
    (a.out / "eval.json").write_text(json.dumps({"denoising": rows, "round_trip": trips}, indent=2) + "\n")
    md = markdown(rows, trips)
    (a.out / "eval.md").write_text(md)
    print(md)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

"""Model-card figures of a prior: one-step denoising vs classical denoisers, DDIM
round trip, unconditional samples. Held-out photographs only: the 16 of the data
manifest (`make data`), or any folder of clean photographs.

    python -m code_cli.bench.prior_eval --model code-prior-s --out code_cli/weights/code-prior-s
    python -m code_cli.bench.prior_eval --model runs/code-prior-s-wide --compare old=code-prior-s --out DIR

With --compare, each other model gets its own column in the same table: the same
noise draws, the same classical baselines, so the columns differ only by the model.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from code_cli import method as M
from code_cli.bench.baselines import t_for_pixel_noise
from code_cli.bench.metrics import psnr, to_unit
from code_cli.bench.photos import DEFAULT_MANIFEST, list_photos
from code_cli.pipeline import CODEPipeline
from code_cli.prior.photos import cap_long_side, to_unit_array

NOISE_LEVELS = (0.1, 0.2)  # pixel std on a [0, 1] scale


@torch.no_grad()
def one_step_denoise(pipe: CODEPipeline, noisy01: np.ndarray, sigma01: float) -> np.ndarray:
    abar = pipe.scheduler.alphas_cumprod
    t = int(t_for_pixel_noise(abar, torch.tensor([sigma01]))[0])
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


def denoising_table(
    pipes: dict[str, CODEPipeline], photos: dict[str, np.ndarray], seed: int = 0
) -> tuple[list[dict], dict]:
    """One row per photo and noise level: the noisy PSNR, each classical family's best setting
    and each model's one-step estimate, all on the same noise draw. Figures are of the first model."""
    rows, figs = [], {}
    rng = np.random.default_rng(seed)
    first = next(iter(pipes))
    for name, clean in photos.items():
        for sigma in NOISE_LEVELS:
            noisy = clean + sigma * rng.standard_normal(clean.shape)
            models = {label: one_step_denoise(pipe, noisy, sigma) for label, pipe in pipes.items()}
            best = {}
            for setting, (fam, out) in classical(noisy, sigma).items():
                p = psnr(out, clean)
                if p > best.get(fam, (-1, ""))[0]:
                    best[fam] = (p, setting)
            rows.append({
                "photo": name, "sigma": sigma, "noisy": psnr(np.clip(noisy, 0, 1), clean),
                "model": psnr(models[first], clean),
                "models": {label: psnr(out, clean) for label, out in models.items()},
                **{fam: p for fam, (p, _) in best.items()}, "settings": {fam: s for fam, (_, s) in best.items()},
            })
            figs[(name, sigma)] = (np.clip(noisy, 0, 1), models[first], clean)
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


def denoise_figure(figs: dict, crop: int = 128, per_row: int = 2) -> Image.Image:
    """Centre crops at the highest noise: noisy, model, clean; `per_row` photos side by side."""
    trios = []
    for (_, sigma), trio in figs.items():
        if sigma != max(NOISE_LEVELS):
            continue
        h, w = trio[0].shape[:2]
        y0, x0 = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
        trios.append([Image.fromarray((a[y0:y0 + crop, x0:x0 + crop] * 255).round().astype(np.uint8)) for a in trio])
    cols = min(per_row, len(trios)) or 1
    rows = -(-len(trios) // cols)
    cell, gap = crop + 4, 12
    sheet = Image.new("RGB", (cols * (3 * cell + gap), rows * cell), "white")
    for k, ims in enumerate(trios):
        r, c = divmod(k, cols)
        for j, im in enumerate(ims):
            sheet.paste(im, (c * (3 * cell + gap) + j * cell, r * cell))
    # Small sheets are doubled so the pixels can be judged; large ones are big enough as they are.
    return sheet.resize((sheet.width * 2, sheet.height * 2), Image.Resampling.NEAREST) if rows <= 4 else sheet


FAMILIES = ("nl_means", "tv_chambolle", "wavelet")


def markdown(rows: list[dict], trips: list[dict]) -> str:
    """The denoising table (one column per model, its gain over the best classical denoiser in
    brackets), the mean over photos per noise level, then the round trips."""
    labels = list(rows[0]["models"]) if rows else []
    out = ["| photo | pixel noise | noisy | NL-means | TV | wavelet | best classical | "
           + " | ".join(f"**{m}**" for m in labels) + " |",
           "| --- | --- | --- | --- | --- | --- | --- | " + " | ".join("---" for _ in labels) + " |"]

    def line(photo: str, sigma: float, noisy: float, fams: list[float], models: list[float]) -> str:
        best = max(fams)
        return (f"| {photo} | {sigma} | {noisy:.2f} | " + " | ".join(f"{f:.2f}" for f in fams) + f" | {best:.2f} | "
                + " | ".join(f"**{m:.2f}** ({m - best:+.2f})" for m in models) + " |")

    for r in rows:
        out.append(line(r["photo"], r["sigma"], r["noisy"], [r[f] for f in FAMILIES], [r["models"][m] for m in labels]))
    for sigma in NOISE_LEVELS:
        sub = [r for r in rows if r["sigma"] == sigma]
        if len(sub) > 1:
            best = [max(r[f] for f in FAMILIES) for r in sub]
            fams = [float(np.mean([r[f] for r in sub])) for f in FAMILIES]
            models = [float(np.mean([r["models"][m] for r in sub])) for m in labels]
            wins = [sum(r["models"][m] > b for r, b in zip(sub, best)) for m in labels]
            mb = float(np.mean(best))
            out.append(f"| **mean of {len(sub)}** | {sigma} | {np.mean([r['noisy'] for r in sub]):.2f} | "
                       + " | ".join(f"{f:.2f}" for f in fams) + f" | {mb:.2f} | "
                       + " | ".join(f"**{m:.2f}** ({m - mb:+.2f}; beats it on {w})" for m, w in zip(models, wins))
                       + " |")
    if trips:
        out += ["", "| photo | model | DDIM steps | depth (t) | round-trip PSNR |", "| --- | --- | --- | --- | --- |"]
        out += [f"| {t['photo']} | {t['model']} | {t['steps']} | {t['depth']} ({t['t']}) | {t['psnr']:.2f} |"
                for t in trips]
    return "\n".join(out) + "\n"


def load_heldout(spec: Path, cap: int, limit: int = 0) -> dict[str, np.ndarray]:
    """The held-out photographs of a manifest (or a folder), long side capped, float64 in [0, 1]."""
    photos = list_photos(spec)[: limit or None]
    out = {}
    for p in photos:
        with Image.open(p.path) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            out[p.name] = to_unit_array(cap_long_side(im, cap)).astype(np.float64)
    return out


def plot_curve(path: Path, dest: Path) -> None:
    """Held-out one-step denoising PSNR at each noise level against training hours (train.py's probe)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    keys = [k for k in points[0] if k.startswith("psnr@")]
    # Points marked "probe": "earlier" were measured on another set of probe pages (code-prior-doc's
    # first 70 minutes, model card): drawn faint, as they do not compare with the others.
    earlier = [p for p in points if p.get("probe") == "earlier"]
    points = [p for p in points if p.get("probe") != "earlier"]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    for k in keys:
        [line] = ax.plot([p["hours"] for p in points], [p[k] for p in points], marker=".", label=f"noise std {k[5:]}")
        if earlier:
            ax.plot([p["hours"] for p in earlier], [p[k] for p in earlier], color=line.get_color(), alpha=0.3,
                    linestyle="--", label="earlier probe pages" if k == keys[0] else None)
    ax.set_xlabel("training time on the 2-core CPU (hours)")
    ax.set_ylabel("one-step denoising PSNR (dB)")
    ax.set_title("held-out fonts and texts")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(dest)
    plt.close(fig)


def held_out_pages(n: int, size: tuple[int, int] = (384, 256)) -> dict[str, np.ndarray]:
    """`n` pages in the held-out fonts and texts (the document benchmark's pages), float64 in [0, 1]."""
    from code_cli.bench.doc import make_pages

    return {p.name: p.clean / 255.0 for p in make_pages(n, size, seed=1)}


def parse_models(card: str, compare: list[str]) -> dict[str, str]:
    """{label: spec}: the card's model first (labelled by its name), then LABEL=SPEC pairs."""
    models = {Path(card).name: card}
    for item in compare:
        label, sep, spec = item.partition("=")
        if not sep or not label or not spec:
            raise SystemExit(f"--compare {item}: expected LABEL=MODEL, e.g. old=code-prior-s")
        if label in models:
            raise SystemExit(f"--compare {item}: the label {label!r} is already taken")
        models[label] = spec
    return models


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="code-prior-s", help="the model whose card this is (figures are of it)")
    ap.add_argument("--compare", nargs="*", default=[], metavar="LABEL=MODEL", help="more models, one column each")
    ap.add_argument("--photos", type=Path, default=DEFAULT_MANIFEST,
                    help="manifest.json (its held-out split) or a folder of clean photographs")
    ap.add_argument("--out", type=Path, required=True, help="folder for eval.json, eval.md and the figures")
    ap.add_argument("--cap", type=int, default=512, help="long side of the held-out photos for denoising")
    ap.add_argument("--round-trip-cap", type=int, default=256, help="long side for the 150-call round trips")
    ap.add_argument("--round-trip-photos", type=int, default=4, help="how many photos get round trips (0: none)")
    ap.add_argument("--samples", type=int, default=16, help="unconditional samples in samples.png")
    ap.add_argument("--curve", type=Path, default=None,
                    help="the training run's curve.jsonl: also plot held-out denoising PSNR against CPU hours")
    ap.add_argument("--pages", type=int, default=0,
                    help="held-out rendered pages (prior/pages.py: held-out fonts and texts) instead of photos")
    a = ap.parse_args(argv)
    torch.manual_seed(0)
    start = time.perf_counter()
    specs = parse_models(a.model, a.compare)
    pipes = {label: CODEPipeline.from_pretrained(spec) for label, spec in specs.items()}
    heldout = held_out_pages(a.pages) if a.pages else load_heldout(a.photos, a.cap)
    rows, figs = denoising_table(pipes, heldout)
    trips = []
    if a.round_trip_photos:
        small = (dict(list(heldout.items())[: a.round_trip_photos]) if a.pages
                 else load_heldout(a.photos, a.round_trip_cap, a.round_trip_photos))
        trips = [{"model": label, **t} for label, pipe in pipes.items() for t in round_trip(pipe, small)]
    first = next(iter(pipes.values()))
    a.out.mkdir(parents=True, exist_ok=True)
    denoise_figure(figs).save(a.out / "denoising.png")
    sample_grid(first, n=a.samples).save(a.out / "samples.png")
    report = {"models": specs, "photos": f"{a.pages} held-out pages" if a.pages else str(a.photos), "cap": a.cap,
              "denoising": rows, "round_trip": trips}
    (a.out / "eval.json").write_text(json.dumps(report, indent=2) + "\n")
    if a.curve:
        plot_curve(a.curve, a.out / "curve.png")
    md = markdown(rows, trips)
    (a.out / "eval.md").write_text(md)
    print(md)
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()

"""code-restore-bench: restore corrupted held-out photographs with every method; measure and report.

    code-restore-bench --photos data/photos/manifest.json --out bench-out            # all 21 corruptions
    code-restore-bench --quick                                                       # a CPU subset, minutes
    code-restore-bench --device cuda --dtype bfloat16 --doc docs/benchmark.md        # the published table

Clean photographs (the manifest's "heldout" split, or a folder) are centre-cropped to --size and
corrupted with the 19 ImageNet-C corruptions and the CODE paper's two masks at one severity, seeded.
Methods: `input` (the corrupted image), `nl_means` and `bm3d` (blind: noise std from Immerkaer's
estimate), `one_step` (the prior's clean estimate at that noise level), and any preset NAME, which
runs CODE (`code:NAME`) and SDEdit at the same timestep and the same network calls (`sdedit:NAME`).
Honest protocol: one sample per image, nothing selected with the clean image.
Writes results.csv (every image x method), swd.csv (per set), results.md, plots, grids and run.npz
to --out. `--reuse DIR` keeps the methods of the run saved in DIR that --methods does not name, on
that run's corrupted images: re-measure one preset without restoring with all the others again.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from code_cli import imageio
from code_cli.bench import baselines, report, saved
from code_cli.bench.corrupt import CORRUPTIONS, FAMILIES, corrupt
from code_cli.bench.make_examples import clean_for
from code_cli.bench.metrics import Brisque, immerkaer_sigma, psnr, ssim, to_unit
from code_cli.bench.photos import DEFAULT_MANIFEST, centre_crop, list_photos
from code_cli.bench.realism import PatchSWD
from code_cli.errors import CodeRestoreError, ConfigError
from code_cli.pipeline import CODEPipeline, image_seed
from code_cli.presets import RestoreConfig, build_config, list_presets

CLASSICAL = ("input", "nl_means", "bm3d", "one_step")
DEFAULT_PRESETS = ("default", "fine", "global", "auto")  # `auto` only where presets/auto.yaml exists
QUICK = {"photos": 3, "size": 64, "corruptions": "gaussian_noise,defocus_blur,fog,jpeg_compression,masked_pixels",
         "methods": "input,nl_means,bm3d,one_step,default"}
BRISQUE_MIN_SIZE = 32  # below this its 7x7 statistics at half size are a handful of pixels


def sdedit_twin(cfg: RestoreConfig, T: int = 1000) -> RestoreConfig:
    """SDEdit from CODE's latent timestep with CODE's network-call budget."""
    return sdedit_at(cfg, cfg.depth, cfg.nfe, T)


def sdedit_at(cfg: RestoreConfig, depth: int, nfe: int, T: int = 1000) -> RestoreConfig:
    """SDEdit from level `depth` of cfg's grid, spending `nfe` network calls.

    SDEdit spends one call per grid level, so a grid of N' = nfe * steps / depth
    levels reaches the same timestep in exactly nfe calls (capped at T levels)."""
    steps = min(T, max(1, round(nfe * cfg.steps / depth)))
    t_latent = round(depth * T / cfg.steps)
    twin_depth = max(1, min(steps, round(t_latent * steps / T)))
    return replace(cfg, method="sdedit", mode="fixed", steps=steps, depth=twin_depth)


def run_config(pipe: CODEPipeline, cfg: RestoreConfig, items: list[imageio.InputItem], root: Path) -> list[dict]:
    """PSNR of one config on an examples/ folder (corrupted/ beside clean/); used by bench.sweep."""
    rows = []
    for item in items:
        im = imageio.load(item.path)
        seed = image_seed(cfg.seed, item.rel.as_posix())
        r = pipe(im.rgb[None], seeds=[seed], config=cfg)[0]
        clean = np.asarray(Image.open(clean_for(item.path, root)).convert("RGB"), np.float64) / 255
        rows.append({"image": item.rel.stem, "psnr": psnr(to_unit(r.image), clean), "nfe": r.nfe,
                     "seconds": r.seconds, "restored": r.image})
    return rows


@dataclass(frozen=True)
class Method:
    key: str  # as in the CSV: input, nl_means, bm3d, one_step, code:NAME, sdedit:NAME
    config: RestoreConfig | None = None
    # SDEdit twin of a preset that chooses per image (auto): each image gets SDEdit at the timestep
    # and with the calls of auto's choice for it; an image auto leaves alone is left alone.
    per_image_twin: bool = False


@dataclass
class Item:
    photo: str
    corruption: str
    clean: np.ndarray  # HWC float64 in [0, 1]
    corrupted: np.ndarray  # HWC float64 in [0, 1] (from uint8)
    sigma: float  # Immerkaer's noise estimate on the corrupted image


def parse_methods(spec: str, overrides: dict) -> list[Method]:
    """Comma list of input, nl_means, bm3d, one_step, code:NAME, sdedit:NAME, or NAME for both."""
    out: list[Method] = []
    for tok in (t.strip() for t in spec.split(",") if t.strip()):
        if tok in CLASSICAL:
            out.append(Method(tok))
            continue
        kind, _, name = tok.rpartition(":")
        if kind not in ("", "code", "sdedit"):
            raise ConfigError(f"--methods: unknown method {tok!r}; use {', '.join(CLASSICAL)}, a preset NAME, "
                              "code:NAME or sdedit:NAME")
        cfg, name = build_config(name, overrides)
        if kind in ("", "code"):
            out.append(Method(f"code:{name}", cfg))
        if kind in ("", "sdedit"):
            if cfg.method != "code":
                if kind == "sdedit":
                    raise ConfigError(f"--methods: {tok}: preset {name!r} is already SDEdit")
                continue
            if cfg.mode == "auto":
                out.append(Method(f"sdedit:{name}", cfg, per_image_twin=True))
            else:
                out.append(Method(f"sdedit:{name}", sdedit_twin(cfg)))
    return out


def parse_corruptions(spec: str) -> list[str]:
    if spec == "all":
        return list(CORRUPTIONS)
    out = []
    for tok in (t.strip() for t in spec.split(",") if t.strip()):
        names = FAMILIES.get(tok, (tok,))
        for n in names:
            if n not in CORRUPTIONS:
                raise ConfigError(f"--corruptions: unknown {n!r}; valid: all, "
                                  f"{', '.join(FAMILIES)}, {', '.join(CORRUPTIONS)}")
            out.append(n)
    return out


def make_items(photos, corruptions: list[str], size: int, severity: int, seed: int) -> list[Item]:
    items = []
    for p in photos:
        clean = centre_crop(p.path, size)
        for c in corruptions:
            bad = corrupt(clean, c, severity, seed=image_seed(seed, f"{p.name}/{c}") % 2**32)
            items.append(Item(p.name, c, clean / 255.0, bad / 255.0, immerkaer_sigma(bad / 255.0)))
    return items


def to_batch(arrays: list[np.ndarray]) -> torch.Tensor:
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).float() * 2 - 1


def restore(method: Method, items: list[Item], pipes: dict, a) -> list[tuple[np.ndarray, int, float]]:
    """(restored HWC in [0, 1], network calls, seconds) per item."""
    if method.key == "input":
        return [(it.corrupted, 0, 0.0) for it in items]
    if method.key in ("nl_means", "bm3d"):
        args = ([method.key] * len(items), [it.corrupted for it in items], [it.sigma for it in items])
        if a.workers > 1:
            # BM3D takes seconds per 256 px image on one core: on a GPU machine the CPU cores would
            # otherwise be the bottleneck of the whole table.
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(a.workers) as pool:
                return [(r, 0, sec) for r, sec in pool.map(baselines.timed, *args)]
        return [(r, 0, sec) for r, sec in map(baselines.timed, *args)]
    out = []
    for i in range(0, len(items), a.batch):
        chunk = items[i:i + a.batch]
        x = to_batch([it.corrupted for it in chunk])
        if method.key == "one_step":
            t0 = time.perf_counter()
            y = baselines.one_step(pipes[a.model or "code-prior-s"], x, [it.sigma for it in chunk], a.device, a.dtype)
            dt = (time.perf_counter() - t0) / len(chunk)
            out += [(to_unit(im), 1, dt) for im in y]
            continue
        cfg = method.config
        seeds = [image_seed(cfg.seed, f"{it.photo}/{it.corruption}") for it in chunk]
        if method.per_image_twin:
            out += auto_twin(pipes[cfg.model], cfg, x, chunk, seeds)
            continue
        for r in pipes[cfg.model](x, seeds=seeds, config=cfg):
            out.append((to_unit(r.image), r.nfe, r.seconds))
    return out


def auto_twin(pipe: CODEPipeline, cfg: RestoreConfig, x: torch.Tensor, chunk: list[Item],
              seeds: list[int]) -> list[tuple[np.ndarray, int, float]]:
    """SDEdit at the timestep and with the calls of auto's choice for each image. A page that auto
    despeckles or flattens (the doc preset) is corrected so for its twin too: the twins differ only
    in the network edit."""
    from code_cli.method.auto import page_corrections

    out = []
    for i, c in enumerate(pipe.choose(x, cfg)):
        if not c.edit:
            out.append((chunk[i].corrupted, 0, 0.0))
            continue
        xi = page_corrections(x[i:i + 1], c)
        if c.depth == 0:
            out.append((to_unit(xi[0]), 0, 0.0))
            continue
        twin = sdedit_at(cfg, c.depth, c.nfe)
        r = pipe(xi, seeds=[seeds[i]], config=twin)[0]
        out.append((to_unit(r.image), r.nfe, r.seconds))
    return out


def write_csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in r.items()})


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="code-restore-bench", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=Path, default=DEFAULT_MANIFEST,
                    help="manifest.json (its heldout split) or a folder of clean photographs")
    ap.add_argument("--max-photos", type=int, default=None, help="use the first N photographs")
    ap.add_argument("--photo-names", default=None, help="comma list of photograph names (file stems) to use")
    ap.add_argument("--size", type=int, default=None, help="centre-crop edge in pixels (default 256; --quick 64)")
    ap.add_argument("--severity", type=int, default=3, choices=range(1, 6))
    ap.add_argument("--corruptions", default=None, help="all (default), or a comma list of names or families")
    ap.add_argument("--methods", default=None,
                    help="comma list: input, nl_means, bm3d, one_step, preset NAME (CODE + SDEdit twin), "
                         "code:NAME, sdedit:NAME (default: all four, and the presets default, fine, global, auto)")
    ap.add_argument("--quick", action="store_true",
                    help=f"CPU subset in minutes: {QUICK['photos']} photos at {QUICK['size']} px, "
                         f"{QUICK['corruptions']}; methods {QUICK['methods']} (flags given override it)")
    ap.add_argument("--model", default=None, help="prior for every preset (default: each preset's own)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    ap.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    ap.add_argument("--batch", type=int, default=None, help="images per network batch (default 32 on cuda, 8 else)")
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1) // 2),
                    help="processes for the classical baselines (default: half the CPU cores)")
    ap.add_argument("--seed", type=int, default=0, help="corruption seeds; restoring uses each preset's seed")
    ap.add_argument("--out", type=Path, default=Path("bench-out"))
    ap.add_argument("--reuse", type=Path, default=None, metavar="DIR",
                    help="keep the methods of the run saved in DIR (its run.npz) that --methods does not name, "
                         "on that run's corrupted images; --methods '' redraws its report")
    ap.add_argument("--doc", type=Path, default=None,
                    help="also write this markdown report, its images under <its folder>/bench/")
    a = ap.parse_args(argv)
    q = QUICK if a.quick else {"photos": None, "size": 256, "corruptions": "all", "methods": None}
    a.max_photos = a.max_photos if a.max_photos is not None else q["photos"]
    a.size = a.size or q["size"]
    a.corruptions = a.corruptions or q["corruptions"]
    if a.methods is None:
        a.methods = q["methods"] or ",".join([*CLASSICAL, *(p for p in DEFAULT_PRESETS if p in list_presets())])
    if a.batch is None:
        a.batch = 32 if a.device == "cuda" or (a.device == "auto" and torch.cuda.is_available()) else 8
    return a


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    domain = "photo"
    if "--domain" in argv or any(t.startswith("--domain=") for t in argv):
        # printed pages judged by OCR: a benchmark of its own (bench/doc.py); photo is the default
        domain = (argv[argv.index("--domain") + 1] if "--domain" in argv
                  else next(t for t in argv if t.startswith("--domain=")).split("=", 1)[1])
        if domain not in ("photo", "doc"):
            raise SystemExit(f"code-restore-bench: --domain: {domain!r} is not photo or doc")
    try:
        if domain == "doc":
            from code_cli.bench.doc import main as doc_main

            return doc_main(argv)
        argv = [t for i, t in enumerate(argv) if t != "--domain" and (i == 0 or argv[i - 1] != "--domain")]
        a = parse_args(argv)
        run(a, argv)
    except CodeRestoreError as e:  # both domains' library errors: one line, exit 2
        print(f"error: {e}", file=sys.stderr)
        raise SystemExit(2) from None


def run(a, argv: list[str]) -> None:
    start = time.perf_counter()
    photos = list_photos(a.photos)
    if a.photo_names:
        wanted = a.photo_names.split(",")
        unknown = sorted(set(wanted) - {p.name for p in photos})
        if unknown:
            raise ConfigError(f"--photo-names: not in {a.photos}: {', '.join(unknown)}; there: "
                              f"{', '.join(p.name for p in photos)}")
        photos = [p for p in photos if p.name in wanted]
    photos = photos[: a.max_photos]
    corruptions = parse_corruptions(a.corruptions)
    methods = parse_methods(a.methods, {"model": a.model, "device": a.device, "dtype": a.dtype})
    a.out.mkdir(parents=True, exist_ok=True)
    kept = saved.load(a.reuse) if a.reuse else None
    if kept is not None:
        saved.check_matches(kept, [p.name for p in photos], corruptions, a.size, a.severity, a.seed, a.reuse)
        items = [Item(p, c, cl / 255.0, bad / 255.0, float(s))
                 for p, c, cl, bad, s in zip(kept.photos, kept.corruptions, kept.clean, kept.corrupted, kept.sigma)]
        keep = [k for k in kept.methods if k not in {m.key for m in methods}]
    else:
        items, keep = make_items(photos, corruptions, a.size, a.severity, a.seed), []
    print(f"{len(photos)} photos x {len(corruptions)} corruptions at {a.size} px, severity {a.severity}: "
          f"{len(items)} images; methods: {', '.join(m.key for m in methods)}"
          + (f"; kept from {a.reuse}: {', '.join(keep)}" if keep else ""), flush=True)
    pipes: dict[str, CODEPipeline] = {}
    for m in methods:
        model = (m.config.model if m.config else a.model or "code-prior-s") if m.key != "input" else None
        if model and m.key not in ("nl_means", "bm3d") and model not in pipes:
            pipes[model] = CODEPipeline.from_pretrained(model)
    brisque = Brisque()
    rows = [r for r in kept.rows if r["method"] in keep] if kept else []
    restored = {k: [im / 255.0 for im in kept.restored[k]] for k in keep} if kept else {}
    failed = []
    for m in methods:
        t0 = time.perf_counter()
        try:
            outs = restore(m, items, pipes, a)
        except Exception as e:  # noqa: BLE001 - one broken method must not cost a long run the others
            failed.append(f"{m.key}: {e.__class__.__name__}: {e}")
            print(f"error: {failed[-1]}", file=sys.stderr, flush=True)
            continue
        restored[m.key] = [o[0] for o in outs]
        for it, (img, nfe, sec) in zip(items, outs):
            rows.append({
                "photo": it.photo, "corruption": it.corruption, "severity": a.severity, "method": m.key,
                "psnr": psnr(img, it.clean), "ssim": ssim(img, it.clean), "psnr_input": psnr(img, it.corrupted),
                "brisque": brisque(img) if a.size >= BRISQUE_MIN_SIZE else math.nan,
                "nfe": nfe, "seconds": sec, "sigma_est": it.sigma,
            })
        write_csv(a.out / "results.csv", rows)  # after every method, so a long run keeps what it measured
        mine = [r for r in rows if r["method"] == m.key]
        print(f"{m.key}: mean PSNR {np.mean([r['psnr'] for r in mine]):.2f} dB, SSIM "
              f"{np.mean([r['ssim'] for r in mine]):.3f}, {mine[0]['nfe']} calls, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    fresh = [m for m in methods if m.key in restored]
    # The report's order: the saved run's, each re-measured method in its old place, new ones last.
    by_key = {m.key: m for m in fresh}
    order = [k for k in (kept.methods if kept else []) if k in keep or k in by_key]
    order += [m.key for m in fresh if m.key not in order]
    methods = [by_key.get(k, Method(k)) for k in order]  # a kept method needs only its key, for the report
    swd_rows = [r for r in kept.swd_rows if r["method"] in keep] if kept else []
    if len(photos) >= 2:
        ref = PatchSWD([it.clean for it in items if it.corruption == corruptions[0]], seed=a.seed)
        for m in fresh:
            for c in corruptions:
                sel = [img for img, it in zip(restored[m.key], items) if it.corruption == c]
                swd_rows.append({"corruption": c, "method": m.key, "swd": ref(sel)})
            swd_rows.append({"corruption": "all", "method": m.key, "swd": ref(restored[m.key])})
        write_csv(a.out / "swd.csv", swd_rows)
    wall = time.perf_counter() - start
    setup = {
        "command": "code-restore-bench " + shlex.join(argv),
        "photos": photos, "photos_spec": str(a.photos), "size": a.size, "severity": a.severity,
        "corruptions": corruptions, "methods": methods, "wall": wall, "machine": machine(a),
        "batch": a.batch, "dtype": a.dtype, "failed": failed,
        "kept": {"methods": keep, "command": kept.command} if keep else None,
    }
    if kept is not None and not fresh:  # a redraw: the report is the saved run's own
        setup.update(command=kept.command, wall=kept.wall, machine=kept.machine, kept=kept.kept)
    if rows:
        write_csv(a.out / "results.csv", rows)
    # Everything the report needs, so a later run can keep these methods or redraw the report.
    saved.save(a.out, items, {m.key: restored[m.key] for m in methods}, rows, swd_rows, a.severity, a.seed,
               setup["command"], setup["wall"], setup["machine"], setup["kept"])
    summary = report.write_all(rows, swd_rows, items, restored, setup, a.out, a.doc)
    print(summary)
    print(f"wrote {a.out}/results.csv, swd.csv, results.md, plots and grids; wall time {wall / 60:.1f} min"
          + (f"; report {a.doc}" if a.doc else ""))


def machine(a) -> str:
    dev = "cuda" if a.device == "cuda" or (a.device == "auto" and torch.cuda.is_available()) else "cpu"
    if dev == "cuda":
        return f"{torch.cuda.get_device_name()} ({a.dtype}, batch {a.batch}; {a.workers} CPU workers for the filters)"
    # A shared CPU's wall time says little without how busy it was.
    return (f"CPU, {len(os.sched_getaffinity(0))} cores visible ({platform.processor() or platform.machine()}), "
            f"{torch.get_num_threads()} torch threads, {a.dtype}, batch {a.batch}; load average "
            f"{os.getloadavg()[1]:.1f} over the last 5 min of the run")


if __name__ == "__main__":
    main()

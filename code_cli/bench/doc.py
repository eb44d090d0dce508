"""code-restore-bench --domain doc: degraded printed pages, restored by every method, read by Tesseract.

    code-restore-bench --domain doc --out bench-out/doc                      # 10 degradations + clean
    code-restore-bench --domain doc --pages 3 --methods input,background,doc --degradations defocus,jpeg

Pages are drawn in the held-out fonts from the held-out licence texts (prior/pages.py: neither is
ever trained on), degraded with the document degradations (bench/doc_degrade.py), seeded, and
restored blind, one sample each. Each output is read by Tesseract; the table gives character and
word error rates against the drawn text, PSNR and SSIM to the clean render, network calls and
seconds per page. Clean pages go through every method too: a restorer must not hurt them.
Writes results.csv, results.md and grid.jpg to --out; --doc also writes that markdown report.
"""

from __future__ import annotations

import argparse
import os
import shlex
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from code_cli.bench import ocr
from code_cli.bench.doc_baselines import DOC_BASELINES
from code_cli.bench.doc_degrade import DEGRADATIONS, degrade
from code_cli.bench.metrics import immerkaer_sigma, psnr, ssim
from code_cli.errors import ConfigError
from code_cli.pipeline import image_seed

CLEAN = "clean"
DEFAULT_METHODS = "input,median,nl_means,bm3d,background,sauvola,doc"
PAGE_SIZE = (512, 384)  # width, height: ten to twenty lines, a few seconds of CPU per network call
# Small print, as a 150-200 dpi scan of 9-11 pt text gives: Tesseract reads larger print through
# most of these degradations unharmed, so a benchmark on it would measure little.
X_HEIGHT = (8.0, 11.0)


@dataclass
class Page:
    name: str
    clean: np.ndarray  # uint8 HWC
    text: str  # what was drawn, the OCR reference


def make_pages(n: int, size: tuple[int, int], seed: int) -> list[Page]:
    """`n` pages in the held-out fonts (cycled, so each family appears) and held-out texts."""
    from code_cli.prior.pages import HELDOUT_FONTS, HELDOUT_TEXTS, check_fonts, sample_page

    check_fonts(HELDOUT_FONTS)
    regular = [f for f in HELDOUT_FONTS if f.style == "regular"]
    pages = []
    for i in range(n):
        rng = np.random.default_rng(image_seed(seed, f"page-{i}") % 2**32)
        family = regular[i % len(regular)].family
        fonts = tuple(f for f in HELDOUT_FONTS if f.family == family)
        im, text, _ = sample_page(size, rng, fonts, HELDOUT_TEXTS, X_HEIGHT)
        pages.append(Page(f"page-{i}-{family.replace(' ', '')}", np.asarray(im).copy(), text))
    return pages


EXAMPLE_DEGRADATIONS = ("gaussian_noise", "shadow", "motion")


def write_examples(folder: Path, seed: int = 0) -> list[Path]:
    """examples/pages/: one held-out page (clean/page.png, its text in clean/page.txt) and its
    degraded copies (corrupted/page-<degradation>.png), for `make run`."""
    page = make_pages(1, PAGE_SIZE, seed)[0]
    (folder / "clean").mkdir(parents=True, exist_ok=True)
    (folder / "corrupted").mkdir(parents=True, exist_ok=True)
    Image.fromarray(page.clean).save(folder / "clean" / "page.png")
    (folder / "clean" / "page.txt").write_text(page.text + "\n")
    out = []
    for d in EXAMPLE_DEGRADATIONS:
        bad = degrade(page.clean, d, image_seed(seed, f"{page.name}/{d}") % 2**32)
        out.append(folder / "corrupted" / f"page-{d}.png")
        Image.fromarray(bad).save(out[-1])
    return out


def parse_methods(spec: str, overrides: dict):
    """Doc baselines by name; anything else goes to the photo benchmark's parser (presets, twins)."""
    from code_cli.bench.__main__ import Method
    from code_cli.bench.__main__ import parse_methods as parse_presets

    out = []
    for tok in (t.strip() for t in spec.split(",") if t.strip()):
        if tok == "input" or tok in DOC_BASELINES:
            out.append(Method(tok))
        elif tok in ("one_step",):
            raise ConfigError(f"--methods: {tok} is a photo-benchmark method")
        else:
            out.extend(parse_presets(tok, overrides))
    return out


def restore_all(method, items, pipes, a) -> list[tuple[np.ndarray, int, float]]:
    from code_cli.bench.__main__ import restore

    if method.key in DOC_BASELINES:
        fn = DOC_BASELINES[method.key]
        out = []
        for it in items:
            t0 = time.perf_counter()
            out.append((fn(it.corrupted), 0, time.perf_counter() - t0))
        return out
    return restore(method, items, pipes, a)


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="code-restore-bench --domain doc", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--domain", choices=("doc",), default="doc")
    ap.add_argument("--pages", type=int, default=6, help="held-out pages (default 6: two per held-out font)")
    ap.add_argument("--page-size", type=int, nargs=2, default=PAGE_SIZE, metavar=("W", "H"))
    ap.add_argument("--degradations", default="all", help=f"all, or a comma list of {', '.join(DEGRADATIONS)}")
    ap.add_argument("--no-clean", action="store_true", help="leave out the undegraded pages")
    ap.add_argument("--methods", default=DEFAULT_METHODS,
                    help=f"comma list: input, {', '.join(DOC_BASELINES)}, preset NAME (CODE + SDEdit twin), "
                         f"code:NAME, sdedit:NAME (default {DEFAULT_METHODS})")
    ap.add_argument("--model", default=None, help="prior for every preset (default: each preset's own)")
    ap.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    ap.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 1) // 2))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench-out/doc"))
    ap.add_argument("--doc", type=Path, default=None, help="also write this markdown report")
    ap.add_argument("--examples", type=Path, default=None, metavar="DIR",
                    help="only write the example pages (a clean page and degraded copies) into DIR")
    a = ap.parse_args(argv)
    if a.degradations == "all":
        a.degradations = list(DEGRADATIONS)
    else:
        a.degradations = [d.strip() for d in a.degradations.split(",") if d.strip()]
        bad = [d for d in a.degradations if d not in DEGRADATIONS]
        if bad:
            ap.error(f"--degradations: unknown {', '.join(bad)}; valid: all, {', '.join(DEGRADATIONS)}")
    return a


def main(argv: list[str]) -> None:
    """Called by code-restore-bench's main, which maps library errors to one line and exit 2."""
    a = parse_args(argv)
    if a.examples:
        for path in write_examples(a.examples, a.seed):
            print(f"wrote {path}")
        return
    run(a, argv)


def run(a, argv: list[str]) -> None:
    from code_cli.bench.__main__ import Item, machine, write_csv
    from code_cli.pipeline import CODEPipeline

    start = time.perf_counter()
    ocr.tesseract_path()
    methods = parse_methods(a.methods, {"model": a.model, "device": a.device, "dtype": a.dtype})
    pages = make_pages(a.pages, tuple(a.page_size), a.seed)
    names = ([] if a.no_clean else [CLEAN]) + a.degradations
    items, refs = [], []
    for p in pages:
        for d in names:
            bad = p.clean if d == CLEAN else degrade(p.clean, d, image_seed(a.seed, f"{p.name}/{d}") % 2**32)
            items.append(Item(p.name, d, p.clean / 255.0, bad / 255.0, immerkaer_sigma(bad / 255.0)))
            refs.append(p.text)
    print(f"{len(pages)} pages x {len(names)} conditions at {a.page_size[0]} x {a.page_size[1]} px: "
          f"{len(items)} images; methods: {', '.join(m.key for m in methods)}", flush=True)
    a.out.mkdir(parents=True, exist_ok=True)
    pipes = {}
    for m in methods:
        if m.config is not None and m.config.model not in pipes:
            pipes[m.config.model] = CODEPipeline.from_pretrained(m.config.model)
    rows, restored = [], {}
    for m in methods:
        t0 = time.perf_counter()
        outs = restore_all(m, items, pipes, a)
        restored[m.key] = [o[0] for o in outs]
        with ThreadPoolExecutor(max(1, a.workers)) as pool:
            scores = list(pool.map(ocr.ocr_score, [o[0] for o in outs], refs))
        for it, (img, nfe, sec), sc in zip(items, outs, scores):
            rows.append({"page": it.photo, "degradation": it.corruption, "method": m.key, "cer": sc.cer,
                         "wer": sc.wer, "psnr": psnr(img, it.clean), "ssim": ssim(img, it.clean),
                         "nfe": nfe, "seconds": sec, "sigma_est": it.sigma})
        write_csv(a.out / "results.csv", rows)
        mine = [r for r in rows if r["method"] == m.key]
        print(f"{m.key}: mean CER {np.mean([r['cer'] for r in mine]):.3f}, WER "
              f"{np.mean([r['wer'] for r in mine]):.3f}, PSNR {np.mean([r['psnr'] for r in mine]):.2f} dB, "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
    wall = time.perf_counter() - start
    grid(items, restored, [m.key for m in methods], a.out / "grid.jpg")
    text = report(rows, [m.key for m in methods], names, {
        "command": "code-restore-bench " + shlex.join(argv), "wall": wall, "machine": machine(a),
        "pages": len(pages), "size": a.page_size})
    (a.out / "results.md").write_text(text)
    if a.doc:
        a.doc.parent.mkdir(parents=True, exist_ok=True)
        figure = a.doc.parent / "bench" / "doc-grid.jpg"
        figure.parent.mkdir(parents=True, exist_ok=True)
        figure.write_bytes((a.out / "grid.jpg").read_bytes())
        a.doc.write_text(text.replace("](grid.jpg)", f"](bench/{figure.name})"))
    print(text)
    print(f"wrote {a.out}/results.csv, results.md, grid.jpg; wall time {wall / 60:.1f} min")


def mean_by(rows: list[dict], key: str, method: str, degradation: str) -> float:
    vals = [r[key] for r in rows if r["method"] == method and r["degradation"] == degradation]
    return float(np.mean(vals)) if vals else float("nan")


def report(rows: list[dict], methods: list[str], names: list[str], setup: dict) -> str:
    classical = [m for m in methods if m in DOC_BASELINES]
    lines = [
        "# Document benchmark",
        "",
        f"{setup['pages']} pages of {setup['size'][0]} x {setup['size'][1]} px in the held-out fonts and texts, "
        "each degraded once (seeded), restored blind with one sample, read by Tesseract "
        f"{tesseract_version()} (English, psm {ocr.PSM}).",
        "",
        f"Command: `{setup['command']}`  ",
        f"Machine: {setup['machine']}; wall time {setup['wall'] / 60:.1f} min.",
        "",
        "## Character error rate (lower is better)",
        "",
        "| degradation | " + " | ".join(methods) + " |",
        "| --- |" + " ---: |" * len(methods),
    ]
    for d in names:
        cers = [mean_by(rows, "cer", m, d) for m in methods]
        best = min(cers)
        lines.append(f"| {d} | " + " | ".join(f"**{c:.3f}**" if c == best else f"{c:.3f}" for c in cers) + " |")
    for key, title, fmt in (("wer", "Word error rate", "{:.3f}"), ("psnr", "PSNR to the clean render (dB)", "{:.2f}"),
                            ("nfe", "Network calls per page", "{:.1f}"), ("seconds", "Seconds per page", "{:.1f}")):
        lines += ["", f"## {title}", "", "| degradation | " + " | ".join(methods) + " |",
                  "| --- |" + " ---: |" * len(methods)]
        for d in names:
            lines.append(f"| {d} | " + " | ".join(fmt.format(mean_by(rows, key, m, d)) for m in methods) + " |")
    lines += ["", "## Against the bar", ""]
    for m in methods:
        if m == "input" or m in DOC_BASELINES:
            continue
        lines.append(f"- `{m}`: " + bar(rows, m, classical, names))
    lines += ["", "![pages](grid.jpg)", ""]
    return "\n".join(lines)


def bar(rows: list[dict], m: str, classical: list[str], names: list[str]) -> str:
    """The issue's criteria for one method, counted from the rows."""
    hard = [d for d in names if d != CLEAN and mean_by(rows, "cer", "input", d) > 0.02]
    halved = [d for d in hard if mean_by(rows, "cer", m, d) <= 0.6 * mean_by(rows, "cer", "input", d)]
    worse = [d for d in names if mean_by(rows, "cer", m, d) > mean_by(rows, "cer", "input", d) + 0.01]
    beats = [d for d in names if d != CLEAN and classical
             and mean_by(rows, "cer", m, d) < min(mean_by(rows, "cer", c, d) for c in classical)]
    text = (f"CER at most 0.6x the input's on {len(halved)} of {len(hard)} degradations where the input's "
            f"exceeds 0.02 ({', '.join(halved) or 'none'}); worse than the input + 0.01 on "
            f"{', '.join(worse) or 'none'}; better than every classical baseline on {len(beats)} "
            f"({', '.join(beats) or 'none'})")
    if CLEAN in names:
        text += (f"; clean pages: CER {mean_by(rows, 'cer', m, CLEAN):.3f} vs "
                 f"{mean_by(rows, 'cer', 'input', CLEAN):.3f} as rendered")
    return text


def tesseract_version() -> str:
    import subprocess

    out = subprocess.run([ocr.tesseract_path(), "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).split("\n")[0].replace("tesseract ", "")


def grid(items, restored: dict, methods: list[str], path: Path, crop: int = 224) -> None:
    """The first page under every condition (rows) and method (columns), a crop of its top left."""
    first = items[0].photo
    rows = [(i, it) for i, it in enumerate(items) if it.photo == first]
    cols = ["clean", *methods]
    pad, label = 4, 16
    W = len(cols) * (crop + pad)
    H = label + len(rows) * (crop + pad + label)
    canvas = Image.new("RGB", (W, H), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, name in enumerate(cols):
        draw.text((c * (crop + pad) + 2, 2), name, fill=(0, 0, 0))
    for r, (i, it) in enumerate(rows):
        y = label + r * (crop + pad + label)
        draw.text((2, y), it.corruption, fill=(160, 0, 0))
        for c, name in enumerate(cols):
            img = it.clean if name == "clean" else restored[name][i]
            tile = np.clip(np.round(img[:crop, :crop] * 255), 0, 255).astype(np.uint8)
            canvas.paste(Image.fromarray(tile), (c * (crop + pad), y + label))
    canvas.save(path, quality=90)

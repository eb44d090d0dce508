"""Tables, plots, comparison grids and the markdown report of a benchmark run."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from code_cli.bench.corrupt import FAMILIES
from code_cli.bench.metrics import to_uint8

CLASSICAL_LABELS = {"input": "corrupted input", "nl_means": "NL-means (blind)", "bm3d": "BM3D (blind)",
                    "one_step": "one-step x0 (blind)"}
DOC_CELL = 128  # grid cells in the docs: enough to see the difference, small enough to commit
# PSNR to the input is averaged with each image capped here: a method that leaves an image as it is
# (only float round-off apart) would otherwise add 100+ dB and swamp the mean.
FIDELITY_CAP = 60.0
# "Beats" and "loses to" need more than this mean PSNR difference: a method that returns an image
# unchanged up to float round-off must count as a tie with the input, not as a win or a loss.
MARGIN_DB = 0.05


def label(key: str) -> str:
    if key in CLASSICAL_LABELS:
        return CLASSICAL_LABELS[key]
    kind, name = key.split(":", 1)
    return f"CODE {name}" if kind == "code" else f"SDEdit ({name} twin)"


def short(key: str) -> str:
    return {"input": "input", "nl_means": "NL-means", "bm3d": "BM3D", "one_step": "one-step"}.get(
        key, key.replace("code:", "CODE ").replace("sdedit:", "SDEdit "))


def means(rows: list[dict], metric: str) -> dict[tuple[str, str], float]:
    """(corruption, method) -> mean over photographs, NaNs ignored."""
    acc = defaultdict(list)
    for r in rows:
        if not math.isnan(r[metric]):
            acc[(r["corruption"], r["method"])].append(r[metric])
    return {k: float(np.mean(v)) for k, v in acc.items()}


def _fmt(v: float, digits: int) -> str:
    return "-" if v is None or math.isnan(v) else f"{v:.{digits}f}"


def corruption_table(values: dict[tuple[str, str], float], corruptions: list[str], methods: list[str],
                     higher_better: bool, digits: int = 2) -> str:
    """Rows: corruptions, then the mean and the number of corruptions each method wins (best in bold;
    a tie at the shown precision is a win for each)."""
    head = "| corruption | " + " | ".join(short(m) for m in methods) + " |"
    lines = [head, "| --- " * (len(methods) + 1) + "|"]
    wins = dict.fromkeys(methods, 0)
    for c in corruptions:
        vals = {m: values.get((c, m), math.nan) for m in methods}
        ok = [round(v, digits) for v in vals.values() if not math.isnan(v)]
        best = (max(ok) if higher_better else min(ok)) if ok else None
        cells = []
        for m in methods:
            s = _fmt(vals[m], digits)
            if best is not None and not math.isnan(vals[m]) and round(vals[m], digits) == best:
                wins[m] += 1
                s = f"**{s}**"
            cells.append(s)
        lines.append(f"| {c} | " + " | ".join(cells) + " |")
    mean = {m: np.nanmean([values.get((c, m), math.nan) for c in corruptions]) for m in methods}
    lines.append("| **mean** | " + " | ".join(_fmt(mean[m], digits) for m in methods) + " |")
    lines.append("| **wins** | " + " | ".join(str(wins[m]) for m in methods) + " |")
    return "\n".join(lines)


def swd_mean(swd: dict[tuple[str, str], float], corruptions: list[str], m: str) -> float:
    """The realism score: patch SWD of each corruption's set to the clean set, averaged over corruptions
    (NaN where one is missing). Not the SWD of all images pooled: in a pool, one corruption's surplus of
    fine detail (noise, lines) offsets another's lack (blur), and removing an artefact from a set can make
    the pool look less like the clean photographs although every set got closer to them."""
    return float(np.mean([swd.get((c, m), math.nan) for c in corruptions]))


def summary(rows: list[dict], swd: dict[tuple[str, str], float], corruptions: list[str], methods: list[str]) -> str:
    """One row per method: means over every image, and on how many corruptions it beats references."""
    p = means(rows, "psnr")
    refs = [r for r in ("input", "nl_means", "bm3d") if r in methods]
    head = ("| method | PSNR | SSIM | PSNR to input | BRISQUE | patch SWD | pooled SWD | calls | s/image | "
            + " | ".join(f"beats {short(r)}" for r in refs) + " |")
    lines = [head, "| --- " * (9 + len(refs)) + "|"]
    for m in methods:
        mine = [r for r in rows if r["method"] == m]
        beats = []
        for ref in refs:
            if ref == m:
                beats.append("")
                continue
            n = sum(p[(c, m)] > p[(c, ref)] + MARGIN_DB for c in corruptions)
            beats.append(f"{n}/{len(corruptions)}")
        lines.append(
            f"| {label(m)} | {np.mean([r['psnr'] for r in mine]):.2f} | {np.mean([r['ssim'] for r in mine]):.3f} | "
            f"{_fidelity([r['psnr_input'] for r in mine]):.2f} | {np.nanmean([r['brisque'] for r in mine]):.1f} | "
            f"{_fmt(swd_mean(swd, corruptions, m), 0)} | {_fmt(swd.get(('all', m), math.nan), 0)} | "
            f"{_calls([r['nfe'] for r in mine])} | "
            f"{np.mean([r['seconds'] for r in mine]):.2f} | " + " | ".join(beats) + " |")
    return "\n".join(lines)


def _calls(nfe: list[int]) -> str:
    """Network calls per image: one number for a fixed schedule, mean and range for a per-image one."""
    lo, hi = min(nfe), max(nfe)
    return str(lo) if lo == hi else f"{np.mean(nfe):.1f} ({lo}-{hi})"


def _fidelity(v: list[float]) -> float:
    """Mean PSNR to the input, each image capped at FIDELITY_CAP; the input itself is infinitely faithful."""
    v = np.asarray(v, np.float64)
    return math.inf if np.isinf(v).all() else float(np.minimum(v, FIDELITY_CAP).mean())


def losses(rows: list[dict], corruptions: list[str], methods: list[str]) -> list[str]:
    """Plain sentences: where each restoring method loses PSNR to the input, to a classical filter,
    and (for CODE) to its SDEdit twin."""
    p = means(rows, "psnr")
    out = []
    classical = [r for r in ("nl_means", "bm3d") if r in methods]
    for m in methods:
        if m in ("input", "nl_means", "bm3d"):
            continue
        parts = []
        refs = [r for r in ("input", *classical) if r in methods]
        if refs:
            parts.append("mean PSNR " + ", ".join(
                f"{np.mean([p[(c, m)] - p[(c, r)] for c in corruptions]):+.2f} dB against {short(r)}" for r in refs))
        if "input" in methods:
            worse = [(c, p[(c, m)] - p[(c, "input")]) for c in corruptions if p[(c, m)] < p[(c, "input")] - MARGIN_DB]
            parts.append(f"loses to the corrupted input on {len(worse)} of {len(corruptions)} corruptions"
                         + (": " + ", ".join(f"{c} ({d:+.2f} dB)" for c, d in worse) if worse else ""))
        if classical:
            best = {c: max(p[(c, r)] for r in classical) for c in corruptions}
            worse = [c for c in corruptions if p[(c, m)] < best[c] - MARGIN_DB]
            which = f"the better of {' and '.join(short(r) for r in classical)}" if len(classical) > 1 \
                else short(classical[0])
            parts.append(f"loses to {which} on {len(worse)} of {len(corruptions)}"
                         + (": " + ", ".join(worse) if worse else ""))
        twin = m.replace("code:", "sdedit:")
        if m.startswith("code:") and twin in methods:
            worse = [c for c in corruptions if p[(c, m)] < p[(c, twin)] - MARGIN_DB]
            better = [c for c in corruptions if p[(c, m)] > p[(c, twin)] + MARGIN_DB]
            parts.append(f"beats its SDEdit twin on {len(better)} of {len(corruptions)} and loses to it on "
                         f"{len(worse)}" + (": " + ", ".join(worse) if worse else ""))
        out.append(f"- **{label(m)}** " + "; ".join(parts) + ".")
    return out


def _style(m: str) -> tuple[str, str]:
    if m.startswith("code:"):
        return "o", "tab:red"
    if m.startswith("sdedit:"):
        return "s", "tab:blue"
    return {"input": ("X", "black"), "nl_means": ("^", "tab:green"), "bm3d": ("v", "tab:olive"),
            "one_step": ("D", "tab:purple")}.get(m, ("o", "grey"))


def plot_realism_fidelity(rows, swd, corruptions, methods, path: Path) -> None:
    """The paper's Figure 5 axes: fidelity to the input (PSNR to it) against realism (patch SWD to
    the clean set), one point per method, for all corruptions and per family."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [("all corruptions", corruptions)] + [
        (f, [c for c in names if c in corruptions]) for f, names in FAMILIES.items()]
    groups = [g for g in groups if g[1]]
    cols = 3
    nrow = math.ceil(len(groups) / cols)
    fig, axes = plt.subplots(nrow, cols, figsize=(4.2 * cols, 3.4 * nrow), squeeze=False)
    for ax, (title, cs) in zip(axes.flat, groups):
        for m in methods:
            if m == "input":
                continue  # infinitely faithful to itself: it has no place on the fidelity axis
            x = _fidelity([r["psnr_input"] for r in rows if r["method"] == m and r["corruption"] in cs])
            y = swd_mean(swd, cs, m)
            mk, col = _style(m)
            ax.scatter(x, y, marker=mk, color=col, s=36)
            ax.annotate(short(m), (x, y), fontsize=6.5, xytext=(3, 3), textcoords="offset points")
        if "input" in methods:
            y_in = swd_mean(swd, cs, "input")
            ax.axhline(y_in, color="black", lw=0.8, ls="--")
            ax.annotate("corrupted input", (ax.get_xlim()[0], y_in), fontsize=6.5, va="bottom")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("PSNR to the input (dB) - fidelity", fontsize=7.5)
        ax.set_ylabel("patch SWD to clean (lower = more realistic)", fontsize=7.5)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(groups):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def plot_quality_calls(rows, swd, corruptions, methods, path: Path) -> None:
    """Quality against cost: mean PSNR and patch SWD against network calls per image."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.4))
    for m in methods:
        mine = [r for r in rows if r["method"] == m]
        x = float(np.mean([r["nfe"] for r in mine]))
        mk, col = _style(m)
        for ax, y in zip(axes, (np.mean([r["psnr"] for r in mine]), swd_mean(swd, corruptions, m))):
            ax.scatter(x, y, marker=mk, color=col, s=36)
            ax.annotate(short(m), (x, y), fontsize=6.5, xytext=(3, 3), textcoords="offset points")
    for ax, yl in zip(axes, ("mean PSNR to clean (dB)", "patch SWD to clean (lower = better)")):
        ax.set_xscale("symlog", linthresh=1)
        ax.set_xlabel("network calls per image (0 = classical)", fontsize=8)
        ax.set_ylabel(yl, fontsize=8)
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has one bitmap size
        return ImageFont.load_default()


def grid(items, restored: dict[str, list[np.ndarray]], methods: list[str], family: str, corruptions: list[str],
         n_photos: int, cell: int) -> Image.Image | None:
    """Rows: the family's corruptions (a different photograph on each row); columns: clean | corrupted |
    each method. Cells resized to `cell` px."""
    cs = [c for c in FAMILIES[family] if c in corruptions]
    if not cs:
        return None
    photos = list(dict.fromkeys(it.photo for it in items))
    cols = ["clean", *methods]
    left, top, pad = 118, 28, 2
    sheet = Image.new("RGB", (left + len(cols) * (cell + pad), top + len(cs) * (cell + pad)), "white")
    draw = ImageDraw.Draw(sheet)
    font = _font(11)
    for j, m in enumerate(cols):
        text = "clean" if m == "clean" else short(m)
        draw.text((left + j * (cell + pad) + 2, 8 if j % 2 else 0), text, fill="black", font=font)
    for i, c in enumerate(cs):
        photo = photos[(list(FAMILIES[family]).index(c)) % len(photos)]
        k = next(n for n, it in enumerate(items) if it.corruption == c and it.photo == photo)
        draw.text((2, top + i * (cell + pad) + cell // 2 - 6), c.replace("_", " "), fill="black", font=font)
        ims = [items[k].clean, *(restored[m][k] for m in methods)]
        for j, arr in enumerate(ims):
            tile = Image.fromarray(to_uint8(arr)).resize((cell, cell), Image.LANCZOS)
            sheet.paste(tile, (left + j * (cell + pad), top + i * (cell + pad)))
    return sheet


NOISES = ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise")
# A patch SWD difference (x1000) of one corruption's set that counts as a win. The clean set scores 14 to
# 25 against itself (the floor); one method's per-set score moves by a few units between patch draws, so a
# per-corruption win needs a margin above that.
SWD_MARGIN = 5.0


def auto_checks(rows: list[dict], swd: dict[tuple[str, str], float], corruptions: list[str], methods: list[str],
                key: str = "code:auto", input_slack: float = 0.2, noise_margin: float = 0.5) -> list[str]:
    """Plain sentences on how a per-image method (auto) stands against what it has to beat: every fixed
    CODE preset in the run (mean PSNR over all images, patch SWD averaged over corruptions), the input
    (within input_slack dB), blind NL-means on the noises, and its SDEdit twin per corruption (PSNR or
    patch SWD)."""
    if key not in methods:
        return []
    p = means(rows, "psnr")
    mean = {m: float(np.mean([r["psnr"] for r in rows if r["method"] == m])) for m in methods}
    out = []
    fixed = [m for m in methods if m.startswith("code:") and m != key]
    def sw(c: str, m: str) -> float:  # NaN where missing: every comparison with it is False
        return swd.get((c, m), math.nan)

    if fixed:
        real = {m: swd_mean(swd, corruptions, m) for m in (key, *fixed)}
        wins = [m for m in fixed if mean[key] > mean[m] and real[key] < real[m]]
        out.append("- **Against the fixed presets** (auto minus each: mean PSNR over all images; patch SWD "
                   "averaged over corruptions, and pooled over all images): "
                   + "; ".join(f"{short(m)} {mean[key] - mean[m]:+.2f} dB, patch SWD "
                               f"{real[key] - real[m]:+.0f} (pooled {sw('all', key) - sw('all', m):+.0f})"
                               for m in fixed)
                   + f". Better in both mean PSNR and mean patch SWD than {len(wins)} of {len(fixed)}.")
    if "input" in methods:
        ok = [c for c in corruptions if p[(c, key)] >= p[(c, "input")] - input_slack]
        bad = [f"{c} ({p[(c, key)] - p[(c, 'input')]:+.2f} dB)" for c in corruptions if c not in ok]
        out.append(f"- **No worse than the input minus {input_slack} dB** on {len(ok)} of {len(corruptions)} "
                   "corruptions" + (": not on " + ", ".join(bad) if bad else "") + ".")
    noises = [c for c in NOISES if c in corruptions]
    if "nl_means" in methods and noises:
        gaps = [(c, p[(c, key)] - p[(c, "nl_means")]) for c in noises]
        n = sum(g >= noise_margin for _, g in gaps)
        out.append(f"- **Against blind NL-means on noise** (at least +{noise_margin} dB on {n} of {len(noises)}): "
                   + ", ".join(f"{c} {g:+.2f} dB" for c, g in gaps) + ".")
    twin = key.replace("code:", "sdedit:")
    if twin in methods:
        better = [c for c in corruptions
                  if p[(c, key)] > p[(c, twin)] + MARGIN_DB or sw(c, key) < sw(c, twin) - SWD_MARGIN]
        lost = [c for c in corruptions if c not in better
                and (p[(c, key)] < p[(c, twin)] - MARGIN_DB or sw(c, key) > sw(c, twin) + SWD_MARGIN)]
        out.append(f"- **Against its SDEdit twin** (same timestep and calls per image): better on "
                   f"{len(better)} of {len(corruptions)} corruptions in PSNR (> {MARGIN_DB} dB) or patch SWD "
                   f"(> {SWD_MARGIN:.0f} lower): {', '.join(better) or 'none'}"
                   f"; worse on {len(lost)}" + (f" ({', '.join(lost)})" if lost else "")
                   + "; the rest are ties, mostly images both leave alone.")
    return out


def write_all(rows, swd_rows, items, restored, setup: dict, out: Path, doc: Path | None) -> str:
    """Write results.md, plots and grids to `out` (and the report with its images next to `doc`);
    return the summary table."""
    corruptions, methods = setup["corruptions"], [m.key for m in setup["methods"]]
    swd = {(r["corruption"], r["method"]): r["swd"] for r in swd_rows}
    have_swd = bool(swd)
    cs, ms = corruptions, methods
    tables = {
        "PSNR to the clean image (dB, higher is better)": corruption_table(means(rows, "psnr"), cs, ms, True),
        "SSIM to the clean image (higher is better)": corruption_table(means(rows, "ssim"), cs, ms, True, 3),
        "BRISQUE (no reference; lower is better)": corruption_table(means(rows, "brisque"), cs, ms, False, 1),
    }
    if have_swd:
        tables["Patch SWD to the clean set (x1000, lower is better)"] = corruption_table(
            swd, corruptions, methods, False, 0)
    summ = summary(rows, swd, corruptions, methods)
    checks = auto_checks(rows, swd, corruptions, methods)
    body = ["## Summary (means over every image)", "", summ, "", *(["## auto against its bar", "", *checks, ""]
                                                                    if checks else []),
            "## Where it loses", "", *losses(rows, corruptions, methods), ""]
    for title, t in tables.items():
        body += [f"## {title}", "", t, ""]
    (out / "results.md").write_text("\n".join(body) + "\n")
    figs = {}
    if have_swd:
        plot_realism_fidelity(rows, swd, corruptions, methods, out / "realism-fidelity.png")
        plot_quality_calls(rows, swd, corruptions, methods, out / "quality-calls.png")
        figs = {"realism-fidelity.png": "Realism against fidelity to the input", "quality-calls.png":
                "Quality against network calls"}
    n_photos = len(setup["photos"])
    grids = {}
    for fam in FAMILIES:
        g = grid(items, restored, ["input", *[m for m in methods if m != "input"]] if "input" in methods else methods,
                 fam, corruptions, n_photos, min(setup["size"], 256))
        if g is not None:
            g.save(out / f"grid-{fam}.png")
            grids[fam] = g
    if doc is not None:
        write_doc(doc, setup, summ, rows, corruptions, methods, tables, figs, out, grids, items, restored, n_photos,
                  checks)
    return summ


def write_doc(doc: Path, setup, summ, rows, corruptions, methods, tables, figs, out, grids, items, restored,
              n_photos, checks: list[str] = ()) -> None:
    img_dir = doc.parent / "bench"
    img_dir.mkdir(parents=True, exist_ok=True)
    rel = Path("bench")
    for name in figs:
        Image.open(out / name).convert("RGB").save(img_dir / name, optimize=True)
    grid_files = {}
    for fam in grids:
        g = grid(items, restored, ["input", *[m for m in methods if m != "input"]] if "input" in methods else methods,
                 fam, corruptions, n_photos, min(setup["size"], DOC_CELL))
        g.save(img_dir / f"grid-{fam}.jpg", quality=80, optimize=True)
        grid_files[fam] = f"grid-{fam}.jpg"
    photos = setup["photos"]
    sources = sorted({p.source for p in photos if p.source})
    wall = setup["wall"]
    lines = [
        "# Benchmark: CODE, SDEdit and blind classical baselines on held-out photographs",
        "",
        ("Generated by this command, from the earlier run it reuses (rerun both to regenerate this page and "
         "`docs/bench/` from scratch):" if setup.get("kept") else
         "Generated by one command (rerun it to regenerate this page and `docs/bench/`):"),
        "",
        "```",
        setup["command"],
        "```",
        "",
        *([f"It re-measured {', '.join(label(m) for m in methods if m not in setup['kept']['methods'])} and kept "
           f"{', '.join(label(m) for m in setup['kept']['methods'])} as measured, on the same corrupted images, by "
           f"the earlier run it reuses (`--reuse`), made by:", "", "```", setup["kept"]["command"], "```", ""]
          if setup.get("kept") else []),
        "## Setup",
        "",
        f"- **Photographs**: {len(photos)} from `{setup['photos_spec']}` ({', '.join(p.name for p in photos)})"
        + (f"; sources: {', '.join(sources)}; the manifest's held-out split, which no prior trains on." if sources
           else "; a folder, so that none was trained on rests with whoever chose it."),
        f"- **Crops**: short side resized to {setup['size']} px, centre square. **Corruptions**: "
        f"{len(corruptions)} at severity {setup['severity']} ({', '.join(corruptions)}), seeded per photo "
        "and corruption; `masked_pixels` and `vertical_lines` are the CODE paper's masks "
        "(random pixels / random columns set to random colours).",
        f"- **Methods**: {', '.join(label(m) for m in methods)}. SDEdit twins start at CODE's latent timestep "
        "and spend its network calls, or one call per timestep where that is fewer (see the calls column); "
        "the twin of a preset that chooses per image (auto) does so per image, from auto's choice for it, "
        "and leaves alone the images auto leaves alone. "
        "The classical baselines and one-step x0 are blind: the noise "
        "std comes from Immerkaer's estimate on the corrupted image.",
        *([f"- **Failed** (left out of every table): {'; '.join(setup['failed'])}"] if setup.get("failed") else []),
        "- **Protocol**: one sample per image with the preset's seed; nothing is selected with the clean image.",
        "- **Metrics**: PSNR and SSIM to the clean image; PSNR to the corrupted input (fidelity, the paper's "
        f"x axis; each image capped at {FIDELITY_CAP:.0f} dB, an unchanged image); BRISQUE (no reference, lower "
        "is better; unreliable below about 96 px); patch SWD: sliced "
        "Wasserstein distance between 7x7 patch distributions of Laplacian-pyramid levels of the restored set and "
        "the clean set (Karras et al. 2018; x1000, lower is better; the clean set itself scores about 14 to 25, "
        "the floor). In the summary, `patch SWD` is each corruption's set against the clean set, averaged over "
        "corruptions (the realism score); `pooled SWD` takes all images as one set, where one corruption's excess "
        "of fine detail (noise, lines) offsets another's lack (blur), so it can rise when an artefact is removed.",
        f"- **Machine**: {setup['machine']}. **Wall time**: {wall / 60:.1f} min for the "
        + ("methods re-measured (the kept ones keep their seconds per image from the earlier run)."
           if setup.get("kept") else "whole run."),
        *([f"- **Small images**: at {setup['size']} px BRISQUE is unreliable (its statistics at half size cover a "
           "few thousand pixels) and the realism pyramid has few levels; read both as hints."]
          if setup["size"] < 96 else []),
        *(["- **ImageNet-C at small sizes**: its parameters are set for 224 px images; some are in pixels "
           "(elastic_transform's displacement), so on smaller crops they are stronger than their severity says. "
           "Compare methods within a row, not rows with each other."]
          if setup["size"] < 224 else []),
        "",
        "## Summary (means over every image)",
        "",
        summ,
        "",
        f"`beats X`: on how many corruptions the method's mean PSNR is above X's by more than {MARGIN_DB} dB. "
        f"In \"Where it loses\", a loss is likewise a deficit of more than {MARGIN_DB} dB.",
        "",
    ]
    if checks:
        lines += ["## auto against its bar", "",
                  "What the default preset has to show (CODE's own rules for choosing per image, against the "
                  "fixed presets, the input, a classical denoiser and SDEdit at its own timestep and calls):", "",
                  *checks, ""]
    lines += [
        "## Where it loses",
        "",
        *losses(rows, corruptions, methods),
        "",
    ]
    for name, caption in figs.items():
        lines += [f"## {caption}", "", f"![{caption}]({rel / name})", ""]
    for title, t in tables.items():
        lines += [f"## {title}", "", t, ""]
    if grid_files:
        lines += ["## Comparison grids", "",
                  "Columns: clean | corrupted input | each method; one photograph per row.", ""]
        for fam, f in grid_files.items():
            lines += [f"### {fam}", "", f"![{fam}]({rel / f})", ""]
    doc.write_text("\n".join(lines))

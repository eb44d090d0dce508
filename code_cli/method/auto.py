"""auto: choose, per image and from the image alone, whether to edit and where on the prior's schedule.

A blind noise estimate (Immerkaer 1996) is mapped onto the model's own schedule: the level whose
noise-to-signal ratio sigma_t / sqrt(abar_t) first covers it. At that level the scaled input
sqrt(abar_t) y is itself a sample of the noised-data marginal, so the corruption's noise is the
diffusion noise and nothing of it survives the decode. Below a noise floor the image is left as it
is: on blur, JPEG, fog, contrast and colour corruptions the measured edits lost PSNR to the input.
Noise constant along columns or rows (line noise) is read separately, since the 2-d estimate cancels
it, and enters the same way at a level of its own.
The choice reads pixels only; it spends no network calls.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from code_cli.cost import AUTO_ENCODE_LANGEVIN_STEPS, AUTO_LINE_LANGEVIN_STEPS, auto_calls
from code_cli.method import deblur as D
from code_cli.method import page as P
from code_cli.method.code import (
    CODEParams,
    Correction,
    EpsModel,
    MethodOutput,
    Progress,
    code_restore,
    correct,
    decode,
    encode,
)
from code_cli.method.ddim import ddim_move
from code_cli.method.noise import randn_like_per_image
from code_cli.method.schedule import Levels, decode_levels
from code_cli.method.sdedit import SDEditParams, sdedit
from code_cli.method.solver import dpm_decode
from code_cli.method.threshold import Threshold

# Below this noise std (on a [0, 1] scale) an edit measured worse than the input (issue 11).
NOISE_FLOOR = 0.03
# The level's noise-to-signal ratio must reach KAPPA x the estimate (on [-1, 1]), per finish: measured
# best of 0.8, 1.0, 1.2 with the ODE decode, and of 1.0, 1.2 with the one-step mean (docs/auto.md).
KAPPA = {"sample": 1.2, "mean": 1.0}
# Langevin steps and first relative step on a noise entry; see docs/auto.md for the measurement.
LANGEVIN_STEPS = 0
EPSILON = 0.1
# With a depth the user gave, the edit is CODE's ODE inversion; these are the `default` preset's values.
ENCODE_LANGEVIN_STEPS = AUTO_ENCODE_LANGEVIN_STEPS
ENCODE_EPSILON = 0.2

# Line noise (constant along columns or rows): edit at or above this std on [0, 1]. White noise and
# blur, weather and digital corruptions read at most 0.024 on the benchmark's 336 images at 64 px, the
# 371 manifest photographs at most 0.035 (colonnades) at 64 px and 0.013 at 256; the paper's line mask
# at severity 3 reads 0.077 to 0.174.
LINE_FLOOR = 0.05
# A line pattern is not white: its level needs a larger multiple of its estimate, and 4 Langevin steps
# at the level helped (kappa 1.5 to 3 and K 0 or 4 measured on 8 photographs, checked on 8; docs/auto.md).
LINE_KAPPA = 2.5
LINE_LANGEVIN_STEPS = AUTO_LINE_LANGEVIN_STEPS

# banded_noise_std: bands of local brightness, and the fewest pixels a band needs to count.
# The level from max(whole-image, median over 6 bands) measured +0.44 dB on impulse, +0.1 on shot,
# -0.03 on gaussian noise over 8 held-out photos at 64 px (docs/auto.md).
BANDS = 6
MIN_BAND_PIXELS = 50

# Pages (choose(page=True), the `doc` preset; method/page.py reads them). Measured on held-out pages
# (docs/documents.md): clean print reads unevenness 0.00 and ink contrast >= 0.73; a shadow reads
# unevenness 0.60 to 0.67, stains 0.09, JPEG and low resolution up to 0.065; faded ink contrast 0.20 to 0.26.
UNEVEN_FLOOR = 0.08
CONTRAST_FLOOR = 0.45
# Fax speckle: despeckle (a 3 x 3 median) when this share of pixels are isolated spikes. Clean
# print reads <= 0.0002 (40 pages in the training fonts, x-height 8 to 20), every other degradation
# <= 0.0001, salt and pepper at 4 to 8% 0.020 to 0.024. Auto's noise rule alone left Tesseract's
# error on such pages as it was (their noise is not Gaussian).
IMPULSE_FLOOR = 0.005
# Blurred print (method/deblur.py): read only where the print's edges are at least BLUR_WIDTH px
# wide (sharp print 1.5 to 1.6, JPEG 1.8 to 2.2, camera shake from 2.2: the width is read across the
# sharpest direction; the L0 reading itself keeps the identity on sharp pages, this floor saves its
# ~10 s) and the page is not noisy.
BLUR_WIDTH = 2.0
# Ghosts (bleed-through, stain rims): removed when this share of pixels are mid-tones no print
# reaches, on sharp print only: blurred print has no dark cores, and its soft edges read as ghosts.
GHOST_FLOOR = 0.005

# JPEG (method/page.py blockiness): 13 tuning pages in the training fonts read 1.47 to 2.26 at quality 5
# to 15, every other degradation and clean print 1.00 to 1.26 (faded ink the highest). Such a page gets
# SDEdit from JPEG_T: fresh noise to t = 29 (std 0.054 on [0, 1], above the artefacts) and ancestral
# steps back down the grid (3 on the doc preset's 100-step grid, where it is level 3). Tesseract's
# error on those pages (docs/documents.md, "JPEG"): input 0.0115;
# SDEdit from depth 2, 3, 4, 6: 0.0075, 0.0051, 0.0053, 0.0072 (depth 3 worse on one page of 13, by
# 0.004); ODE inversion (CODE, 4 Langevin steps) from depth 2 or 4: 0.0069, 0.0072; the ghost rule,
# which reads JPEG ringing as ghosts, 0.0115 with or without it.
BLOCKY_FLOOR = 1.35
JPEG_T = 29

ENTRIES = ("encode", "noise", "fresh")  # how the latent is reached: ODE inversion, the input's own noise, or
# fresh noise added (SDEdit's entry, with its ancestral decode)
FINISHES = ("sample", "mean")  # DDIM decode to level 0, or the one-step clean estimate

# Immerkaer's Laplacian-difference mask: zero on locally linear image content.
_MASK = torch.tensor([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
_IMMERKAER = math.sqrt(math.pi / 2) / 6  # mean |x * N| -> std of white noise
_LINE_IMMERKAER = math.sqrt(math.pi / 2 / 6)  # mean |x * [1, -2, 1]| -> std of white noise


@dataclass(frozen=True)
class AutoChoice:
    """What to do with one image, and why. depth is a level of the grid; 0 means no edit."""

    edit: bool
    depth: int
    t: int
    epsilon: float
    langevin_steps: int
    entry: str
    finish: str
    sigma_hat: float  # blind noise std on a [0, 1] scale (whole image): decides whether to edit
    reason: str
    sigma_level: float = 0.0  # the std the level follows: the larger of sigma_hat and the banded reading
    sigma_lines: float = 0.0  # std of noise constant along columns or rows, on [0, 1] (line_noise_std)
    strength: float = 1.0  # the user's scale on the floors (divided) and the level's multiples (multiplied)
    flatten: bool = False  # pages: divide by the paper and stretch the ink first (method/page.py)
    despeckle: bool = False  # pages: a 3 x 3 median first (fax speckle)
    deblur: str = ""  # pages: the point spread to invert (a method/deblur.py psf name), "" for none
    deghost: bool = False  # pages: mid-tones no print reaches set to paper (bleed-through)
    page: dict | None = None  # pages: the readings (spikes, unevenness, ink contrast, edge width)
    decode_steps: int = 0  # sample finish after a noise entry: 0 = DDIM per grid level; n = DPM-Solver++(2M), n steps
    choice_calls: int = 0  # calls spent choosing: 0 here (pixels only); --model auto's comparison of priors

    @property
    def nfe(self) -> int:
        """Network calls spent on the image: choosing (choice_calls) and the edit chosen."""
        return self.choice_calls + auto_calls(self.edit, self.depth, self.langevin_steps, self.entry == "encode",
                                              self.finish == "sample", self.decode_steps)

    def key(self) -> tuple:
        """Images whose keys are equal can run as one batch."""
        return (self.edit, self.depth, self.epsilon, self.langevin_steps, self.entry, self.finish, self.flatten,
                self.despeckle, self.deblur, self.deghost, self.decode_steps)

    def as_dict(self) -> dict:
        return {**asdict(self), "nfe": self.nfe}


def _abs_residual(x: torch.Tensor) -> torch.Tensor:
    """|x * N| per channel, (B, C, H - 2, W - 2), on the CPU in float64: the same image gets the
    same choice on every device (and in --dry-run). N is the outer product of [1, -2, 1] with itself,
    applied as two second differences: on a 12 MP photo this takes about a second, where a float64
    conv2d took 13."""
    x = x.detach().cpu().double()
    across = x[..., :, :-2] - 2 * x[..., :, 1:-1] + x[..., :, 2:]
    return (across[..., :-2, :] - 2 * across[..., 1:-1, :] + across[..., 2:, :]).abs()


def noise_std(x: torch.Tensor, residual: torch.Tensor | None = None) -> torch.Tensor:
    """Immerkaer's blind estimate of white-noise std per image of a (B, C, H, W) batch, on x's scale.

    sigma = sqrt(pi / 2) / (6 (W - 2) (H - 2)) sum |x * N|, averaged over channels.
    """
    B, C, H, W = x.shape
    if H < 3 or W < 3:
        return torch.zeros(B, dtype=torch.float64)
    r = _abs_residual(x) if residual is None else residual
    return (_IMMERKAER * r.reshape(B, C, -1).mean(-1)).mean(1)


def banded_noise_std(x: torch.Tensor, bands: int = BANDS, residual: torch.Tensor | None = None) -> torch.Tensor:
    """Immerkaer's estimate within each of `bands` equal-count bands of local brightness (3x3 mean),
    then the median over bands, per image, on x's scale.

    For white noise every band reads the same level as the whole image. Signal-dependent noise
    (shot, speckle, salt and pepper) is stronger in some bands, and the whole-image mean under-reads
    it where smooth or dark content dominates; the median over bands reads it more fully.
    """
    B, C, H, W = x.shape
    if H < 3 or W < 3:
        return torch.zeros(B, dtype=torch.float64)
    r = (_abs_residual(x) if residual is None else residual).reshape(B, -1).numpy()
    m = F.avg_pool2d(x.detach().cpu().double().reshape(B * C, 1, H, W), 3, 1).reshape(B, -1).numpy()
    out = []
    for ri, mi in zip(r, m):
        edges = np.quantile(mi, np.linspace(0, 1, bands + 1))
        band = np.searchsorted(edges[1:-1], mi, side="right")  # 0 .. bands - 1; the maximum in the last
        counts = np.bincount(band, minlength=bands)
        sums = np.bincount(band, weights=ri, minlength=bands)
        keep = counts >= MIN_BAND_PIXELS
        out.append(_IMMERKAER * float(np.median(sums[keep] / counts[keep])) if keep.any() else 0.0)
    return torch.tensor(out, dtype=torch.float64)


def line_noise_std(x: torch.Tensor, white: torch.Tensor | None = None) -> torch.Tensor:
    """Std of noise that is constant along columns or along rows (stuck or miscalibrated sensor
    columns, scan lines, the CODE paper's line masks), per image of a (B, C, H, W) batch, on x's scale;
    the larger of the two directions.

    Immerkaer's estimate on the column profile: the horizontal second difference [1, -2, 1] averaged
    down each column cancels smooth content as the 2-d mask does, and averages white noise of std s
    down to about s / sqrt(H - 2), while a column offset survives whole. That white-noise share is
    taken out, so white noise reads about 0 and only the line pattern remains. The same across rows.
    `white`: noise_std(x), where the caller has it already.
    """
    B, C, H, W = x.shape
    if H < 3 or W < 3:
        return torch.zeros(B, dtype=torch.float64)
    white = noise_std(x) if white is None else white
    x = x.detach().cpu().double()
    down_columns = (x[..., 2:] - 2 * x[..., 1:-1] + x[..., :-2]).mean(-2)  # (B, C, W - 2)
    across_rows = (x[..., 2:, :] - 2 * x[..., 1:-1, :] + x[..., :-2, :]).mean(-1)  # (B, C, H - 2)
    out = []
    for profile, n in ((down_columns, H), (across_rows, W)):
        s = _LINE_IMMERKAER * profile.abs().flatten(1).mean(1)
        out.append((s.square() - white.square() / n).clamp(min=0).sqrt())
    return torch.maximum(*out)


def level_for_noise(levels: Levels, sigma: float, kappa: float = 1.0) -> int:
    """The shallowest level k >= 1 with sigma_k / sqrt(abar_k) >= kappa sigma (both on [-1, 1])."""
    ratio = ((1 - levels.abar) / levels.abar).sqrt()
    k = int(torch.searchsorted(ratio, torch.tensor(kappa * sigma, dtype=ratio.dtype)))
    return min(max(k, 1), levels.steps)


def choose(
    x: torch.Tensor, levels: Levels, *, depth: int | None = None, epsilon: float | None = None,
    langevin_steps: int | None = None, max_depth: int | None = None, finish: str = "sample",
    floor: float = NOISE_FLOOR, kappa: float | None = None, strength: float = 1.0, page: bool = False,
    decode_steps: int = 0,
) -> list[AutoChoice]:
    """One choice per image of x in [-1, 1]. A given depth, epsilon or langevin_steps is kept as
    given (the user's flag wins); a given depth also forces an edit, reached by ODE inversion.

    strength s > 0 scales how much auto acts: it edits from floor / s (and LINE_FLOOR / s) and enters
    at the level covering s x kappa x the estimate (s x LINE_KAPPA for lines); s = 1 is the rule as
    measured.

    page: x is a printed page (the `doc` preset). Fax speckle is removed and an uneven or faded page
    flattened first (no network call), then the page is read as any image (page_choices).

    decode_steps n > 0: a noise entry with the sample finish is decoded by DPM-Solver++(2M) in
    min(n, depth) calls instead of one DDIM call per level (an ODE inversion keeps its own grid)."""
    if page:
        return page_choices(x, levels, depth=depth, epsilon=epsilon, langevin_steps=langevin_steps,
                            max_depth=max_depth, finish=finish, floor=floor, kappa=kappa, strength=strength,
                            decode_steps=decode_steps)
    r = _abs_residual(x) if min(x.shape[-2:]) >= 3 else None
    white = noise_std(x, residual=r)
    sig = white / 2  # [-1, 1] -> [0, 1]
    # The level follows the fuller of the two readings; whether to edit at all, the whole-image one.
    level_sig = torch.maximum(sig, banded_noise_std(x, residual=r) / 2)
    lines = line_noise_std(x, white=white) / 2
    cap = levels.steps if max_depth is None else min(max_depth, levels.steps)
    kappa = KAPPA[finish] if kappa is None else kappa
    out = [_one(float(s), float(sl), float(ln), levels, depth, epsilon, langevin_steps, cap, finish, floor, kappa,
                strength) for s, sl, ln in zip(sig, level_sig, lines)]
    if decode_steps and finish == "sample":
        out = [replace(c, decode_steps=min(decode_steps, c.depth)) if c.edit and c.entry == "noise" else c for c in out]
    return out


def _one(
    s01: float, level_s01: float, lines01: float, levels: Levels, depth: int | None, epsilon: float | None,
    langevin_steps: int | None, cap: int, finish: str, floor: float, kappa: float, strength: float = 1.0,
) -> AutoChoice:
    lines01 = round(lines01, 5)
    floor, line_floor = floor / strength, LINE_FLOOR / strength
    kappa, line_kappa = kappa * strength, LINE_KAPPA * strength
    scaled = strength != 1.0
    if depth is not None:
        K = ENCODE_LANGEVIN_STEPS if langevin_steps is None else langevin_steps
        e = ENCODE_EPSILON if epsilon is None else epsilon
        return AutoChoice(
            edit=True, depth=depth, t=int(levels.t[depth]), epsilon=e, langevin_steps=K, entry="encode",
            finish=finish, sigma_hat=round(s01, 5), sigma_level=round(s01, 5), sigma_lines=lines01, strength=strength,
            reason=f"depth {depth} given (noise estimate {s01:.3f})",
        )
    has_lines = lines01 >= line_floor
    K = (LINE_LANGEVIN_STEPS if has_lines else LANGEVIN_STEPS) if langevin_steps is None else langevin_steps
    e = EPSILON if epsilon is None else epsilon
    if s01 < floor and not has_lines:
        return AutoChoice(
            edit=False, depth=0, t=0, epsilon=e, langevin_steps=K, entry="noise", finish=finish,
            sigma_hat=round(s01, 5), sigma_level=round(s01, 5), sigma_lines=lines01, strength=strength,
            reason=f"noise estimate {s01:.3f} < {floor:.3g} and line noise {lines01:.3f} < {line_floor:.3g} "
                   f"(on [0, 1]{f', strength {strength:g}' if scaled else ''}): left unedited",
        )
    k_white = level_for_noise(levels, 2 * level_s01, kappa) if s01 >= floor else 0
    k_lines = level_for_noise(levels, 2 * lines01, line_kappa) if has_lines else 0
    k = max(k_white, k_lines)
    capped = f"; capped at level {cap}" if k > cap else ""
    k = min(k, cap)
    t = int(levels.t[k])
    if k_lines > k_white:
        why = f"line noise {lines01:.3f} (constant along columns or rows, on [0, 1]) sets the level, t = {t}"
    else:
        banded = f", {level_s01:.3f} by brightness band" if level_s01 > s01 + 5e-4 else ""
        why = f"noise estimate {s01:.3f}{banded} (on [0, 1]) is the diffusion noise at t = {t}"
    return AutoChoice(
        edit=True, depth=k, t=t, epsilon=e, langevin_steps=K, entry="noise", finish=finish,
        sigma_hat=round(s01, 5), sigma_level=round(level_s01, 5), sigma_lines=lines01, strength=strength,
        reason=why + (f" (strength {strength:g})" if scaled else "") + capped,
    )


def page_choices(x: torch.Tensor, levels: Levels, **knobs) -> list[AutoChoice]:
    """choose() for printed pages, network-free corrections first, each where its reading says:
    despeckle fax speckle; flatten uneven paper or faded ink; invert the blur of blurred print
    (method/deblur.py: its point spread read from the page; pages enlarged from a smaller scan are
    left alone, as no deconvolution measured helped them); set ghosts of the back's print to paper.
    Then auto's rule on the page so corrected. CODE edits of blurred print are not used: with
    code-prior-doc as trained so far they redrew glyphs wrongly (docs/documents.md)."""
    strength = knobs["strength"]
    spikes = P.impulse_share(x)
    speckled = spikes >= IMPULSE_FLOOR / strength
    x = _where(speckled, P.despeckle, x)
    uneven, contrast = P.unevenness(x), P.ink_contrast(x)
    flat = (uneven >= UNEVEN_FLOOR / strength) | (contrast < CONTRAST_FLOOR * strength)
    y = _where(flat, P.flatten, x)
    width = P.edge_width(y)
    quiet = noise_std(y) / 2 < knobs["floor"] / strength
    kernels, enlarged = [""] * len(y), [0] * len(y)
    blur_notes: list[str] = [""] * len(y)
    for i in range(len(y)):
        if not (bool(quiet[i]) and float(width[i]) >= BLUR_WIDTH / strength):
            continue
        wide = f"print {float(width[i]):.1f} px wide at its edges"
        enlarged[i] = D.upscale_factor(D.luma(y[i]))
        if enlarged[i]:
            blur_notes[i] = (f"{wide}, enlarged {enlarged[i]}x from a smaller scan: no deconvolution brings "
                             "that back, left as it is")
            continue
        reading = D.read_blur(y[i])
        if reading.blurred:
            kernels[i] = reading.name
            y = torch.cat([y[:i], D.deconvolve(y[i:i + 1], D.psf(reading.name)), y[i + 1:]])  # not in place
            blur_notes[i] = (f"{wide}, read as {D.describe(reading.name)} (L0 energy {reading.energy:.1f} against "
                             f"{reading.identity_energy:.1f} unblurred): deconvolved")
        else:
            blur_notes[i] = f"{wide}, but read as unblurred: left as it is"
    undeblurred = torch.tensor([not k for k in kernels], device=width.device)
    blocks = P.blockiness(x)
    jpeg_depth = jpeg_level(levels)
    blocky = (blocks - 1 >= (BLOCKY_FLOOR - 1) / strength) & undeblurred
    ghosts = P.ghost_share(y)
    sharp = (width < BLUR_WIDTH / strength) & undeblurred
    # JPEG ringing reads as ghosts; on a blocky page the edit below removes it with the blocks
    ghosted = quiet & sharp & (ghosts >= GHOST_FLOOR / strength) & ~blocky
    y = _where(ghosted, P.remove_ghosts, y)
    out = []
    for i, c in enumerate(choose(y, levels, **knobs)):
        readings = {"impulses": round(float(spikes[i]), 5), "unevenness": round(float(uneven[i]), 4),
                    "ink_contrast": round(float(contrast[i]), 4), "edge_width": round(float(width[i]), 3),
                    "ghosts": round(float(ghosts[i]), 5), "blockiness": round(float(blocks[i]), 3),
                    "blur": kernels[i], "enlarged": enlarged[i]}
        if blocky[i] and c.depth <= jpeg_depth and knobs.get("depth") is None:
            # JPEG: unless the page is noisier than the edit's own noise, SDEdit from t = JPEG_T
            t = int(levels.t[jpeg_depth])
            c = replace(c, edit=True, depth=jpeg_depth, t=t, langevin_steps=0, entry="fresh", finish="sample",
                        decode_steps=0, reason=f"8 x 8 block grid in the paper (blockiness {float(blocks[i]):.2f}): "
                        f"JPEG artefacts, fresh noise to t = {t} and {jpeg_depth} ancestral steps back (SDEdit)")
        c = replace(c, flatten=bool(flat[i]), despeckle=bool(speckled[i]), deblur=kernels[i],
                    deghost=bool(ghosted[i]), page=readings)
        done = []
        if c.despeckle:
            done.append(f"{float(spikes[i]):.1%} of pixels isolated spikes: despeckled")
        if c.flatten:
            what = "paper uneven" if uneven[i] >= UNEVEN_FLOOR / strength else "ink faded"
            done.append(f"{what} (unevenness {float(uneven[i]):.2f}, ink contrast {float(contrast[i]):.2f}): "
                        "flattened")
        if c.deblur:
            done.append(blur_notes[i])
        if c.deghost:
            done.append(f"{float(ghosts[i]):.1%} of pixels ghosts of print (bleed-through, stain rims): set to paper")
        if done:
            rest = c.reason.replace(": left unedited", ": no network edit") if not c.edit else c.reason
            c = replace(c, edit=True, reason="; ".join([*done, rest]))
        elif blur_notes[i]:
            c = replace(c, reason=f"{blur_notes[i]}; {c.reason}")
        out.append(c)
    return out


def jpeg_level(levels: Levels) -> int:
    """The level of the grid nearest t = JPEG_T (at least 1): where a JPEG page's SDEdit starts."""
    return max(1, int((levels.t - JPEG_T).abs().argmin()))


def _where(mask: torch.Tensor, correct, x: torch.Tensor) -> torch.Tensor:
    """correct(x) for the images of the batch that `mask` marks, the rest as they are; nothing is
    computed when none is marked (the usual case)."""
    if not bool(mask.any()):
        return x
    return torch.where(mask.view(-1, 1, 1, 1).to(x.device), correct(x), x)


def page_corrections(x: torch.Tensor, choice: AutoChoice) -> torch.Tensor:
    """The network-free corrections a page choice asks for, in the order they were read."""
    if choice.despeckle:
        # 0. a page with fax speckle: its spikes replaced by their neighbourhood's median
        x = P.despeckle(x)
    if choice.flatten:
        # 0b. a page with uneven paper or faded ink: flat white paper and black ink
        x = P.flatten(x)
    if choice.deblur:
        # 0c. blurred print: the point spread read from the page, inverted
        x = D.deconvolve(x, D.psf(choice.deblur))
    if choice.deghost:
        # 0d. the back's print showing through: set to paper
        x = P.remove_ghosts(x)
    return x


def auto_restore(
    model: EpsModel, x: torch.Tensor, levels: Levels, choice: AutoChoice, params: CODEParams, threshold: Threshold,
    generators: Sequence[torch.Generator], progress: Progress | None = None,
) -> MethodOutput:
    """Edit a batch that shares one choice; `params` gives the knobs auto leaves alone (jitter, CBC, annealing).

    K = 0 means no Langevin correction at all (not one noise-free step, as in a fixed CODE run): on a
    noise entry the latent is already on the marginal, and the extra call bought nothing measurable.
    """
    x = page_corrections(x, choice)
    if choice.depth == 0:  # corrected, and nothing left for the network
        return MethodOutput(x=x, nfe=0, info={"t_latent": 0})
    if choice.entry == "fresh":
        # SDEdit: fresh noise to level L (covering the artefacts), ancestral steps down the grid
        return sdedit(model, x, levels, SDEditParams(depth=choice.depth), threshold, generators, progress)
    base = params.corrections[0]
    c = Correction(depth=choice.depth, steps=choice.langevin_steps, epsilon=choice.epsilon,
                   stages=base.stages, factor=base.factor)
    if choice.entry == "encode" and choice.finish == "sample" and choice.langevin_steps:
        return code_restore(model, x, levels, replace(params, corrections=(c,)), threshold, generators, progress)
    eta = params.eta if params.cbc else None
    late_eta = eta if params.cbc_everywhere else None
    L = choice.depth
    if choice.entry == "noise":
        # 1-2. the input's own noise is the latent's: x_L = sqrt(abar_L) y
        x, nfe = levels.sqrt_abar(L) * x, 0
    else:
        x = x + params.jitter * randn_like_per_image(x, generators)
        x, nfe = encode(model, x, levels, L, threshold, eta, progress)
    if choice.langevin_steps:
        # 3. annealed Langevin at level L
        x, n = correct(model, x, levels, c, threshold, generators, late_eta, progress)
        nfe += n
    if choice.finish == "mean":
        # 4. the clean estimate x0(x_L, t_L) in one call: the posterior mean at level L
        x = ddim_move(x, model(x, levels.timesteps(L, len(x), x.device)), float(levels.abar[L]), 1.0, threshold)
        nfe += 1
        if progress:
            progress(1)
    elif choice.entry == "noise" and choice.decode_steps:
        # 4'. few-step decode: DPM-Solver++(2M) on its own grid from the same level
        grid = decode_levels(levels, L, choice.decode_steps)
        x, n = dpm_decode(model, x, grid, grid.steps, threshold, late_eta, progress)
        nfe += n
    else:
        x, n = decode(model, x, levels, L, threshold, late_eta, progress)
        nfe += n
    info = {"t_latent": int(levels.t[L]), "raw_langevin_step": [choice.epsilon * levels.sigma(L) ** 2]}
    return MethodOutput(x=x, nfe=nfe, info=info)

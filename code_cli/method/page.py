"""Readings and corrections for printed pages (the `doc` preset), from the page alone.

A page is dark print on lighter paper. Three things about it can be read without a model:
  - the paper: a maximum filter wider than any glyph keeps only paper, and a blur smooths it;
    its spread across the page says whether light or stains are uneven;
  - the ink contrast: paper level minus the darkest print, low when ink has faded;
  - the edge width of the print: for a step of contrast C blurred over w pixels the steepest
    slope is about C / w, so w ~ C / (high quantile of the gradient); sharp print reads 1 to 2 px,
    defocus, camera shake and low resolution read wider.
`flatten` divides by the paper and stretches the ink back to black: the classical fix for
shadows, stains and fading, which no diffusion edit at a low level can make (they are smooth).
All functions take (B, 3, H, W) in [-1, 1] and spend no network calls.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# Wider than a glyph of 8-20 px x-height print, so the maximum over it is paper; narrow enough to
# follow a shadow's edge.
PAPER_WINDOW = 31
# The darkest share of pixels taken as ink, and the brightest taken as paper.
INK_QUANTILE = 0.005
PAPER_QUANTILE = 0.95


def _luma(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) luminance on [0, 1]."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return ((x + 1) / 2 * w).sum(1, keepdim=True)


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    r = max(1, round(3 * sigma))
    k = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=x.dtype, device=x.device) / sigma) ** 2)
    k = (k / k.sum()).view(1, 1, 1, -1)
    C = x.shape[1]
    y = F.conv2d(F.pad(x, (r, r, 0, 0), mode="replicate"), k.expand(C, 1, 1, -1), groups=C)
    return F.conv2d(F.pad(y, (0, 0, r, r), mode="replicate"), k.view(1, 1, -1, 1).expand(C, 1, -1, 1), groups=C)


def paper(x: torch.Tensor, window: int = PAPER_WINDOW) -> torch.Tensor:
    """The paper alone, per channel, on x's [-1, 1] scale: a grey closing (maximum, then minimum,
    over the window) removes the darker print and keeps a shadow's edge where it is; a light
    Gaussian smooths the blocks."""
    w = min(window, 2 * (min(x.shape[-2:]) // 2) - 1) | 1

    def maximum(v: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(F.pad(v, (w // 2,) * 4, mode="replicate"), w, stride=1)

    closed = -maximum(-maximum(x))
    return _blur(closed, w / 6)


def _quantiles(v: torch.Tensor, q: tuple[float, ...]) -> torch.Tensor:
    """Per-image quantiles of (B, ...) as (B, len(q)); a strided sample keeps large pages quick."""
    flat = v.flatten(1).float()
    step = max(1, flat.shape[1] // 2_000_000)
    return torch.quantile(flat[:, ::step], torch.tensor(q, device=v.device), dim=1).T


def unevenness(x: torch.Tensor) -> torch.Tensor:
    """Spread of the paper's brightness across the page, relative to its bright end: (p95 - p5) / p95
    of the paper estimate's luminance, per image. Even light on plain paper reads a few percent."""
    q = _quantiles(_luma(paper(x)), (0.05, 0.95))
    return (q[:, 1] - q[:, 0]) / q[:, 1].clamp(min=1e-3)


def ink_contrast(x: torch.Tensor) -> torch.Tensor:
    """Paper level minus ink level on [0, 1] luminance, per image (black on white reads near 1)."""
    q = _quantiles(_luma(x), (INK_QUANTILE, PAPER_QUANTILE))
    return q[:, 1] - q[:, 0]


def edge_width(x: torch.Tensor) -> torch.Tensor:
    """Width in pixels over which print goes from ink to paper, per image: contrast / the 99.5th
    percentile of the gradient magnitude. Noise inflates gradients and so reads narrower; the
    caller reads noise first."""
    L = _luma(x)
    gx = (L[..., :, 2:] - L[..., :, :-2])[..., 1:-1, :] / 2
    gy = (L[..., 2:, :] - L[..., :-2, :])[..., :, 1:-1] / 2
    g = _quantiles((gx.square() + gy.square()).sqrt(), (0.995,))[:, 0]
    return ink_contrast(x) / g.clamp(min=1e-4)


# A pixel brighter or darker than all 8 neighbours by this much (luminance on [0, 1]) is an impulse:
# fax speckle. Anti-aliased print and Gaussian noise of std 0.15 almost never make one.
IMPULSE_STEP = 0.25


def _impulses(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) mask of isolated single-pixel spikes (salt or pepper)."""
    L = F.pad(_luma(x), (1, 1, 1, 1), mode="replicate")
    H, W = x.shape[-2:]
    centre = L[..., 1:-1, 1:-1]
    around = torch.stack([L[..., 1 + dy:1 + dy + H, 1 + dx:1 + dx + W]
                          for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
    return (centre - around.amax(0) > IMPULSE_STEP) | (around.amin(0) - centre > IMPULSE_STEP)


def impulse_share(x: torch.Tensor) -> torch.Tensor:
    """Share of the page's pixels that are isolated spikes, per image (clean print reads ~0)."""
    return _impulses(x).flatten(1).float().mean(1)


def despeckle(x: torch.Tensor) -> torch.Tensor:
    """A 3 x 3 median filter per channel. On fax speckle it measured far better for Tesseract than a
    switching median that replaced only the detected spikes (character error 0.012 against 0.081 on
    the benchmark's pages): speckle touching a glyph is not an isolated spike, and only the plain
    median removes it. It rounds thin strokes a little, so it runs only on speckled pages."""
    B, C, H, W = x.shape
    patches = F.unfold(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3).view(B, C, 9, H, W)
    return patches.median(2).values


def flatten(x: torch.Tensor) -> torch.Tensor:
    """Divide each channel by the paper (flat white light, stains and tints out), then stretch so the
    darkest INK_QUANTILE of the page is black. [-1, 1] in and out."""
    u, bg = (x + 1) / 2, (paper(x) + 1) / 2
    flat = (u / bg.clamp(min=1e-3)).clamp(0, 1)
    ink = _quantiles(flat.mean(1), (INK_QUANTILE,))[:, 0].view(-1, 1, 1, 1)
    return ((flat - ink) / (1 - ink).clamp(min=1e-3)).clamp(0, 1) * 2 - 1


# JPEG: an 8 x 8 block grid. Within paper (away from print, whose strokes step everywhere) the
# compression leaves steps at block boundaries and little inside a block.
BLOCK = 8


def blockiness(x: torch.Tensor) -> torch.Tensor:
    """How much more the paper steps across one column (and row) phase of an 8-px grid than across the
    others, per image: (max over the 8 phases + e) / (median over them + e) of the mean |step| between
    two paper pixels whose outer neighbours are paper too, averaged over both directions. The grid's
    phase is found, not assumed, so a page cropped after compression reads the same. Clean, blurred,
    noisy, shadowed or stained pages read about 1; JPEG at quality 5 to 15 reads 1.4 and more."""
    L = _luma(x)
    paper_level = _quantiles(L, (PAPER_QUANTILE,))[:, 0].view(-1, 1, 1, 1)
    out = []
    for A in (L, L.transpose(-1, -2)):
        bright = A > 0.8 * paper_level
        d = (A[..., 1:] - A[..., :-1]).abs()
        ok = bright[..., 1:] & bright[..., :-1]
        ok[..., 1:] &= bright[..., :-2]
        ok[..., :-1] &= bright[..., 2:]
        W = d.shape[-1] - d.shape[-1] % BLOCK
        if W < 2 * BLOCK:
            out.append(torch.ones(len(x), device=x.device))
            continue
        d, ok = d[..., :W].float(), ok[..., :W].float()
        # (B, phase): mean step at each of the 8 column phases, over paper only
        s = (d * ok).unflatten(-1, (-1, BLOCK)).sum((1, 2, 3))
        n = ok.unflatten(-1, (-1, BLOCK)).sum((1, 2, 3))
        m = s / n.clamp(min=1)
        e = 1 / 255
        out.append((m.amax(1) + e) / (m.median(1).values + e))
    return torch.stack(out).mean(0)


# Bleed-through: the back's print shows through as a lighter, softened mirror image. Relative to the
# paper it reads 0.6 to 0.95 (the back's ink darkens the sheet by 25 to 40% at most), real print
# darker than INK_LEVEL at its core. Mid-tones reached from ink within GHOST_REACH px (through other
# mid-tones) are print: anti-aliased edges, serif hairlines; the rest are ghosts.
GHOST_LOW, GHOST_HIGH = 0.5, 0.93
INK_LEVEL = 0.4
GHOST_REACH = 2


def ghost_mask(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, H, W) mask of mid-tone pixels not reached from print: show-through of the back, stain
    rims, JPEG ringing far from the text."""
    L = _luma(x)
    L = L / _quantiles(L, (PAPER_QUANTILE,))[:, 0].clamp(min=1e-3).view(-1, 1, 1, 1)
    ink = L < INK_LEVEL
    toned = L <= GHOST_HIGH
    reached = ink
    for _ in range(GHOST_REACH):  # geodesic dilation: along toned pixels only
        reached = ink | (F.max_pool2d(reached.float(), 3, stride=1, padding=1).bool() & toned)
    return toned & (L >= GHOST_LOW) & ~reached


def ghost_share(x: torch.Tensor) -> torch.Tensor:
    """Share of the page's pixels that are ghosts, per image (clean print reads ~0)."""
    return ghost_mask(x).flatten(1).float().mean(1)


def remove_ghosts(x: torch.Tensor) -> torch.Tensor:
    """Ghost pixels set to the paper's colour (each channel's PAPER_QUANTILE). [-1, 1] in and out."""
    tone = torch.stack([_quantiles(x[:, c], (PAPER_QUANTILE,))[:, 0] for c in range(x.shape[1])], 1)
    return torch.where(ghost_mask(x), tone.view(-1, x.shape[1], 1, 1).to(x.dtype), x)

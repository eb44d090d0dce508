"""Blind deblurring of printed pages: which blur, if any, and its inverse.

Print is two-toned: ink and paper, with edges a pixel or two wide. A blurred page is that
two-toned page convolved with a point spread k. Among a family of point spreads (the identity,
Gaussians, defocus disks and straight camera-shake paths) the page's blur is taken to be the one
under which the page has the sparsest two-toned explanation: the lowest value of

    E(k) = min_x ||k * x - y||^2 + lam (||x||_0 + ||grad x||_0),

the L0 intensity-and-gradient prior of text deblurring (Pan, Hu, Su and Yang, 2014), solved for
x by half-quadratic splitting on an ink image y (paper 0, ink 1). With the identity in the
family the same comparison says whether the page is blurred at all. A kernel too small leaves
blurred edges (many nonzero gradients); too large rings (a worse fit and more of both).

The chosen blur is inverted by a Tikhonov filter on the gradients,
x = F^-1[conj(K) Y / (|K|^2 + w |D|^2)], per channel: on the tuning pages (training fonts) it let Tesseract read better
than the L0 solution itself, whose flat strokes fill thin counters.

`upscale_factor` reads whether the page was enlarged from a smaller scan by an odd factor:
no deconvolution brings back what the small scan never held (measured: it made such pages read
worse), so the caller leaves those alone.

All functions are pure, take tensors and spend no network calls.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from code_cli.method import page as P

# The L0 weight, the share of it on intensity, and the HQS schedule: beta from 2 lam, doubling
# to BETA_MAX. Doubling, not x4: with x4 (and an earlier, coarser family) one defocused tuning
# page in six was read as a shake.
L0_WEIGHT = 4e-3
L0_INTENSITY = 1.0
BETA_MAX = 1e5
BETA_RATE = 2.0
# A pixel or gradient counts as nonzero in E above this (ink on a 0-1 scale).
NONZERO = 0.05
# The window the blur is read on, and the margin of it left out of E (the FFT's wrap-around).
WINDOW = 256
MARGIN = 12
# Tikhonov weight on the gradients for the inverse: 1e-3, 3e-3 and 1e-2 measured on 6 tuning
# pages per blur; 1e-2 never made a page read worse, the smaller ones did.
INVERSE_WEIGHT = 1e-2
# Padding (reflected) around the page for the inverse, in px beyond the kernel's radius.
PAD = 16


# --- the family of point spreads ------------------------------------------------------------


def gaussian_psf(std: float) -> torch.Tensor:
    r = max(1, math.ceil(3 * std))
    g = torch.exp(-0.5 * (torch.arange(-r, r + 1, dtype=torch.float64) / std) ** 2)
    k = torch.outer(g, g)
    return k / k.sum()


def disk_psf(radius: float, supersample: int = 8) -> torch.Tensor:
    """A defocused lens: a uniform disk, its rim anti-aliased by supersampling."""
    r = math.ceil(radius)
    n = 2 * r + 1
    s = (torch.arange(n * supersample, dtype=torch.float64) + 0.5) / supersample - (r + 0.5)
    inside = (s[None, :] ** 2 + s[:, None] ** 2 <= radius**2).double()
    k = inside.view(n, supersample, n, supersample).mean((1, 3))
    return k / k.sum()


def line_psf(length: float, angle_deg: float, points: int = 256) -> torch.Tensor:
    """Camera shake along a straight path of `length` px at `angle_deg` (image rows down): many
    points along the segment, each splatted bilinearly."""
    r = math.ceil(length / 2) + 1
    n = 2 * r + 1
    a = math.radians(angle_deg)
    t = torch.linspace(-0.5, 0.5, points, dtype=torch.float64) * length
    px, py = r + t * math.cos(a), r + t * math.sin(a)
    k = torch.zeros(n, n, dtype=torch.float64)
    x0, y0 = px.floor(), py.floor()
    fx, fy = px - x0, py - y0
    for dx, wx in ((0, 1 - fx), (1, fx)):
        for dy, wy in ((0, 1 - fy), (1, fy)):
            k.index_put_(((y0 + dy).long(), (x0 + dx).long()), wx * wy, accumulate=True)
    return k / k.sum()


IDENTITY = "identity"


def psf(name: str) -> torch.Tensor:
    """The point spread a family name stands for: 'identity', 'gauss:1.4', 'disk:2.5', 'shake:8@45'."""
    if name == IDENTITY:
        return torch.ones(1, 1, dtype=torch.float64)
    kind, _, arg = name.partition(":")
    if kind == "gauss":
        return gaussian_psf(float(arg))
    if kind == "disk":
        return disk_psf(float(arg))
    if kind == "shake":
        length, _, angle = arg.partition("@")
        return line_psf(float(length), float(angle))
    raise ValueError(f"unknown point spread {name!r}")


def describe(name: str) -> str:
    """A point spread's name as a person reads it."""
    if name == IDENTITY:
        return "no blur"
    kind, _, arg = name.partition(":")
    if kind == "shake":
        length, _, angle = arg.partition("@")
        return f"camera shake {float(length):g} px at {float(angle):g} deg"
    return {"gauss": "soft blur", "disk": "defocus"}[kind] + f", radius {float(arg):g} px"


# Print is 8 to 20 px in x-height; blur past these sizes leaves nothing to read back.
# Radii every 0.25 px: at 0.5 px steps a defocused tuning page was read as a wrong shake, which a
# disk 0.25 px off that grid beats. Gaussians (soft optics) stay coarse: finer steps let a Gaussian
# of 1.2 px edge out a 2 px disk on one defocused tuning page, and its inverse rescued nothing
# (Tesseract's error 0.692 against 0.002 with the disk).
SHAPES = (
    IDENTITY,
    *(f"gauss:{s:g}" for s in (0.7, 1.0, 1.4, 2.0)),
    *(f"disk:{1.5 + 0.25 * i:g}" for i in range(11)),
)
# Camera shake of 3 to 14 px. A path's energy has a narrow basin (at 8 px, 8 deg off loses to the
# identity; measured), and a coarse-to-fine search (half scale first) chose wrong paths on 3 of 18
# tuning pages. So every length in whole px, at angle steps that move a path's ends by at most
# 0.2 px: about 400 paths, evaluated as one batch.
SHAKES = tuple(f"shake:{length:g}@{round(a, 2):g}" for length in range(3, 15)
               for a in torch.arange(0, 180, 45 / length).tolist())
FAMILY = SHAPES + SHAKES


def neighbours(name: str) -> tuple[str, ...]:
    """The finest steps around a shake path: length +-0.5 px (angles are already fine)."""
    kind, _, arg = name.partition(":")
    if kind == "shake":
        length, _, angle = arg.partition("@")
        return tuple(f"shake:{float(length) + dl:g}@{angle}" for dl in (-0.5, 0.5))
    return ()


# --- the L0 energy ---------------------------------------------------------------------------


def _otf(k: torch.Tensor, shape: tuple[int, int]) -> torch.Tensor:
    """Transfer functions of kernels (..., kh, kw) for a real FFT of `shape`, centred on pixel (0, 0)."""
    kh, kw = k.shape[-2:]
    pad = k.new_zeros((*k.shape[:-2], *shape))
    pad[..., :kh, :kw] = k
    pad = torch.roll(pad, (-(kh // 2), -(kw // 2)), (-2, -1))
    return torch.fft.rfft2(pad)


def stack(kernels: list[torch.Tensor]) -> torch.Tensor:
    """Kernels of odd sizes, centred in one (N, s, s) tensor."""
    s = max(max(k.shape) for k in kernels)
    out = torch.zeros(len(kernels), s, s, dtype=torch.float64)
    for i, k in enumerate(kernels):
        top, left = (s - k.shape[0]) // 2, (s - k.shape[1]) // 2
        out[i, top:top + k.shape[0], left:left + k.shape[1]] = k
    return out


def _difference_otfs(shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """|Dx|^2 + |Dy|^2: the transfer of the forward differences, summed in power."""
    Dx = _otf(torch.tensor([[1.0, -1.0]], dtype=dtype), shape)
    Dy = _otf(torch.tensor([[1.0], [-1.0]], dtype=dtype), shape)
    return Dx.abs().square() + Dy.abs().square()


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Forward differences, circular (as the FFT sees the image)."""
    return torch.roll(x, -1, -1) - x, torch.roll(x, -1, -2) - x


def l0_deconvolve(y: torch.Tensor, k: torch.Tensor, lam: float = L0_WEIGHT) -> torch.Tensor:
    """argmin_x ||k * x - y||^2 + lam (L0_INTENSITY ||x||_0 + ||grad x||_0), approximately, by
    half-quadratic splitting: auxiliary u = x and g = grad x are hard-thresholded (the exact L0
    step), then x is solved in closed form in the Fourier domain, as the penalty beta grows.
    y (H, W); k (kh, kw) or a batch (N, kh, kw), giving (N, H, W)."""
    shape = y.shape[-2:]
    K = _otf(k.to(y.dtype), shape)
    KtY = K.conj() * torch.fft.rfft2(y)
    K2 = K.abs().square()
    D2 = _difference_otfs(shape, y.dtype)
    x = y.expand_as(KtY.real[..., :1].expand(*KtY.shape[:-1], shape[-1])).clone()
    beta = 2 * lam
    while beta < BETA_MAX:
        u = torch.where(x.square() >= lam * L0_INTENSITY / beta, x, torch.zeros_like(x))
        gx, gy = _gradients(x)
        keep = gx.square() + gy.square() >= lam / beta
        gx, gy = gx * keep, gy * keep
        # D^T g for forward differences: the backward difference of g, negated
        dtg = (torch.roll(gx, 1, -1) - gx) + (torch.roll(gy, 1, -2) - gy)
        num = KtY + beta * torch.fft.rfft2(u + dtg)
        x = torch.fft.irfft2(num / (K2 + beta + beta * D2), s=shape)
        beta *= BETA_RATE
    return x


# Kernels evaluated per batch: bounds the memory (a 256 px window: ~0.5 MB per kernel and array).
CHUNK = 64


def l0_energy(y: torch.Tensor, kernels: torch.Tensor, lam: float = L0_WEIGHT, margin: int = MARGIN) -> torch.Tensor:
    """E(k) above on the ink window y (H, W) for each of kernels (N, kh, kw), counted away from the
    window's wrapped edges: (N,) float64."""
    out = []
    inner = (..., slice(margin, -margin or None), slice(margin, -margin or None))
    for ks in kernels.split(CHUNK):
        ks = ks.to(y.dtype)
        x = l0_deconvolve(y, ks, lam)
        fit = torch.fft.irfft2(_otf(ks, y.shape[-2:]) * torch.fft.rfft2(x), s=y.shape[-2:]) - y
        gx, gy = _gradients(x)
        data = fit[inner].square().sum((-2, -1)).double()
        ink = (x[inner].abs() > NONZERO).sum((-2, -1))
        edges = (torch.hypot(gx, gy)[inner] > NONZERO).sum((-2, -1))
        out.append(data + lam * (L0_INTENSITY * ink + edges))
    return torch.cat(out)


# --- reading the page ------------------------------------------------------------------------


def luma(x: torch.Tensor) -> torch.Tensor:
    """(3, H, W) on [-1, 1] -> (H, W) luminance on [0, 1], float64 on the CPU (the same reading on
    every device)."""
    return P._luma(x.detach().cpu().double()[None])[0, 0]


def ink_window(L: torch.Tensor, size: int = WINDOW) -> torch.Tensor:
    """The size x size window of the page holding the most ink (of 9 on a 3 x 3 grid), as ink on
    a 0-1 scale (paper 0: its 95th percentile of luminance)."""
    paper = torch.quantile(L.flatten()[:: max(1, L.numel() // 1_000_000)], 0.95).clamp(min=1e-3)
    ink = (1 - L / paper).clamp(0, 1)
    H, W = ink.shape
    h, w = min(size, H), min(size, W)
    best, window = -1.0, ink[:h, :w]
    for top in torch.linspace(0, H - h, 3).round().long().tolist():
        for left in torch.linspace(0, W - w, 3).round().long().tolist():
            cand = ink[top:top + h, left:left + w]
            s = float(cand.sum())
            if s > best:
                best, window = s, cand
    return window


@dataclass(frozen=True)
class BlurReading:
    """The blur a page was read to have, and the energies that chose it."""

    name: str  # a psf() name; IDENTITY when the page is sharp
    energy: float
    identity_energy: float

    @property
    def blurred(self) -> bool:
        return self.name != IDENTITY


def read_blur(x: torch.Tensor, lam: float = L0_WEIGHT) -> BlurReading:
    """The point spread of one page (3, H, W) on [-1, 1]: the whole family, then half-pixel lengths
    around its best shake path. float32: the same energies as float64 to 1e-6 on the tuning pages,
    twice as fast."""
    y = ink_window(luma(x)).float()
    names = list(FAMILY)
    energies = l0_energy(y, stack([psf(n) for n in names]), lam).tolist()
    shakes = [i for i, n in enumerate(names) if n.startswith("shake:")]
    near = [n for n in neighbours(names[min(shakes, key=energies.__getitem__)]) if n not in names]
    if near:
        names += near
        energies += l0_energy(y, stack([psf(n) for n in near]), lam).tolist()
    i = min(range(len(names)), key=energies.__getitem__)
    return BlurReading(names[i], round(energies[i], 4), round(energies[names.index(IDENTITY)], 4))


def deconvolve(x: torch.Tensor, k: torch.Tensor, weight: float = INVERSE_WEIGHT) -> torch.Tensor:
    """Invert the blur k on (B, C, H, W) in [-1, 1] by the Tikhonov filter on gradients, per channel,
    the page reflected at its edges; clipped to [-1, 1]."""
    r = max(k.shape) // 2 + PAD
    H, W = x.shape[-2:]
    mode = "reflect" if min(H, W) > r else "replicate"
    u = F.pad((x.double() + 1) / 2, (r, r, r, r), mode=mode)
    shape = u.shape[-2:]
    K = _otf(k.double(), shape)
    filt = K.conj() / (K.abs().square() + weight * _difference_otfs(shape, torch.float64))
    out = torch.fft.irfft2(torch.fft.rfft2(u.cpu()) * filt, s=shape)[..., r:r + H, r:r + W]
    return (out.clamp(0, 1) * 2 - 1).to(x.dtype).to(x.device)


# Enlargement by an odd factor f, centre-aligned as Pillow, OpenCV and torch enlarge: every f-th
# pixel, at the right phase, is a pixel of the small scan itself, and enlarging those again gives
# the page back; at other phases it does not. (For even factors no pixel lands on a sample, and
# this reading cannot see them.) Measured ratio best / median phase: 0.38 to 0.55 on 6 tuning pages
# enlarged 3x, 0.96 to 1.0 on sharp, defocused and shaken ones.
UPSCALE_FACTORS = (3, 5)
UPSCALE_RATIO = 0.75


def upscale_factor(L: torch.Tensor, factors: tuple[int, ...] = UPSCALE_FACTORS) -> int:
    """The odd factor (H, W) luminance was enlarged by from a smaller image, or 0. Each phase's
    subsample is enlarged back (bicubic and bilinear, as the page may have been) and compared with
    the page."""
    for f in factors:
        H, W = (L.shape[0] // f) * f, (L.shape[1] // f) * f
        if H < 8 * f or W < 8 * f:
            continue
        page = L[:H, :W]
        for mode in ("bicubic", "bilinear"):
            errors = []
            for py in range(f):
                for px in range(f):
                    small = page[py::f, px::f][None, None]
                    up = F.interpolate(small, scale_factor=f, mode=mode, align_corners=False)[0, 0]
                    # the subsample at phase p sits at output pixel f j + f // 2 of a centred enlargement
                    up = torch.roll(up, (py - f // 2, px - f // 2), (0, 1))
                    m = 2 * f
                    errors.append(float((up - page)[m:-m, m:-m].abs().mean()))
            e = torch.tensor(errors)
            if float(e.min()) < UPSCALE_RATIO * float(e.median()):
                return f
    return 0

"""What happens to printed pages between the printer and the OCR engine: camera shake and
defocus, sensor noise, JPEG, faded ink, a shadow across a phone photo, low resolution, fax
salt-and-pepper, stains and bleed-through from the back of the sheet.

ImageNet-C's functions are sized for 224 px photographs (its defocus at severity 3 erases
8 px print), so these are written on the scale of print: parameters in pixels of a page whose
x-height is 8 to 20 px. Each is a function of (uint8 HWC page, numpy Generator) that draws all
its randomness from that generator, so a (page, degradation, seed) triple is one fixed image.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw
from scipy import ndimage

Degradation = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def _per_channel(x: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    return np.stack([ndimage.convolve(x[..., c], kernel, mode="reflect") for c in range(x.shape[2])], -1)


def disk(radius: float) -> np.ndarray:
    """A defocused lens's point spread: a uniform disk, anti-aliased at its rim by 4x supersampling."""
    r = int(np.ceil(radius))
    s = (np.arange(-r * 4 - 2, r * 4 + 2) + 0.5) / 4
    inside = (s[None, :] ** 2 + s[:, None] ** 2 <= radius**2).astype(np.float64)
    n = len(s) // 4  # len(s) = 8r + 4: whole 4 x 4 blocks
    k = inside.reshape(n, 4, n, 4).mean((1, 3))
    return k / k.sum()


def defocus(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _u8(_per_channel(page.astype(np.float64), disk(rng.uniform(2.0, 3.0))))


def motion_kernel(length: float, angle_deg: float) -> np.ndarray:
    """A straight camera-shake path of `length` px at `angle_deg`, drawn anti-aliased."""
    size = int(np.ceil(length)) | 1
    big = Image.new("L", (size * 8, size * 8), 0)
    c, a = size * 4, np.deg2rad(angle_deg)
    dx, dy = np.cos(a) * length * 4, np.sin(a) * length * 4
    ImageDraw.Draw(big).line((c - dx, c - dy, c + dx, c + dy), fill=255, width=8)
    k = np.asarray(big.resize((size, size), Image.Resampling.BOX), np.float64)
    return k / k.sum()


def motion(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _u8(_per_channel(page.astype(np.float64), motion_kernel(rng.uniform(6, 9), rng.uniform(0, 180))))


def gaussian_noise(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _u8(page + rng.normal(0, 255 * rng.uniform(0.10, 0.14), page.shape))


def jpeg(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import io

    buf = io.BytesIO()
    Image.fromarray(page).save(buf, "JPEG", quality=int(rng.integers(5, 16)))
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB")).copy()


def faded(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Faded ink on yellowed paper: the ink keeps 20 to 30% of its contrast."""
    x = page.astype(np.float64)
    paper = np.percentile(x.reshape(-1, 3), 90, axis=0)
    keep = rng.uniform(0.2, 0.3)
    tint = np.array([248.0, 240.0, 215.0]) * rng.uniform(0.95, 1.0)
    return _u8(tint + (x - paper) * keep)


def smooth_field(shape: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    """A smooth random field in [0, 1] varying over about `scale` of the page's size."""
    h, w = shape
    small = rng.random((max(2, round(h / (scale * max(h, w)) + 1)), max(2, round(w / (scale * max(h, w)) + 1))))
    f = np.asarray(Image.fromarray(np.uint8(small * 255)).resize((w, h), Image.Resampling.BICUBIC), np.float64)
    f = ndimage.gaussian_filter(f, scale * max(h, w) / 4)
    return (f - f.min()) / max(f.max() - f.min(), 1e-9)


def shadow(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uneven light of a phone photo: a soft-edged shadow (a hand or the phone) across part of the
    page, on top of a gradient; the darkest paper gets 25 to 40% of the light."""
    h, w = page.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    a = rng.uniform(0, 2 * np.pi)
    edge = (np.cos(a) * (xx - xx.mean()) + np.sin(a) * (yy - yy.mean())) + rng.uniform(-0.15, 0.15)
    blur = rng.uniform(0.05, 0.15)
    inside = 1 / (1 + np.exp(-edge / blur))
    dark = rng.uniform(0.25, 0.4)
    light = (1 - (1 - dark) * inside) * (0.85 + 0.15 * smooth_field((h, w), rng, 0.5))
    warm = np.array([1.0, 0.97, 0.9])  # indoor light is warm
    return _u8(page * light[..., None] * warm)


def low_resolution(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Scanned at a third of the resolution (area average) and shown at full size (bicubic)."""
    h, w = page.shape[:2]
    im = Image.fromarray(page).resize((max(1, w // 3), max(1, h // 3)), Image.Resampling.BOX)
    return np.asarray(im.resize((w, h), Image.Resampling.BICUBIC)).copy()


def salt_pepper(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Fax and old-scanner speckle: 4 to 8% of the pixels black or white."""
    out = page.copy()
    hit = rng.random(page.shape[:2]) < rng.uniform(0.04, 0.08)
    out[hit] = np.where(rng.random(int(hit.sum())) < 0.5, 0, 255)[:, None].astype(np.uint8)
    return out


def stains(page: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Two to four coffee or water stains: translucent brown blobs with a darker rim, multiplied in."""
    h, w = page.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    absorb = np.zeros((h, w))
    for _ in range(int(rng.integers(2, 5))):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        r = rng.uniform(0.12, 0.3) * min(h, w)
        wobble = 1 + 0.15 * (smooth_field((h, w), rng, 0.3) - 0.5)
        d = np.hypot(yy - cy, xx - cx) / (r * wobble)
        body = np.clip(1 - d, 0, 1) ** 0.3 * rng.uniform(0.15, 0.35)
        rim = np.exp(-(((d - 1) / 0.05) ** 2)) * rng.uniform(0.2, 0.45)
        absorb = np.maximum(absorb, body + rim)
    colour = np.array([0.25, 0.5, 0.85])  # brown: blue is absorbed most
    return _u8(page * (1 - absorb[..., None] * colour))


def bleed_through(page: np.ndarray, rng: np.random.Generator, back: np.ndarray | None = None) -> np.ndarray:
    """The back of a thin sheet shows through: its print, mirrored and softened, darkens the paper
    by 25 to 40% of its ink. `back` is the reverse page (default: this page shifted, a stand-in
    with the same print statistics)."""
    if back is None:
        back = np.roll(page, (int(rng.integers(5, 30)), int(rng.integers(20, 80))), (0, 1))
    ink = 1 - back.astype(np.float64).mean(2) / 255
    ink = ndimage.gaussian_filter(ink[:, ::-1], rng.uniform(0.8, 1.5))
    return _u8(page * (1 - rng.uniform(0.25, 0.4) * ink)[..., None])


DEGRADATIONS: dict[str, Degradation] = {
    "defocus": defocus,
    "motion": motion,
    "gaussian_noise": gaussian_noise,
    "jpeg": jpeg,
    "faded": faded,
    "shadow": shadow,
    "low_resolution": low_resolution,
    "salt_pepper": salt_pepper,
    "stains": stains,
    "bleed_through": bleed_through,
}


def degrade(page: np.ndarray, name: str, seed: int) -> np.ndarray:
    """uint8 HWC RGB page -> the degraded page, the same for the same seed."""
    if name not in DEGRADATIONS:
        raise ValueError(f"unknown document degradation {name!r}; valid: {', '.join(DEGRADATIONS)}")
    return DEGRADATIONS[name](np.ascontiguousarray(page[..., :3]), np.random.default_rng(seed))


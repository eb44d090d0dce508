"""Corruptions for the benchmark: the 19 ImageNet-C ones (Hendrycks and Dietterich, through
imagecorruptions-imaug) and the CODE paper's two masks (random pixels, random vertical lines)."""

from __future__ import annotations

import numpy as np

# The CODE paper's masks: a fraction of the pixels (or of the columns) replaced by random colours.
MASKS = ("masked_pixels", "vertical_lines")
MASK_FRACTION = (0.05, 0.1, 0.2, 0.3, 0.4)  # by severity 1..5

# ImageNet-C's families, in its order, plus the masks; the benchmark draws one comparison grid per family.
FAMILIES = {
    "noise": ("gaussian_noise", "shot_noise", "impulse_noise", "speckle_noise"),
    "blur": ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "gaussian_blur"),
    "weather": ("snow", "frost", "fog", "brightness", "spatter"),
    "digital": ("contrast", "elastic_transform", "pixelate", "jpeg_compression", "saturate"),
    "masks": MASKS,
}
CORRUPTIONS = tuple(c for family in FAMILIES.values() for c in family)
# imagecorruptions' functions with a `seed` argument, which ignore numpy's global generator.
SEEDED_BY_ARGUMENT = ("impulse_noise", "glass_blur")


def corrupt(image: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """uint8 HWC RGB -> corrupted uint8 HWC RGB, reproducible for a seed."""
    if name in MASKS:
        return mask(image, name, severity, seed)
    from imagecorruptions import corrupt as _corrupt
    from imagecorruptions import get_corruption_names

    if name not in get_corruption_names("all"):
        raise ValueError(f"unknown corruption {name!r}; valid: {', '.join(CORRUPTIONS)}")
    # Most of the package draws from numpy's global generator: scope the seed to this call. Two
    # corruptions take a seed of their own and otherwise draw fresh entropy on every call.
    own_seed = {"seed": seed} if name in SEEDED_BY_ARGUMENT else {}
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        out = _corrupt(image, corruption_name=name, severity=severity, **own_seed)
    finally:
        np.random.set_state(state)
    out = np.clip(np.asarray(out), 0, 255).astype(np.uint8)[..., :3]
    if out.shape[:2] != image.shape[:2]:
        # frost and a few others crop or resize internally on small images; the metrics need the clean size.
        from PIL import Image

        out = np.asarray(Image.fromarray(out).resize(image.shape[1::-1], Image.BICUBIC))
    return out


def mask(image: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """Random pixels (or whole columns) set to uniformly random colours, one colour per pixel (column)."""
    if not 1 <= severity <= len(MASK_FRACTION):
        raise ValueError(f"severity must be in 1..{len(MASK_FRACTION)}, got {severity}")
    rng = np.random.default_rng(seed)
    p = MASK_FRACTION[severity - 1]
    h, w = image.shape[:2]
    out = image[..., :3].copy()
    if name == "masked_pixels":
        hit = rng.random((h, w)) < p
        out[hit] = rng.integers(0, 256, (int(hit.sum()), 3), dtype=np.uint8)
    elif name == "vertical_lines":
        cols = np.flatnonzero(rng.random(w) < p)
        out[:, cols] = rng.integers(0, 256, (1, len(cols), 3), dtype=np.uint8)
    else:
        raise ValueError(f"unknown mask {name!r}; valid: {', '.join(MASKS)}")
    return out

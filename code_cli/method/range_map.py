"""Range-aware editing: bring a low-contrast image's range to the training photographs' before an
edit, and take the result back after.

A prior trained on ordinary photographs has rarely seen an image whose pixels span a third of the
scale (fog, a contrast corruption, a washed-out scan). Edited as it is, such an image is pulled
toward the photographs the prior knows, and at a fixed preset's depth the subject is lost to flat
texture. An affine stretch y = a x + b per image (one gain for all channels, so colours keep their
balance) maps the image's 1st and 99th percentiles onto the training photographs' median ones; the
edit runs there and x = (y - b) / a maps its output back. Images whose range is already within
MIN_GAIN of the training photographs' are passed through untouched (a = 1, b = 0 exactly), so an
ordinary photograph's edit is unchanged. Measured in docs/auto.md ("Low-contrast images").
"""

from __future__ import annotations

import torch

# The 1st and 99th percentiles of the training photographs' pixels (median over the 352 photographs
# of `make data`, on [0, 1]: 0.055 and 0.918), here on the model's [-1, 1] scale.
TRAIN_LOW, TRAIN_HIGH = 2 * 0.055 - 1, 2 * 0.918 - 1
QUANTILES = (0.01, 0.99)
# Stretch only images at least this much narrower than the training photographs: a quarter of them
# span less than 0.84 / 0.86 of the median's range, so a gain under 1.25 is an ordinary photograph.
MIN_GAIN = 1.25
# Do not stretch further: an almost flat image would have its quantisation steps and noise amplified
# into content.
MAX_GAIN = 8.0


def fit(x: torch.Tensor, min_gain: float = MIN_GAIN, max_gain: float = MAX_GAIN) -> tuple[torch.Tensor, torch.Tensor]:
    """Gain a and offset b per image of a (B, C, H, W) batch in [-1, 1], each of shape (B,).

    a maps the image's percentile range onto the training photographs' (capped at max_gain), b puts
    the centre of the image's range at theirs; a = 1, b = 0 where the gain would be below min_gain.
    """
    flat = x.detach().float().flatten(1)
    q = torch.quantile(flat, torch.tensor(QUANTILES, dtype=flat.dtype, device=flat.device), dim=1)
    lo, hi = q[0], q[1]
    gain = (TRAIN_HIGH - TRAIN_LOW) / (hi - lo).clamp_min(1e-6)
    stretch = gain >= min_gain
    a = torch.where(stretch, gain.clamp(max=max_gain), torch.ones_like(gain))
    b = torch.where(stretch, (TRAIN_LOW + TRAIN_HIGH) / 2 - a * (lo + hi) / 2, torch.zeros_like(gain))
    return a.cpu(), b.cpu()


def apply(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The image on the training photographs' range: a x + b.

    Not clamped: the last percent of pixels may land a little outside [-1, 1], where the edit's
    own thresholding treats them as any other pixel, and invert() gives them back exactly."""
    a, b = _shaped(a, x), _shaped(b, x)
    return a * x + b


def invert(y: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Back to the image's own range: (y - b) / a."""
    a, b = _shaped(a, y), _shaped(b, y)
    return (y - b) / a


def _shaped(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.to(like.device, like.dtype).view(-1, *([1] * (like.ndim - 1)))

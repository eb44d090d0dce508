"""Classical clean-ups a user would try on a bad scan before OCR, all blind (they see only the page):
a median filter, NL-means and BM3D at Immerkaer's noise estimate, background normalisation by a
large blur of the paper, and Sauvola's local binarisation. HWC float in [0, 1] in and out."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from code_cli.bench import baselines

SAUVOLA_WINDOW = 25


def median(page: np.ndarray) -> np.ndarray:
    return ndimage.median_filter(page, size=(3, 3, 1), mode="reflect")


def background_normalise(page: np.ndarray) -> np.ndarray:
    """Divide by the paper (a grey closing wider than any glyph, lightly blurred), then stretch the
    ink so the darkest 0.5% is black: for shadows, stains and faded ink. The same numbers as the
    doc preset's own correction (method/page.py flatten), so the comparison isolates the prior."""
    import torch

    from code_cli.method.page import flatten

    x = torch.from_numpy(np.ascontiguousarray(page, np.float32)).permute(2, 0, 1)[None] * 2 - 1
    return ((flatten(x)[0].permute(1, 2, 0).double().numpy() + 1) / 2).clip(0, 1)


def sauvola(page: np.ndarray) -> np.ndarray:
    """Sauvola's local threshold (scikit-image, k = 0.2): black ink on white, the classic OCR
    pre-step for uneven light."""
    from skimage.filters import threshold_sauvola

    grey = page.mean(2)
    binary = grey > threshold_sauvola(grey, window_size=SAUVOLA_WINDOW, k=0.2)
    return np.repeat(binary[..., None], 3, 2).astype(np.float64)


DOC_BASELINES = {
    "median": median,
    "nl_means": baselines.nl_means,  # blind: sigma from Immerkaer's estimate when not given
    "bm3d": baselines.bm3d,
    "background": background_normalise,
    "sauvola": sauvola,
}

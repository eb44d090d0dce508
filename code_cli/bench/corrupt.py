"""ImageNet-C corruptions (Hendrycks and Dietterich) through imagecorruptions-imaug."""

from __future__ import annotations

import numpy as np


def corrupt(image: np.ndarray, name: str, severity: int, seed: int = 0) -> np.ndarray:
    """uint8 HWC RGB -> corrupted uint8 HWC RGB, reproducible for a seed."""
    from imagecorruptions import corrupt as _corrupt, get_corruption_names

    if name not in get_corruption_names("all"):
        raise ValueError(f"unknown corruption {name!r}; valid: {', '.join(get_corruption_names('all'))}")
    # The package draws from numpy's global generator; scope the seed to this call.
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        out = _corrupt(image, corruption_name=name, severity=severity)
    finally:
        np.random.set_state(state)
    return np.clip(np.asarray(out), 0, 255).astype(np.uint8)[..., :3]

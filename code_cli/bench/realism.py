"""A realism distance that needs no downloaded network: the sliced Wasserstein distance between
multi-scale patch distributions of two image sets (Karras et al. 2018, "Progressive Growing of
GANs", section 5). Lower means the restored set's local statistics look more like the clean set's.

Per Laplacian-pyramid level: 7x7x3 patches drawn at random from every image, each descriptor
dimension normalised by the clean set's mean and std (so levels and channels weigh the same),
then the 1-D Wasserstein-1 distance along random unit directions, averaged. The reported
number is the mean over levels, times 1000 as in the paper's tables.
"""

from __future__ import annotations

import numpy as np

PATCH = 7
PATCHES_PER_IMAGE = 1024  # per level; Karras et al. draw 128 from many more images
DIRECTIONS = 256  # Karras et al. use 4 x 512; 256 keeps a CPU run short and moves the distance < 1%
MIN_LEVEL_SIZE = 16  # the paper's pyramid stops at 16 px


def _blur_down(img: np.ndarray) -> np.ndarray:
    """Binomial 5-tap blur then decimation by 2 (Burt and Adelson), HWC."""
    from scipy.ndimage import convolve1d

    k = np.array([1, 4, 6, 4, 1], np.float64) / 16
    b = convolve1d(convolve1d(img, k, axis=0, mode="reflect"), k, axis=1, mode="reflect")
    return b[::2, ::2]


def _up(img: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    from scipy.ndimage import convolve1d

    up = np.zeros(shape, np.float64)
    up[::2, ::2] = img
    k = np.array([1, 4, 6, 4, 1], np.float64) / 8  # the zeros halve the mass on each axis
    return convolve1d(convolve1d(up, k, axis=0, mode="reflect"), k, axis=1, mode="reflect")


def laplacian_pyramid(img: np.ndarray, min_size: int = MIN_LEVEL_SIZE) -> list[np.ndarray]:
    """Band-pass levels from fine to coarse, the last one the low-pass residual."""
    levels, cur = [], np.asarray(img, np.float64)
    while min(cur.shape[:2]) // 2 >= min_size:
        down = _blur_down(cur)
        levels.append(cur - _up(down, cur.shape))
        cur = down
    levels.append(cur)
    return levels


def _patches(level: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    h, w = level.shape[:2]
    if h < PATCH or w < PATCH:
        return np.empty((0, PATCH * PATCH * level.shape[2]))
    ys = rng.integers(0, h - PATCH + 1, n)
    xs = rng.integers(0, w - PATCH + 1, n)
    off = np.arange(PATCH)
    return level[ys[:, None, None] + off[None, :, None], xs[:, None, None] + off[None, None, :]].reshape(n, -1)


def descriptors(images: list[np.ndarray], seed: int = 0, per_image: int = PATCHES_PER_IMAGE) -> list[np.ndarray]:
    """One (n_images * per_image, 147) array per pyramid level, patches at seeded random places."""
    rng = np.random.default_rng(seed)
    per_level: list[list[np.ndarray]] = []
    for img in images:
        for i, level in enumerate(laplacian_pyramid(img)):
            if i == len(per_level):
                per_level.append([])
            per_level[i].append(_patches(level, per_image, rng))
    return [np.concatenate(p) for p in per_level]


def _projected(x: np.ndarray, d: np.ndarray, n: int) -> np.ndarray:
    """Sorted projections resampled to n quantiles, so sets of any size compare."""
    p = np.sort(x @ d, axis=0)
    return p if len(p) == n else np.quantile(p, np.linspace(0, 1, n), axis=0)


class PatchSWD:
    """The clean set's side of the distance, computed once and reused for every method.

    Each descriptor dimension is normalised by the clean set's mean and std: a restoration that
    shifts colours or contrast stays far (normalising each set by its own statistics, as in
    Karras et al.'s code, would hide exactly the global errors fog and contrast leave)."""

    def __init__(self, clean: list[np.ndarray], seed: int = 0, directions: int = DIRECTIONS):
        self.seed = seed
        self.levels = []
        rng = np.random.default_rng(seed)
        for y in descriptors(clean, seed + 1):
            mu, sd = y.mean(0), y.std(0) + 1e-8
            d = rng.standard_normal((y.shape[1], directions))
            d /= np.linalg.norm(d, axis=0, keepdims=True)
            self.levels.append((mu, sd, d, np.sort(((y - mu) / sd) @ d, axis=0)))

    def __call__(self, restored: list[np.ndarray]) -> float:
        """Distance (x1000) of a restored set of HWC images in [0, 1] to the clean set; lower is better.
        The same seed draws the patch places for every method, so methods compare on equal terms."""
        out = []
        for x, (mu, sd, d, py) in zip(descriptors(restored, self.seed), self.levels):
            out.append(np.abs(_projected((x - mu) / sd, d, len(py)) - py).mean())
        return 1000 * float(np.mean(out))


def swd(restored: list[np.ndarray], clean: list[np.ndarray], seed: int = 0) -> float:
    """Patch-distribution distance (x1000) between two sets of HWC images in [0, 1]; lower is better."""
    return PatchSWD(clean, seed)(restored)

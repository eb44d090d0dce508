"""Build examples/: held-out photographs, their corrupted copies, nothing the prior trained on.

    python -m code_cli.bench.make_examples examples
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from code_cli.bench.corrupt import corrupt
from code_cli.prior_data import HELDOUT_PHOTOS, cap_long_side

# (corruption, severity): a fine one, a compression one, a global one.
EXAMPLE_CORRUPTIONS = (("gaussian_noise", 3), ("jpeg_compression", 5), ("contrast", 3))
LONG_SIDE = 256  # small enough for a CPU to restore each in seconds


def short_name(photo_name: str) -> str:
    return Path(photo_name).stem.lower()


def build(root: Path) -> list[Path]:
    written = []
    for photo in HELDOUT_PHOTOS:
        clean = cap_long_side(photo.load(), LONG_SIDE)
        name = short_name(photo.name)
        (root / "clean").mkdir(parents=True, exist_ok=True)
        clean.save(root / "clean" / f"{name}.png")
        for i, (corruption, severity) in enumerate(EXAMPLE_CORRUPTIONS):
            bad = corrupt(np.asarray(clean), corruption, severity, seed=i)
            dest = root / "corrupted" / f"{name}-{corruption}-{severity}.png"
            dest.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(bad).save(dest)
            written.append(dest)
    return written


def photo_of(corrupted: Path) -> str:
    """<photo>-<corruption>-<sev>.png -> <photo>: the examples' naming rule, stated once."""
    return corrupted.stem.split("-")[0]


def clean_for(corrupted: Path, root: Path) -> Path:
    """examples/corrupted/<photo>-<corruption>-<sev>.png -> examples/clean/<photo>.png"""
    return root / "clean" / f"{photo_of(corrupted)}.png"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", type=Path)
    a = ap.parse_args(argv)
    for p in build(a.root):
        print(p)


if __name__ == "__main__":
    main()

"""code-prior-s's own 17 training photographs and 2 held-out ones, found where
their packages install them (the data step's manifest is the wider set).

Only offline sources that ship with packages are used (see the model card for
the licences). Each source is located on disk; a missing one is an error that
says which package provides it, never a silent smaller training set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from code_cli.errors import InputError

MATE_NATURE = Path("/usr/share/backgrounds/mate/nature")
MATE_FETCHED = Path("data/photos/mate")


@dataclass(frozen=True)
class Photo:
    name: str  # stable identifier, e.g. "skimage/astronaut"
    source: str  # where it comes from, for the model card
    licence: str

    def load(self) -> Image.Image:
        """The photograph as an 8-bit RGB PIL image."""
        kind, _, stem = self.name.partition("/")
        if kind == "skimage":
            import skimage.data

            return Image.fromarray(getattr(skimage.data, stem)()).convert("RGB")
        path = _locate(self.name)
        with Image.open(path) as im:
            return im.convert("RGB")


MATE_LICENCE = "GPL-2+ (Debian mate-backgrounds, /usr/share/doc/mate-backgrounds/copyright)"

TRAIN_PHOTOS: tuple[Photo, ...] = (
    Photo("skimage/astronaut", "scikit-image skimage.data.astronaut (NASA)", "public domain"),
    Photo("skimage/coffee", "scikit-image skimage.data.coffee (Rachel Michetti)", "CC0"),
    Photo("skimage/rocket", "scikit-image skimage.data.rocket (SpaceX)", "public domain"),
    Photo("sklearn/china.jpg", "scikit-learn load_sample_images (Flickr, danielbuechele)", "CC BY 2.0"),
    Photo("sklearn/flower.jpg", "scikit-learn load_sample_images (Flickr, vultilion)", "CC BY 2.0"),
    Photo("matplotlib/grace_hopper.jpg", "matplotlib sample_data", "public domain (US Navy)"),
    *(
        Photo(f"mate/{n}", f"Debian mate-backgrounds nature/{n}", MATE_LICENCE)
        for n in (
            "Aqua.jpg", "Blinds.jpg", "Dune.jpg", "FreshFlower.jpg", "Garden.jpg",
            "GreenMeadow.jpg", "RainDrops.jpg", "Storm.jpg", "TwoWings.jpg", "Wood.jpg",
            "YellowFlower.jpg",
        )
    ),
)

# Never trained on: they feed the README examples and the quality tests.
HELDOUT_PHOTOS: tuple[Photo, ...] = (
    Photo("skimage/chelsea", "scikit-image skimage.data.chelsea (Stefan van der Walt)", "CC0"),
    Photo("mate/LadyBird.jpg", "Debian mate-backgrounds nature/LadyBird.jpg", MATE_LICENCE),
)


def _locate(name: str) -> Path:
    kind, _, file = name.partition("/")
    if kind == "sklearn":
        import sklearn.datasets

        path = Path(sklearn.datasets.__file__).parent / "images" / file
        hint = "pip install scikit-learn"
    elif kind == "matplotlib":
        import matplotlib

        path = Path(matplotlib.get_data_path()) / "sample_data" / file
        hint = "pip install matplotlib"
    elif kind == "mate":
        # The data step writes the package's own files to data/photos/mate/: the
        # same bytes, for machines where the package is not installed.
        path = next((d / file for d in (MATE_NATURE, MATE_FETCHED) if (d / file).is_file()), MATE_NATURE / file)
        hint = "apt-get install mate-backgrounds, or `make data`"
    else:
        raise InputError(f"{name}: unknown photo source {kind!r}")
    if not path.is_file():
        raise InputError(f"{path}: training photo missing; install it with `{hint}`")
    return path


def check_sources(photos: tuple[Photo, ...] = TRAIN_PHOTOS + HELDOUT_PHOTOS) -> None:
    """Fail early, with the install hint, if any photograph is absent."""
    for p in photos:
        if not p.name.startswith("skimage/"):
            _locate(p.name)
        else:
            import skimage.data

            if not hasattr(skimage.data, p.name.split("/")[1]):
                raise InputError(f"{p.name}: not in this scikit-image; pip install scikit-image")


def cap_long_side(im: Image.Image, cap: int) -> Image.Image:
    scale = cap / max(im.size)
    if scale >= 1:
        return im
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return im.resize(size, Image.Resampling.LANCZOS)


def to_unit_array(im: Image.Image) -> np.ndarray:
    """HWC float32 in [0, 1]."""
    return np.asarray(im, dtype=np.float32) / 255.0

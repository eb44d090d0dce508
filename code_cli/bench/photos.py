"""The benchmark's clean photographs: held-out ones from the data manifest, or a plain folder."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from code_cli.errors import InputError

DEFAULT_MANIFEST = Path("data/photos/manifest.json")
SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"}


@dataclass(frozen=True)
class Photo:
    name: str
    path: Path
    source: str = ""
    licence: str = ""


def list_photos(spec: Path) -> list[Photo]:
    """manifest.json -> its photos with split == "heldout"; a folder -> its image files, sorted."""
    spec = Path(spec)
    if spec.is_dir():
        photos = [Photo(p.stem, p) for p in sorted(spec.iterdir()) if p.suffix.lower() in SUFFIXES]
        if not photos:
            raise InputError(f"{spec}: no photographs (png, jpg, tif, webp, bmp) in this folder")
        return photos
    if not spec.exists():
        hint = " (run `make data` to download the held-out photographs)" if spec.name == "manifest.json" else ""
        raise InputError(f"{spec}: not found{hint}; or pass --photos FOLDER of clean photographs")
    try:
        manifest = json.loads(spec.read_text())
        entries = [e for e in manifest["photos"] if e.get("split") == "heldout"]
        photos = [Photo(Path(e["name"]).stem, spec.parent / e["file"], e.get("source", ""), e.get("licence", ""))
                  for e in entries]
    except (ValueError, KeyError, TypeError) as e:
        raise InputError(f"{spec}: not a photo manifest ({e.__class__.__name__}: {e})") from None
    if not photos:
        raise InputError(f"{spec}: the manifest lists no photographs with split \"heldout\"")
    missing = [str(p.path) for p in photos if not p.path.is_file()]
    if missing:
        raise InputError(f"{spec}: {len(missing)} listed photographs are missing, e.g. {missing[0]} (run `make data`)")
    return photos


def centre_crop(path: Path, size: int) -> np.ndarray:
    """Short side resized to `size` (antialiased), then the centre square: the whole scene at the
    benchmark's scale rather than a detail of it. uint8 HWC RGB."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im).convert("RGB")
        scale = size / min(im.size)
        w, h = max(size, round(im.width * scale)), max(size, round(im.height * scale))
        im = im.resize((w, h), Image.LANCZOS)
        left, top = (w - size) // 2, (h - size) // 2
        return np.asarray(im.crop((left, top, left + size, top + size)))

"""The photo manifest: `DIR/manifest.json`, the one record of which photographs a run uses.

    {"version": 1, "sha256": <checksum over "photos">, "photos": [{"name", "file", "source",
     "source_version", "licence", "attribution", "width", "height", "subject", "split", "sha256"}]}

The keys are fixed: the benchmark reads this file too. "file" is relative to
DIR; a photo's "sha256" is that of its file's bytes. The manifest's "sha256" is
the SHA-256 of the photo list serialised canonically (UTF-8 JSON, keys sorted,
no spaces), so a run can name its exact data with one string and an edited
entry is caught on reading.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

VERSION = 1
SPLITS = ("train", "heldout", "excluded")
MANIFEST = "manifest.json"


class ManifestError(ValueError):
    """The manifest is missing, malformed, or does not match its photos."""


@dataclass(frozen=True)
class PhotoEntry:
    name: str
    file: str
    source: str
    source_version: str
    licence: str
    attribution: str
    width: int
    height: int
    subject: str
    split: str
    sha256: str


KEYS = tuple(f.name for f in fields(PhotoEntry))


@dataclass(frozen=True)
class Manifest:
    sha256: str
    photos: tuple[PhotoEntry, ...]

    def split(self, name: str) -> list[PhotoEntry]:
        return [p for p in self.photos if p.split == name]


def checksum(photos: list[PhotoEntry] | tuple[PhotoEntry, ...]) -> str:
    text = json.dumps([asdict(p) for p in photos], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(folder: Path, photos: list[PhotoEntry]) -> Manifest:
    """Write DIR/manifest.json, photos sorted by name, atomically."""
    photos = sorted(photos, key=lambda p: p.name)
    _check_entries(photos, folder / MANIFEST)
    manifest = Manifest(checksum(photos), tuple(photos))
    body = {"version": VERSION, "sha256": manifest.sha256, "photos": [asdict(p) for p in photos]}
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(folder / MANIFEST)
    return manifest


def read_manifest(folder: Path, verify_files: bool = False) -> Manifest:
    """Read and check DIR/manifest.json; with verify_files, also every photo's size on disk and hash."""
    path = folder / MANIFEST
    if not path.is_file():
        raise ManifestError(
            f"{path}: no photo manifest; build it with `make data` (python -m code_cli.prior.fetch {folder})"
        )
    try:
        body = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ManifestError(f"{path}: unreadable ({e.__class__.__name__}: {e})") from None
    if not isinstance(body, dict) or set(body) != {"version", "sha256", "photos"}:
        raise ManifestError(f"{path}: expected exactly the keys version, sha256, photos")
    if body["version"] != VERSION:
        raise ManifestError(f"{path}: version {body['version']!r}, this reader knows {VERSION}")
    photos = []
    for i, raw in enumerate(body["photos"]):
        if not isinstance(raw, dict) or set(raw) != set(KEYS):
            raise ManifestError(f"{path}: photo {i} must have exactly the keys {', '.join(KEYS)}")
        photos.append(PhotoEntry(**raw))
    _check_entries(photos, path)
    if checksum(photos) != body["sha256"]:
        raise ManifestError(f"{path}: checksum mismatch: the photo list was edited or is damaged")
    if verify_files:
        for p in photos:
            f = folder / p.file
            if not f.is_file():
                raise ManifestError(f"{f}: listed in the manifest but missing; rebuild with `make data`")
            if file_sha256(f) != p.sha256:
                raise ManifestError(f"{f}: contents differ from the manifest's sha256; rebuild with `make data`")
    return Manifest(body["sha256"], tuple(photos))


def _check_entries(photos: list[PhotoEntry], where: Path) -> None:
    seen: set[str] = set()
    for p in photos:
        if p.name in seen:
            raise ManifestError(f"{where}: photo {p.name!r} is listed twice")
        seen.add(p.name)
        if p.split not in SPLITS:
            raise ManifestError(f"{where}: {p.name}: split {p.split!r} is not one of {', '.join(SPLITS)}")
        if Path(p.file).is_absolute() or ".." in Path(p.file).parts:
            raise ManifestError(f"{where}: {p.name}: file {p.file!r} must be a path inside the manifest's folder")
        if not (isinstance(p.width, int) and isinstance(p.height, int) and p.width > 0 and p.height > 0):
            raise ManifestError(f"{where}: {p.name}: width and height must be positive integers")

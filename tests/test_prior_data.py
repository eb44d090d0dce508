"""The prior's data step: container readers, licence records, the manifest, the split.

Every fixture is made here: tiny Qt resource and EET files written byte by byte
from the documented layouts, images drawn with numpy. No network, no packages.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from code_cli.prior import licences
from code_cli.prior.eet import EetError, EetFile
from code_cli.prior.fetch import DUPLICATE_BITS, SourceMissing, _deb, _wheel, build, phash
from code_cli.prior.heldout import HELDOUT
from code_cli.prior.manifest import ManifestError, PhotoEntry, checksum, read_manifest, write_manifest
from code_cli.prior.photos import TRAIN_PHOTOS
from code_cli.prior.rcc import RccError, read_rcc
from code_cli.prior.sources import SOURCES, Found, Source

# ---------------------------------------------------------------- writers of the two container formats


def make_rcc(files: dict[str, tuple[bytes, bool]], version: int = 3) -> bytes:
    """A Qt resource file holding `files` ({"a/b.webp": (bytes, zlib-compress?)})."""
    tree: dict = {}
    for path, payload in files.items():
        *dirs, leaf = path.split("/")
        node = tree
        for d in dirs:
            node = node.setdefault(d, {})
        node[leaf] = payload
    names, data = bytearray(), bytearray()
    name_at: dict[str, int] = {}

    def name_offset(name: str) -> int:
        if name not in name_at:
            name_at[name] = len(names)
            names.extend(struct.pack(">HI", len(name), 0) + name.encode("utf-16-be"))
        return name_at[name]

    # Breadth first, so each directory's children are consecutive nodes, as rcc writes them.
    nodes: list[tuple] = [("", tree)]
    records: list[bytes] = []
    i = 0
    while i < len(nodes):
        name, content = nodes[i]
        if isinstance(content, dict):
            first = len(nodes)
            nodes.extend(content.items())
            body = struct.pack(">IHII", name_offset(name) if name else 0, 2, len(content), first)
        else:
            blob, compress = content
            flags = 0
            if compress:
                blob, flags = struct.pack(">I", len(blob)) + zlib.compress(blob), 1
            at = len(data)
            data.extend(struct.pack(">I", len(blob)) + blob)
            body = struct.pack(">IHHHI", name_offset(name), flags, 0, 0, at)
        records.append(body + (b"" if version == 1 else struct.pack(">Q", 0)))
        i += 1
    header_size = 24 if version >= 3 else 20
    tree_at = header_size
    data_at = tree_at + sum(len(r) for r in records)
    names_at = data_at + len(data)
    header = b"qres" + struct.pack(">IIII", version, tree_at, data_at, names_at)
    if version >= 3:
        header += struct.pack(">I", 0)
    return header + b"".join(records) + bytes(data) + bytes(names)


def make_eet(entries: list[tuple[str, bytes, int]], lz4_sizes: dict[str, int] | None = None) -> bytes:
    """An EET file (format 2) of (name, data, flags) entries. A zlib entry (flag bit 0,
    type 0..9) is compressed here; an LZ4 entry (type 10 or 11) is given as its block,
    with its decoded size in lz4_sizes."""
    header = struct.Struct(">III")
    entry = struct.Struct(">6I")
    at = header.size + entry.size * len(entries)
    names = b"".join(n.encode() + b"\0" for n, _, _ in entries)
    name_at, data_at = at, at + len(names)
    directory, blobs = b"", b""
    for name, blob, flags in entries:
        lz4 = flags & 1 and (flags >> 3) & 0xFF in (10, 11)
        stored = zlib.compress(blob) if flags & 1 and not lz4 else blob
        size = lz4_sizes[name] if lz4 else len(blob)
        directory += entry.pack(data_at + len(blobs), len(stored), size, name_at, len(name) + 1, flags)
        name_at += len(name) + 1
        blobs += stored
    return header.pack(0x1EE70F42, len(entries), 0) + directory + names + blobs


# One LZ4 block written by hand from the block format: 20 literals (a length past 15,
# so one extension byte), a 4-byte match 20 back; 3 literals and a 9-byte match 3 back,
# which overlaps itself; 5 closing literals.
LZ4_BLOCK = b"\xf0\x05" + b"0123456789ABCDEFGHIJ" + b"\x14\x00" + b"\x35" + b"abc" + b"\x03\x00" + b"\x50" + b"XYZZY"
LZ4_TEXT = b"0123456789ABCDEFGHIJ" + b"0123" + b"abcabcabcabc" + b"XYZZY"


# ---------------------------------------------------------------- images


def smooth(seed: int, size=(240, 320)) -> np.ndarray:
    """A smooth random colour field: photo-like, with a perceptual hash of its own."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    return np.asarray(small.resize(size[::-1], Image.Resampling.BICUBIC))


def encode(pixels: np.ndarray, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt, **kw)
    return buf.getvalue()


# ---------------------------------------------------------------- readers


@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_reader_returns_every_file_plain_and_zlib(version):
    webp = encode(smooth(0), "WEBP", lossless=True)
    files = {
        "gcompris/act/resource/README": (b"Files: a.webp\nLicense: CC0-1.0\n", False),
        "gcompris/act/resource/a.webp": (webp, False),
        "gcompris/act/resource/deep/b.txt": (b"hello " * 50, True),
        "gcompris/act/Main.qml": (b"import QtQuick", True),
    }
    got = read_rcc(make_rcc(files, version))
    assert got == {k: v for k, (v, _) in files.items()}
    assert Image.open(io.BytesIO(got["gcompris/act/resource/a.webp"])).size == (320, 240)


def test_rcc_reader_rejects_damaged_files():
    good = make_rcc({"a/b": (b"x" * 100, True)})
    with pytest.raises(RccError, match="magic"):
        read_rcc(b"QRES" + good[4:])
    with pytest.raises(RccError, match="version"):
        read_rcc(good[:4] + struct.pack(">I", 9) + good[8:])
    with pytest.raises(RccError):
        read_rcc(good[:-60])


def test_eet_reader_reads_stored_zlib_and_lz4_entries_and_refuses_what_it_cannot():
    jpeg = encode(smooth(1), "JPEG", quality=90)
    lz4_flags = 1 | (10 << 3)
    raw = make_eet(
        [
            ("edje/images/0", jpeg, 0),
            ("edje/file", b"collection data " * 40, 1 | (9 << 3)),
            ("edje_sources", LZ4_BLOCK, lz4_flags),
            ("short", LZ4_BLOCK, lz4_flags),
            ("secret", b"ciphered", 2),
        ],
        lz4_sizes={"edje_sources": len(LZ4_TEXT), "short": len(LZ4_TEXT) + 1},
    )
    eet = EetFile(raw)
    assert eet.names() == ["edje/images/0", "edje/file", "edje_sources", "short", "secret"]
    assert eet.read("edje/images/0") == jpeg
    assert eet.read("edje/file") == b"collection data " * 40
    assert eet.read("edje_sources") == LZ4_TEXT
    with pytest.raises(EetError, match="directory says"):
        eet.read("short")
    with pytest.raises(EetError, match="ciphered"):
        eet.read("secret")
    with pytest.raises(EetError, match="no entry"):
        eet.read("missing")
    with pytest.raises(EetError, match="magic"):
        EetFile(b"\x1e\xe7\x0f\x43" + raw[4:])
    with pytest.raises(EetError, match="past the end"):
        EetFile(raw[:40])


def test_lz4_refuses_offsets_before_the_start_and_truncation():
    from code_cli.prior.eet import lz4_block

    with pytest.raises(EetError, match="offset"):
        lz4_block(b"\x10a\x05\x00\x50XYZZY", 100)
    with pytest.raises(EetError, match="truncated"):
        lz4_block(LZ4_BLOCK[:23], len(LZ4_TEXT))


# ---------------------------------------------------------------- licence records


DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2010 Upstream Team
License: GPL-2+

Files: 16.04/Bridge_by_Someone.jpg
Copyright: 2018 Some One
License: CC-BY-SA-4.0

Files: debian/*
Copyright: 2020 Packager
License: MIT
"""

README = """Copyright: Jane Doe / Wikimedia Commons
Source: https://commons.wikimedia.org/wiki/File:Owl.jpg
License: CC-BY-SA 4.0
Files: owl.webp

Copyright: John Roe
License: Public Domain
Files:
sub/heron.webp
sub/stork*.webp
"""


def test_dep5_last_matching_stanza_applies_and_exact_names_match_by_file_name():
    records = licences.parse_stanzas(DEP5)
    bridge = licences.lookup(records, "usr/share/backgrounds/Bridge_by_Someone.jpg")
    assert (bridge.licence, bridge.copyright) == ("CC-BY-SA-4.0", "2018 Some One")
    other = licences.lookup(records, "usr/share/backgrounds/Other.jpg")
    assert other.licence == "GPL-2+"  # debian/* never applies to installed files


@pytest.mark.parametrize(
    "written, spelled",
    [
        ("CC-BY-SA 4.0", "CC-BY-SA-4.0"),
        ("CC BY 2.0", "CC-BY-2.0"),
        ("Public Domain", "public domain"),
        ("GPLv2+", "GPL-2+"),
    ],
)
def test_licence_spellings_are_normalised(written, spelled):
    assert licences.normalise(written) == spelled


def test_gcompris_readme_stanzas_with_inline_and_listed_files():
    records = licences.parse_stanzas(README)
    owl = licences.lookup(records, "owl.webp")
    assert owl.licence == "CC-BY-SA-4.0" and owl.source.endswith("File:Owl.jpg")
    assert licences.lookup(records, "sub/stork2.webp").licence == "public domain"
    assert licences.lookup(records, "sub/heron.webp").copyright == "John Roe"
    assert licences.lookup(records, "crane.webp") is None


@pytest.mark.parametrize(
    "licence, ok",
    [
        ("CC0-1.0", True),
        ("public domain", True),
        ("CC-BY-4.0", True),
        ("CC-BY-SA-3.0", True),
        ("GPL-2+", True),
        ("LGPL-2.1+", True),
        ("BSD-2-Clause", True),
        ("MIT", True),
        ("GFDL-1.2+", True),
        ("CC-BY-NC-4.0", False),
        ("CC-BY-ND-4.0", False),
        ("CC-BY-NC-SA-4.0", False),
        ("proprietary", False),
        ("", False),
    ],
)
def test_licence_decisions(licence, ok):
    assert licences.allowed(licence) is ok


# ---------------------------------------------------------------- the manifest


def entry(name: str, split: str = "train", **kw) -> PhotoEntry:
    base = dict(
        name=name,
        file=f"{name}.png",
        source="pkg",
        source_version="1",
        licence="CC0-1.0",
        attribution="someone",
        width=10,
        height=8,
        subject="objects",
        split=split,
        sha256="0" * 64,
    )
    return PhotoEntry(**{**base, **kw})


def test_manifest_round_trip_and_checksum(tmp_path):
    photos = [entry("b"), entry("a", "heldout"), entry("c", "excluded")]
    written = write_manifest(tmp_path, photos)
    body = json.loads((tmp_path / "manifest.json").read_text())
    assert set(body) == {"version", "sha256", "photos"} and body["version"] == 1
    assert [p["name"] for p in body["photos"]] == ["a", "b", "c"]
    assert set(body["photos"][0]) == {
        "name",
        "file",
        "source",
        "source_version",
        "licence",
        "attribution",
        "width",
        "height",
        "subject",
        "split",
        "sha256",
    }
    got = read_manifest(tmp_path)
    assert got == written and got.sha256 == checksum(got.photos) == body["sha256"]
    assert [p.name for p in got.split("heldout")] == ["a"]
    # The checksum covers every field: any edit is caught on reading.
    body["photos"][1]["split"] = "heldout"
    (tmp_path / "manifest.json").write_text(json.dumps(body))
    with pytest.raises(ManifestError, match="checksum"):
        read_manifest(tmp_path)


def test_manifest_rejects_extra_or_missing_keys_bad_splits_and_repeats(tmp_path):
    write_manifest(tmp_path, [entry("a")])
    body = json.loads((tmp_path / "manifest.json").read_text())
    body["photos"][0]["extra"] = 1
    (tmp_path / "manifest.json").write_text(json.dumps(body))
    with pytest.raises(ManifestError, match="exactly the keys"):
        read_manifest(tmp_path)
    with pytest.raises(ManifestError, match="split"):
        write_manifest(tmp_path, [entry("a", "test")])
    with pytest.raises(ManifestError, match="twice"):
        write_manifest(tmp_path, [entry("a"), entry("a")])
    with pytest.raises(ManifestError, match="inside"):
        write_manifest(tmp_path, [entry("a", file="../a.png")])
    with pytest.raises(ManifestError, match="make data"):
        read_manifest(tmp_path / "nowhere")


def test_manifest_verifies_the_files_it_lists(tmp_path):
    (tmp_path / "a.png").write_bytes(b"pixels")
    write_manifest(tmp_path, [entry("a", sha256=hashlib.sha256(b"pixels").hexdigest())])
    read_manifest(tmp_path, verify_files=True)
    (tmp_path / "a.png").write_bytes(b"other pixels")
    with pytest.raises(ManifestError, match="differ"):
        read_manifest(tmp_path, verify_files=True)


# ---------------------------------------------------------------- the whole data step on a fake package


def fake_package(tmp_path):
    held = encode(smooth(10), "PNG")
    rotated = Image.fromarray(smooth(12, (180, 240)))
    exif = rotated.getexif()
    exif[0x0112] = 6  # stored turned: viewers rotate it 90 degrees clockwise
    buf = io.BytesIO()
    rotated.save(buf, format="JPEG", quality=92, exif=exif)
    cutout = np.dstack([smooth(13), np.full((240, 320), 255, np.uint8)])
    cutout[:40, :40, 3] = 0
    images = {
        "fake/keep.jpg": (encode(smooth(11), "JPEG", quality=92), "plants"),
        "fake/held.png": (held, "animals"),
        # The held-out photo again, smaller and re-encoded: must never reach training.
        "fake/held_copy.jpg": (
            encode(np.asarray(Image.open(io.BytesIO(held)).resize((240, 180))), "JPEG", quality=80),
            "animals",
        ),
        "fake/rotated.jpg": (buf.getvalue(), "water"),
        "fake/tiny.png": (encode(smooth(14, (60, 90)), "PNG"), "objects"),
        "fake/cutout.png": (encode(cutout, "PNG"), "objects"),
        "fake/noncommercial.jpg": (encode(smooth(15), "JPEG"), "plants"),
    }
    source = Source(
        "fake-pkg",
        "fake",
        "deb",
        lambda root: (
            Found(n, data, "CC-BY-NC-4.0" if "noncommercial" in n else "CC0-1.0", "a photographer", subject)
            for n, (data, subject) in images.items()
        ),
    )
    heldout = {"fake/held.png": hashlib.sha256(held).hexdigest()}
    return source, heldout


def test_data_step_splits_drops_and_orients(tmp_path):
    source, heldout = fake_package(tmp_path)
    dest = tmp_path / "photos"
    manifest = build(
        dest,
        sources=[source],
        unpack=lambda s, cache, offline: (tmp_path, "9.9-1"),
        heldout=heldout,
        log=lambda *_: None,
    )
    by_name = {p.name: p for p in manifest.photos}
    # Left out: the tiny image, the cut-out, and the photo whose licence forbids commercial use.
    assert set(by_name) == {"fake/keep.jpg", "fake/held.png", "fake/held_copy.jpg", "fake/rotated.jpg"}
    assert by_name["fake/held.png"].split == "heldout"
    assert by_name["fake/held_copy.jpg"].split == "excluded"
    assert by_name["fake/keep.jpg"].split == "train"
    train = {p.name for p in manifest.split("train")}
    assert train.isdisjoint(p.name for p in manifest.split("heldout"))
    # Turned upright and stored losslessly: the stored 240x180 becomes 180 wide, 240 high.
    turned = by_name["fake/rotated.jpg"]
    assert (turned.file, turned.width, turned.height) == ("fake/rotated.jpg.png", 180, 240)
    assert Image.open(dest / turned.file).size == (180, 240)
    assert all(p.source == "fake-pkg" and p.source_version == "9.9-1" for p in manifest.photos)
    assert read_manifest(dest, verify_files=True) == manifest


def test_data_step_refuses_a_changed_heldout_photo(tmp_path):
    source, heldout = fake_package(tmp_path)
    with pytest.raises(SourceMissing, match="held-out photo changed"):
        build(
            tmp_path / "photos",
            sources=[source],
            unpack=lambda s, c, o: (tmp_path, "2"),
            heldout={"fake/held.png": "f" * 64},
            log=lambda *_: None,
        )
    with pytest.raises(SourceMissing, match="not found"):
        build(
            tmp_path / "photos",
            sources=[source],
            unpack=lambda s, c, o: (tmp_path, "2"),
            heldout={**heldout, "fake/gone.jpg": "0" * 64},
            log=lambda *_: None,
        )


def test_phash_sees_copies_and_tells_photos_apart():
    a = Image.fromarray(smooth(20))
    assert bin(phash(a) ^ phash(a.resize((200, 150)))).count("1") <= DUPLICATE_BITS
    others = [phash(Image.fromarray(smooth(s))) for s in range(21, 31)]
    assert all(bin(phash(a) ^ h).count("1") > DUPLICATE_BITS for h in others)


def test_a_missing_package_names_the_command_that_provides_it(tmp_path):
    with pytest.raises(SourceMissing, match=r"apt-get download no-such-pkg"):
        _deb("no-such-pkg", tmp_path, offline=True)
    with pytest.raises(SourceMissing, match=r"pip download --no-deps -d .* sporco==0.2.2.post1"):
        _wheel("sporco", "0.2.2.post1", tmp_path, offline=True)


# ---------------------------------------------------------------- the committed split


def test_the_heldout_list_is_fixed_wide_and_unseen_by_code_prior_s():
    assert len(HELDOUT) >= 12
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in HELDOUT.values())
    assert set(HELDOUT).isdisjoint(p.name for p in TRAIN_PHOTOS)
    shorts = {s.short for s in SOURCES}
    assert {n.split("/")[0] for n in HELDOUT} <= shorts
    assert len({n.split("/")[0] for n in HELDOUT}) >= 8  # spread over sources, not one package's style


def test_attribution_table_lists_the_photos_whose_licence_asks_for_it():
    from code_cli.prior.fetch import attributions
    from code_cli.prior.manifest import Manifest

    photos = (
        entry("sa", licence="CC-BY-SA-4.0", attribution="Ann | Commons"),
        entry("by", "heldout", licence="CC-BY-2.0", attribution="Bob"),
        entry("zero", licence="CC0-1.0"),
        entry("gpl", licence="GPL-2+"),
        entry("dup", "excluded", licence="CC-BY-4.0"),
    )
    rows = attributions(Manifest("x", photos)).splitlines()[2:]
    assert rows == ["| sa | train | CC-BY-SA-4.0 | Ann / Commons |", "| by | heldout | CC-BY-2.0 | Bob |"]


def test_restoring_never_imports_the_prior_room():
    """The data and training room is build-time only: a restore must not load it."""
    import subprocess
    import sys

    probe = (
        "import sys, code_cli.cli, code_cli.pipeline, code_cli.models; "
        "print(sorted(m for m in sys.modules if m.startswith('code_cli.prior')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"

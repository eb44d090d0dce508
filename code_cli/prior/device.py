"""Getting a GPU training run's data there and its weights back, within a device call's limits.

A device call carries the working tree and at most 64 MiB in all, and returns
at most 8 files of 16 MB. So:

    python -m code_cli.prior.device pack data/photos data/pack     # train split, capped, < 30 MB
    python -m code_cli.prior.device bundle runs/code-prior-m $OUT  # shards + one meta.tar
    python -m code_cli.prior.device unbundle FILES_AT code_cli/weights/code-prior-m

The pack is itself a photo folder with a manifest (format of manifest.py) that
holds only the training photographs: a photograph within the cap keeps its
package's bytes, a larger one is scaled to the cap (as training does anyway)
and stored as WebP.
"""

from __future__ import annotations

import argparse
import io
import shutil
import tarfile
from dataclasses import replace
from pathlib import Path

from PIL import Image

from code_cli.prior.manifest import file_sha256, read_manifest, write_manifest
from code_cli.prior.photos import cap_long_side

MAX_FILES = 8  # files a device call brings back
WEIGHTS = ".safetensors"


def pack(src: Path, dest: Path, cap: int = 1024, quality: int = 92) -> int:
    """Write the train split of src's manifest to dest, each photo at most `cap` px; returns bytes written."""
    manifest = read_manifest(src, verify_files=True)
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    entries, total = [], 0
    for e in manifest.split("train"):
        with Image.open(src / e.file) as im:
            fits = max(im.size) <= cap
            if fits:
                data, rel = (src / e.file).read_bytes(), e.file
                size = im.size
            else:
                small = cap_long_side(im.convert("RGB"), cap)
                buf = io.BytesIO()
                small.save(buf, format="WEBP", quality=quality, method=6)
                data, rel, size = buf.getvalue(), f"{e.file}.webp", small.size
        path = dest / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        total += len(data)
        entries.append(replace(e, file=rel, width=size[0], height=size[1], sha256=file_sha256(path)))
    write_manifest(dest, entries)
    return total


def bundle(model: Path, out: Path) -> list[Path]:
    """The weight shards as they are, and every other file of the model folder in meta.tar."""
    shards = sorted(model.rglob(f"*{WEIGHTS}"))
    # One returned file is the training log, one meta.tar.
    if len(shards) + 2 > MAX_FILES:
        raise SystemExit(
            f"{model}: {len(shards)} weight files, meta.tar and the log exceed the {MAX_FILES} files a call returns; "
            "export larger shards"
        )
    out.mkdir(parents=True, exist_ok=True)
    with tarfile.open(out / "meta.tar", "w") as tar:
        for f in sorted(p for p in model.rglob("*") if p.is_file() and p.suffix != WEIGHTS):
            tar.add(f, arcname=str(f.relative_to(model)))
        # Where each shard goes back to, as the shards travel flat.
        places = "\n".join(str(s.relative_to(model)) for s in shards) + "\n"
        info = tarfile.TarInfo("SHARDS")
        info.size = len(places.encode())
        tar.addfile(info, io.BytesIO(places.encode()))
    copies = []
    for s in shards:
        shutil.copyfile(s, out / s.name)
        copies.append(out / s.name)
    return [out / "meta.tar", *copies]


def unbundle(src: Path, model: Path) -> None:
    """Rebuild the model folder from what bundle() wrote."""
    model.mkdir(parents=True, exist_ok=True)
    with tarfile.open(src / "meta.tar") as tar:
        places = tar.extractfile("SHARDS").read().decode().split()
        members = [m for m in tar.getmembers() if m.name != "SHARDS"]
        for m in members:
            if not m.isfile() or m.name.startswith("/") or ".." in Path(m.name).parts:
                raise SystemExit(f"{src / 'meta.tar'}: unexpected member {m.name!r}")
        tar.extractall(model, members=members, filter="data")
    for rel in places:
        target = model / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / Path(rel).name, target)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="the train split, capped, for carrying to a device")
    p.add_argument("src", type=Path)
    p.add_argument("dest", type=Path)
    p.add_argument("--cap", type=int, default=1024)
    p.add_argument("--quality", type=int, default=92)
    b = sub.add_parser("bundle", help="a model folder as weight shards plus meta.tar")
    b.add_argument("model", type=Path)
    b.add_argument("out", type=Path)
    u = sub.add_parser("unbundle", help="a model folder back from bundle's files")
    u.add_argument("src", type=Path)
    u.add_argument("model", type=Path)
    a = ap.parse_args(argv)
    if a.cmd == "pack":
        total = pack(a.src, a.dest, a.cap, a.quality)
        print(f"packed {a.dest}: {total / 1e6:.1f} MB")
    elif a.cmd == "bundle":
        for f in bundle(a.model, a.out):
            print(f"{f} ({f.stat().st_size / 1e6:.1f} MB)")
    else:
        unbundle(a.src, a.model)
        print(f"unbundled {a.model}")


if __name__ == "__main__":
    main()

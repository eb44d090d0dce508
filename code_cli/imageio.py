"""Finding inputs, decoding them into tensors, and writing outputs atomically.

Decoding applies EXIF orientation, maps every mode to RGB in [-1, 1] for the
model, and remembers what it needs to give the output the input's shape: grey
stays grey, alpha is carried through unchanged, 16-bit stays 16-bit, the ICC
profile is kept. Inputs are only ever opened for reading.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
import os
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from code_cli.errors import InputError, OutputError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif")
WRITABLE = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "tif": "TIFF", "tiff": "TIFF", "bmp": "BMP"}
MAX_PIXELS = 64_000_000  # larger declared sizes are refused as decompression bombs


@dataclass(frozen=True)
class InputItem:
    path: Path
    rel: Path  # relative to the input root; mirrored in OUTPUT


@dataclass(frozen=True)
class LoadedImage:
    rgb: torch.Tensor  # (3, H, W) float32 in [-1, 1]
    alpha: np.ndarray | None  # (H, W) original alpha, carried through unchanged
    grey: bool
    bits: int  # 8 or 16
    icc: bytes | None
    note: str  # anything the log should know ("first frame of 12")


def discover(spec: str, output: Path, recursive: bool = False) -> list[InputItem]:
    """Sorted inputs for a file, a folder or a glob; OUTPUT inside INPUT is never scanned."""
    path = Path(spec)
    out = output.resolve()
    if path.is_dir():
        pattern = "**/*" if recursive else "*"
        found = [p for p in path.glob(pattern) if p.suffix.lower() in IMAGE_EXTENSIONS and not _inside(p, out)]
        return sorted((InputItem(p, p.relative_to(path)) for p in found), key=lambda i: str(i.rel))
    if path.exists() or path.is_symlink():
        return [InputItem(path, Path(path.name))]
    matches = sorted(glob.glob(spec, recursive=recursive))
    if not matches:
        raise InputError(f"{spec}: no such file, folder or matching glob")
    root = Path(os.path.commonpath([os.path.dirname(m) or "." for m in matches]))
    items = [Path(m) for m in matches if Path(m).suffix.lower() in IMAGE_EXTENSIONS]
    return [InputItem(p, p.relative_to(root)) for p in items if not _inside(p, out)]


def _inside(p: Path, folder: Path) -> bool:
    try:
        p.resolve().relative_to(folder)
        return True
    except ValueError:
        return False


def load(path: Path) -> LoadedImage:
    """Decode one image; every failure is an InputError with one line naming the file."""
    if path.is_symlink() and not path.exists():
        raise InputError(f"{path}: broken symbolic link")
    if path.is_dir():
        raise InputError(f"{path}: is a folder, not an image")
    try:
        if path.stat().st_size == 0:
            raise InputError(f"{path}: empty file (0 bytes)")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise InputError(f"{path}: declared size {im.width}x{im.height} is over {MAX_PIXELS:,} pixels "
                                     "(decompression bomb?)")
                frames = getattr(im, "n_frames", 1)
                im.seek(0)
                icc = im.info.get("icc_profile")
                im = ImageOps.exif_transpose(im)
                im.load()
                return _decode(im, icc, f"first frame of {frames}" if frames > 1 else "")
    except InputError:
        raise
    except PermissionError:
        raise InputError(f"{path}: permission denied") from None
    except UnidentifiedImageError:
        raise InputError(f"{path}: not an image PIL can read (unknown format or not an image)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise InputError(f"{path}: declared size is over the pixel limit (decompression bomb?)") from None
    except (OSError, SyntaxError, ValueError) as e:
        reason = str(e).splitlines()[0] if str(e) else e.__class__.__name__
        raise InputError(f"{path}: cannot decode image ({reason})") from None


def peek_size(path: Path) -> tuple[int, int]:
    """(width, height) as load() would give it (EXIF orientation applied), from the header only."""
    try:
        with Image.open(path) as im:
            w, h = im.size
            if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):  # orientations that swap the axes
                w, h = h, w
            return w, h
    except Exception as e:  # noqa: BLE001 - any decoder failure is this input's problem, said in one line
        raise InputError(f"{path}: cannot read the image header ({e.__class__.__name__})") from None


def _decode(im: Image.Image, icc: bytes | None, note: str) -> LoadedImage:
    alpha = None
    mode = im.mode
    if mode == "P" or mode == "PA":
        im = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("RGBA", "LA", "RGBa", "La"):
        alpha = np.asarray(im.getchannel("A")).copy()
        im = im.convert("RGB" if mode.startswith("RGB") else "L")
        mode = im.mode
    if mode == "1":
        im, mode = im.convert("L"), "L"
    if mode == "CMYK":
        # The CMYK profile would be wrong for the RGB output; drop it.
        im, mode, icc = im.convert("RGB"), "RGB", None
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        arr = np.asarray(im, dtype=np.float32) / 65535.0
        return _pack(np.clip(arr, 0, 1)[..., None], alpha, True, 16, icc, note)
    if mode == "F":
        arr = np.asarray(im, dtype=np.float32)
        return _pack(np.clip(arr, 0, 1)[..., None], alpha, True, 16, icc, note)
    if mode == "L":
        return _pack(np.asarray(im, dtype=np.float32)[..., None] / 255.0, alpha, True, 8, icc, note)
    if mode != "RGB":
        im = im.convert("RGB")
    return _pack(np.asarray(im, dtype=np.float32) / 255.0, alpha, False, 8, icc, note)


def _pack(arr: np.ndarray, alpha, grey: bool, bits: int, icc, note: str) -> LoadedImage:
    t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1)
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    return LoadedImage(rgb=(t * 2 - 1).contiguous(), alpha=alpha, grey=grey, bits=bits, icc=icc, note=note)


def to_pil(x: torch.Tensor, like: LoadedImage) -> Image.Image:
    """A restored (3, H, W) tensor in [-1, 1] as an image of the input's mode."""
    unit = ((x.float().clamp(-1, 1) + 1) / 2).cpu()
    if like.grey:
        g = unit.mean(0).numpy()
        if like.bits == 16:
            im = Image.fromarray(np.round(g * 65535).astype(np.uint16))
        else:
            im = Image.fromarray(np.round(g * 255).astype(np.uint8), "L")
    else:
        im = Image.fromarray(np.round(unit.permute(1, 2, 0).numpy() * 255).astype(np.uint8), "RGB")
    if like.alpha is not None:  # Pillow gives alpha only with 8-bit RGBA / LA, so the modes match
        im.putalpha(Image.fromarray(like.alpha, "L"))
    return im


def output_path(item: InputItem, out_dir: Path, fmt: str, suffix: str, sample: int | None) -> Path:
    """OUTPUT/<rel without ext><suffix>[_s<k>].<ext>; never outside OUTPUT."""
    ext = item.path.suffix.lower().lstrip(".") if fmt == "same" else fmt
    if ext not in WRITABLE:
        ext = "png"  # GIF inputs and the like are written as PNG
    stem = item.rel.stem + suffix + (f"_s{sample}" if sample is not None else "")
    dest = out_dir / item.rel.parent / f"{stem}.{ext}"
    if not _inside(dest, out_dir.resolve()):
        raise OutputError(f"{item.path}: output path {dest} would leave the output folder")
    return dest


@contextlib.contextmanager
def _atomic(dest: Path, mode: str, before_rename: Callable[[], None] | None = None):
    """A file object for a temporary beside dest, renamed over dest on success only.
    `before_rename` runs once the data is on disk, just before the rename (e.g. to log it)."""
    tmp = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
        # mkstemp makes the file owner-only; outputs get the mode any new file of the user gets
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, mode, **({"encoding": "utf-8"} if "b" not in mode else {})) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        if before_rename:
            before_rename()
        os.replace(tmp, dest)
        tmp = None
    except OSError as e:
        raise OutputError(f"{dest}: cannot write ({e.strerror or e.__class__.__name__})") from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporaries a killed run left (ours only: '.<name>.<random>.part')."""
    stale = [p for p in folder.rglob(".*.part") if p.is_file()]
    for p in stale:
        p.unlink()
    return stale


def save_atomic(
    im: Image.Image, dest: Path, icc: bytes | None, before_rename: Callable[[str], None] | None = None
) -> str:
    """Write to a temporary file beside dest, then rename: a crash never leaves half an image.
    `before_rename(sha256)` runs just before the rename; returns the SHA-256 of the bytes written."""
    fmt = WRITABLE[dest.suffix.lower().lstrip(".")]
    if fmt == "JPEG" and im.mode not in ("RGB", "L"):
        im = im.convert("RGB")  # JPEG has no alpha
    kwargs = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    if icc:
        kwargs["icc_profile"] = icc
    buf = io.BytesIO()
    im.save(buf, format=fmt, **kwargs)
    data = buf.getvalue()
    digest = hashlib.sha256(data).hexdigest()
    with _atomic(dest, "wb", (lambda: before_rename(digest)) if before_rename else None) as f:
        f.write(data)
    return digest


def write_text_atomic(dest: Path, text: str) -> None:
    with _atomic(dest, "w") as f:
        f.write(text)


def strip(images: list[Image.Image]) -> Image.Image:
    """Side-by-side strip (input | output ...) for --grid, on a white background."""
    h = max(i.height for i in images)
    sheet = Image.new("RGB", (sum(i.width for i in images) + 4 * (len(images) - 1), h), "white")
    x = 0
    for i in images:
        sheet.paste(i.convert("RGB"), (x, 0))
        x += i.width + 4
    return sheet

"""Every kind of awkward input: a clear one-line message, the batch goes on, nothing lost."""

from __future__ import annotations

import io
import json
import os
import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageCms
from typer.testing import CliRunner

from code_cli import imageio
from code_cli.cli import app
from tests.conftest import write_image

runner = CliRunner()
FAST = ["--steps", "10", "--depth", "2", "--langevin-steps", "1"]


def run(inp, out, model, *extra):
    args = [str(inp), str(out), "--model", str(model), *FAST, *map(str, extra)]
    return runner.invoke(app, args, catch_exceptions=False)


def records(out):
    lines = (out / "run.jsonl").read_text(errors="surrogateescape").splitlines()
    return {json.loads(line)["input"].rsplit("/", 1)[-1]: json.loads(line) for line in lines}


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header declares a huge size (a decompression bomb) and holds almost nothing."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) + chunk(b"IEND", b"")


def truncated(fmt: str) -> bytes:
    buf = io.BytesIO()
    arr = (np.random.default_rng(0).random((64, 64, 3)) * 255).astype("uint8")
    Image.fromarray(arr).save(buf, format=fmt)
    return buf.getvalue()[: len(buf.getvalue()) // 2]


BAD = {
    "empty.png": (lambda p: p.write_bytes(b""), "empty file (0 bytes)"),
    "cut.png": (lambda p: p.write_bytes(truncated("PNG")), "cannot decode image"),
    "cut.jpg": (lambda p: p.write_bytes(truncated("JPEG")), "cannot decode image"),
    "text.png": (lambda p: p.write_text("hello, I am text"), "not an image PIL can read"),
    "bomb.png": (lambda p: p.write_bytes(png_claiming(100_000, 100_000)), "(decompression bomb?)"),
    "dir.png": (lambda p: p.mkdir(), "is a folder, not an image"),
    "dangling.png": (lambda p: p.symlink_to(p.parent / "nowhere.png"), "broken symbolic link"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_fails_alone_with_one_line(tmp_path, tiny_model, name):
    d = tmp_path / "in"
    write_image(d / "good.png")
    make, message = BAD[name]
    make(d / name)
    out = tmp_path / "out"
    r = run(d, out, tiny_model)
    assert r.exit_code == 1, r.output
    lines = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and name in lines[0] and message in lines[0], r.output
    assert "Traceback" not in r.output
    recs = records(out)
    assert recs["good.png"]["status"] == "ok" and (out / "good.png").is_file()
    assert recs[name]["status"] == "failed" and message in recs[name]["error"]
    assert not (out / name).exists() or (d / name).is_dir() and not (out / name).is_file()
    assert not list(out.rglob("*.part"))


def test_unreadable_file_is_reported(tmp_path, tiny_model, monkeypatch):
    d = tmp_path / "in"
    write_image(d / "good.png")
    secret = write_image(d / "secret.png", seed=1)
    secret.chmod(0)
    if os.geteuid() == 0:  # root reads anything: make the open itself refuse, as it would for a user
        real_open = Image.open

        def deny(path, *a, **k):
            if str(path).endswith("secret.png"):
                raise PermissionError(13, "Permission denied")
            return real_open(path, *a, **k)

        monkeypatch.setattr(imageio.Image, "open", deny)
    r = run(d, tmp_path / "out", tiny_model)
    secret.chmod(0o644)
    assert r.exit_code == 1
    assert "secret.png: permission denied" in r.output


def test_modes_are_kept(tmp_path, tiny_model):
    d = tmp_path / "in"
    write_image(d / "grey.png", mode="L")
    write_image(d / "greyalpha.png", mode="LA")
    write_image(d / "rgba.png", mode="RGBA")
    write_image(d / "pal.png", mode="P")
    write_image(d / "one.png", size=(1, 1))
    Image.fromarray((np.arange(16 * 12).reshape(12, 16) * 300).astype(np.uint16)).save(d / "deep.png")
    Image.fromarray((np.arange(16 * 12).reshape(12, 16) * 300).astype(np.uint16)).save(d / "deep.tif")
    Image.new("CMYK", (12, 10), (10, 200, 30, 0)).save(d / "cmyk.jpg")
    out = tmp_path / "out"
    r = run(d, out, tiny_model)
    assert r.exit_code == 0, r.output
    mode = {p.name: Image.open(p).mode for p in out.iterdir() if p.is_file() and p.suffix != ".jsonl"}
    assert mode["grey.png"] == "L" and mode["greyalpha.png"] == "LA" and mode["rgba.png"] == "RGBA"
    assert mode["deep.png"] in ("I;16", "I") and mode["deep.tif"] in ("I;16", "I;16B", "I")
    assert mode["pal.png"] == "RGB" and mode["cmyk.jpg"] == "RGB"  # documented conversions
    assert Image.open(out / "one.png").size == (1, 1)
    alpha = Image.open(d / "greyalpha.png").getchannel("A").tobytes()
    assert Image.open(out / "greyalpha.png").getchannel("A").tobytes() == alpha


def test_exif_orientation_is_applied_and_icc_is_kept(tmp_path, tiny_model):
    d = tmp_path / "in"
    d.mkdir()
    im = Image.new("RGB", (20, 10), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to display
    im.save(d / "rot.jpg", exif=exif.tobytes())
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    im.save(d / "icc.png", icc_profile=icc)
    out = tmp_path / "out"
    assert run(d, out, tiny_model).exit_code == 0
    assert Image.open(out / "rot.jpg").size == (10, 20)  # upright
    assert Image.open(out / "icc.png").info.get("icc_profile") == icc


def test_animated_gif_takes_the_first_frame_and_says_so(tmp_path, tiny_model):
    d = tmp_path / "in"
    d.mkdir()
    frames = [Image.new("RGB", (12, 12), c) for c in ("red", "green", "blue")]
    frames[0].save(d / "anim.gif", save_all=True, append_images=frames[1:])
    out = tmp_path / "out"
    assert run(d, out, tiny_model).exit_code == 0
    assert (out / "anim.png").is_file()
    assert records(out)["anim.gif"]["note"] == "first frame of 3"


def test_awkward_names(tmp_path, tiny_model):
    d = tmp_path / "in"
    write_image(d / "with space.png")
    write_image(d / "ünïcødé 写真.png", seed=1)
    raw = os.path.join(os.fsencode(d), b"caf\xe9.png")
    with open(raw, "wb") as f:
        f.write((d / "with space.png").read_bytes())
    out = tmp_path / "out"
    r = run(d, out, tiny_model)
    assert r.exit_code == 0, r.output
    assert (out / "with space.png").is_file() and (out / "ünïcødé 写真.png").is_file()
    assert os.path.exists(os.path.join(os.fsencode(out), b"caf\xe9.png"))


def test_full_disk_fails_each_image_clearly_and_leaves_no_partial_file(tmp_path, tiny_model, monkeypatch):
    import errno

    d = tmp_path / "in"
    write_image(d / "a.png")
    write_image(d / "b.png", seed=1)
    out = tmp_path / "out"
    real_fdopen = os.fdopen

    class Full:
        """A file on a full disk: half an image gets in, then ENOSPC (config files still fit)."""

        def __init__(self, f):
            self.f = f

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            if isinstance(data, bytes):
                self.f.write(data[:10])
                raise OSError(errno.ENOSPC, "No space left on device")
            return self.f.write(data)

    monkeypatch.setattr(os, "fdopen", lambda *a, **k: Full(real_fdopen(*a, **k)))
    r = run(d, out, tiny_model)
    assert r.exit_code == 1
    assert "a.png: cannot write (No space left on device)" in r.output
    assert not list(out.glob("*.png")) and not list(out.rglob("*.part"))
    assert {x["status"] for x in records(out).values()} == {"failed"}


def test_read_only_output_is_one_clear_error(tmp_path, tiny_model, monkeypatch):
    import tempfile

    d = tmp_path / "in"
    write_image(d / "a.png")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)

    def refuse(*a, **k):  # what a non-root user meets in a read-only folder (root ignores modes)
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    r = run(d, out, tiny_model)
    out.chmod(0o755)
    assert r.exit_code == 2
    [cfg_file] = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert cfg_file.startswith(f"error: {out / 'configs'}/")
    assert cfg_file.endswith(".yaml: cannot write (Permission denied)")
    assert [p for p in out.rglob("*") if not p.is_dir()] == []


def test_nan_weights_mark_the_image_failed_and_write_nothing(tmp_path, tiny_model):
    import shutil

    from safetensors.torch import load_file, save_file

    bad = tmp_path / "nan-model"
    shutil.copytree(tiny_model, bad)
    wfile = bad / "unet" / "diffusion_pytorch_model.safetensors"
    weights = load_file(wfile)
    weights["conv_out.bias"] = weights["conv_out.bias"] * float("nan")
    save_file(weights, wfile)
    d = tmp_path / "in"
    write_image(d / "a.png")
    out = tmp_path / "out"
    r = run(d, out, bad)
    assert r.exit_code == 1
    assert "a.png: the model produced NaN or Inf; nothing written" in r.output
    assert not (out / "a.png").exists()

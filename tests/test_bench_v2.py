"""Benchmark v2 end to end on two tiny photographs, and its library parts on known inputs."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
from conftest import write_image

from code_cli.bench import __main__ as bench
from code_cli.bench.corrupt import CORRUPTIONS, corrupt
from code_cli.bench.metrics import immerkaer_sigma, psnr
from code_cli.bench.photos import centre_crop, list_photos
from code_cli.bench.realism import swd
from code_cli.errors import InputError
from code_cli.pipeline import image_seed


@pytest.mark.slow  # bm3d and 8 restoring methods on 6 images: a minute or more on a busy 2-core CPU
def test_quick_bench_writes_every_image_x_method_and_a_consistent_table(tiny_model, tmp_path, capsys):
    photos = tmp_path / "photos"
    write_image(photos / "a.png", size=(80, 70), seed=1)
    write_image(photos / "b.jpg", size=(70, 90), seed=2)
    out, doc = tmp_path / "out", tmp_path / "docs" / "benchmark.md"
    corruptions = ["gaussian_noise", "fog", "masked_pixels"]
    # --quick with smaller images and fewer corruptions than its defaults keeps the test short on a busy CPU.
    bench.main(["--photos", str(photos), "--quick", "--size", "32", "--corruptions", ",".join(corruptions),
                "--model", str(tiny_model), "--device", "cpu", "--out", str(out), "--doc", str(doc)])
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    methods = ["input", "nl_means", "bm3d", "one_step", "code:default", "sdedit:default"]
    assert {(r["photo"], r["corruption"], r["method"]) for r in rows} == {
        (p, c, m) for p in ("a", "b") for c in corruptions for m in methods}
    assert len(rows) == 2 * len(corruptions) * len(methods)
    calls = {r["method"]: int(r["nfe"]) for r in rows}
    assert calls == {"input": 0, "nl_means": 0, "bm3d": 0, "one_step": 1, "code:default": 33, "sdedit:default": 33}
    # The input's PSNR, recomputed here from the clean crop and the seeded corruption, matches the CSV.
    for r in (r for r in rows if r["method"] == "input"):
        clean = centre_crop(photos / ("a.png" if r["photo"] == "a" else "b.jpg"), 32)
        bad = corrupt(clean, r["corruption"], 3, seed=image_seed(0, f"{r['photo']}/{r['corruption']}") % 2**32)
        assert float(r["psnr"]) == pytest.approx(psnr(bad / 255, clean / 255), abs=1e-3)
        assert math.isinf(float(r["psnr_input"]))
    for r in rows:
        assert 0 < float(r["psnr"]) < 100 and -1 <= float(r["ssim"]) <= 1 and math.isfinite(float(r["brisque"]))
    # The PSNR table: one row per corruption, the best of each row in bold, and the wins add up.
    md = (out / "results.md").read_text()
    table = md.split("## PSNR to the clean image")[1].split("\n## ")[0]
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    assert lines[0].split("|")[2].strip() == "input" and len(lines) == 2 + len(corruptions) + 2
    wins = 0
    for c, line in zip(corruptions, lines[2:]):
        cells = [x.strip() for x in line.split("|")[2:-1]]
        assert line.startswith(f"| {c} |")
        means = [np.mean([float(r["psnr"]) for r in rows if (r["corruption"], r["method"]) == (c, m)]) for m in methods]
        bold = [i for i, x in enumerate(cells) if x.startswith("**")]
        assert bold and all(round(means[i], 2) == round(max(means), 2) for i in bold)
        assert [float(x.strip("*")) for x in cells] == pytest.approx(means, abs=0.006)
        wins += len(bold)
    assert sum(int(x) for x in lines[-1].split("|")[2:-1]) == wins
    with (out / "swd.csv").open() as f:
        swd_rows = list(csv.DictReader(f))
    assert len(swd_rows) == len(methods) * (len(corruptions) + 1)
    text = doc.read_text()
    assert text.splitlines()[5].startswith("code-restore-bench --photos")
    for name in ("realism-fidelity.png", "quality-calls.png", "grid-noise.jpg", "grid-weather.jpg", "grid-masks.jpg"):
        assert (doc.parent / "bench" / name).stat().st_size > 1000 and f"(bench/{name})" in text
    assert "loses to the corrupted input on" in text
    assert "error:" not in capsys.readouterr().err and "**Failed**" not in text  # no method was dropped


def test_reuse_keeps_what_a_saved_run_measured_on_its_own_images(tiny_model, tmp_path, capsys):
    """--reuse re-measures only the methods named, on the saved run's corrupted pixels, keeps the others'
    numbers as they were, and with no methods redraws the saved report; another image set is an error."""
    photos = tmp_path / "photos"
    write_image(photos / "a.png", size=(40, 40), seed=1)
    write_image(photos / "b.png", size=(40, 44), seed=2)
    common = ["--photos", str(photos), "--size", "32", "--corruptions", "gaussian_noise,vertical_lines",
              "--model", str(tiny_model), "--device", "cpu", "--workers", "1"]
    first, second, third = tmp_path / "first", tmp_path / "second", tmp_path / "third"
    bench.main([*common, "--methods", "input,nl_means,one_step", "--out", str(first)])
    bench.main([*common, "--methods", "one_step,bm3d", "--reuse", str(first), "--out", str(second),
                "--doc", str(tmp_path / "doc.md")])

    def rows(folder):
        with (folder / "results.csv").open() as f:
            return {(r["photo"], r["corruption"], r["method"]): r for r in csv.DictReader(f)}

    a, b = rows(first), rows(second)
    assert {k[2] for k in b} == {"input", "nl_means", "one_step", "bm3d"}
    for k in a:  # kept as measured; one_step, re-measured on the same pixels, is deterministic (but for its time)
        assert {**a[k], "seconds": ""} == {**b[k], "seconds": ""}
        assert k[2] == "one_step" or a[k] == b[k]
    doc = (tmp_path / "doc.md").read_text()
    assert "kept corrupted input, NL-means (blind)" in doc and "--methods input,nl_means,one_step" in doc
    md = (second / "results.md").read_text()
    assert md.index("| corrupted input |") < md.index("| NL-means") < md.index("| one-step") < md.index("| BM3D")
    bench.main([*common, "--methods", "", "--reuse", str(second), "--out", str(third)])
    assert rows(third) == b
    assert (third / "results.md").read_text() == md
    with pytest.raises(SystemExit) as e:
        bench.main([*common[:3], "48", *common[4:], "--methods", "", "--reuse", str(second), "--out", str(third)])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: --reuse:") and "at 32 px" in err[-1] and "48 px" in err[-1]
    with pytest.raises(SystemExit):  # another corruption seed: other pixels
        bench.main([*common, "--seed", "1", "--methods", "", "--reuse", str(second), "--out", str(third)])
    assert "seed 0" in capsys.readouterr().err


def test_missing_manifest_is_one_line_naming_make_data(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        bench.main(["--photos", str(tmp_path / "data" / "photos" / "manifest.json"), "--out", str(tmp_path / "o")])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "make data" in err


def test_manifest_gives_only_the_heldout_split(tmp_path):
    for n in ("x", "y", "z"):
        write_image(tmp_path / "img" / f"{n}.png")
    entries = [{"name": f"{n}.png", "file": f"img/{n}.png", "split": s, "source": "deb:test", "licence": "CC0"}
               for n, s in (("x", "heldout"), ("y", "train"), ("z", "heldout"))]
    (tmp_path / "manifest.json").write_text(json.dumps({"version": 1, "photos": entries}))
    assert [p.name for p in list_photos(tmp_path / "manifest.json")] == ["x", "z"]
    entries[2]["file"] = "img/missing.png"
    (tmp_path / "manifest.json").write_text(json.dumps({"version": 1, "photos": entries}))
    with pytest.raises(InputError, match="missing"):
        list_photos(tmp_path / "manifest.json")


def test_masks_are_seeded_and_cover_their_fraction():
    clean = np.full((200, 300, 3), 128, np.uint8)
    a, b = corrupt(clean, "masked_pixels", 3, seed=5), corrupt(clean, "masked_pixels", 3, seed=5)
    assert np.array_equal(a, b) and not np.array_equal(a, corrupt(clean, "masked_pixels", 3, seed=6))
    assert (a != 128).any(-1).mean() == pytest.approx(0.2, abs=0.02)  # severity 3: 20 % of pixels
    lines = corrupt(clean, "vertical_lines", 3, seed=0)
    hit = (lines != 128).any(-1)
    assert (hit.all(0) | ~hit.any(0)).all()  # whole columns or nothing
    assert hit.all(0).mean() == pytest.approx(0.2, abs=0.08)
    assert len(CORRUPTIONS) == 21 and len(set(CORRUPTIONS)) == 21


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_every_corruption_is_the_same_for_a_seed(name):
    """Two calls with one seed give the same image (impulse_noise and glass_blur once drew fresh
    entropy on each call, so two benchmark runs compared different inputs)."""
    clean = np.asarray(write_image_array(48, 40))
    a, b = corrupt(clean, name, 3, seed=7), corrupt(clean, name, 3, seed=7)
    assert np.array_equal(a, b)
    if name not in ("brightness", "contrast", "saturate", "defocus_blur", "zoom_blur", "gaussian_blur", "pixelate",
                    "jpeg_compression", "motion_blur", "fog", "frost", "elastic_transform"):
        assert not np.array_equal(a, corrupt(clean, name, 3, seed=8)), "the seed reached the random draw"


def write_image_array(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(0)
    img = np.stack([yy * 255 / h, xx * 255 / w, (yy + xx) * 127 / (h + w)], -1) + rng.normal(0, 8, (h, w, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def test_immerkaer_finds_the_noise_std_of_a_smooth_image():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:128, 0:128] / 128
    smooth = np.stack([xx, yy, 0.5 + 0 * xx], -1) * 0.6 + 0.2
    assert immerkaer_sigma(smooth) < 0.002
    assert immerkaer_sigma(smooth + 0.1 * rng.standard_normal(smooth.shape)) == pytest.approx(0.1, rel=0.05)


def test_patch_swd_is_small_for_the_same_set_and_grows_with_noise():
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:64, 0:64] / 64
    clean = [np.clip(np.stack([xx * k, yy, np.sin(6 * xx * k) / 2 + 0.5], -1), 0, 1) for k in (0.5, 1.0, 1.5)]
    noisy = [np.clip(c + 0.1 * rng.standard_normal(c.shape), 0, 1) for c in clean]
    noisier = [np.clip(c + 0.2 * rng.standard_normal(c.shape), 0, 1) for c in clean]
    same, d1, d2 = swd(clean, clean), swd(noisy, clean), swd(noisier, clean)
    assert same < d1 < d2 and d1 > 5 * same, (same, d1, d2)


def test_classical_baselines_give_the_same_images_in_a_process_pool():
    from types import SimpleNamespace

    rng = np.random.default_rng(3)
    items = []
    for k in range(3):
        clean = np.clip(np.linspace(0, 1, 24 * 24 * 3).reshape(24, 24, 3) * (k + 1) / 3, 0, 1)
        noisy = np.clip(clean + 0.1 * rng.standard_normal(clean.shape), 0, 1)
        items.append(bench.Item(f"p{k}", "gaussian_noise", clean, noisy, immerkaer_sigma(noisy)))
    one, two = (bench.restore(bench.Method("nl_means"), items, {}, SimpleNamespace(workers=w, batch=8)) for w in (1, 2))
    for (a, calls_a, _), (b, calls_b, _), it in zip(one, two, items):
        assert np.array_equal(a, b) and calls_a == calls_b == 0
        assert psnr(a, it.clean) > psnr(it.corrupted, it.clean) + 3  # it denoised, in both


def test_sdedit_at_reaches_the_same_timestep_with_the_same_calls():
    from code_cli.presets import build_config

    cfg, _ = build_config("default", {})
    for depth, nfe, calls in ((6, 33, 33), (12, 12, 12), (3, 40, 30)):
        twin = bench.sdedit_at(cfg, depth, nfe)
        # t = 30 has 30 timesteps below it: one call per timestep is all SDEdit can spend there
        assert twin.method == "sdedit" and twin.mode == "fixed" and twin.nfe == twin.depth == calls
        # the same latent timestep, to within one step of the twin's grid
        assert abs(twin.depth / twin.steps - depth / cfg.steps) <= 1 / twin.steps


def test_auto_twin_matches_autos_timestep_and_calls_per_image(tiny_model):
    from types import SimpleNamespace

    methods = bench.parse_methods("auto", {"model": str(tiny_model), "device": "cpu", "dtype": "float32"})
    assert [m.key for m in methods] == ["code:auto", "sdedit:auto"] and methods[1].per_image_twin
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32] / 31
    smooth = np.stack([yy, xx, 0.5 * (yy + xx)], -1) * 0.6 + 0.2
    noisy = np.clip(smooth + rng.normal(0, 0.15, smooth.shape), 0, 1)
    items = [bench.Item("p", c, smooth, img, 0.0) for c, img in (("noise", noisy), ("none", smooth))]
    a = SimpleNamespace(batch=8, model=None, device="cpu", dtype="float32", workers=1)
    pipes = {str(tiny_model): bench.CODEPipeline.from_pretrained(str(tiny_model))}
    code, twin = (bench.restore(m, items, pipes, a) for m in methods)
    assert code[0][1] > 0 and twin[0][1] == code[0][1]  # the noisy image: edited, the same calls
    assert not np.array_equal(twin[0][0], code[0][0])  # fresh noise vs the input's own: not the same method
    assert code[1][1] == twin[1][1] == 0  # the clean image: left alone by both, exactly
    assert np.array_equal(twin[1][0], smooth)


def test_auto_checks_count_what_the_default_preset_must_beat():
    from code_cli.bench.report import auto_checks

    psnr = {  # corruption -> method -> PSNR of each of two photographs
        "gaussian_noise": {"input": 15, "nl_means": 20, "code:auto": 21, "sdedit:auto": 19, "code:default": 18},
        "fog": {"input": 12, "nl_means": 12, "code:auto": 11.7, "sdedit:auto": 11.7, "code:default": 11},
    }
    rows = [{"corruption": c, "method": m, "psnr": v + d} for c, ms in psnr.items() for m, v in ms.items()
            for d in (-0.5, 0.5)]
    methods = ["input", "nl_means", "code:default", "code:auto", "sdedit:auto"]
    swd = {("all", "code:auto"): 80.0, ("all", "code:default"): 90.0, ("gaussian_noise", "code:auto"): 50.0,
           ("gaussian_noise", "sdedit:auto"): 80.0, ("fog", "code:auto"): 300.0, ("fog", "sdedit:auto"): 290.0,
           ("gaussian_noise", "code:default"): 60.0, ("fog", "code:default"): 270.0}
    text = "\n".join(auto_checks(rows, swd, ["gaussian_noise", "fog"], methods))
    # higher PSNR but a worse mean patch SWD than default (175 vs 165): not better in both, although the
    # pooled SWD is lower; the realism score is the mean over corruptions
    assert "CODE default +1.85 dB, patch SWD +10 (pooled -10)" in text and "than 0 of 1" in text
    assert "on 1 of 2 corruptions: not on fog (-0.30 dB)" in text
    assert "at least +0.5 dB on 1 of 1): gaussian_noise +1.00 dB" in text
    assert "better on 1 of 2 corruptions" in text and "worse on 1 (fog)" in text
    assert auto_checks(rows, swd, ["fog"], ["input", "code:default"]) == []


def test_the_realism_score_averages_each_corruptions_set():
    from code_cli.bench.report import swd_mean

    swd = {("all", "m"): 1.0, ("blur", "m"): 100.0, ("noise", "m"): 300.0}
    assert swd_mean(swd, ["blur", "noise"], "m") == 200.0
    assert math.isnan(swd_mean(swd, ["blur", "fog"], "m"))  # a missing set is not silently skipped

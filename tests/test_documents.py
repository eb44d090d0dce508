"""Printed pages: the renderer, the document degradations, the OCR judge, the page readings and
auto's page rule (the `doc` preset), and the document benchmark end to end on a tiny run.

Pages are rendered from the fonts and licence texts the Makefile installs (Debian fonts-* and
tesseract-ocr); every test draws its pages here, nothing is read from a fixture file."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image
from scipy import ndimage

from code_cli.bench import ocr
from code_cli.bench.doc_degrade import DEGRADATIONS, degrade, disk, motion_kernel
from code_cli.method import auto
from code_cli.method import page as P
from code_cli.method.schedule import make_levels
from code_cli.pipeline import code_params
from code_cli.presets import build_config
from code_cli.prior.pages import (
    HELDOUT_FONTS,
    HELDOUT_TEXTS,
    TRAIN_FONTS,
    TRAIN_TEXTS,
    font_for,
    sample_page,
    training_pages,
    words,
)


def page(seed: int = 0, size=(320, 200), fonts=HELDOUT_FONTS, texts=HELDOUT_TEXTS):
    im, text, style = sample_page(size, np.random.default_rng(seed), fonts, texts, x_height=(10, 14))
    return np.asarray(im).copy(), text, style


def to_x(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, np.float32) / 127.5 - 1).permute(2, 0, 1)[None]


def bars(blur: float = 0.0, ink: float = 0.0, paper: float = 1.0, n: int = 96) -> np.ndarray:
    """Synthetic print: 2 px strokes of `ink` on `paper` (on [0, 1]), optionally Gaussian-blurred."""
    a = np.full((n, n), paper)
    for x in range(6, n - 6, 8):
        a[8:n - 8, x:x + 2] = ink
    for y in range(10, n - 6, 16):
        a[y:y + 2, 4:n - 4] = ink
    if blur:
        a = ndimage.gaussian_filter(a, blur)
    return np.repeat(a[..., None] * 255, 3, 2)


# -- the renderer ------------------------------------------------------------------------------


def test_train_and_heldout_fonts_and_texts_are_disjoint_and_installed():
    assert not {f.family for f in TRAIN_FONTS} & {f.family for f in HELDOUT_FONTS}
    assert len({f.family for f in HELDOUT_FONTS}) >= 3
    assert not set(TRAIN_TEXTS) & set(HELDOUT_TEXTS)
    for f in TRAIN_FONTS + HELDOUT_FONTS:
        assert f.path().is_file(), f"{f.family} {f.style}: {f.path()} missing ({f.package})"
    # the held-out texts share no 12-word run with the training texts
    train = {tuple(w[i:i + 12]) for name in TRAIN_TEXTS for w in [words(name)] for i in range(len(w) - 12)}
    held = words("CC0-1.0")
    assert not any(tuple(held[i:i + 12]) in train for i in range(len(held) - 12))


def test_font_size_follows_the_asked_x_height():
    for f in (TRAIN_FONTS[0], HELDOUT_FONTS[0], HELDOUT_FONTS[-1]):
        for xh in (8, 14, 20):
            top, bottom = font_for(f, xh).getbbox("x")[1::2]
            assert abs((bottom - top) - xh) <= 1.0


def test_pages_are_reproducible_and_the_reference_is_what_was_drawn():
    a, text_a, style = page(3)
    b, text_b, _ = page(3)
    assert np.array_equal(a, b) and text_a == text_b
    assert not np.array_equal(a, page(4)[0])
    assert a.shape == (200, 320, 3) and a.dtype == np.uint8
    assert style.font.family in {f.family for f in HELDOUT_FONTS}
    drawn = text_a.split()
    vocabulary = set(words("CC0-1.0")) | set(words("MPL-1.1"))
    assert len(drawn) > 10 and all(w in vocabulary or w.strip(".,;:") for w in drawn)
    # ink is darker than paper where text was drawn
    assert a.mean(2).min() < style.paper[0] - 100


def test_training_pages_draw_from_training_fonts_only():
    pages = training_pages(3, (96, 96), seed=1)
    assert len(pages) == 3 and all(p.size == (96, 96) for p in pages)
    assert not np.array_equal(np.asarray(pages[0]), np.asarray(pages[1]))


# -- degradations ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(DEGRADATIONS))
def test_degradations_are_seeded_and_change_the_page(name):
    a = page(1)[0]
    d1, d2, d3 = degrade(a, name, 5), degrade(a, name, 5), degrade(a, name, 6)
    assert d1.shape == a.shape and d1.dtype == np.uint8
    assert np.array_equal(d1, d2), "same seed, same image"
    assert not np.array_equal(d1, a)
    if name not in ("low_resolution",):  # the only one without randomness
        assert not np.array_equal(d1, d3)
    assert np.array_equal(a, page(1)[0]), "the input is not modified"


def test_blur_kernels_are_normalised_with_the_asked_extent():
    k = disk(2.5)
    assert k.sum() == pytest.approx(1.0)
    assert (k > 0).sum(0).max() in (5, 6)  # a disk 5 px across, its rim anti-aliased
    m = motion_kernel(8, 0)
    assert m.sum() == pytest.approx(1.0)
    rows = np.flatnonzero(m.sum(1) > 0.05)
    assert len(rows) <= 2  # a horizontal path stays within a row or two


def test_unknown_degradation_names_the_valid_ones():
    with pytest.raises(ValueError, match="defocus"):
        degrade(page(0)[0], "smudge", 0)


# -- OCR ---------------------------------------------------------------------------------------


def test_score_counts_edits_on_normalised_text():
    s = ocr.score("the  quick\nbrown fox", "the quick brown fox")
    assert s.cer == 0 and s.wer == 0
    s = ocr.score("the quick brawn fox", "the quick brown fox")
    assert s.cer == pytest.approx(1 / 19) and s.wer == pytest.approx(1 / 4)
    assert ocr.score("", "abc").cer == 1.0


def test_tesseract_reads_a_clean_page_and_not_a_ruined_one():
    a, text, _ = page(2, size=(420, 240))
    assert ocr.ocr_score(a, text).cer < 0.05
    ruined = degrade(degrade(a, "defocus", 0), "defocus", 1)
    ruined = np.asarray(Image.fromarray(ruined).resize((105, 60)).resize((420, 240)))
    assert ocr.ocr_score(ruined, text).cer > 0.3


# -- page readings ------------------------------------------------------------------------------


def test_readings_on_synthetic_print():
    sharp = to_x(bars())
    assert float(P.unevenness(sharp)) < 0.01
    assert float(P.ink_contrast(sharp)) == pytest.approx(1.0, abs=0.01)
    w = [float(P.edge_width(to_x(bars(b)))) for b in (0, 0.8, 1.5, 2.5)]
    assert w[0] < 2.0 and all(a < b for a, b in zip(w, w[1:])), w
    assert float(P.ink_contrast(to_x(bars(ink=0.7, paper=0.95)))) == pytest.approx(0.25, abs=0.01)


def test_flatten_undoes_a_smooth_shadow_and_keeps_a_flat_page():
    clean = bars(n=256)
    yy, xx = np.mgrid[0:256, 0:256] / 256
    light = 0.35 + 0.65 * (1 / (1 + np.exp(-(xx - 0.5) / 0.1)))  # a shadow's soft edge, as in doc_degrade
    shaded = to_x(clean * light[..., None])
    assert float(P.unevenness(shaded)) > 0.3
    restored = P.flatten(shaded)
    target = to_x(clean)
    assert float((restored - target).abs().mean()) < 0.08 < float((shaded - target).abs().mean())
    assert float((P.flatten(target) - target).abs().max()) < 0.02


def test_despeckle_removes_spikes_and_keeps_the_print():
    a, text, _ = page(1)
    clean = to_x(a)
    speckled = to_x(degrade(a, "salt_pepper", 0))
    assert float(P.impulse_share(clean)) < 0.001
    assert float(P.impulse_share(speckled)) > auto.IMPULSE_FLOOR
    repaired = P.despeckle(speckled)
    assert float(P.impulse_share(repaired)) < 0.05 * float(P.impulse_share(speckled))
    assert float((repaired - clean).abs().mean()) < 0.3 * float((speckled - clean).abs().mean())
    # the print survives a 3 x 3 median: Tesseract reads the despeckled page nearly as the clean one
    def u8(x):
        return ((x[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)

    before, after = ocr.ocr_score(u8(speckled), text).cer, ocr.ocr_score(u8(repaired), text).cer
    assert after < 0.03 and after < before / 3, (before, after)


# -- auto on pages (the doc preset) ----------------------------------------------------------


@pytest.fixture(scope="module")
def levels(abar_T):
    return make_levels(abar_T, 100)


KNOBS = dict(max_depth=20, finish="sample", strength=1.0)


def test_page_rule_leaves_clean_print_alone_and_acts_on_each_problem(levels):
    a = page(5)[0]
    clean, shadow, faded, noisy, blurred, speckled = (
        to_x(a), to_x(degrade(a, "shadow", 0)), to_x(degrade(a, "faded", 0)),
        to_x(degrade(a, "gaussian_noise", 0)), to_x(degrade(a, "defocus", 0)), to_x(degrade(a, "salt_pepper", 0)))
    c = auto.choose(torch.cat([clean, shadow, faded, noisy, blurred, speckled]), levels, page=True, **KNOBS)
    assert not c[0].edit and not c[0].flatten and c[0].nfe == 0
    assert c[1].flatten and c[1].edit and "uneven" in c[1].reason
    assert c[2].flatten and "faded" in c[2].reason
    assert c[3].edit and c[3].entry == "noise" and not c[3].flatten
    # blurred print: its point spread read and inverted, no network call (CODE edits of blur raised
    # the OCR error at every depth measured)
    assert c[4].deblur.startswith("disk:") and c[4].edit and c[4].depth == 0 and c[4].nfe == 0
    assert c[4].page["edge_width"] > c[0].page["edge_width"] + 1
    assert not any(ch.deblur for i, ch in enumerate(c) if i != 4)
    assert c[5].despeckle and c[5].edit and not c[5].flatten and "despeckled" in c[5].reason
    assert not any(ch.despeckle for ch in c[:5])
    bound = build_config("doc", {})[0].nfe
    assert all(ch.nfe <= bound for ch in c)


def test_blockiness_finds_the_jpeg_grid_at_any_phase_and_nothing_else():
    a = page(7)[0]
    jpeg = to_x(degrade(a, "jpeg", 3))
    assert float(P.blockiness(jpeg)[0]) > auto.BLOCKY_FLOOR
    # cropped after compression: the grid's phase moves, the reading does not
    assert float(P.blockiness(jpeg[..., 3:, 5:])[0]) > auto.BLOCKY_FLOOR
    others = torch.cat([to_x(a)] + [to_x(degrade(a, d, 3)) for d in DEGRADATIONS if d != "jpeg"])
    assert float(P.blockiness(others).max()) < auto.BLOCKY_FLOOR


def test_a_jpeg_page_gets_sdedit_from_t_29_on_any_grid(levels, gaussian, abar_T):
    a = page(7)[0]
    x = torch.cat([to_x(degrade(a, "jpeg", 3)), to_x(a)])
    c = auto.choose(x, levels, page=True, **KNOBS)
    k = auto.jpeg_level(levels)
    assert k == 3 and c[0].t == auto.JPEG_T  # the doc preset's grid: 100 steps
    assert c[0].edit and c[0].entry == "fresh" and c[0].depth == k and "JPEG" in c[0].reason
    assert c[0].nfe == k and not c[0].deghost
    # another grid: the level nearest the same timestep
    l50 = make_levels(abar_T, 50)
    assert abs(int(l50.t[auto.jpeg_level(l50)]) - auto.JPEG_T) <= 10
    assert not c[1].edit and c[1].page["blockiness"] < auto.BLOCKY_FLOOR
    cfg = build_config("doc", {})[0]
    out = auto.auto_restore(gaussian, x[:1].double(), levels, c[0], code_params(cfg), lambda v: v,
                            [torch.Generator().manual_seed(0)])
    assert out.nfe == gaussian.calls == k
    assert out.info["t_latent"] == c[0].t and math.isfinite(float(out.x.sum()))


def test_page_rule_without_page_is_auto_as_before(levels):
    x = to_x(degrade(page(5)[0], "defocus", 0))
    plain = auto.choose(x, levels, **KNOBS)[0]
    assert not plain.edit and plain.page is None


def test_a_flattened_page_without_an_edit_costs_no_calls(levels, gaussian):
    x = to_x(degrade(page(6)[0], "shadow", 0))
    c = auto.choose(x, levels, page=True, **KNOBS)[0]
    assert c.flatten and c.depth == 0 and c.nfe == 0
    cfg = build_config("doc", {})[0]
    out = auto.auto_restore(gaussian, x.double(), levels, c, code_params(cfg), lambda v: v,
                            [torch.Generator().manual_seed(0)])
    assert out.nfe == 0 and gaussian.calls == 0
    # the corrections alone: flattened (and the shadow's leftover mid-tones, if read as ghosts, to paper)
    assert torch.allclose(out.x, auto.page_corrections(x.double(), c))
    assert float((out.x - P.flatten(x.double())).abs().mean()) < 0.01
    assert math.isfinite(float(out.x.sum()))


def test_doc_preset_is_auto_on_pages_with_the_document_prior():
    cfg, name = build_config("doc", {})
    assert name == "doc" and cfg.mode == "auto" and cfg.page and cfg.model == "code-prior-doc"
    default, _ = build_config(None, {})
    assert not default.page
    assert default.hash() == build_config(None, {"page": False})[0].hash()



# -- training on pages and the document benchmark, end to end on tiny runs ---------------------


def test_training_on_pages_runs_without_flips_and_writes_the_probe_curve(tmp_path):
    import json
    from dataclasses import replace

    from code_cli.prior.train import TrainConfig, page_data, page_probe, train

    cfg = TrainConfig(channels=(32, 32), layers_per_block=1, crop=16, batch=2, warmup=1, scales=(1.0,),
                      geometric=False)
    data = page_data(2, 128, seed=0)
    assert data.names[0].startswith("pages: 2 x 128 px") and "Caladea" not in data.names
    ckpt = train(tmp_path / "run", minutes=5, max_steps=3, cfg=cfg, data=data, probe=page_probe(n=2, size=128))
    curve = [json.loads(line) for line in (tmp_path / "run" / "curve.jsonl").read_text().splitlines()]
    assert [p["step"] for p in curve] == [0, 3]
    assert all(math.isfinite(p["psnr@0.1"]) for p in curve)
    state = torch.load(ckpt, weights_only=True)
    assert state["config"]["geometric"] is False
    # code-prior-s's recipe keeps its phase record: the later field is left out at its old value
    train(tmp_path / "photo", 5, 1, replace(cfg, geometric=True), data=data)
    assert "geometric" not in torch.load(tmp_path / "photo" / "checkpoint.pt", weights_only=True)["config"]


def test_document_benchmark_end_to_end(tmp_path):
    import csv

    from code_cli.bench.__main__ import main

    out = tmp_path / "doc"
    main(["--domain", "doc", "--pages", "1", "--page-size", "256", "160", "--degradations", "shadow,gaussian_noise",
          "--methods", "input,median,background", "--out", str(out), "--doc", str(tmp_path / "report.md")])
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 3 * 3  # clean + 2 degradations, 3 methods
    by = {(r["degradation"], r["method"]): r for r in rows}
    assert float(by[("clean", "input")]["cer"]) < 0.1
    assert float(by[("clean", "input")]["psnr"]) == float("inf") or float(by[("clean", "input")]["psnr"]) > 60
    # flattening the paper fixes most of what the shadow did to the reading
    assert float(by[("shadow", "background")]["cer"]) < float(by[("shadow", "input")]["cer"])
    report = (tmp_path / "report.md").read_text()
    assert "| shadow |" in report and "bench/doc-grid.jpg" in report
    assert (tmp_path / "bench" / "doc-grid.jpg").is_file()


def test_benchmark_domain_errors_are_one_line(capsys):
    from code_cli.bench.__main__ import main

    with pytest.raises(SystemExit) as e:
        main(["--domain", "sound"])
    assert "not photo or doc" in str(e.value)
    with pytest.raises(SystemExit):
        main(["--domain=doc", "--degradations", "smudge"])
    assert "unknown smudge" in capsys.readouterr().err

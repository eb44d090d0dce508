"""Blind deblurring of print (method/deblur.py) and ghost removal (method/page.py): the point
spreads, the inverse against the known blur, the L0 energy's choice against the truth, the
enlargement fingerprint, and the page rule that uses them.

Pages are rendered here from the fonts the Makefile installs; blurs are drawn by the benchmark's
own degradations (bench/doc_degrade.py), which the method never sees."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from code_cli.bench.doc_degrade import degrade, disk, motion_kernel
from code_cli.method import auto
from code_cli.method import deblur as D
from code_cli.method import page as P
from code_cli.method.schedule import make_levels
from code_cli.prior.pages import TRAIN_FONTS, TRAIN_TEXTS, sample_page


def page(seed: int = 0, size=(320, 256)) -> np.ndarray:
    im, _, _ = sample_page(size, np.random.default_rng(seed), TRAIN_FONTS, TRAIN_TEXTS, x_height=(9, 11))
    return np.asarray(im).copy()


def to_x(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.asarray(a, np.float64) / 127.5 - 1).permute(2, 0, 1)


def blur(a: np.ndarray, k: np.ndarray) -> np.ndarray:
    """float blur per channel (no rounding), reflected at the edges."""
    return np.stack([ndimage.convolve(a[..., c].astype(np.float64), k, mode="reflect") for c in range(3)], -1)


# -- the point spreads ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["identity", "gauss:1.4", "disk:2.5", "shake:8@30", "shake:7.5@163.12"])
def test_point_spreads_are_normalised_centred_and_named(name):
    k = D.psf(name)
    assert k.shape[0] % 2 == 1 and k.shape[1] % 2 == 1
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-12) and float(k.min()) >= 0
    ys, xs = torch.meshgrid(torch.arange(k.shape[0]), torch.arange(k.shape[1]), indexing="ij")
    assert float((k * ys).sum()) == pytest.approx(k.shape[0] // 2, abs=1e-6)  # centred
    assert float((k * xs).sum()) == pytest.approx(k.shape[1] // 2, abs=1e-6)
    assert D.describe(name)
    with pytest.raises(ValueError, match="unknown point spread"):
        D.psf("box:3")


def test_shake_path_lies_along_its_angle_and_disk_has_its_radius():
    k = D.line_psf(8, 0)
    c = k.shape[0] // 2
    assert float(k[c].sum()) > 0.95  # horizontal: one row
    k = D.line_psf(8, 90)
    assert float(k[:, c].sum()) > 0.95  # vertical, rows down
    d = D.disk_psf(2.5)
    ys, xs = torch.meshgrid(*(torch.arange(d.shape[0]) - d.shape[0] // 2,) * 2, indexing="ij")
    r2 = float((d * (ys**2 + xs**2)).sum())
    assert r2 == pytest.approx(2.5**2 / 2, rel=0.1)  # a uniform disk's second moment: R^2 / 2
    # the benchmark's own disk (drawn independently) is the same point spread
    assert np.abs(disk(2.5) - d.numpy()).max() < 0.01


# -- the inverse ---------------------------------------------------------------------------------


def test_deconvolution_with_the_true_blur_restores_the_page():
    a = page(1)
    k = disk(2.5)
    blurred = to_x(blur(a, k))[None]
    restored = D.deconvolve(blurred, torch.from_numpy(k))
    clean = to_x(a)[None]
    before, after = float((blurred - clean).abs().mean()), float((restored - clean).abs().mean())
    assert after < 0.7 * before, (before, after)
    # the print's edges are sharp again (a regularised inverse: not exactly the clean page's 1.5 px)
    assert float(P.edge_width(restored.float())) < float(P.edge_width(blurred.float())) - 1
    assert restored.shape == blurred.shape and float(restored.abs().max()) <= 1
    # the identity inverts to (nearly) the page itself: the regularised filter only smooths a hair
    same = D.deconvolve(clean, D.psf(D.IDENTITY))
    assert float((same - clean).abs().mean()) < 0.01


# -- the L0 energy chooses the blur --------------------------------------------------------------


def test_true_blur_has_the_lowest_l0_energy_among_its_rivals():
    a = page(2)
    truth = torch.from_numpy(motion_kernel(8, 30))
    y = D.ink_window(D.luma(to_x(blur(a, truth.numpy()))))
    rivals = ["identity", "shake:8@30", "shake:8@45", "shake:8@15", "shake:5@30", "shake:11@30", "disk:2.5"]
    e = D.l0_energy(y, D.stack([D.psf(n) for n in rivals])).tolist()
    assert min(range(len(e)), key=e.__getitem__) == 1, dict(zip(rivals, e))
    # on the sharp page the identity wins
    y = D.ink_window(D.luma(to_x(a)))
    e = D.l0_energy(y, D.stack([D.psf(n) for n in rivals])).tolist()
    assert min(range(len(e)), key=e.__getitem__) == 0, dict(zip(rivals, e))


def test_batched_energy_equals_one_at_a_time():
    y = D.ink_window(D.luma(to_x(page(3))), 96)
    names = ["identity", "disk:2", "shake:6@45"]
    together = D.l0_energy(y, D.stack([D.psf(n) for n in names]))
    alone = torch.cat([D.l0_energy(y, D.psf(n)[None]) for n in names])
    assert torch.allclose(together, alone, rtol=1e-6)


@pytest.mark.slow
def test_read_blur_finds_defocus_and_shake_and_leaves_sharp_print():
    a = page(4)
    r = D.read_blur(to_x(degrade(a, "motion", 3)))  # draws length 6-9 px at an angle in [0, 180)
    g = np.random.default_rng(3)
    length, angle = g.uniform(6, 9), g.uniform(0, 180)
    kind, _, arg = r.name.partition(":")
    L, A = map(float, arg.split("@"))
    assert kind == "shake" and abs(L - length) <= 1.0 and min(abs(A - angle), 180 - abs(A - angle)) <= 6, r
    r = D.read_blur(to_x(blur(a, disk(2.5))))
    assert r.name.startswith("disk:") and abs(float(r.name.split(":")[1]) - 2.5) <= 0.5, r
    r = D.read_blur(to_x(a))
    assert not r.blurred and r.energy == r.identity_energy


def test_enlargement_is_read_from_the_pixel_grid():
    a = page(5, size=(384, 288))
    assert D.upscale_factor(D.luma(to_x(degrade(a, "low_resolution", 0)))) == 3
    from PIL import Image

    small = Image.fromarray(a).resize((384 // 5, 288 // 5), Image.Resampling.BOX)
    five = np.asarray(small.resize((384 // 5 * 5, 288 // 5 * 5), Image.Resampling.BILINEAR))
    assert D.upscale_factor(D.luma(to_x(five))) == 5
    for other in (a, degrade(a, "defocus", 0), degrade(a, "motion", 0)):
        assert D.upscale_factor(D.luma(to_x(other))) == 0


# -- ghosts --------------------------------------------------------------------------------------


def test_ghosts_are_found_on_bleed_through_and_removed_but_print_is_kept():
    a = page(6)
    clean = to_x(a)[None].float()
    bled = to_x(degrade(a, "bleed_through", 0))[None].float()
    assert float(P.ghost_share(clean)) < 0.1 * auto.GHOST_FLOOR
    assert float(P.ghost_share(bled)) > 5 * auto.GHOST_FLOOR
    fixed = P.remove_ghosts(bled)
    assert float(P.ghost_share(fixed)) < 0.1 * float(P.ghost_share(bled))
    # the print itself is untouched: every pixel darker than the ghosts keeps its value
    ink = P._luma(bled) < 0.4
    assert torch.equal(fixed.masked_select(ink.expand_as(fixed)), bled.masked_select(ink.expand_as(bled)))
    # where it was changed, the page is nearer the clean one (the paper's tone, less its grain)
    m = P.ghost_mask(bled).expand_as(bled)
    assert float((fixed - clean)[m].abs().mean()) < 0.5 * float((bled - clean)[m].abs().mean())
    assert torch.equal(P.remove_ghosts(clean), clean)


# -- the page rule -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def levels(abar_T):
    return make_levels(abar_T, 100)


KNOBS = dict(max_depth=20, finish="sample", strength=1.0, floor=auto.NOISE_FLOOR)


@pytest.mark.slow
def test_page_rule_deblurs_shaken_print_and_leaves_enlarged_and_sharp_print(levels):
    a = page(7, size=(384, 288))
    x = torch.stack([to_x(a), to_x(degrade(a, "motion", 1)), to_x(degrade(a, "low_resolution", 1)),
                     to_x(degrade(a, "bleed_through", 1))]).float()
    before = x.clone()
    c = auto.choose(x, levels, page=True, **KNOBS)
    assert torch.equal(x, before)  # the caller's batch is not written to
    assert not c[0].edit and not c[0].deblur and not c[0].deghost
    assert c[1].deblur.startswith("shake:") and c[1].edit and c[1].nfe == 0 and "deconvolved" in c[1].reason
    assert not c[2].deblur and c[2].page["enlarged"] == 3 and "enlarged 3x" in c[2].reason and not c[2].edit
    assert c[3].deghost and not c[3].deblur and "ghosts" in c[3].reason
    fixed = auto.page_corrections(x[1:2], c[1])
    clean = to_x(a)[None].float()
    assert float((fixed - clean).abs().mean()) < 0.7 * float((x[1:2] - clean).abs().mean())

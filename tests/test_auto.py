"""auto mode: the choice from the image, its cost, and the pipeline and config around it."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from code_cli import method as M
from code_cli.cli import app
from code_cli.errors import ConfigError
from code_cli.method.auto import (
    KAPPA,
    LINE_FLOOR,
    LINE_KAPPA,
    LINE_LANGEVIN_STEPS,
    NOISE_FLOOR,
    banded_noise_std,
    level_for_noise,
    line_noise_std,
    noise_std,
)
from code_cli.pipeline import CODEPipeline
from code_cli.presets import RestoreConfig, build_config
from tests.conftest import GaussianEps, gens


def smooth(n: int = 2, size: int = 48) -> torch.Tensor:
    """Images in [-1, 1] with locally linear content only: Immerkaer's mask reads them as noiseless."""
    yy, xx = torch.meshgrid(torch.linspace(-0.6, 0.6, size), torch.linspace(-0.5, 0.7, size), indexing="ij")
    base = torch.stack([xx, yy, 0.3 * xx - 0.2 * yy])
    return torch.stack([base * (1 - 0.2 * i) for i in range(n)])


def noisy(sigma01: float, n: int = 2, size: int = 48, seed: int = 0) -> torch.Tensor:
    """smooth() plus white Gaussian noise of std sigma01 on a [0, 1] scale (2 sigma01 on [-1, 1])."""
    z = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
    return smooth(n, size) + 2 * sigma01 * z


def auto_config(**kw) -> RestoreConfig:
    cfg, _ = build_config("auto", {"device": "cpu", **kw})
    return cfg


@pytest.fixture(scope="module")
def tiny_pipe(tiny_model) -> CODEPipeline:
    return CODEPipeline.from_pretrained(str(tiny_model))


@pytest.mark.parametrize("sigma01", [0.02, 0.05, 0.1, 0.2])
def test_noise_estimate_reads_the_noise_level(sigma01):
    est = noise_std(noisy(sigma01, n=3, size=64)) / 2
    assert torch.allclose(est, torch.full_like(est, sigma01), rtol=0.05), est


def test_chosen_timestep_tracks_the_noise_level(abar_T):
    lv = M.make_levels(abar_T, 100)
    sigmas = [0.04, 0.08, 0.12, 0.16, 0.24]
    choices = [M.choose(noisy(s, n=1, size=64), lv)[0] for s in sigmas]
    assert all(c.edit and c.entry == "noise" for c in choices)
    ts = [c.t for c in choices]
    assert ts == sorted(ts) and len(set(ts)) == len(ts), ts
    ratio = ((1 - lv.abar) / lv.abar).sqrt()
    for s, c in zip(sigmas, choices):
        # the shallowest level whose noise-to-signal covers KAPPA x the estimate (within the estimate's 5%)
        assert float(ratio[c.depth]) >= KAPPA["sample"] * 2 * c.sigma_hat
        assert float(ratio[c.depth - 1]) < KAPPA["sample"] * 2 * c.sigma_hat
        assert c.sigma_hat == pytest.approx(s, rel=0.05)


def test_level_for_noise_on_a_known_schedule(abar_T):
    """On the linear DDPM schedule sigma_t / sqrt(abar_t) = 0.2 first at t ~ 19 (abar = 1 / 1.04)."""
    lv = M.make_levels(abar_T, 1000)
    k = level_for_noise(lv, 0.2, kappa=1.0)
    target = int(torch.argmin((abar_T.double() - 1 / 1.04).abs()))
    assert abs(int(lv.t[k]) - target) <= 1


def test_the_mean_finish_enters_shallower(abar_T):
    lv = M.make_levels(abar_T, 100)
    x = noisy(0.15, n=1, size=64)
    sample, mean = M.choose(x, lv)[0], M.choose(x, lv, finish="mean")[0]
    assert mean.depth < sample.depth and mean.nfe == 1 and sample.nfe == sample.depth


def test_below_the_floor_nothing_is_edited(abar_T):
    lv = M.make_levels(abar_T, 100)
    c = M.choose(noisy(NOISE_FLOOR / 2, n=1), lv)[0]
    assert not c.edit and c.nfe == 0 and "left unedited" in c.reason


def test_choice_is_deterministic_and_per_image(abar_T):
    lv = M.make_levels(abar_T, 100)
    x = torch.cat([noisy(0.1, n=1), smooth(1), noisy(0.2, n=1, seed=3)])
    a, b = M.choose(x, lv), M.choose(x.clone(), lv)
    assert a == b
    alone = [M.choose(x[i:i + 1], lv)[0] for i in range(3)]
    assert alone == a
    assert [c.edit for c in a] == [True, False, True]


def test_given_knobs_are_kept(abar_T):
    lv = M.make_levels(abar_T, 100)
    x = smooth(1)
    c = M.choose(x, lv, depth=7, epsilon=0.3, langevin_steps=5)[0]
    assert (c.edit, c.depth, c.epsilon, c.langevin_steps, c.entry) == (True, 7, 0.3, 5, "encode")
    c = M.choose(noisy(0.1, n=1), lv, epsilon=0.3)[0]
    assert c.entry == "noise" and c.epsilon == 0.3


def test_auto_restore_spends_what_the_choice_says(gaussian, abar_T):
    lv = M.make_levels(abar_T, 50)
    x = noisy(0.1, n=2).double()
    params = M.CODEParams(corrections=(M.Correction(depth=1, steps=0, epsilon=0.1),))
    for entry in ("noise", "encode"):
        for finish in ("sample", "mean"):
            for K in (0, 3):
                c = replace(M.choose(x, lv)[0], entry=entry, finish=finish, langevin_steps=K)
                gaussian.calls = 0
                out = M.auto_restore(gaussian, x, lv, c, params, M.no_threshold, gens(0, 1))
                assert out.nfe == c.nfe == gaussian.calls, (entry, finish, K)


def test_noise_entry_with_the_mean_finish_is_the_wiener_filter(abar_T):
    """For Gaussian data the clean estimate from sqrt(abar) y is E[x0 | y] when the level's
    noise-to-signal equals the noise: its error is the Wiener error s^2 n^2 / (s^2 + n^2)."""
    g = GaussianEps(abar_T, mu=0.1, s=0.4)
    lv = M.make_levels(abar_T, 1000)  # a fine grid, so the chosen level matches the noise closely
    n = 0.3  # noise std on [-1, 1]
    gen = torch.Generator().manual_seed(0)
    clean = g.mu + g.s * torch.randn(4, 3, 64, 64, generator=gen, dtype=torch.float64)
    y = clean + n * torch.randn(clean.shape, generator=gen, dtype=torch.float64)
    c = M.choose(y, lv, finish="mean", kappa=1.0)[0]
    # white data defeats Immerkaer's estimate (it assumes smooth content), so give the true level
    c = replace(c, depth=level_for_noise(lv, n, kappa=1.0))
    params = M.CODEParams(corrections=(M.Correction(depth=1, steps=0, epsilon=0.1),))
    out = M.auto_restore(g, y, lv, c, params, M.no_threshold, gens(*range(4)))
    mse = float((out.x - clean).pow(2).mean())
    wiener = g.s**2 * n**2 / (g.s**2 + n**2)
    assert mse == pytest.approx(wiener, rel=0.03)
    assert mse < float((y - clean).pow(2).mean())


def test_the_config_bound_covers_every_choice(abar_T):
    for kw in ({}, {"depth": 9}, {"langevin_steps": 4}, {"depth": 3, "langevin_steps": 0}, {"finish": "mean"},
               {"decode_steps": 0}, {"decode_steps": 5}):
        cfg = auto_config(**kw)
        lv = M.make_levels(abar_T, cfg.steps)
        x = torch.cat([noisy(s, n=1, size=96, seed=i) for i, s in enumerate((0.0, 0.05, 0.2, 0.5))]
                      + [lined(0.3), lined(0.2) + noisy(0.5, n=1, size=96)])
        chosen = M.choose(x, lv, depth=cfg.depth, epsilon=cfg.epsilon, langevin_steps=cfg.langevin_steps,
                          max_depth=cfg.auto_max_depth, finish=cfg.finish, strength=4.0, decode_steps=cfg.decode_steps)
        assert max(c.nfe for c in chosen) <= cfg.nfe, (kw, [c.nfe for c in chosen], cfg.nfe)


def test_flags_override_auto_field_by_field():
    cfg = auto_config()
    assert (cfg.mode, cfg.depth, cfg.epsilon, cfg.langevin_steps) == ("auto", None, None, None)
    cfg = auto_config(depth=4, epsilon=0.3)
    assert (cfg.mode, cfg.depth, cfg.epsilon, cfg.langevin_steps) == ("auto", 4, 0.3, None)
    assert auto_config().hash() == auto_config().hash()
    assert auto_config().hash() != auto_config(depth=4).hash()
    assert build_config()[1] == "auto"


def test_an_unedited_image_comes_back_bit_exact_in_a_mixed_batch(tiny_pipe):
    cfg = auto_config(steps=20)
    x = torch.cat([smooth(1, 32), noisy(0.15, n=1, size=32)]).float()
    r = tiny_pipe(x, seeds=[1, 2], config=cfg)
    assert torch.equal(r[0].image, x[0])
    assert r[0].nfe == 0 and r[0].info["auto"]["edit"] is False
    assert r[1].info["auto"]["edit"] is True and r[1].nfe == r[1].info["auto"]["nfe"] > 0
    assert not torch.equal(r[1].image, x[1])
    # the edited image does not depend on its batch companion, and a rerun is identical
    alone = tiny_pipe(x[1:], seeds=[2], config=cfg)[0]
    assert torch.equal(alone.image, r[1].image) and alone.info == r[1].info
    assert [c.as_dict() for c in tiny_pipe.choose(x, cfg)] == [r[0].info["auto"], r[1].info["auto"]]


def test_given_depth_edits_even_a_clean_image(tiny_pipe):
    cfg = auto_config(steps=20, depth=2, langevin_steps=1)
    r = tiny_pipe(smooth(1, 32), seeds=[0], config=cfg)[0]
    assert r.info["auto"]["entry"] == "encode" and r.nfe == 2 + 2 + 2


def test_cli_writes_an_unedited_8bit_png_bit_exact(tmp_path, tiny_model):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:40, 0:56]
    arr = np.stack([xx * 4, yy * 5, 100 + xx + yy], -1).clip(0, 255).astype(np.uint8)
    arr[rng.random(arr.shape[:2]) < 0.002] += 1  # a few odd values: the round trip is exact, not just smooth
    Image.fromarray(arr, "RGB").save(tmp_path / "in.png")
    r = CliRunner().invoke(app, [str(tmp_path / "in.png"), str(tmp_path / "out"), "--model", str(tiny_model)])
    assert r.exit_code == 0, r.output
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / "in.png")), arr)


def test_auto_preset_is_the_default_and_costs_less_than_default_at_most():
    cfg, name = build_config()
    assert name == "auto" and cfg.mode == "auto"
    assert cfg.nfe <= build_config("default")[0].nfe
    assert math.isfinite(cfg.nfe)


def test_banded_estimate_reads_white_noise_as_the_whole_image_does():
    x = noisy(0.1, n=2, size=64)
    whole, banded = noise_std(x), banded_noise_std(x)
    assert torch.allclose(banded, whole, rtol=0.1), (banded, whole)


def test_banded_estimate_reads_signal_dependent_noise_more_fully_and_sets_the_level(abar_T):
    """Noise whose std grows with brightness, on a mostly bright image with a dark part: the dark
    part's weak noise pulls the whole-image mean down; the median over brightness bands reads the
    typical level, the level follows the larger reading and the edit decision the whole-image one."""
    g = torch.Generator().manual_seed(0)
    ramp = 1 - 2 * torch.linspace(0, 1, 64) ** 4  # bright for most columns, dark at one edge
    clean = ramp.view(1, 1, 1, 64).expand(1, 3, 64, 64)
    std = 0.02 + 0.3 * (clean + 1) / 2  # on [-1, 1]
    x = clean + std * torch.randn(clean.shape, generator=g)
    whole, banded = float(noise_std(x)[0]), float(banded_noise_std(x)[0])
    assert banded > 1.1 * whole
    c = M.choose(x, M.make_levels(abar_T, 100))[0]
    assert c.sigma_hat == pytest.approx(whole / 2, abs=1e-4)
    assert c.sigma_level == pytest.approx(banded / 2, abs=1e-4)
    assert c.depth == level_for_noise(M.make_levels(abar_T, 100), banded, KAPPA["sample"])


def lined(sigma01: float, size: int = 96, seed: int = 0, rows: bool = False) -> torch.Tensor:
    """smooth() plus an offset per column (per row with rows=True) and channel, N(0, sigma01) on [0, 1]:
    noise constant along one direction, as from stuck sensor columns or scan lines."""
    z = torch.randn(1, 3, 1, size, generator=torch.Generator().manual_seed(seed))
    x = smooth(1, size) + 2 * sigma01 * z
    return x.transpose(-1, -2).contiguous() if rows else x


@pytest.mark.parametrize("rows", [False, True])
@pytest.mark.parametrize("sigma01", [0.05, 0.1, 0.2])
def test_line_estimate_reads_column_and_row_noise(sigma01, rows):
    """Offsets o_j ~ N(0, s) per column: the column profile's second difference has std s sqrt(6), which
    Immerkaer's scaling reads as s. The 2-d estimate cancels them (a constant along the columns)."""
    x = lined(sigma01, rows=rows)
    assert float(line_noise_std(x)[0]) / 2 == pytest.approx(sigma01, rel=0.15)
    assert float(noise_std(x)[0]) / 2 < 0.1 * sigma01


@pytest.mark.parametrize("sigma01", [0.05, 0.1, 0.2, 0.3])
def test_line_estimate_reads_white_noise_and_smooth_content_as_none(sigma01):
    """White noise averages away down a column to s / sqrt(H); that share is taken out. What is left is
    the estimate's own scatter (about 7% of s / sqrt(H) over 62 columns x 3 channels), far below the floor."""
    assert float(line_noise_std(smooth(1, 64))[0]) < 1e-6
    assert float(line_noise_std(noisy(sigma01, n=3, size=64)).max()) / 2 < 0.5 * LINE_FLOOR


def test_line_noise_is_edited_at_a_level_that_tracks_it(abar_T):
    lv = M.make_levels(abar_T, 100)
    choices = [M.choose(lined(s), lv)[0] for s in (0.06, 0.1, 0.2)]
    for c in choices:
        assert c.edit and c.entry == "noise" and c.langevin_steps == LINE_LANGEVIN_STEPS
        assert c.sigma_hat < NOISE_FLOOR  # the white-noise estimate alone would have left it
        assert c.depth == level_for_noise(lv, 2 * c.sigma_lines, LINE_KAPPA)
        assert "line noise" in c.reason
    depths = [c.depth for c in choices]
    assert depths == sorted(depths) and len(set(depths)) == 3, depths
    weak = M.choose(lined(0.5 * LINE_FLOOR), lv)[0]
    assert not weak.edit
    # a flag still wins
    assert M.choose(lined(0.1), lv, langevin_steps=0)[0].langevin_steps == 0


def test_line_noise_and_white_noise_take_the_deeper_level(abar_T):
    lv = M.make_levels(abar_T, 100)
    g = torch.Generator().manual_seed(1)
    white = 2 * 0.3 * torch.randn(1, 3, 96, 96, generator=g)
    c = M.choose(lined(0.06) + white, lv)[0]
    assert c.sigma_lines >= LINE_FLOOR
    assert c.depth == max(level_for_noise(lv, 2 * c.sigma_level, KAPPA["sample"]),
                          level_for_noise(lv, 2 * c.sigma_lines, LINE_KAPPA))


def test_strength_scales_the_floor_and_the_level(abar_T):
    lv = M.make_levels(abar_T, 100)
    x = noisy(0.1, n=1, size=64)
    assert M.choose(x, lv) == M.choose(x, lv, strength=1.0)
    depths = [M.choose(x, lv, strength=s)[0].depth for s in (0.5, 1.0, 2.0)]
    assert depths[0] < depths[1] < depths[2], depths
    c = M.choose(x, lv, strength=2.0)[0]
    assert c.depth == level_for_noise(lv, 2 * c.sigma_level, 2.0 * KAPPA["sample"]) and "strength 2" in c.reason
    weak = noisy(0.6 * NOISE_FLOOR, n=1, size=64)  # below the floor, above half of it
    assert not M.choose(weak, lv)[0].edit and M.choose(weak, lv, strength=2.0)[0].edit
    assert not M.choose(noisy(0.05, n=1, size=64), lv, strength=0.5)[0].edit  # 0.05 < 0.03 / 0.5
    assert not M.choose(lined(0.07), lv, strength=0.5)[0].edit and M.choose(lined(0.07), lv)[0].edit


def test_strength_is_checked_and_belongs_to_auto_mode():
    assert auto_config(strength=2.0).strength == 2.0
    for bad in (0.0, -1.0, 5.0):
        with pytest.raises(ConfigError, match="--strength: must be in"):
            auto_config(strength=bad)
    with pytest.raises(ConfigError, match="--strength: works in auto mode only"):
        build_config("default", {"strength": 1.5})
    # a run made before the knobs existed (strength, page) keeps its hash at their neutral values;
    # another value is another config
    import hashlib
    import json
    from dataclasses import asdict

    cfg = auto_config()
    before = {k: v for k, v in asdict(cfg).items() if k not in ("batch_size", "samples", "strength", "page")}
    assert cfg.hash() == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()[:16]
    assert cfg.hash() != auto_config(strength=1.5).hash()


def test_cli_strength_edits_faint_noise_auto_leaves(tmp_path, tiny_model):
    smooth = np.tile(np.linspace(40, 200, 48, dtype=np.uint8), (48, 1))
    faint = np.clip(smooth[..., None] + np.random.default_rng(0).normal(0, 5, (48, 48, 3)), 0, 255).astype(np.uint8)
    (tmp_path / "in").mkdir()
    Image.fromarray(faint).save(tmp_path / "in" / "faint.png")
    runner = CliRunner()
    base = [str(tmp_path / "in"), str(tmp_path / "out"), "--model", str(tiny_model), "--dry-run"]
    r1 = runner.invoke(app, base)
    r2 = runner.invoke(app, [*base, "--strength", "2"])
    assert r1.exit_code == 0 and r2.exit_code == 0, (r1.output, r2.output)
    assert "): left unedited (0 calls)" in r1.output and "1 left unedited" in r1.output
    assert "): left unedited" not in r2.output and "(strength 2)" in r2.output and "0 left unedited" in r2.output


def test_residual_is_immerkaers_mask():
    # the two second differences are the 3 x 3 mask N = [1, -2, 1]^T [1, -2, 1], exactly
    from code_cli.method.auto import _MASK, _abs_residual

    x = torch.rand(2, 3, 19, 23, generator=torch.Generator().manual_seed(0)) * 2 - 1
    ref = torch.nn.functional.conv2d(x.double().reshape(6, 1, 19, 23), _MASK.double().view(1, 1, 3, 3)).abs()
    torch.testing.assert_close(_abs_residual(x), ref.reshape(2, 3, 17, 21), rtol=0, atol=1e-12)

"""The numerics of CODE and SDEdit against exact answers for Gaussian data."""

from __future__ import annotations

import math

import pytest
import torch

from code_cli import method as M
from code_cli.method.ddim import ddim_move
from code_cli.method.threshold import _threshold_large
from tests.conftest import GaussianEps, gens


def gaussian_batch(g: GaussianEps, n: int = 4, size: int = 16, seed: int = 0) -> torch.Tensor:
    x = g.mu + g.s * torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))
    return x.double()


def test_levels_span_the_schedule(abar_T):
    lv = M.make_levels(abar_T, 100)
    assert lv.steps == 100
    assert int(lv.t[0]) == 0 and int(lv.t[-1]) == 999
    assert float(lv.abar[0]) == 1.0
    assert torch.all(lv.abar[1:] < lv.abar[:-1])


def test_ddim_move_is_invertible_with_the_same_eps():
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    eps = torch.randn_like(x)
    y = ddim_move(x, eps, 0.9, 0.5, M.no_threshold)
    back = ddim_move(y, eps, 0.5, 0.9, M.no_threshold)
    torch.testing.assert_close(back, x)


def inversion_error(gaussian, abar_T, steps: int) -> float:
    lv = M.make_levels(abar_T, steps)
    x = gaussian_batch(gaussian)
    depth = steps // 2  # half way: t = 499
    z, _ = M.encode(gaussian, x, lv, depth, M.no_threshold)
    y, _ = M.decode(gaussian, z, lv, depth, M.no_threshold)
    return float((y - x).pow(2).mean().sqrt())


def test_inversion_error_shrinks_with_steps_and_is_small_at_200(gaussian, abar_T):
    """DDIM inversion is explicit Euler both ways: first order, so doubling N halves the error."""
    errs = [inversion_error(gaussian, abar_T, n) for n in (20, 50, 100, 200)]
    assert errs[0] > errs[1] > errs[2] > errs[3]
    assert 1.6 < errs[2] / errs[3] < 2.4, errs
    # RMS round-trip error under 2% of the [-1, 1] range (the data's std is 0.3)
    assert errs[3] < 0.02, errs


def test_encoded_latent_has_the_exact_marginal(gaussian, abar_T):
    """The probability-flow ODE maps data to x_t ~ N(sqrt(a) mu, a s^2 + 1 - a)."""
    lv = M.make_levels(abar_T, 200)
    x = gaussian_batch(gaussian, n=8, size=32)
    depth = 120
    z, _ = M.encode(gaussian, x, lv, depth, M.no_threshold)
    a = float(lv.abar[depth])
    assert float(z.mean()) == pytest.approx(math.sqrt(a) * gaussian.mu, abs=0.01)
    assert float(z.std()) == pytest.approx(math.sqrt(gaussian.var(a)), rel=0.03)


def test_langevin_raises_the_exact_log_density(gaussian, abar_T):
    lv = M.make_levels(abar_T, 100)
    depth = 30
    a = float(lv.abar[depth])
    # Latents the corruption pushed off the marginal: too bright and too spread.
    x = math.sqrt(a) * gaussian.mu + 0.5 + 1.6 * torch.randn(6, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    x = x.double()
    c = M.Correction(depth=depth, steps=40, epsilon=0.1)
    y, nfe = M.correct(gaussian, x, lv, c, M.no_threshold, gens(*range(6)))
    before, after = gaussian.log_density(x, a), gaussian.log_density(y, a)
    assert nfe == 41
    assert float((after - before).mean()) > 0
    assert bool((after > before).all())


def test_langevin_keeps_a_sample_of_the_marginal_on_it(gaussian, abar_T):
    """Stationarity: started on the exact marginal, annealed Langevin stays close to it."""
    lv = M.make_levels(abar_T, 100)
    depth = 30
    a = float(lv.abar[depth])
    noise = torch.randn(8, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    x = math.sqrt(a) * gaussian.mu + math.sqrt(gaussian.var(a)) * noise
    y, _ = M.correct(gaussian, x.double(), lv, M.Correction(depth, 40, 0.05), M.no_threshold, gens(*range(8)))
    assert float(y.std()) == pytest.approx(math.sqrt(gaussian.var(a)), rel=0.1)


def test_cbc_bounds_every_latent_the_network_sees(gaussian, abar_T):
    lv = M.make_levels(abar_T, 50)
    x = gaussian_batch(gaussian)
    x[:, :, :4] = 6.0  # a corruption far out of range
    eta = 1.7
    M.encode(gaussian, x, lv, 20, M.no_threshold, cbc_eta=eta)
    assert len(gaussian.inputs) == 20
    for k, (xin, t) in enumerate(gaussian.inputs):
        bound = M.cbc_bound(float(lv.abar[k]), eta)
        assert float(xin.abs().max()) <= bound + 1e-12
        assert int(t[0]) == int(lv.t[k])
    # the bound is sqrt(abar) + eta sigma
    assert M.cbc_bound(0.64, 2.0) == pytest.approx(0.8 + 2.0 * 0.6)


@pytest.mark.parametrize("depth,K,extra", [(10, 20, ()), (25, 0, ()), (30, 5, ((10, 0.1), (4, 0.1)))])
def test_network_call_count_is_exact(gaussian, abar_T, depth, K, extra):
    lv = M.make_levels(abar_T, 50)
    corr = (M.Correction(depth, K, 0.1),) + tuple(M.Correction(d, K, e) for d, e in extra)
    params = M.CODEParams(corrections=corr)
    out = M.code_restore(gaussian, gaussian_batch(gaussian, n=2), lv, params, M.no_threshold, gens(0, 1))
    assert out.nfe == gaussian.calls == params.nfe
    if not extra:
        assert out.nfe == depth + (K + 1) + depth


def test_same_seed_same_result_alone_or_in_a_batch(gaussian, abar_T):
    lv = M.make_levels(abar_T, 40)
    params = M.CODEParams(corrections=(M.Correction(8, 10, 0.2),))
    thr = M.make_threshold(0.98, 1.3)
    x = gaussian_batch(gaussian, n=3).float()
    batch = M.code_restore(gaussian, x, lv, params, thr, gens(11, 22, 33)).x
    alone = M.code_restore(gaussian, x[1:2], lv, params, thr, gens(22)).x
    torch.testing.assert_close(batch[1:2], alone, rtol=0, atol=1e-6)
    other = M.code_restore(gaussian, x[1:2], lv, params, thr, gens(23)).x
    assert float((other - alone).abs().max()) > 1e-3


def sdedit_moments(gaussian, abar_T, steps: int) -> tuple[float, float]:
    lv = M.make_levels(abar_T, steps)
    x = torch.full((6, 3, 24, 24), -0.9, dtype=torch.float64)  # far from the prior's mean
    out = M.sdedit(gaussian, x, lv, M.SDEditParams(depth=steps), M.no_threshold, gens(*range(6)))
    assert out.nfe == steps
    return float(out.x.mean()), float(out.x.std())


def test_sdedit_from_full_depth_samples_the_prior(gaussian, abar_T):
    """From t = T - 1 the input is forgotten: the output has the prior's mean and variance.
    The ancestral sampler's variance deficit is first order in the step, so it closes as N grows."""
    stds = []
    for steps in (100, 1000):
        mean, std = sdedit_moments(gaussian, abar_T, steps)
        assert mean == pytest.approx(gaussian.mu, abs=0.01)
        stds.append(std)
    assert stds[0] < stds[1]
    assert stds[1] == pytest.approx(gaussian.s, rel=0.03)
    assert stds[0] == pytest.approx(gaussian.s, rel=0.12)


def test_threshold_bounds_and_identity():
    thr = M.make_threshold(0.98, 1.3)
    inside = torch.rand(2, 3, 8, 8) * 1.8 - 0.9
    torch.testing.assert_close(thr(inside), inside)
    wild = torch.randn(2, 3, 8, 8) * 5
    y = thr(wild)
    assert float(y.abs().max()) <= 1.0 + 1e-6
    # above the cap s = max_value: everything is divided by 1.3 after clamping
    torch.testing.assert_close(y, wild.clamp(-1.3, 1.3) / 1.3)


def test_threshold_of_huge_images_matches_diffusers():
    x = torch.randn(1, 3, 64, 64) * 2
    torch.testing.assert_close(_threshold_large(x, 0.9, 1.5), M.make_threshold(0.9, 1.5)(x), atol=1e-6, rtol=0)


def test_langevin_schedule_anneals_in_stages():
    from code_cli.method.code import langevin_schedule

    sizes = langevin_schedule(M.Correction(depth=5, steps=10, epsilon=1.0, stages=4, factor=0.5))
    assert sizes == [1.0] * 3 + [0.5] * 3 + [0.25] * 2 + [0.125] * 2


def test_methods_are_picked_by_name_and_state_their_cost_once():
    from code_cli import cost
    from code_cli.method import get_method

    knobs = dict(depth=5, langevin_steps=7, epsilon=0.1, extra_corrections=((2, 0.05),))
    code, params = get_method("code")
    assert params.from_knobs(**knobs).nfe == cost.code_calls(5, [7, 7]) == 2 * 5 + 8 + 8
    sd, params = get_method("sdedit")
    assert params.from_knobs(**knobs).nfe == cost.sdedit_calls(5) == 5
    with pytest.raises(ValueError, match="unknown method 'ddpm'; valid methods: code, sdedit"):
        get_method("ddpm")

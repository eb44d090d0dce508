"""The few-step decode (DPM-Solver++(2M), method/solver.py) against the exact probability-flow ODE
of Gaussian data, its grid, and its place in auto mode."""

from __future__ import annotations

import math

import pytest
import torch

from code_cli import method as M
from code_cli.cost import auto_calls
from code_cli.method.ddim import ddim_move
from code_cli.method.schedule import Levels, decode_levels
from code_cli.method.solver import dpm_decode, dpm_step
from tests.conftest import GaussianEps


def levels_at(abar_T: torch.Tensor, ts: list[int]) -> Levels:
    """Levels over the given timesteps (decreasing) and the clean level."""
    t = torch.tensor([0, *reversed(ts)])
    abar = abar_T.double()[t].clone()
    abar[0] = 1.0
    return Levels(t=t, abar=abar, schedule=abar_T.double())


def flow(g: GaussianEps, x: torch.Tensor, a_from: float, a_to: float) -> torch.Tensor:
    """The exact ODE map for Gaussian data: the standardised x is carried unchanged."""
    return math.sqrt(a_to) * g.mu + math.sqrt(g.var(a_to) / g.var(a_from)) * (x - math.sqrt(a_from) * g.mu)


def clean_mean(g: GaussianEps, x: torch.Tensor, a: float) -> torch.Tensor:
    """E[x0 | x_t] for Gaussian data."""
    return g.mu + math.sqrt(a) * g.s**2 * (x - math.sqrt(a) * g.mu) / g.var(a)


def start(g: GaussianEps, a: float) -> torch.Tensor:
    z = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0)).double()
    return math.sqrt(a) * g.mu + math.sqrt(g.var(a)) * z


def solve_error(g: GaussianEps, abar_T: torch.Tensor, n: int, second_order: bool) -> float:
    """Max error of n steps from t = 299 to t = 20 (uniform in log-SNR), then the clean estimate at
    t = 20, against the exact flow to t = 20 and the exact clean estimate there."""
    lam = 0.5 * torch.log(abar_T.double() / (1 - abar_T.double()))
    targets = torch.linspace(float(lam[299]), float(lam[20]), n + 1)
    ts = [int((lam - v).abs().argmin()) for v in targets]
    lv = levels_at(abar_T, ts)
    a0, a1 = float(lv.abar[-1]), float(lv.abar[1])
    x = start(g, a0)
    exact = clean_mean(g, flow(g, x, a0, a1), a1)
    if second_order:
        y, _ = dpm_decode(g, x, lv, lv.steps, M.no_threshold)
    else:
        y, _ = M.decode(g, x, lv, lv.steps, M.no_threshold)
    return float((y - exact).abs().max())


def test_first_step_is_exactly_ddims_move(gaussian, abar_T):
    a_from, a_to = float(abar_T[300]), float(abar_T[100])
    x = start(gaussian, a_from)
    eps = gaussian(x, torch.full((4,), 300))
    x0 = (x - math.sqrt(1 - a_from) * eps) / math.sqrt(a_from)
    y, _ = dpm_step(x, x0, a_from, a_to, None)
    torch.testing.assert_close(y, ddim_move(x, eps, a_from, a_to, M.no_threshold))


def test_second_order_convergence_on_gaussian_data(gaussian, abar_T):
    steps = (4, 8, 16, 64)
    dpm = [solve_error(gaussian, abar_T, n, True) for n in steps]
    ddim = [solve_error(gaussian, abar_T, n, False) for n in steps]
    # DDIM is first order: twice the steps, half the error
    assert all(1.8 < a / b < 2.2 for a, b in zip(ddim[:3], ddim[1:3]))
    # the 2M solver: far below DDIM at every count, and second order (16x the steps: 4 ** 2 = 16 for
    # second order, 4 for first; integer timesteps make the local ratios uneven)
    assert all(d < 0.1 * e for d, e in zip(dpm, ddim))
    assert dpm[0] / dpm[3] > 100 and dpm[2] / dpm[3] > 6
    assert dpm[3] < 1e-4


def test_decode_levels_spacing(abar_T):
    lv = M.make_levels(abar_T, 100)
    grid = decode_levels(lv, 6, 3)  # entry t = 59
    assert grid.t.tolist() == [0, 7, 26, 59]  # 59 (k/3)^2 for k = 1, 2, 3, rounded
    assert grid.abar[0] == 1.0 and grid.abar[-1] == lv.abar[6]
    for depth in range(1, 21):
        for n in (1, 2, 3, 5):
            g = decode_levels(lv, depth, n)
            assert g.steps == min(n, depth) == auto_calls(True, depth, 0, False, True, n)
            assert g.t[-1] == lv.t[depth] and bool((g.t[2:] > g.t[1:-1]).all())  # distinct, rising


def test_decode_levels_needs_the_schedule(abar_T):
    lv = M.make_levels(abar_T, 10)
    with pytest.raises(ValueError, match="schedule"):
        decode_levels(Levels(t=lv.t, abar=lv.abar), 3, 2)


def test_auto_decodes_in_decode_steps_calls(gaussian, abar_T):
    lv = M.make_levels(abar_T, 100)
    x = (torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 0.2 + 0.3
         + 0.2 * torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(2))).double()
    old, new = M.choose(x, lv)[0], M.choose(x, lv, decode_steps=3)[0]
    assert old.edit and old.depth > 3 and old.decode_steps == 0 and new.decode_steps == 3
    assert new.nfe == 3 < old.nfe == old.depth
    assert old.key() != new.key()
    params = M.CODEParams.from_knobs(depth=new.depth, langevin_steps=0, epsilon=0.1)
    out = M.auto_restore(gaussian, x[:1], lv, new, params, M.no_threshold, [torch.Generator()])
    assert out.nfe == gaussian.calls == new.nfe == 3
    assert [int(t[0]) for _, t in gaussian.inputs] == decode_levels(lv, new.depth, 3).t[1:].flip(0).tolist()
    # an ODE inversion (a depth given) keeps DDIM on its own grid: the decode must mirror the encode
    given = M.choose(x, lv, depth=5, decode_steps=3)[0]
    assert given.entry == "encode" and given.decode_steps == 0

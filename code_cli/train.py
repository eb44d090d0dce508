"""Train the embedded diffusion prior on a handful of real photographs.

    python -m code_cli.train --out runs/prior --max-steps 2166 --minutes 90
    python -m code_cli.train --out runs/prior --max-steps 2952 --minutes 90 --low-t-fraction 0.5
    python -m code_cli.train --out runs/prior --max-steps 3552 --minutes 130 --low-t-fraction 0.5 \
        --lr-end 0.05 --ema-max 0.995
    python -m code_cli.train --out runs/prior --export code_cli/weights/code-prior-s

The model follows the conventions of the google/ddpm-* checkpoints (epsilon
prediction, linear betas 1e-4..0.02, T = 1000), so every code path that serves
those serves this one. No attention blocks: it is fully convolutional and runs
on any image size. Training is seeded, prints progress, checkpoints every few
minutes and resumes from the last checkpoint when started again on --out.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

from code_cli.prior_data import TRAIN_PHOTOS, cap_long_side, check_sources, to_unit_array


@dataclass(frozen=True)
class TrainConfig:
    channels: tuple[int, ...] = (32, 64, 128, 128)
    layers_per_block: int = 2
    crop: int = 48
    batch: int = 32
    lr: float = 2e-4
    warmup: int = 200
    # Cosine decay of the learning rate to lr * lr_end over the current phase's
    # budget (steps or minutes, whichever runs out first; a phase starts when a
    # run begins or resumes with a changed config). 1 keeps it constant.
    lr_end: float = 1.0
    ema_max: float = 0.999
    cap: int = 1024
    scales: tuple[float, ...] = (1.0, 0.7, 0.5, 0.35, 0.25, 0.18)
    seed: int = 0
    # Share of each batch drawn from t < low_t_max instead of uniformly: the
    # low-noise levels are where restoration of fine detail happens.
    low_t_fraction: float = 0.0
    low_t_max: int = 300


# Fields that fix the network's shape; the others may change when a run resumes
# (e.g. a second phase with more low-noise steps).
ARCHITECTURE = ("channels", "layers_per_block")
# Keys of a phase record that say where it began rather than how it trains.
PHASE_START = ("from_step", "from_seconds")


def build_unet(cfg: TrainConfig) -> UNet2DModel:
    n = len(cfg.channels)
    return UNet2DModel(
        sample_size=cfg.crop,
        in_channels=3,
        out_channels=3,
        block_out_channels=cfg.channels,
        layers_per_block=cfg.layers_per_block,
        down_block_types=("DownBlock2D",) * n,
        up_block_types=("UpBlock2D",) * n,
    )


def build_scheduler() -> DDPMScheduler:
    # Same numbers as google/ddpm-ema-*-256.
    return DDPMScheduler(
        num_train_timesteps=1000, beta_start=1e-4, beta_end=0.02, beta_schedule="linear",
        prediction_type="epsilon", clip_sample=True, variance_type="fixed_small",
    )


class CropSampler:
    """Random crops of the training photos at several scales, with flips,
    90-degree rotations and mild colour jitter that keeps photos plausible."""

    def __init__(self, cfg: TrainConfig, photos: Sequence[Image.Image]):
        self.cfg = cfg
        self.images: list[list[torch.Tensor]] = []
        for photo in photos:
            base = cap_long_side(photo, cfg.cap)
            pyramid = []
            for s in cfg.scales:
                size = (round(base.width * s), round(base.height * s))
                if min(size) < cfg.crop:
                    continue
                im = base.resize(size, Image.Resampling.LANCZOS) if s != 1.0 else base
                pyramid.append(torch.from_numpy(to_unit_array(im)).permute(2, 0, 1).contiguous())
            self.images.append(pyramid)

    def batch(self, g: torch.Generator) -> torch.Tensor:
        c = self.cfg.crop
        out = torch.empty(self.cfg.batch, 3, c, c)
        for i in range(self.cfg.batch):
            pyramid = self.images[_randint(len(self.images), g)]
            im = pyramid[_randint(len(pyramid), g)]
            y = _randint(im.shape[1] - c + 1, g)
            x = _randint(im.shape[2] - c + 1, g)
            crop = im[:, y : y + c, x : x + c]
            if _randint(2, g):
                crop = crop.flip(2)
            crop = torch.rot90(crop, _randint(4, g), (1, 2))
            out[i] = _colour_jitter(crop, g)
        return out * 2 - 1


def _randint(n: int, g: torch.Generator) -> int:
    return int(torch.randint(n, (1,), generator=g))


def _colour_jitter(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    # Small brightness/contrast/saturation changes only: hue shifts would teach
    # the prior purple grass, which is worse than a narrow colour range.
    u = torch.rand(3, generator=g) * 2 - 1
    grey = x.mean(0, keepdim=True)
    x = grey + (x - grey) * (1 + 0.15 * u[0])
    mean = x.mean()
    x = mean + (x - mean) * (1 + 0.1 * u[1]) + 0.05 * u[2]
    return x.clamp(0, 1)


def learning_rate(cfg: TrainConfig, step: int, progress: float) -> float:
    """Linear warm-up, then cosine from lr to lr * lr_end as progress goes 0 -> 1."""
    cosine = 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    return cfg.lr * min(1.0, (step + 1) / cfg.warmup) * (cfg.lr_end + (1 - cfg.lr_end) * cosine)


def train(
    out: Path, minutes: float, max_steps: int, cfg: TrainConfig, log_every: int = 50,
    photos: Sequence[Image.Image] | None = None,
) -> Path:
    """Train (or resume) in `out`; `photos` defaults to the prior's training set."""
    if photos is None:
        check_sources()
        photos = [cap_long_side(photo.load(), cfg.cap) for photo in TRAIN_PHOTOS]
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    unet = build_unet(cfg)
    ema = build_unet(cfg)
    ema.load_state_dict(unet.state_dict())
    ema.requires_grad_(False)
    sched = build_scheduler()
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(cfg.seed)
    step, elapsed, loss_avg = 0, 0.0, None
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True)
        saved = state["config"]
        if any(saved[k] != list(getattr(cfg, k)) if isinstance(saved[k], list) else saved[k] != getattr(cfg, k) for k in ARCHITECTURE):
            raise SystemExit(f"{ckpt}: checkpoint has another architecture ({', '.join(ARCHITECTURE)}); use a new --out")
        phases = state.get("phases", [{**saved, "from_step": 0}])
        unet.load_state_dict(state["unet"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        g.set_state(state["gen"])
        torch.set_rng_state(state["torch_rng"])
        step, elapsed, loss_avg = state["step"], state["elapsed"], state["loss_avg"]
        print(f"resumed from {ckpt} at step {step} ({elapsed / 60:.1f} min so far)", flush=True)
    else:
        phases = []
    now = json.loads(json.dumps(asdict(cfg)))
    if not phases or {k: v for k, v in phases[-1].items() if k not in PHASE_START} != now:
        phases.append({**now, "from_step": step, "from_seconds": elapsed})
    # The learning-rate schedule runs over this phase: a resumed phase with
    # lr_end < 1 is a cool-down from the current weights.
    phase_step = phases[-1]["from_step"]
    phase_seconds = phases[-1].get("from_seconds", 0.0)
    n_params = sum(p.numel() for p in unet.parameters())
    print(f"model: {n_params / 1e6:.2f} M parameters, channels {cfg.channels}, crop {cfg.crop}, batch {cfg.batch}", flush=True)
    data = CropSampler(cfg, photos)
    abar = sched.alphas_cumprod
    t0 = time.monotonic() - elapsed
    last_save = session_t = time.monotonic()
    session_step = step  # the speed shown is this process's, not diluted by earlier sessions

    def save() -> None:
        tmp = ckpt.with_suffix(".tmp")
        torch.save(
            {
                "unet": unet.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                "gen": g.get_state(), "torch_rng": torch.get_rng_state(), "step": step,
                "elapsed": time.monotonic() - t0, "loss_avg": loss_avg,
                "config": now, "phases": phases,
            },
            tmp,
        )
        tmp.replace(ckpt)

    while step < max_steps and (time.monotonic() - t0) < minutes * 60:
        x0 = data.batch(g)
        t = torch.randint(0, sched.config.num_train_timesteps, (cfg.batch,), generator=g)
        n_low = round(cfg.low_t_fraction * cfg.batch)
        if n_low:
            t[:n_low] = torch.randint(0, cfg.low_t_max, (n_low,), generator=g)
        noise = torch.randn(x0.shape, generator=g)
        a = abar[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = F.mse_loss(unet(xt, t).sample, noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        progress = max(
            (step - phase_step) / max(max_steps - phase_step, 1),
            (time.monotonic() - t0 - phase_seconds) / max(minutes * 60 - phase_seconds, 1e-9),
        )
        for group in opt.param_groups:
            group["lr"] = learning_rate(cfg, step, progress)
        opt.step()
        step += 1
        # EMA decay ramps up so early weights do not dominate a short run.
        decay = min(cfg.ema_max, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), unet.parameters()):
                pe.lerp_(p, 1 - decay)
        loss_avg = loss.item() if loss_avg is None else 0.98 * loss_avg + 0.02 * loss.item()
        if step % log_every == 0:
            spent = time.monotonic() - t0
            rate = (time.monotonic() - session_t) / (step - session_step)
            left = min(minutes * 60 - spent, (max_steps - step) * rate)
            print(
                f"step {step:6d}  loss {loss_avg:.4f}  {rate:.2f} s/step  "
                f"{spent / 60:5.1f} min  ~{max(left, 0) / 60:.0f} min left",
                flush=True,
            )
        if time.monotonic() - last_save > 300:
            save()
            last_save = time.monotonic()
    save()
    loss_text = "-" if loss_avg is None else f"{loss_avg:.4f}"
    print(f"done: step {step}, loss {loss_text}, {(time.monotonic() - t0) / 60:.1f} min", flush=True)
    return ckpt


def export(ckpt: Path, dest: Path) -> None:
    """Write the EMA weights as a DDPMPipeline folder (safetensors) plus training facts."""
    state = torch.load(ckpt, weights_only=True)
    known = {f for f in TrainConfig.__dataclass_fields__}
    cfg = TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in state["config"].items() if k in known})
    unet = build_unet(cfg)
    unet.load_state_dict(state["ema"])
    dest.mkdir(parents=True, exist_ok=True)
    DDPMPipeline(unet=unet, scheduler=build_scheduler()).save_pretrained(dest, safe_serialization=True)
    facts = {
        "steps": state["step"], "minutes": round(state["elapsed"] / 60, 1),
        "final_loss_ema": round(state["loss_avg"], 5), "config": state["config"],
        "phases": state.get("phases", [state["config"]]),
        "parameters": sum(p.numel() for p in unet.parameters()),
        "photos": [p.name for p in TRAIN_PHOTOS],
    }
    (dest / "training.json").write_text(json.dumps(facts, indent=2) + "\n")
    print(f"exported {dest} (step {state['step']})")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="run folder (checkpoint lives here)")
    ap.add_argument("--minutes", type=float, default=90.0, help="wall-clock budget, counted across resumes")
    ap.add_argument("--max-steps", type=int, default=1_000_000)
    ap.add_argument("--crop", type=int, default=TrainConfig.crop)
    ap.add_argument("--batch", type=int, default=TrainConfig.batch)
    ap.add_argument("--channels", type=int, nargs="+", default=list(TrainConfig.channels))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--low-t-fraction", type=float, default=TrainConfig.low_t_fraction, help="share of each batch with t < --low-t-max")
    ap.add_argument("--low-t-max", type=int, default=TrainConfig.low_t_max)
    ap.add_argument("--lr-end", type=float, default=TrainConfig.lr_end, help="final learning rate as a share of --lr (1 = constant)")
    ap.add_argument("--ema-max", type=float, default=TrainConfig.ema_max, help="EMA decay of the exported weights")
    ap.add_argument("--export", type=Path, help="only export the checkpoint in --out to this folder")
    a = ap.parse_args(argv)
    if a.export:
        export(a.out / "checkpoint.pt", a.export)
        return
    cfg = TrainConfig(channels=tuple(a.channels), crop=a.crop, batch=a.batch, seed=a.seed,
                      low_t_fraction=a.low_t_fraction, low_t_max=a.low_t_max, lr_end=a.lr_end, ema_max=a.ema_max)
    train(a.out, a.minutes, a.max_steps, cfg)


if __name__ == "__main__":
    main()

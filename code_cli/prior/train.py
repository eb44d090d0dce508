"""Train the embedded diffusion prior on real photographs, on a CPU or a CUDA GPU.

code-prior-s, as shipped (`make train`: the train split of the data step, three
phases on a 2-core CPU):

    python -m code_cli.train --fetch-data data/photos
    python -m code_cli.train --data data/photos --out runs/prior --max-steps 2166 --minutes 90
    python -m code_cli.train --data data/photos --out runs/prior --max-steps 2952 --minutes 90 --low-t-fraction 0.5
    python -m code_cli.train --data data/photos --out runs/prior --max-steps 3552 --minutes 130 \\
        --low-t-fraction 0.5 --lr-end 0.05 --ema-max 0.995
    python -m code_cli.train --out runs/prior --export code_cli/weights/code-prior-s

Without --data it trains on the 17 photographs of the weights shipped until
2026-11-27 (`make train-17`).

code-prior-m on one GPU (`make train-m-gpu` does this in one device call):

    python -m code_cli.train --size m --device cuda --compile --data data/pack --out runs/prior-m --minutes 8
    python -m code_cli.train --out runs/prior-m --export runs/code-prior-m --fp16 --max-shard-mb 14

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
import shutil
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel
from diffusers.utils import logging as diffusers_logging
from PIL import Image

from code_cli.prior.manifest import read_manifest
from code_cli.prior.photos import TRAIN_PHOTOS, cap_long_side, check_sources


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
    # Flips and 90-degree rotations: right for photographs, wrong for print (a mirrored or
    # sideways glyph is not a glyph), so code-prior-doc turns them off.
    geometric: bool = True


# Network sizes. s is code-prior-s (6.0 M parameters, sized for 90 minutes of a
# 2-core CPU); m is 24 M parameters for a GPU: in a trial on one H200, 64 px
# crops at batch 128 ran about 10 steps a second in bfloat16.
SIZES: dict[str, TrainConfig] = {
    "s": TrainConfig(),
    "m": TrainConfig(channels=(64, 128, 256, 256), crop=64, batch=128),
    # code-prior-doc: code-prior-s's network on rendered pages (prior/pages.py), warm-started
    # from code-prior-s; 64 px crops hold one to three lines of the largest print.
    "doc": TrainConfig(crop=64, batch=24, scales=(1.0,), geometric=False, low_t_fraction=0.5),
}


@dataclass(frozen=True)
class Runtime:
    """How a run executes, as opposed to what it learns: device and speed settings."""

    device: str = "cpu"
    bf16: bool = False  # autocast the forward pass to bfloat16 (weights and optimiser stay float32)
    channels_last: bool = False
    compile: bool = False


# Fields that fix the network's shape; the others may change when a run resumes
# (e.g. a second phase with more low-noise steps).
ARCHITECTURE = ("channels", "layers_per_block")
# Keys of a phase record that say where it began rather than how it trains.
PHASE_START = ("from_step", "from_seconds")
# Fields added after code-prior-s was trained, with the value that keeps its recipe: left out
# of the phase record at that value, so resuming an older run does not start a new phase.
LATER_FIELDS = {"geometric": True}


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
        num_train_timesteps=1000,
        beta_start=1e-4,
        beta_end=0.02,
        beta_schedule="linear",
        prediction_type="epsilon",
        clip_sample=True,
        variance_type="fixed_small",
    )


class CropSampler:
    """Random crops of the training photos at several scales, with flips,
    90-degree rotations and mild colour jitter that keeps photos plausible.

    The scaled photos are held as 8-bit tensors on `device` (a quarter of the
    memory of floats; on a GPU the data never crosses the bus again) and a
    crop becomes float only when drawn, which gives the same values as
    converting first."""

    def __init__(self, cfg: TrainConfig, photos: Sequence[Image.Image], device: str | torch.device = "cpu"):
        self.cfg = cfg
        self.device = torch.device(device)
        # PIL resizes without holding the GIL: threads build the pyramids side by side, in order.
        with ThreadPoolExecutor() as pool:
            self.images = [p for p in pool.map(self._pyramid, photos) if p]
        if not self.images:
            raise ValueError(f"no training photo is at least {cfg.crop} px on its short side")

    def _pyramid(self, photo: Image.Image) -> list[torch.Tensor]:
        cfg = self.cfg
        base = cap_long_side(photo, cfg.cap)
        pyramid = []
        for s in cfg.scales:
            size = (round(base.width * s), round(base.height * s))
            if min(size) < cfg.crop:
                continue
            im = base.resize(size, Image.Resampling.LANCZOS) if s != 1.0 else base
            pixels = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy()).permute(2, 0, 1).contiguous()
            pyramid.append(pixels.to(self.device))
        return pyramid

    def batch(self, g: torch.Generator) -> torch.Tensor:
        c = self.cfg.crop
        out = torch.empty(self.cfg.batch, 3, c, c, device=self.device)
        for i in range(self.cfg.batch):
            pyramid = self.images[_randint(len(self.images), g)]
            im = pyramid[_randint(len(pyramid), g)]
            y = _randint(im.shape[1] - c + 1, g)
            x = _randint(im.shape[2] - c + 1, g)
            crop = im[:, y : y + c, x : x + c].float() / 255.0
            if self.cfg.geometric:
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
    # u stays a CPU tensor: its 0-d elements act as scalars on a GPU crop too, and
    # float32 arithmetic on them keeps code-prior-s's recipe bit for bit.
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


@dataclass(frozen=True)
class TrainingData:
    photos: list[Image.Image]
    names: list[str]
    # The manifest's checksum, recorded in each phase; empty for code-prior-s's own
    # 17 photographs, so that recipe's records read as they always did.
    manifest: str = ""


def load_weights(spec: str) -> dict[str, torch.Tensor]:
    """The UNet weights of an exported model (embedded name or folder), as float32."""
    from code_cli.models import load

    unet, _, _ = load(spec)
    return {k: v.float() for k, v in unet.state_dict().items()}


def page_data(n: int, size: int, seed: int) -> TrainingData:
    """`n` rendered pages of size x size px from the training fonts and texts (prior/pages.py)."""
    from code_cli.prior.pages import TRAIN_FONTS, TRAIN_TEXTS, training_pages

    started = time.monotonic()
    pages = training_pages(n, (size, size), seed)
    print(f"rendered {n} pages of {size} px in {time.monotonic() - started:.0f} s", flush=True)
    families = sorted({f.family for f in TRAIN_FONTS})
    return TrainingData(pages, [f"pages: {n} x {size} px, seed {seed}", *families, *TRAIN_TEXTS])


def page_probe(n: int = 12, size: int = 128, sigmas: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3), seed: int = 1):
    """One-step denoising PSNR (dB) on `n` small pages in the held-out fonts and texts, at pixel
    noise std `sigmas` on [0, 1]: the same noise every time, so points on the curve compare."""
    from code_cli.prior.pages import HELDOUT_FONTS, HELDOUT_TEXTS, check_fonts, sample_page

    check_fonts(HELDOUT_FONTS)
    rng = np.random.default_rng(seed)
    crops = [np.asarray(sample_page((size, size), rng, HELDOUT_FONTS, HELDOUT_TEXTS)[0]) for _ in range(n)]
    x0 = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 127.5 - 1
    abar = build_scheduler().alphas_cumprod
    g = torch.Generator().manual_seed(seed)
    cases = []
    for s in sigmas:
        t = int(torch.argmin((abar - 1 / (1 + (2 * s) ** 2)).abs()))
        cases.append((s, t, float(abar[t]), torch.randn(x0.shape, generator=g)))

    def measure(unet: UNet2DModel) -> dict:
        out = {}
        device = next(unet.parameters()).device
        for s, t, a, noise in cases:
            xt = (math.sqrt(a) * x0 + math.sqrt(1 - a) * noise).to(device)
            eps = unet(xt, torch.full((n,), t, device=device)).sample.float().cpu()
            est = ((xt.cpu() - math.sqrt(1 - a) * eps) / math.sqrt(a)).clamp(-1, 1)
            mse = float(((est - x0) / 2).pow(2).mean())
            out[f"psnr@{s}"] = round(10 * math.log10(1 / mse), 3)
        return out

    return measure


def manifest_data(folder: Path, cap: int) -> TrainingData:
    """The train split of DIR/manifest.json, checked against the files on disk."""
    manifest = read_manifest(folder, verify_files=True)
    entries = manifest.split("train")
    photos = []
    for e in entries:
        with Image.open(folder / e.file) as im:
            photos.append(cap_long_side(im.convert("RGB"), cap))
    return TrainingData(photos, [e.name for e in entries], manifest.sha256)


def legacy_data(cap: int) -> TrainingData:
    """code-prior-s's 17 photographs, found where their packages install them."""
    check_sources()
    return TrainingData([cap_long_side(p.load(), cap) for p in TRAIN_PHOTOS], [p.name for p in TRAIN_PHOTOS])


def train(
    out: Path,
    minutes: float,
    max_steps: int,
    cfg: TrainConfig,
    log_every: int = 50,
    photos: Sequence[Image.Image] | None = None,
    data: TrainingData | None = None,
    runtime: Runtime = Runtime(),
    init: str | None = None,
    probe: Callable[[UNet2DModel], dict] | None = None,
) -> Path:
    """Train (or resume) in `out`. Data: `data`, else bare `photos` (tests), else code-prior-s's 17.
    `init` names a model (embedded name or folder) of the same architecture whose weights a new
    run starts from; a resumed run ignores it. `probe(ema)` is measured at every checkpoint and
    appended to curve.jsonl with the step and the training time (the model card's curve)."""
    if data is None:
        data = TrainingData(list(photos), []) if photos is not None else legacy_data(cfg.cap)
    device = torch.device(runtime.device)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(cfg.seed)
    unet = build_unet(cfg)
    ema = build_unet(cfg)
    ema.load_state_dict(unet.state_dict())
    ema.requires_grad_(False)
    memory = torch.channels_last if runtime.channels_last else torch.contiguous_format
    unet.to(device, memory_format=memory)
    ema.to(device, memory_format=memory)
    sched = build_scheduler()
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.lr, weight_decay=0.0)
    g = torch.Generator().manual_seed(cfg.seed)
    # On a GPU, timesteps and noise are drawn there: a host tensor copied in every
    # step would make the host wait for the GPU. On a CPU they come from `g`, as
    # code-prior-s's recipe always drew them.
    gd = g if device.type == "cpu" else torch.Generator(device).manual_seed(cfg.seed + 1)
    step, elapsed, loss_avg = 0, 0.0, None
    ckpt = out / "checkpoint.pt"
    if ckpt.exists():
        state = torch.load(ckpt, weights_only=True, map_location=device)
        saved = state["config"]
        if any(
            saved[k] != list(getattr(cfg, k)) if isinstance(saved[k], list) else saved[k] != getattr(cfg, k)
            for k in ARCHITECTURE
        ):
            raise SystemExit(
                f"{ckpt}: checkpoint has another architecture ({', '.join(ARCHITECTURE)}); use a new --out"
            )
        phases = state.get("phases", [{**saved, "from_step": 0}])
        unet.load_state_dict(state["unet"])
        ema.load_state_dict(state["ema"])
        opt.load_state_dict(state["opt"])
        g.set_state(state["gen"].cpu())  # map_location put every tensor on the device, this one too
        if gd is not g and "gen_device" in state:
            gd.set_state(state["gen_device"].cpu())
        torch.set_rng_state(state["torch_rng"].cpu())
        step, elapsed, loss_avg = state["step"], state["elapsed"], state["loss_avg"]
        print(f"resumed from {ckpt} at step {step} ({elapsed / 60:.1f} min so far)", flush=True)
    else:
        phases = []
        if init is not None:
            start = load_weights(init)
            unet.load_state_dict(start)
            ema.load_state_dict(start)
            print(f"initialised from {init}", flush=True)
    now = {k: v for k, v in json.loads(json.dumps(asdict(cfg))).items()
           if k not in LATER_FIELDS or LATER_FIELDS[k] != v}
    if init is not None and not phases:
        now["init"] = init
    elif phases and "init" in phases[0]:
        now["init"] = phases[0]["init"]
    if data.manifest:
        now["data"] = data.manifest
    if not phases or {k: v for k, v in phases[-1].items() if k not in PHASE_START} != now:
        phases.append({**now, "from_step": step, "from_seconds": elapsed})
    # The learning-rate schedule runs over this phase: a resumed phase with
    # lr_end < 1 is a cool-down from the current weights.
    phase_step = phases[-1]["from_step"]
    phase_seconds = phases[-1].get("from_seconds", 0.0)
    n_params = sum(p.numel() for p in unet.parameters())
    print(
        f"model: {n_params / 1e6:.2f} M parameters, channels {cfg.channels}, crop {cfg.crop}, batch {cfg.batch}; "
        f"{len(data.photos)} photos{' (manifest ' + data.manifest[:12] + ')' if data.manifest else ''}; "
        f"{device}{', bf16' if runtime.bf16 else ''}{', channels_last' if runtime.channels_last else ''}"
        f"{', compiled' if runtime.compile else ''}",
        flush=True,
    )
    sampler = CropSampler(cfg, data.photos, device)
    abar = sched.alphas_cumprod.to(device)
    forward = torch.compile(unet) if runtime.compile else unet
    # The running loss stays on the device: reading it every step would stall a GPU.
    loss_ema = None if loss_avg is None else torch.tensor(loss_avg, device=device)
    t0 = time.monotonic() - elapsed
    last_save = session_t = time.monotonic()
    session_step = step  # the speed shown is this process's, not diluted by earlier sessions

    def save() -> None:
        tmp = ckpt.with_suffix(".tmp")
        state = {
            "unet": unet.state_dict(),
            "ema": ema.state_dict(),
            "opt": opt.state_dict(),
            "gen": g.get_state(),
            "torch_rng": torch.get_rng_state(),
            "step": step,
            "elapsed": time.monotonic() - t0,
            "loss_avg": None if loss_ema is None else loss_ema.item(),
            "config": now,
            "phases": phases,
            "photos": data.names,
            "runtime": asdict(runtime),
        }
        if gd is not g:
            state["gen_device"] = gd.get_state()
        torch.save(state, tmp)
        tmp.replace(ckpt)
        record()

    def record() -> None:
        if probe is not None:
            ema.eval()
            with torch.no_grad():
                point = {"step": step, "hours": round((time.monotonic() - t0) / 3600, 4), **probe(ema)}
            with (out / "curve.jsonl").open("a") as f:
                f.write(json.dumps(point) + "\n")
            print("probe: " + "  ".join(f"{k} {v}" for k, v in point.items()), flush=True)

    if step == 0:
        record()  # where the curve starts: the initial (or random) weights
    while step < max_steps and (time.monotonic() - t0) < minutes * 60:
        x0 = sampler.batch(g)
        t = torch.randint(0, sched.config.num_train_timesteps, (cfg.batch,), generator=gd, device=device)
        n_low = round(cfg.low_t_fraction * cfg.batch)
        if n_low:
            t[:n_low] = torch.randint(0, cfg.low_t_max, (n_low,), generator=gd, device=device)
        noise = torch.randn(x0.shape, generator=gd, device=device)
        a = abar[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        if runtime.channels_last:
            xt = xt.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=runtime.bf16):
            pred = forward(xt, t).sample
        loss = F.mse_loss(pred.float(), noise)
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
            loss_ema = (
                loss.detach().clone() if loss_ema is None else loss_ema.mul_(0.98).add_(loss.detach(), alpha=0.02)
            )
        if step % log_every == 0:
            spent = time.monotonic() - t0
            rate = (time.monotonic() - session_t) / (step - session_step)
            left = min(minutes * 60 - spent, (max_steps - step) * rate)
            print(
                f"step {step:6d}  loss {loss_ema.item():.4f}  {rate:.2f} s/step  "
                f"{spent / 60:5.1f} min  ~{max(left, 0) / 60:.0f} min left",
                flush=True,
            )
        if time.monotonic() - last_save > 300:
            save()
            last_save = time.monotonic()
    # A run already at its budget saves nothing: no new probe point, the checkpoint as it was.
    if step > session_step or not ckpt.exists():
        save()
    loss_text = "-" if loss_ema is None else f"{loss_ema.item():.4f}"
    print(f"done: step {step}, loss {loss_text}, {(time.monotonic() - t0) / 60:.1f} min", flush=True)
    return ckpt


def export(ckpt: Path, dest: Path, fp16: bool = False, max_shard_mb: float | None = None) -> None:
    """Write the EMA weights as a DDPMPipeline folder (safetensors) plus training facts.

    fp16 halves the file (the loader computes in float32 either way); max_shard_mb
    splits the weights into safetensors shards with an index, which is how a
    device call, whose files come back at most 16 MB each, returns a larger model."""
    state = torch.load(ckpt, weights_only=True, map_location="cpu")
    known = {f for f in TrainConfig.__dataclass_fields__}
    cfg = TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in state["config"].items() if k in known})
    unet = build_unet(cfg)
    unet.load_state_dict(state["ema"])
    if fp16:
        # diffusers warns about modules to keep in float32 on any .to(); this UNet has none.
        diffusers_logging.set_verbosity_error()
        unet.to(torch.float16)
    dest.mkdir(parents=True, exist_ok=True)
    shard = f"{int(max_shard_mb * 1000)}KB" if max_shard_mb else None
    DDPMPipeline(unet=unet, scheduler=build_scheduler()).save_pretrained(
        dest, safe_serialization=True, max_shard_size=shard
    )
    facts = {
        "steps": state["step"],
        "minutes": round(state["elapsed"] / 60, 1),
        "final_loss_ema": round(state["loss_avg"], 5),
        "config": state["config"],
        "phases": state.get("phases", [state["config"]]),
        "parameters": sum(p.numel() for p in unet.parameters()),
        "photos": state.get("photos") or [p.name for p in TRAIN_PHOTOS],
    }
    if "runtime" in state:
        facts["runtime"] = state["runtime"]
    if fp16:
        facts["weights_dtype"] = "float16"
    (dest / "training.json").write_text(json.dumps(facts, indent=2) + "\n")
    print(f"exported {dest} (step {state['step']})")


def branch(src: Path, out: Path) -> None:
    """Start the run in `out` from `src`'s checkpoint and curve, unless `out` already
    continues that very checkpoint (then it resumes as usual).

    A finishing phase (the cool-down: the learning rate decayed to a few percent) is
    run on a copy so that `src` can train on at its constant rate later and be cooled
    again from further on; the cooled weights are the ones exported."""
    src_ckpt = src / "checkpoint.pt"
    if not src_ckpt.exists():
        raise SystemExit(f"{src_ckpt}: no checkpoint to branch from")
    src_step = torch.load(src_ckpt, weights_only=True, map_location="cpu")["step"]
    marker = out / "branch.json"
    if (out / "checkpoint.pt").exists() and marker.exists() and json.loads(marker.read_text())["step"] == src_step:
        return
    out.mkdir(parents=True, exist_ok=True)
    for name in ("checkpoint.pt", "curve.jsonl"):
        if (src / name).exists():
            tmp = out / (name + ".tmp")
            shutil.copyfile(src / name, tmp)  # streamed: the checkpoint is about 100 MB
            tmp.replace(out / name)
    marker.write_text(json.dumps({"from": str(src), "step": src_step}) + "\n")
    print(f"branched {out} from {src_ckpt} at step {src_step}", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, help="run folder (checkpoint lives here)")
    ap.add_argument("--fetch-data", type=Path, metavar="DIR", help="only build the photo folder DIR (as `make data`)")
    ap.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="train on the train split of DIR/manifest.json "
        "(default: the 17 photographs of the weights shipped until 2026-11-27)",
    )
    ap.add_argument("--size", choices=sorted(SIZES), default="s", help="network and batch preset (default s)")
    ap.add_argument("--pages", type=int, metavar="N",
                    help="train on N rendered pages (prior/pages.py) instead of photographs")
    ap.add_argument("--page-size", type=int, default=384, help="side of each rendered page in px (default 384)")
    ap.add_argument("--init", metavar="MODEL", help="start a new run from this model's weights (same architecture)")
    ap.add_argument("--minutes", type=float, default=90.0, help="wall-clock budget, counted across resumes")
    ap.add_argument("--max-steps", type=int, default=1_000_000)
    ap.add_argument("--crop", type=int, help="crop size (default: the size preset's)")
    ap.add_argument("--batch", type=int, help="batch size (default: the size preset's)")
    ap.add_argument("--channels", type=int, nargs="+", help="block channels (default: the size preset's)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--low-t-fraction",
        type=float,
        default=None,
        help="share of each batch with t < --low-t-max",
    )
    ap.add_argument("--low-t-max", type=int, default=None)
    ap.add_argument(
        "--lr-end", type=float, default=None, help="final learning rate as a share of --lr (1 = constant)"
    )
    ap.add_argument("--ema-max", type=float, default=None, help="EMA decay of the exported weights")
    ap.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N; cuda turns on --bf16 and --channels-last")
    ap.add_argument("--bf16", action=argparse.BooleanOptionalAction, help="bfloat16 autocast of the forward pass")
    ap.add_argument("--channels-last", action=argparse.BooleanOptionalAction, help="NHWC memory layout")
    ap.add_argument("--compile", action="store_true", help="torch.compile the network (pays off on a GPU)")
    ap.add_argument(
        "--branch-from",
        type=Path,
        metavar="DIR",
        help="start --out from DIR's checkpoint unless --out already continues it (a cool-down on a copy)",
    )
    ap.add_argument("--export", type=Path, help="only export the checkpoint in --out to this folder")
    ap.add_argument("--fp16", action="store_true", help="export float16 weights")
    ap.add_argument("--max-shard-mb", type=float, help="export the weights in safetensors shards of at most this size")
    a = ap.parse_args(argv)
    if a.fetch_data:
        from code_cli.prior.fetch import main as fetch

        raise SystemExit(fetch([str(a.fetch_data)]))
    if a.out is None:
        ap.error("--out is required (except with --fetch-data)")
    if a.export:
        export(a.out / "checkpoint.pt", a.export, fp16=a.fp16, max_shard_mb=a.max_shard_mb)
        return
    base = SIZES[a.size]
    cfg = replace(
        base,
        seed=a.seed,
        low_t_fraction=base.low_t_fraction if a.low_t_fraction is None else a.low_t_fraction,
        low_t_max=base.low_t_max if a.low_t_max is None else a.low_t_max,
        lr_end=base.lr_end if a.lr_end is None else a.lr_end,
        ema_max=base.ema_max if a.ema_max is None else a.ema_max,
        channels=tuple(a.channels) if a.channels else base.channels,
        crop=a.crop or base.crop,
        batch=a.batch or base.batch,
    )
    gpu = a.device.startswith("cuda")
    if gpu and not torch.cuda.is_available():
        raise SystemExit(f"--device {a.device}: no CUDA device here (torch {torch.__version__})")
    runtime = Runtime(
        device=a.device,
        bf16=gpu if a.bf16 is None else a.bf16,
        channels_last=gpu if a.channels_last is None else a.channels_last,
        compile=a.compile,
    )
    if a.branch_from:
        branch(a.branch_from, a.out)
    if a.pages:
        data = page_data(a.pages, a.page_size, a.seed)
    else:
        data = manifest_data(a.data, cfg.cap) if a.data else None
    probe = page_probe() if a.pages else None
    train(a.out, a.minutes, a.max_steps, cfg, data=data, runtime=runtime, init=a.init, probe=probe)


if __name__ == "__main__":
    main()

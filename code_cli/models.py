"""Resolve a model spec to a UNet2DModel and its noise schedule.

A spec is one of
  - an embedded name ("code-prior-s"), a folder shipped inside the package;
  - a local diffusers folder: a DDPMPipeline folder (model_index.json with
    unet/ and scheduler/), or a bare UNet folder (config.json + weights) with
    scheduler_config.json beside it or in scheduler/;
  - a hub id ("google/ddpm-ema-celebahq-256"), downloaded once into the
    Hugging Face cache and then loaded like a local folder.
All three end in the same loader. Weights load from safetensors, or from a
.bin through torch.load(weights_only=True) inside diffusers; remote code never.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from diffusers import DDPMScheduler, UNet2DModel
from diffusers.utils import logging as diffusers_logging

from code_cli.errors import ModelError

WEIGHTS_DIR = Path(__file__).parent / "weights"
DEFAULT_MODEL = "code-prior-s"
SUPPORTED_PREDICTIONS = ("epsilon", "v_prediction", "sample")


@dataclass(frozen=True)
class ModelInfo:
    spec: str
    path: Path
    weights_sha256: str
    prediction_type: str


def embedded_models() -> list[str]:
    if not WEIGHTS_DIR.is_dir():
        return []
    return sorted(p.name for p in WEIGHTS_DIR.iterdir() if (p / "model_index.json").is_file())


def locate(spec: str) -> Path:
    """The local folder holding `spec`, downloading a hub id if needed."""
    if spec in embedded_models():
        return WEIGHTS_DIR / spec
    p = Path(spec).expanduser()
    if p.exists():
        if not p.is_dir():
            raise ModelError(f"{spec}: a model must be a diffusers folder, not a file")
        return p
    if spec.count("/") == 1 and not spec.startswith((".", "/", "~")):
        return _download(spec)
    names = ", ".join(embedded_models()) or "none installed"
    raise ModelError(f"{spec}: no such model folder, embedded model ({names}) or hub id (owner/name)")


def _download(repo_id: str) -> Path:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, RepositoryNotFoundError

    how = "download it once where the hub is reachable and pass the folder with --model PATH"
    try:
        # Safetensors first; the .bin (loaded with weights_only=True) only when a repo has nothing else.
        folder = Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.safetensors"]))
        if not any(folder.rglob("diffusion_pytorch_model.safetensors")):
            folder = Path(snapshot_download(repo_id, allow_patterns=["*.json", "*.bin"]))
        return folder
    except RepositoryNotFoundError:
        raise ModelError(f"{repo_id}: no such model on the Hugging Face hub (or it is private)") from None
    except LocalEntryNotFoundError:
        raise ModelError(
            f"{repo_id}: the Hugging Face hub cannot be reached and the model is not cached; {how}"
        ) from None
    except (HfHubHTTPError, OSError) as e:
        raise ModelError(f"{repo_id}: download failed ({e.__class__.__name__}); {how}") from None


def _layout(folder: Path) -> tuple[Path, Path]:
    """(unet folder, scheduler config file) of a diffusers folder."""
    if (folder / "model_index.json").is_file():
        unet, sched = folder / "unet", folder / "scheduler" / "scheduler_config.json"
    elif (folder / "config.json").is_file():
        unet = folder
        sched = folder / "scheduler_config.json"
        if not sched.is_file():
            sched = folder / "scheduler" / "scheduler_config.json"
    else:
        raise ModelError(f"{folder}: not a diffusers model (no model_index.json or config.json)")
    if not (unet / "config.json").is_file():
        raise ModelError(f"{unet}: no config.json for the UNet")
    if not sched.is_file():
        raise ModelError(f"{folder}: no scheduler_config.json (beside the UNet or in scheduler/)")
    return unet, sched


SHARD_INDEX = "diffusion_pytorch_model.safetensors.index.json"


def _weights_files(unet_dir: Path) -> list[Path]:
    """The weights: one file, or the safetensors shards an index lists (how a model
    trained where files travel in pieces under 16 MB is stored)."""
    for name in ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"):
        if (unet_dir / name).is_file():
            return [unet_dir / name]
    index = unet_dir / SHARD_INDEX
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (OSError, json.JSONDecodeError, KeyError, AttributeError) as e:
            raise ModelError(f"{index}: unreadable shard index ({e.__class__.__name__})") from None
        missing = [s for s in shards if not (unet_dir / s).is_file()]
        if missing:
            raise ModelError(f"{unet_dir}: shard(s) {', '.join(missing)} listed in {SHARD_INDEX} are missing")
        return [unet_dir / s for s in shards]
    raise ModelError(f"{unet_dir}: no diffusion_pytorch_model.safetensors, .bin or sharded safetensors weights")


def _sha256(paths: list[Path]) -> str:
    """SHA-256 of the weight bytes in order: for a single file, that file's own hash."""
    h = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def load(spec: str) -> tuple[UNet2DModel, DDPMScheduler, ModelInfo]:
    """Load the UNet (eval mode, float32, CPU) and a DDPM schedule with the same betas."""
    folder = locate(spec)
    unet_dir, sched_file = _layout(folder)
    weights = _weights_files(unet_dir)
    try:
        config = json.loads(sched_file.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ModelError(f"{sched_file}: unreadable scheduler config ({e.__class__.__name__})") from None
    prediction = config.get("prediction_type", "epsilon")
    if prediction not in SUPPORTED_PREDICTIONS:
        valid = ", ".join(SUPPORTED_PREDICTIONS)
        raise ModelError(f"{sched_file}: prediction_type {prediction!r} is not one of {valid}")
    # diffusers' advice about `accelerate` and dtype casting is noise for a CLI user.
    diffusers_logging.set_verbosity_error()
    try:
        # Any DDPM-family scheduler config carries the betas; DDPMScheduler rebuilds abar from them.
        scheduler = DDPMScheduler.from_config(config)
        unet = UNet2DModel.from_pretrained(unet_dir, use_safetensors=weights[0].suffix == ".safetensors")
    except (OSError, ValueError, KeyError, RuntimeError, TypeError) as e:
        msg = str(e).splitlines()[0][:200] if str(e) else e.__class__.__name__
        raise ModelError(f"{folder}: cannot load the model: {msg}") from None
    unet.eval().requires_grad_(False)
    info = ModelInfo(spec=spec, path=folder, weights_sha256=_sha256(weights), prediction_type=prediction)
    return unet, scheduler, info

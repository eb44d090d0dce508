"""CODEPipeline: a diffusers pipeline that restores batches of images with CODE or SDEdit.

    pipe = CODEPipeline.from_pretrained("code-prior-s")        # or a folder, or a hub id
    results = pipe(batch, seeds=[0], config=RestoreConfig())     # batch: (B, 3, H, W) in [-1, 1]

It owns the device, the dtype, the size policy (pad or resize) and the count
of network calls; the numerics are the pure functions in code_cli.method.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from diffusers import DiffusionPipeline

from code_cli import method as M
from code_cli import models, tiles
from code_cli.errors import ConfigError

if TYPE_CHECKING:
    from code_cli.presets import RestoreConfig

# Whole images up to this many pixels run in one piece; larger ones in tiles of AUTO_TILE_EDGE
# overlapping by TILE_OVERLAP (a quarter of the tile at most), cross-faded. Measured for the embedded
# prior on a 2-core CPU (README, "Large photos"): the network's seconds per pixel grow with the input
# (the mid-block's attention is quadratic, and large activations leave the caches): about 5 us per
# pixel at 256 to 384 px, 6 to 10 at 512, 11 to 15 at 1024. A 1024 x 768 photo took 25 s whole and
# 21 s in 384 px tiles, a 512 x 512 one is faster whole; 16, 32 or 64 px of overlap changed
# nothing visible and its PSNR by 0.006 dB.
AUTO_TILE_PIXELS = 768 * 768
AUTO_TILE_EDGE = 384
TILE_OVERLAP = 32


def tile_overlap(tile: int) -> int:
    return min(TILE_OVERLAP, tile // 4)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class RestoreResult:
    image: torch.Tensor  # (3, H, W) float32 on CPU, in [-1, 1]
    nfe: int  # network calls spent on this image
    seed: int
    seconds: float  # this image's share of its batch's wall time
    finite: bool  # False if the model produced NaN or Inf
    info: dict = field(default_factory=dict)


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device cuda: no CUDA device is available here")
    if name == "mps" and not torch.backends.mps.is_available():
        raise ConfigError("device mps: no MPS device is available here")
    return torch.device(name)


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """True where the CPU multiplies bfloat16 in hardware (x86 avx512_bf16 or amx_bf16).
    Elsewhere oneDNN emulates it, and whether that pays was not measured: float32 stays."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
                cpuinfo = f.read()
        except OSError:  # not Linux: no measurement behind bfloat16 there
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            flags = set(line.partition(":")[2].split())
            return bool(flags & {"avx512_bf16", "amx_bf16"})
    return False


def resolve_dtype(name: str, device: torch.device, native_bf16: bool | None = None) -> str:
    """The dtype name the network runs in. "auto" is bfloat16 on a CPU with bfloat16 instructions,
    where it measured 1.5 times faster than float32 with restorations within 0.01 dB (README,
    "Speed"); float32 everywhere else, GPUs included, until measured there."""
    if name != "auto":
        return name
    if device.type == "cpu":
        return "bfloat16" if (cpu_has_native_bf16() if native_bf16 is None else native_bf16) else "float32"
    return "float32"


LAYOUTS = {"channels_last": torch.channels_last, "contiguous": torch.contiguous_format}


def memory_format(device: torch.device, name: str = "auto") -> torch.memory_format:
    """The memory format of the network's weights and inputs. "auto" is channels_last (NHWC) on a
    CPU, where oneDNN's convolutions measured 1.13x (float32) and 1.21x (bfloat16) faster with it
    for the embedded prior (README, "Speed"), and PyTorch's default elsewhere until measured there."""
    if name != "auto":
        return LAYOUTS[name]
    return torch.channels_last if device.type == "cpu" else torch.contiguous_format


class CODEPipeline(DiffusionPipeline):
    """Any module whose forward(x, t) returns an object with `.sample` can be the unet."""

    def __init__(self, unet: torch.nn.Module, scheduler: Any):
        super().__init__()
        self.register_modules(unet=unet, scheduler=scheduler)
        self.model_info: models.ModelInfo | None = None
        self.layout = "auto"  # memory format: auto | channels_last | contiguous (see memory_format)

    @classmethod
    def from_pretrained(cls, spec: str = models.DEFAULT_MODEL, **_: Any) -> CODEPipeline:
        """Embedded name, local diffusers folder or hub id; see code_cli.models."""
        unet, scheduler, info = models.load(spec)
        pipe = cls(unet=unet, scheduler=scheduler)
        pipe.model_info = info
        return pipe

    # -- sizes ---------------------------------------------------------------------------------

    def _fully_convolutional(self) -> bool:
        cfg = getattr(self.unet, "config", None)
        blocks = tuple(getattr(cfg, "down_block_types", ())) + tuple(getattr(cfg, "up_block_types", ()))
        return not any("Attn" in b for b in blocks)

    def _multiple(self) -> int:
        cfg = getattr(self.unet, "config", None)
        return 2 ** (len(getattr(cfg, "block_out_channels", (0,))) - 1)

    def size_mode(self, policy: str) -> str:
        """'native' runs at the image's own size (padded); 'resize' at the model's sample_size."""
        if policy == "auto":
            return "native" if self._fully_convolutional() else "resize"
        return policy

    def to_model_size(self, x: torch.Tensor, mode: str) -> tuple[torch.Tensor, Callable[[torch.Tensor], torch.Tensor]]:
        H, W = x.shape[-2:]
        if mode == "resize":
            s = self.unet.config.sample_size
            s = (s, s) if isinstance(s, int) else tuple(s)
            big = F.interpolate(x, size=s, mode="bicubic", antialias=True, align_corners=False)
            return big, lambda y: F.interpolate(y, size=(H, W), mode="bicubic", antialias=True, align_corners=False)
        m = self._multiple()
        # At least two pixels per side at the coarsest level: GroupNorm needs more than one value.
        floor = max(2 * m, 16)
        ph, pw = max((-H) % m, floor - H), max((-W) % m, floor - W)
        if ph == 0 and pw == 0:
            return x, lambda y: y
        # Reflection keeps the border statistics natural; tiny images cannot reflect that far.
        pad_mode = "reflect" if ph < H and pw < W else "replicate"
        return F.pad(x, (0, pw, 0, ph), mode=pad_mode), lambda y: y[..., :H, :W]

    def tile_size(self, requested: int, size: tuple[int, int]) -> int:
        """0 (whole image) or the tile edge. requested > 0 is taken as given (rounded to the
        down-sampling multiple); 0 tiles automatically when the image exceeds the memory budget."""
        m = self._multiple()
        if requested > 0:
            return max(m, requested // m * m) if max(size) > requested else 0
        if size[0] * size[1] <= AUTO_TILE_PIXELS:
            return 0
        return AUTO_TILE_EDGE // m * m

    # -- the network ---------------------------------------------------------------------------

    def eps_model(
        self, dtype: torch.dtype, tile: int = 0, layout: torch.memory_format = torch.contiguous_format
    ) -> tuple[Callable[[torch.Tensor, torch.Tensor], torch.Tensor], list[int]]:
        """eps = model(x, t) in float32, whatever the model predicts; plus a live call counter.
        With tile > 0 each call runs the network on overlapping tiles (see code_cli.tiles).
        `layout` is the memory format the network's input is given in (its weights' format)."""
        prediction = self.scheduler.config.get("prediction_type", "epsilon")
        abar_all = self.scheduler.alphas_cumprod
        calls = [0]

        def eps(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            calls[0] += 1

            def net(xt: torch.Tensor) -> torch.Tensor:
                return self.unet(xt.to(dtype=dtype, memory_format=layout), t).sample.float()

            out = tiles.tiled(net, x, tile, tile_overlap(tile)) if tile else net(x)
            if prediction == "epsilon":
                return out
            a = abar_all.to(x.device)[t].float().view(-1, 1, 1, 1)
            if prediction == "v_prediction":
                return a.sqrt() * out + (1 - a).sqrt() * x
            return (x - a.sqrt() * out) / (1 - a).sqrt()  # "sample": the network predicts x0

        return eps, calls

    def _ready(self, config: RestoreConfig) -> tuple[torch.device, str, torch.dtype, torch.memory_format]:
        """The network on the config's device, in its dtype and memory format (moved only when not)."""
        device = resolve_device(config.device)
        dtype_name = resolve_dtype(config.dtype, device)
        dtype = DTYPES[dtype_name]
        layout = memory_format(device, self.layout)
        p = next(self.unet.parameters(), None)
        if p is not None and (p.device != device or p.dtype != dtype or not _in_format(self.unet, layout)):
            self.unet.to(device=device, dtype=dtype, memory_format=layout)
        return device, dtype_name, dtype, layout

    @torch.no_grad()
    def denoising_errors(
        self, image: torch.Tensor, timesteps: Sequence[int], seeds: Sequence[int], config: RestoreConfig, window: int,
    ) -> torch.Tensor:
        """(B, len(timesteps)): this prior's noise-prediction error on the centre window x window of
        each image (at the image's own scale; all of a smaller one), per timestep, with the noise drawn
        from each image's seed (method/prior_choice.py). One network call per timestep, untiled."""
        device, _, dtype, layout = self._ready(config)
        H, W = image.shape[-2:]
        top, left = max(0, (H - window) // 2), max(0, (W - window) // 2)
        crop = image[..., top:top + window, left:left + window].to(device, torch.float32)
        x, _ = self.to_model_size(crop, self.size_mode(config.size_policy))
        eps, _ = self.eps_model(dtype, 0, layout)
        generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
        return M.prior_choice.denoising_errors(eps, x, timesteps, self.scheduler.alphas_cumprod, generators)

    # -- restoring -----------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        image: torch.Tensor,
        *,
        seeds: Sequence[int],
        config: RestoreConfig,
        progress: Callable[[int], None] | None = None,
    ) -> list[RestoreResult]:
        """Restore a batch of same-size images (B, 3, H, W) in [-1, 1]; one seed per image."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) batch, got {tuple(image.shape)}")
        if len(seeds) != len(image):
            raise ValueError(f"need one seed per image: {len(seeds)} for {len(image)}")
        device, dtype_name, dtype, layout = self._ready(config)
        start = time.perf_counter()
        x, back = self.to_model_size(image.to(device, torch.float32), self.size_mode(config.size_policy))
        levels = M.make_levels(self.scheduler.alphas_cumprod, config.steps)
        threshold = M.make_threshold(config.quantile, config.max_threshold) if config.thresholding else M.no_threshold
        tile = self.tile_size(config.tile, x.shape[-2:])
        base = {"device": str(device), "dtype": dtype_name, "size_mode": self.size_mode(config.size_policy)}
        x, unmap, gains = _range_map(x, config.maps_range)
        if config.auto_mode:
            return self._auto(image, x, back, seeds, config, levels, threshold, tile, dtype, base, start, progress,
                              layout, unmap, gains)

        def run(eps: M.code.EpsModel, generators: list[torch.Generator], x: torch.Tensor) -> M.MethodOutput:
            method, params = M.get_method(config.method)
            return method(eps, x, levels, params.from_knobs(**asdict(config)), threshold, generators, progress)

        out, calls, tile, notes = self._run(run, x, seeds, dtype, tile, layout)
        y = back(unmap(out.x, slice(None))).clamp(-1, 1).float().cpu()
        finite = torch.isfinite(out.x.flatten(1)).all(1).cpu()
        seconds = (time.perf_counter() - start) / len(image)
        info = {**out.info, **base, "tile": tile, "tiles_per_call": self._tiles_per_call(x, tile), **notes}
        return [
            RestoreResult(image=y[i], nfe=calls, seed=int(seeds[i]), seconds=seconds, finite=bool(finite[i]),
                          info={**info, **gains[i]})
            for i in range(len(image))
        ]

    def _auto(
        self, image: torch.Tensor, x: torch.Tensor, back: Callable[[torch.Tensor], torch.Tensor], seeds: Sequence[int],
        config: RestoreConfig, levels: M.Levels, threshold: Callable[[torch.Tensor], torch.Tensor], tile: int,
        dtype: torch.dtype, base: dict, start: float, progress: Callable[[int], None] | None,
        layout: torch.memory_format = torch.contiguous_format,
        unmap: Callable[[torch.Tensor, Any], torch.Tensor] = lambda y, _: y, gains: Sequence[dict] | None = None,
    ) -> list[RestoreResult]:
        """Auto mode: each group of images that share a choice runs as one batch; an image left
        unedited is returned exactly as it came in. x may be range-mapped (`unmap` takes an edit back)."""
        gains = gains or [{}] * len(image)
        choices = auto_choices(x, levels, config)
        results: list[RestoreResult | None] = [None] * len(image)
        groups: dict[tuple, list[int]] = {}
        for i, c in enumerate(choices):
            groups.setdefault(c.key(), []).append(i)
        for idx in groups.values():
            c = choices[idx[0]]
            if not c.edit:
                for i in idx:
                    results[i] = RestoreResult(image=image[i].float().cpu(), nfe=0, seed=int(seeds[i]), seconds=0.0,
                                               finite=True, info={**base, "auto": c.as_dict()})
                continue
            params = code_params(replace(config, depth=c.depth, epsilon=c.epsilon, langevin_steps=c.langevin_steps))

            def run(eps: M.code.EpsModel, generators: list[torch.Generator], xs: torch.Tensor,
                    c: M.AutoChoice = c, params: M.CODEParams = params) -> M.MethodOutput:
                return M.auto_restore(eps, xs, levels, c, params, threshold, generators, progress)

            out, calls, used_tile, notes = self._run(run, x[idx], [seeds[i] for i in idx], dtype, tile, layout)
            y = back(unmap(out.x, idx)).clamp(-1, 1).float().cpu()
            finite = torch.isfinite(out.x.flatten(1)).all(1).cpu()
            per_call = self._tiles_per_call(x, used_tile)
            info = {**out.info, **base, "tile": used_tile, "tiles_per_call": per_call, **notes}
            for j, i in enumerate(idx):
                results[i] = RestoreResult(image=y[j], nfe=calls, seed=int(seeds[i]), seconds=0.0,
                                           finite=bool(finite[j]),
                                           info={**info, **gains[i], "auto": choices[i].as_dict()})
        seconds = (time.perf_counter() - start) / len(image)
        return [replace(r, seconds=seconds) for r in results if r is not None]

    def _run(
        self, run: Callable[..., M.MethodOutput], x: torch.Tensor, seeds: Sequence[int], dtype: torch.dtype, tile: int,
        layout: torch.memory_format = torch.contiguous_format,
    ) -> tuple[M.MethodOutput, int, int, dict]:
        """One method run over a batch, retried with smaller tiles on CUDA out-of-memory.
        Returns the output, the real count of network calls, the tile used and any notes."""
        notes: list[str] = []
        while True:
            # CPU generators: the same seed gives the same noise on every device (and on a retry).
            generators = [torch.Generator().manual_seed(int(s)) for s in seeds]
            eps, calls = self.eps_model(dtype, tile, layout)
            try:
                out = run(eps, generators, x)
                break
            except torch.cuda.OutOfMemoryError:
                # Retry the same seeds with tiles half the size: same trajectory, less memory.
                smaller = (tile or max(x.shape[-2:])) // 2 // self._multiple() * self._multiple()
                if smaller < 64:
                    raise
                torch.cuda.empty_cache()
                notes.append(f"CUDA out of memory at tile {tile or 'off'}; retried with tile {smaller}")
                tile = smaller
        assert calls[0] == out.nfe, "the method's count of network calls disagrees with the real count"
        return out, calls[0], tile, ({"notes": notes} if notes else {})

    @staticmethod
    def _tiles_per_call(x: torch.Tensor, tile: int) -> int:
        return tiles.count(*x.shape[-2:], tile, tile_overlap(tile)) if tile else 1

    def choose(self, image: torch.Tensor, config: RestoreConfig, seeds: Sequence[int] | None = None
               ) -> list[M.AutoChoice]:
        """What auto mode would do with each image of a (B, 3, H, W) batch in [-1, 1], without
        running the network (for --dry-run). Fixed mode reports its fixed settings the same way.
        `seeds` is accepted for the router's sake (routing.py) and unused: the choice draws no noise."""
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"expected a (B, 3, H, W) batch, got {tuple(image.shape)}")
        x, _ = self.to_model_size(image.float(), self.size_mode(config.size_policy))
        x, _, _ = _range_map(x, config.maps_range)  # as __call__ does
        return auto_choices(x, M.make_levels(self.scheduler.alphas_cumprod, config.steps), config)


def _range_map(
    x: torch.Tensor, use: bool,
) -> tuple[torch.Tensor, Callable[[torch.Tensor, Any], torch.Tensor], list[dict]]:
    """x on the training photographs' range where it is a low-contrast image (method/range_map.py),
    the map back for the rows of an edited subset, and per image what was done, for the log.
    A batch with nothing to stretch is passed through as it is."""
    if not use:
        return x, lambda y, _: y, [{}] * len(x)
    a, b = M.range_map.fit(x)
    gains = [{"range_gain": round(float(g), 4)} for g in a]
    if bool((a == 1).all()):
        return x, lambda y, _: y, gains
    return M.range_map.apply(x, a, b), lambda y, rows: M.range_map.invert(y, a[rows], b[rows]), gains


def _in_format(module: torch.nn.Module, layout: torch.memory_format) -> bool:
    """Whether the module's 4-d weights (its convolutions) are stored in `layout`."""
    w = next((p for p in module.parameters() if p.ndim == 4), None)
    return w is None or w.is_contiguous(memory_format=layout)


def auto_choices(x: torch.Tensor, levels: M.Levels, config: RestoreConfig) -> list[M.AutoChoice]:
    """The config's given knobs pinned, the rest chosen per image (all given in fixed mode)."""
    return M.choose(
        x, levels, depth=config.depth, epsilon=config.epsilon, langevin_steps=config.langevin_steps,
        max_depth=config.auto_max_depth, finish=config.finish, strength=config.strength, page=config.page,
        decode_steps=config.decode_steps,
    )


def code_params(config: RestoreConfig) -> M.CODEParams:
    return M.CODEParams.from_knobs(**asdict(config))


def image_seed(seed: int, rel_path: str, sample: int = 0) -> int:
    """Per-image seed from the run seed and the image's relative path: independent of
    batch, order and process count."""
    h = hashlib.sha256(f"{seed}\0{rel_path}\0{sample}".encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)

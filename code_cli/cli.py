"""The `code-restore` command: restore every image in a folder with CODE.

The only place that turns library errors into exit codes and messages:
0 all done, 1 some inputs failed (listed), 2 usage/config/model error, 130 interrupted.
"""

from __future__ import annotations

import enum
import os
import signal
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from code_cli import __version__, imageio
from code_cli.errors import CodeRestoreError, ConfigError, InputError, ModelError, NumericalError, OutputError
from code_cli.presets import RestoreConfig, build_config, list_presets
from code_cli.runlog import ImageRecord, RunLog, finished_outputs


class ExitStatus(enum.IntEnum):
    OK = 0
    SOME_FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


err = Console(stderr=True, highlight=False, soft_wrap=True)
out = Console(highlight=False, soft_wrap=True)
app = typer.Typer(add_completion=False, rich_markup_mode=None, context_settings={"help_option_names": ["-h", "--help"]})


def _version(value: bool) -> None:
    if value:
        out.print(f"code-restore {__version__}")
        raise typer.Exit()


def _list_presets(value: bool) -> None:
    if value:
        table = Table("preset", "NFE/image", "description", box=None)
        for name, desc in list_presets().items():
            cfg, _ = build_config(name)
            table.add_row(name, str(cfg.nfe), desc)
        out.print(table)
        raise typer.Exit()


@dataclass
class Job:
    item: imageio.InputItem
    sample: int | None
    dest: Path


class Stop:
    """First Ctrl-C: finish the current image, then stop. Second: stop now."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        err.print("interrupt: stopping after the current image (Ctrl-C again to stop now)")


@app.command(no_args_is_help=True)
def main(
    input: Annotated[Optional[str], typer.Argument(help="image file, folder or glob", show_default=False)] = None,
    output: Annotated[Optional[Path], typer.Argument(help="output folder (created)", show_default=False)] = None,
    preset: Annotated[Optional[str], typer.Option("--preset", "-p", help="preset name or YAML file")] = None,
    model: Annotated[Optional[str], typer.Option(help="embedded name, diffusers folder or hub id")] = None,
    method: Annotated[Optional[str], typer.Option(help="code | sdedit")] = None,
    steps: Annotated[Optional[int], typer.Option(help="N, timestep grid size")] = None,
    depth: Annotated[Optional[int], typer.Option(help="L, latent level on the grid (SDEdit: t0)")] = None,
    langevin_steps: Annotated[Optional[int], typer.Option(help="K, Langevin correction steps")] = None,
    epsilon: Annotated[Optional[float], typer.Option(help="Langevin step relative to sigma^2")] = None,
    cbc: Annotated[Optional[bool], typer.Option("--cbc/--no-cbc", help="confidence-based clipping")] = None,
    eta: Annotated[Optional[float], typer.Option(help="CBC width in standard deviations")] = None,
    quantile: Annotated[Optional[float], typer.Option(help="dynamic-thresholding quantile q")] = None,
    seed: Annotated[Optional[int], typer.Option(help="run seed; each image's seed also depends on its path")] = None,
    samples: Annotated[Optional[int], typer.Option(help="restorations per image")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="images per network batch (same-size images)")] = None,
    device: Annotated[Optional[str], typer.Option(help="auto | cpu | cuda | mps")] = None,
    tile: Annotated[Optional[int], typer.Option(help="run the network on N x N tiles (0 = automatic for large photos)")] = None,
    dtype: Annotated[Optional[str], typer.Option(help="float32 | bfloat16 | float16 (half precision: faster on GPUs)")] = None,
    format: Annotated[str, typer.Option("--format", help="same | png | jpg | webp | tiff")] = "same",
    suffix: Annotated[str, typer.Option(help="added to each output file name")] = "",
    overwrite: Annotated[bool, typer.Option(help="replace existing outputs")] = False,
    skip_existing: Annotated[bool, typer.Option("--skip-existing", "--resume", help="skip outputs already made with this config")] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="descend into sub-folders")] = False,
    dry_run: Annotated[bool, typer.Option(help="list what would be done, restore nothing")] = False,
    grid: Annotated[bool, typer.Option(help="also write an input | output strip per image")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="only errors and the summary")] = False,
    list_presets_: Annotated[bool, typer.Option("--list-presets", callback=_list_presets, is_eager=True, help="list presets and exit")] = False,
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")] = False,
) -> None:
    """Restore corrupted images with CODE (Confident Ordinary Differential Editing)."""
    if input is None or output is None:
        raise typer.BadParameter("INPUT and OUTPUT are both required", param_hint="INPUT OUTPUT")
    if format != "same" and format not in imageio.WRITABLE:
        raise typer.BadParameter(f"must be same or one of {', '.join(imageio.WRITABLE)}", param_hint="--format")
    if overwrite and skip_existing:
        raise typer.BadParameter("choose one of --overwrite and --skip-existing")
    flags = dict(
        model=model, method=method, steps=steps, depth=depth, langevin_steps=langevin_steps, epsilon=epsilon,
        cbc=cbc, eta=eta, quantile=quantile, seed=seed, samples=samples, batch_size=batch_size, device=device,
        tile=tile, dtype=dtype,
    )
    try:
        status = run(input, output, preset, flags, format, suffix, overwrite, skip_existing, recursive, dry_run, grid, quiet)
    except (ConfigError, ModelError) as e:
        err.print(f"error: {e}")
        status = ExitStatus.USAGE
    except (InputError, OutputError) as e:
        err.print(f"error: {e}")
        status = ExitStatus.USAGE
    except KeyboardInterrupt:
        err.print("interrupted")
        status = ExitStatus.INTERRUPTED
    except Exception as e:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("CODE_RESTORE_DEBUG"):
            raise
        err.print(f"internal error: {e.__class__.__name__}: {_first_line(e)} (set CODE_RESTORE_DEBUG=1 for the traceback)")
        status = ExitStatus.USAGE
    raise typer.Exit(int(status))


def plan(items: list[imageio.InputItem], output: Path, cfg: RestoreConfig, fmt: str, suffix: str) -> tuple[list[Job], list[tuple[imageio.InputItem, str]]]:
    """Output path per (input, sample); inputs whose output another input already claims fail."""
    jobs, clashes, claimed = [], [], {}
    for item in items:
        for k in range(cfg.samples):
            sample = k if cfg.samples > 1 else None
            try:
                dest = imageio.output_path(item, output, fmt, suffix, sample)
            except OutputError as e:
                clashes.append((item, str(e)))
                break
            if dest in claimed:
                clashes.append((item, f"{item.path}: output {dest} is already the output of {claimed[dest]}; rename one or use --suffix"))
                break
            claimed[dest] = item.path
            jobs.append(Job(item, sample, dest))
    return jobs, clashes


def run(input: str, output: Path, preset: str | None, flags: dict, fmt: str, suffix: str, overwrite: bool,
        skip_existing: bool, recursive: bool, dry_run: bool, grid: bool, quiet: bool) -> ExitStatus:
    cfg, preset_name = build_config(preset, flags)
    in_root = Path(input)
    if in_root.is_dir() and output.resolve() == in_root.resolve():
        raise ConfigError(f"{output}: OUTPUT is the INPUT folder; choose another folder (inputs are never modified)")
    items = imageio.discover(input, output, recursive)
    if not items:
        raise InputError(f"{input}: no images found ({', '.join(imageio.IMAGE_EXTENSIONS)})" + ("" if recursive else "; use --recursive for sub-folders"))
    jobs, clashes = plan(items, output, cfg, fmt, suffix)
    if dry_run:
        for j in jobs:
            out.print(f"{j.item.path} -> {j.dest}")
        for item, msg in clashes:
            out.print(f"skip {item.path}: {msg}")
        out.print(f"{len(jobs)} restorations, {cfg.nfe} network calls each, {cfg.nfe * len(jobs)} in all (preset {preset_name})")
        return ExitStatus.OK

    from code_cli.pipeline import CODEPipeline  # torch is imported only when there is work

    pipe = CODEPipeline.from_pretrained(cfg.model)
    try:
        output.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"{output}: cannot create the output folder ({e.strerror})") from None
    imageio.remove_stale_temporaries(output)
    imageio.write_text_atomic(output / "config.yaml", f"# preset: {preset_name}\n" + cfg.to_yaml())
    log = RunLog(output, uuid.uuid4().hex[:12])
    params = {**asdict(cfg), "preset": preset_name, "model_sha256": pipe.model_info.weights_sha256, "nfe_formula": cfg.nfe}
    cfg_hash = cfg.hash()
    done = finished_outputs(output) if skip_existing else {}
    base = dict(config_hash=cfg_hash, params=params)

    for item, msg in clashes:
        _fail(log, item, None, msg, quiet, base)
    todo = []
    for j in jobs:
        if j.dest.exists() and not overwrite:
            if skip_existing and done.get(str(j.dest)) == cfg_hash:
                log.write(ImageRecord(str(j.item.path), str(j.dest), "skipped", sample=j.sample or 0, **base))
                continue
            if not skip_existing:
                _fail(log, j.item, j.dest, f"{j.dest}: exists; use --overwrite, or --skip-existing to resume", quiet, base)
                continue
        todo.append(j)

    stop = Stop()
    previous = signal.signal(signal.SIGINT, stop)
    show_bar = not quiet and err.is_terminal
    total_calls = len(todo) * cfg.nfe
    try:
        with _progress(show_bar) as bar:
            img_task = bar.add_task("images", total=len(todo))
            step_task = bar.add_task("network calls", total=total_calls)
            for batch, loaded in _batches(todo, cfg.batch_size, log, quiet, base):
                if stop.requested:
                    break
                for j, im, r in _restore(pipe, batch, loaded, cfg, lambda n: bar.advance(step_task, n)):
                    if isinstance(r, str):
                        _fail(log, j.item, j.dest, r, quiet, base)
                    else:
                        _finish(log, j, im, r, grid, output, quiet, base, show_bar)
                    bar.advance(img_task, 1)
    finally:
        signal.signal(signal.SIGINT, previous)
    _summary(log)
    if stop.requested:
        return ExitStatus.INTERRUPTED
    return ExitStatus.SOME_FAILED if log.counts["failed"] else ExitStatus.OK


def _restore(pipe, batch: list[Job], loaded: list[imageio.LoadedImage], cfg: RestoreConfig, progress):
    """(job, image, result or error message) per job. A batch that fails (CUDA out of
    memory, a model error) is retried one image at a time, so one image cannot sink the rest."""
    import torch

    from code_cli.pipeline import image_seed

    seeds = [image_seed(cfg.seed, j.item.rel.as_posix(), j.sample or 0) for j in batch]
    try:
        # one network call advances every image of the batch by one step
        results = pipe(torch.stack([im.rgb for im in loaded]), seeds=seeds, config=cfg,
                       progress=lambda n: progress(n * len(batch)))
        return list(zip(batch, loaded, results))
    except (RuntimeError, ValueError) as e:
        if len(batch) > 1:
            err.print(f"warning: a batch of {len(batch)} failed ({_first_line(e)}); retrying one image at a time")
            return [t for j, im in zip(batch, loaded) for t in _restore(pipe, [j], [im], cfg, progress)]
        return [(batch[0], loaded[0], f"{batch[0].item.path}: restoration failed ({_first_line(e)})")]


def _first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [e.__class__.__name__])[0][:200]


def _progress(show: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
        console=err, disable=not show, transient=False,
    )


def _batches(jobs: list[Job], size: int, log: RunLog, quiet: bool, base: dict):
    """Consecutive same-size jobs grouped up to `size`; unreadable inputs are logged and dropped."""
    batch, loaded = [], []
    for j in jobs:
        try:
            im = imageio.load(j.item.path)
        except InputError as e:
            _fail(log, j.item, j.dest, str(e), quiet, base)
            continue
        if batch and (len(batch) == size or loaded[0].rgb.shape != im.rgb.shape):
            yield batch, loaded
            batch, loaded = [], []
        batch.append(j)
        loaded.append(im)
    if batch:
        yield batch, loaded


def _finish(log: RunLog, j: Job, im: imageio.LoadedImage, r, grid: bool, output: Path, quiet: bool, base: dict, bar: bool) -> None:
    try:
        if not r.finite:
            raise NumericalError(f"{j.item.path}: the model produced NaN or Inf; nothing written")
        restored = imageio.to_pil(r.image, im)
        imageio.save_atomic(restored, j.dest, im.icc)
        if grid:
            before = imageio.to_pil(im.rgb, im)
            gdest = output / "grids" / j.dest.relative_to(output).with_suffix(".png")
            imageio.save_atomic(imageio.strip([before, restored]), gdest, None)
    except CodeRestoreError as e:
        _fail(log, j.item, j.dest, str(e), quiet, base)
        return
    log.write(ImageRecord(
        str(j.item.path), str(j.dest), "ok", sample=j.sample or 0, seed=r.seed, nfe=r.nfe, seconds=round(r.seconds, 3),
        note=im.note, config_hash=base["config_hash"], params={**base["params"], **r.info},
    ))
    if not quiet and not bar:
        err.print(f"ok {j.item.path} -> {j.dest} ({r.nfe} calls, {r.seconds:.1f} s)")


def _fail(log: RunLog, item: imageio.InputItem, dest: Path | None, msg: str, quiet: bool, base: dict) -> None:
    log.write(ImageRecord(str(item.path), str(dest) if dest else None, "failed", error=msg, **base))
    err.print(f"error: {msg}")


def _summary(log: RunLog) -> None:
    table = Table(box=None, show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for status in ("ok", "skipped", "failed"):
        table.add_row(status, str(log.counts[status]))
    table.add_row("log", str(log.path))
    out.print(table)
    if log.failed:
        out.print("failed inputs:")
        for path, _ in log.failed:
            out.print(f"  {path}")


def entrypoint() -> None:
    app(prog_name="code-restore")

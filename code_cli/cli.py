"""The `code-restore` command: restore every image in a folder with CODE.

Typer options, the config merge and the one place that turns library errors into
exit codes and messages: 0 all done, 1 some inputs failed (listed), 2 usage, config
or model error, 130 interrupted. The run itself is code_cli.runner.
"""

from __future__ import annotations

from code_cli import threads

threads.passive_openmp()  # before torch (imported by imageio) starts its OpenMP runtime

import enum  # noqa: E402
import os  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Annotated, Optional  # noqa: E402

import typer  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402
from rich.text import Text  # noqa: E402
from typer.core import TyperCommand  # noqa: E402

from code_cli import __version__, distributed, imageio  # noqa: E402
from code_cli.errors import ConfigError, InputError, ModelError, OutputError  # noqa: E402
from code_cli.presets import RestoreConfig, build_config, list_presets  # noqa: E402
from code_cli.runner import Events, Job, Plan, Run, RunSpec, Summary, first_line  # noqa: E402


class ExitStatus(enum.IntEnum):
    OK = 0
    SOME_FAILED = 1
    USAGE = 2
    INTERRUPTED = 130


# markup and emoji off: file names like "photo[1].png" or "a:smile:.png" must print as they are. Emoji
# codes would also be imported lazily on the first print, and a Ctrl-C landing inside that import
# left rich half-imported (an "internal error" instead of exit 130).
err = Console(stderr=True, highlight=False, soft_wrap=True, markup=False, emoji=False)
out = Console(highlight=False, soft_wrap=True, markup=False, emoji=False)
FORMATS = ["same", *dict.fromkeys(imageio.WRITABLE)]


class Command(TyperCommand):
    """An unquoted glob reaches us as many paths: say to quote it, not just "unexpected extra argument"."""

    def parse_args(self, ctx, args: list[str]) -> list[str]:
        rest = super().parse_args(ctx, args)  # extra arguments are allowed here only to be caught below
        if ctx.args:
            ctx.fail(f"got {len(ctx.args)} more path(s) than INPUT and OUTPUT ({' '.join(ctx.args[:3])}"
                     f"{' ...' if len(ctx.args) > 3 else ''}); INPUT is one file, folder or glob: quote a glob "
                     "('photos/*.jpg') so the shell passes it unexpanded")
        return rest


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


class Stop:
    """First Ctrl-C: stop at the next network call, keeping every finished image. Second: stop now."""

    def __init__(self) -> None:
        self.requested = False

    def __call__(self, signum, frame) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        err.print("interrupt: stopping at the next network call; finished images are kept (Ctrl-C again to stop now)")


@app.command(no_args_is_help=True, cls=Command, context_settings={"allow_extra_args": True})
def main(
    input: Annotated[
        Optional[str], typer.Argument(help="image file, folder or quoted glob", show_default=False)
    ] = None,
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
    tile: Annotated[
        Optional[int], typer.Option(help="run the network on N x N tiles (0 = automatic for large photos)")
    ] = None,
    dtype: Annotated[
        Optional[str], typer.Option(
            help="auto | float32 | bfloat16 | float16 (auto: bfloat16 on CPUs with bfloat16 instructions, else float32)"
        )
    ] = None,
    range_map: Annotated[
        Optional[str], typer.Option(
            help="auto | on | off: edit low-contrast images on the training photographs' range, then map back "
                 "(auto: fixed-depth presets only)"
        )
    ] = None,
    strength: Annotated[
        Optional[float], typer.Option(
            help="auto mode: how much to act, (0, 4]; above 1 it treats weaker noise and enters deeper, below 1 "
                 "it leaves more alone (default 1, the measured rule)"
        )
    ] = None,
    threads: Annotated[
        int, typer.Option("--threads", help="CPU threads for the network (0 = the CPUs this process may use)")
    ] = 0,
    format: Annotated[str, typer.Option("--format", help=" | ".join(FORMATS))] = "same",
    suffix: Annotated[str, typer.Option(help="added to each output file name")] = "",
    overwrite: Annotated[bool, typer.Option(help="replace existing outputs")] = False,
    skip_existing: Annotated[
        bool,
        typer.Option("--skip-existing", "--resume",
            help="skip outputs run.jsonl shows this config made; refuse other existing files")
    ] = False,
    recursive: Annotated[bool, typer.Option("--recursive", "-r", help="descend into sub-folders")] = False,
    dry_run: Annotated[
        bool, typer.Option(help="list what would be done and estimate its time; restore nothing")
    ] = False,
    grid: Annotated[bool, typer.Option(help="also write an input | output strip per image")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="only errors and the summary")] = False,
    list_presets_: Annotated[
        bool, typer.Option("--list-presets", callback=_list_presets, is_eager=True, help="list presets and exit")
    ] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    """Restore corrupted images with CODE (Confident Ordinary Differential Editing)."""
    if input is None or output is None:
        raise typer.BadParameter("INPUT and OUTPUT are both required", param_hint="INPUT OUTPUT")
    if format not in FORMATS:
        raise typer.BadParameter(f"must be one of {', '.join(FORMATS)}", param_hint="--format")
    if overwrite and skip_existing:
        raise typer.BadParameter("choose one of --overwrite and --skip-existing")
    if threads < 0:
        raise typer.BadParameter("must be >= 0 (0 = the CPUs this process may use)", param_hint="--threads")
    flags = dict(
        model=model, method=method, steps=steps, depth=depth, langevin_steps=langevin_steps, epsilon=epsilon,
        cbc=cbc, eta=eta, quantile=quantile, seed=seed, samples=samples, batch_size=batch_size, device=device,
        tile=tile, dtype=dtype, range_map=range_map, strength=strength,
    )
    spec = RunSpec(input=input, output=output, fmt=format, suffix=suffix, overwrite=overwrite,
                   skip_existing=skip_existing, recursive=recursive, grid=grid)
    try:
        status = _run(spec, preset, flags, threads, dry_run, quiet)
    except (ConfigError, ModelError, InputError, OutputError) as e:
        err.print(f"error: {e}")
        status = ExitStatus.USAGE
    except KeyboardInterrupt:
        err.print("interrupted before any image was restored")
        status = ExitStatus.INTERRUPTED
    except Exception as e:  # a bug, not bad input: one line, the traceback on request
        if os.environ.get("CODE_RESTORE_DEBUG"):
            raise
        err.print(f"internal error: {e.__class__.__name__}: {first_line(e)} "
                  "(set CODE_RESTORE_DEBUG=1 for the traceback)")
        status = ExitStatus.USAGE
    raise typer.Exit(int(status))


def _run(spec: RunSpec, preset: str | None, flags: dict, threads_: int, dry_run: bool, quiet: bool) -> ExitStatus:
    cfg, preset_name = build_config(preset, flags)
    rank = distributed.from_env()
    run = Run(spec, cfg, preset_name, rank=rank)
    plan = run.plan()

    # torch is imported only when there is work; the device and the model are ready before
    # anything is created in OUTPUT, so a failed start leaves nothing behind.
    import torch

    from code_cli.pipeline import resolve_device
    from code_cli.routing import load_pipeline

    try:
        device = resolve_device(cfg.device)
    except ConfigError as e:
        raise ConfigError(f"--{e}" if flags.get("device") else f"{e} (set by preset {preset_name})") from None
    if device.type == "cuda" and rank.multi:
        torch.cuda.set_device(rank.local_rank)  # "cuda" now means this process's GPU
    if device.type == "cpu":
        # processes on one machine share its CPUs
        threads_ = threads.configure(threads_ or max(1, threads.available_cpus() // rank.local_world))
    distributed.init(rank, device.type)
    pipe = load_pipeline(cfg.model)
    if dry_run:
        if rank.is_main:
            _dry_run(pipe, plan, cfg, preset_name, device, threads_)
        return ExitStatus.OK

    bar = _progress(show=not quiet and err.is_terminal and not rank.multi)
    run.events = TerminalEvents(bar, quiet, prefix=f"[rank {rank.rank}] " if rank.multi else "")
    try:
        run.start(pipe)
        stop = Stop()
        previous = signal.signal(signal.SIGINT, stop)
        try:
            with bar:
                summary = run.execute(pipe, plan, stop=lambda: stop.requested)
        finally:
            signal.signal(signal.SIGINT, previous)
        summary = run.finish(summary)
    finally:
        distributed.finish(rank)
    if rank.is_main:
        _summary(summary)
    if summary.interrupted:
        return ExitStatus.INTERRUPTED
    return ExitStatus.SOME_FAILED if summary.failed else ExitStatus.OK


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _dry_run(pipe, plan: Plan, cfg: RestoreConfig, preset_name: str, device, threads_: int) -> None:
    """The plan, what auto mode would choose for each image, and the time from a short calibration
    of this model on this device."""
    from code_cli.cost import MODEL_AUTO, prior_choice_calls
    from code_cli.pipeline import image_seed
    from code_cli.routing import SCORE_WINDOW
    from code_cli.runner import estimate_seconds

    auto = cfg.auto_mode
    # --model auto's calls run on a window of the image, not on all of it: timed at the window's size
    routing = prior_choice_calls() if cfg.model == MODEL_AUTO else 0
    total_calls, total_seconds, unedited, tiled = 0, 0.0, 0, []
    estimates = {}
    for j in plan.jobs:
        try:
            size = imageio.peek_size(j.item.path)
            calls, why = cfg.nfe, ""
            if auto:  # the choice reads the pixels (--model auto: a few calls on a window), so the image is decoded
                seed = image_seed(cfg.seed, j.item.rel.as_posix(), j.sample or 0)
                [choice] = pipe.choose(imageio.load(j.item.path).rgb[None], cfg, seeds=[seed])
                calls, why = choice.nfe, f": {choice.reason} ({_plural(choice.nfe, 'call')})"
                unedited += not choice.edit
        except InputError as e:
            out.print(f"unreadable: {e}")
            continue
        out.print(f"{j.item.path} -> {j.dest}{why}")
        if size not in estimates:
            estimates[size] = estimate_seconds(pipe, cfg, size)
        est = estimates[size]
        window = (min(size[0], SCORE_WINDOW), min(size[1], SCORE_WINDOW))
        if routing and window not in estimates:
            estimates[window] = estimate_seconds(pipe, cfg, window)
        whole = calls - routing  # calls on the whole image (or its tiles)
        total_calls += calls
        total_seconds += est.seconds_per_call * whole + (estimates[window].seconds_per_call * routing if routing else 0)
        if est.tiles > 1 and whole:
            tiled.append((j.item.path, size, est, whole))
    for item, msg in plan.clashes:
        out.print(f"skip {item.path}: {msg}")
    n = len(plan.jobs)
    where = f"{device.type}" + (f", {_plural(threads_, 'thread')}" if device.type == "cpu" else "")
    cost = (f"chosen per image, {unedited} left unedited" if auto
            else f"{_plural(cfg.nfe, 'network call')} each")
    out.print(f"{_plural(n, 'restoration')}, {cost}, {total_calls} network calls in all (preset {preset_name}); "
              f"about {_duration(total_seconds)} on {where}")
    for path, (w, h), est, calls in tiled:
        out.print(f"{path}: {w}x{h} runs each network call on {est.tiles} tiles of {est.tile} px "
                  f"(about {_duration(est.seconds_per_call * calls)} for this image)")


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


class CallsETA(ProgressColumn):
    """Time left from the mean seconds per network call so far. Rich's own estimate needs several
    updates within 30 s, which a large photo's calls (minutes each) never give it."""

    def render(self, task) -> Text:
        if not task.completed or task.total is None or task.elapsed is None:
            return Text("eta -:--:--", style="progress.remaining")
        left = task.elapsed / task.completed * (task.total - task.completed)
        return Text(f"eta {time.strftime('%H:%M:%S', time.gmtime(left))}", style="progress.remaining")


def _progress(show: bool) -> Progress:
    return Progress(
        TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        CallsETA(), console=err, disable=not show, transient=False,
    )


class TerminalEvents(Events):
    """A line per finished image (above the bars in a terminal), the current file, the bars."""

    def __init__(self, bar: Progress, quiet: bool, prefix: str = ""):
        self.bar, self.quiet, self.prefix = bar, quiet, prefix
        self.images = self.calls_task = None

    def started(self, todo: list[Job], calls_per_image: int, at_most: bool) -> None:
        self.images = self.bar.add_task("images", total=len(todo))
        # auto mode chooses each image's calls as it loads it: the total is a bound, so is its ETA
        label = "network calls (at most)" if at_most else "network calls"
        self.calls_task = self.bar.add_task(label, total=len(todo) * calls_per_image)

    def batch(self, jobs: list[Job]) -> None:
        more = f" (+{len(jobs) - 1})" if len(jobs) > 1 else ""
        self.bar.update(self.images, description=f"{jobs[0].item.path.name}{more}")

    def calls(self, n: int) -> None:
        self.bar.advance(self.calls_task, n)

    def done(self, job: Job, seconds: float, nfe: int, edited: bool = True) -> None:
        self.bar.advance(self.images, 1)
        if not self.quiet:
            if not edited:  # --model auto spends calls choosing the prior even then
                cost = "left unedited" + (f", {nfe} calls choosing the prior" if nfe else "")
            else:
                cost = f"{nfe} calls, {seconds:.1f} s" if nfe else "corrected, no network calls"
            err.print(f"{self.prefix}ok {job.item.path} -> {job.dest} ({cost})")

    def skipped(self, job: Job) -> None:
        if not self.quiet:
            err.print(f"{self.prefix}skipped {job.dest} (made by this config in an earlier run)")

    def failed(self, message: str) -> None:
        if self.images is not None:
            self.bar.advance(self.images, 1)
        err.print(f"{self.prefix}error: {message}")

    def warning(self, message: str) -> None:
        err.print(f"{self.prefix}warning: {message}")

    def ended(self, interrupted: bool) -> None:
        if self.calls_task is not None and not interrupted:  # auto's bound was not all spent: show what was
            task = next(t for t in self.bar.tasks if t.id == self.calls_task)
            self.bar.update(self.calls_task, total=task.completed)


def _summary(s: Summary) -> None:
    table = Table(box=None, show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    for status, n in (("ok", s.ok), ("skipped", s.skipped), ("failed", len(s.failed))):
        table.add_row(status, str(n))
    table.add_row("log", str(s.log))
    out.print(table)
    if s.failed:
        out.print("failed inputs:")
        for path, _ in s.failed:
            out.print(f"  {path}")
    if s.interrupted:
        err.print(f"interrupted: {s.ok} done, {s.left} left; resume with --skip-existing")


def entrypoint() -> None:
    app(prog_name="code-restore")

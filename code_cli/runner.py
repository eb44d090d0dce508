"""One run of the tool: find the inputs, plan the outputs, restore them in batches, log each one.

The CLI and the benchmark both drive a `Run`; what a person sees (bars, lines,
colours) arrives through an `Events` object, so the loop itself never prints.

    run = Run(RunSpec(input="in/", output=Path("out")), cfg, "default", events)
    plan = run.plan()                       # discovery and output names; touches nothing
    run.start(pipe)                         # OUTPUT is created only now, with the model loaded
    summary = run.finish(run.execute(pipe, plan, stop=lambda: False))

Existing outputs are only replaced with `overwrite`; `skip_existing` skips an
output only when run.jsonl proves this config wrote it and the file is still
what was written (its SHA-256). Anything else is left alone and reported.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from code_cli import distributed, imageio
from code_cli.errors import CodeRestoreError, InputError, NumericalError, OutputError
from code_cli.presets import RestoreConfig
from code_cli.runlog import LOG_NAME, ImageRecord, RunLog, finished_outputs, merge_rank_logs, rank_log_name

CONFIG_DIR = "configs"  # OUTPUT/configs/<config hash>.yaml: the exact config behind each log line


class Stopped(Exception):
    """Raised from the progress callback when a stop was asked for: the batch is abandoned."""


@dataclass(frozen=True)
class RunSpec:
    """What to restore and where; everything about the pixels is in RestoreConfig."""

    input: str
    output: Path
    fmt: str = "same"
    suffix: str = ""
    overwrite: bool = False
    skip_existing: bool = False
    recursive: bool = False
    grid: bool = False


@dataclass(frozen=True)
class Job:
    item: imageio.InputItem
    sample: int | None
    dest: Path


@dataclass(frozen=True)
class Plan:
    jobs: list[Job]
    clashes: list[tuple[imageio.InputItem, str]]  # inputs whose output name another input claims


@dataclass
class Summary:
    ok: int = 0
    skipped: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (input, message)
    left: int = 0  # planned restorations not attempted (interrupted)
    interrupted: bool = False
    log: Path | None = None


class Events:
    """What a run reports; the default ignores everything. Override what you show."""

    def started(self, todo: list[Job], calls_per_image: int, at_most: bool) -> None: ...  # at_most: auto mode

    def batch(self, jobs: list[Job]) -> None: ...

    def calls(self, n: int) -> None: ...  # network calls just spent, summed over the batch

    # edited: False when the output is the input as it came (auto left it alone)
    def done(self, job: Job, seconds: float, nfe: int, edited: bool = True) -> None: ...

    def skipped(self, job: Job) -> None: ...

    def failed(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...

    def ended(self, interrupted: bool) -> None: ...


class Run:
    def __init__(self, spec: RunSpec, cfg: RestoreConfig, preset_name: str, events: Events | None = None,
                 rank: distributed.Rank | None = None):
        self.spec, self.cfg, self.preset_name = spec, cfg, preset_name
        self.events = events or Events()
        self.rank = rank or distributed.Rank()
        self.run_id = uuid.uuid4().hex[:12]
        self.log: RunLog | None = None
        self.base: dict = {}
        self._attempted = 0

    # -- planning: reads the input tree, writes nothing ------------------------------------------

    def plan(self) -> Plan:
        spec = self.spec
        root = Path(spec.input)
        if root.is_dir() and spec.output.resolve() == root.resolve():
            raise InputError(f"{spec.output}: OUTPUT is the INPUT folder; choose another folder "
                             "(inputs are never modified)")
        items = imageio.discover(spec.input, spec.output, spec.recursive)
        if not items:
            exts = ", ".join(imageio.IMAGE_EXTENSIONS)
            hint = "" if spec.recursive else "; use --recursive for sub-folders"
            raise InputError(f"{spec.input}: no images found ({exts}){hint}")
        full = plan_outputs(items, spec.output, self.cfg, spec.fmt, spec.suffix)
        # Output names are claimed over the whole input list, so every rank sees the same clashes;
        # rank 0 reports them, and each rank takes its share of the jobs.
        clashes = full.clashes if self.rank.is_main else []
        return Plan(distributed.shard(full.jobs, self.rank), clashes)

    # -- starting: only once the model and device are ready --------------------------------------

    def start(self, pipe) -> None:
        """Create OUTPUT, clear a killed run's temporaries, record the config, open the log.
        In a multi-process run every rank takes rank 0's run id, and rank 0 starts first: the
        others would race its clean-up of temporaries."""
        self.run_id = distributed.broadcast(self.rank, self.run_id)
        if self.rank.is_main:
            self._start(pipe)
        distributed.barrier(self.rank)
        if not self.rank.is_main:
            self._start(pipe)

    def finish(self, summary: Summary) -> Summary:
        """One process: the summary as is. Several: wait for all, and on rank 0 merge the per-rank
        logs into run.jsonl and add up the summaries (other ranks keep their own)."""
        if not self.rank.multi:
            return summary
        everyone = distributed.gather(self.rank, summary)
        distributed.barrier(self.rank)  # every rank has closed its log
        if not self.rank.is_main:
            return summary
        merge_rank_logs(self.spec.output)
        return Summary(
            ok=sum(s.ok for s in everyone), skipped=sum(s.skipped for s in everyone),
            failed=[f for s in everyone for f in s.failed], left=sum(s.left for s in everyone),
            interrupted=any(s.interrupted for s in everyone), log=self.spec.output / LOG_NAME,
        )

    def _start(self, pipe) -> None:
        out = self.spec.output
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OutputError(f"{out}: cannot create the output folder ({e.strerror})") from None
        if self.rank.is_main:
            imageio.remove_stale_temporaries(out)
        cfg_hash = self.cfg.hash()
        cfg_file = out / CONFIG_DIR / f"{cfg_hash}.yaml"
        if not cfg_file.exists():  # same hash, same content: written once, never rewritten
            head = f"# preset: {self.preset_name}\n# config_hash: {cfg_hash}\n"
            imageio.write_text_atomic(cfg_file, head + self.cfg.to_yaml())
        self.log = RunLog(out, self.run_id, rank_log_name(self.rank.rank) if self.rank.multi else LOG_NAME)
        params = {**asdict(self.cfg), "preset": self.preset_name, "model_sha256": pipe.model_info.weights_sha256,
                  "nfe_formula": self.cfg.nfe}
        self.base = dict(config_hash=cfg_hash, params=params)

    # -- executing -------------------------------------------------------------------------------

    def execute(self, pipe, plan: Plan, stop: Callable[[], bool] = lambda: False) -> Summary:
        """Restore every planned job; per-file failures are logged and the run goes on."""
        assert self.log is not None, "call start() first"
        summary = Summary(log=self.log.path)
        for item, msg in plan.clashes:
            self._fail(summary, item, None, msg)
        todo = self._triage(plan.jobs, summary)
        self.events.started(todo, self.cfg.nfe, at_most=self.cfg.auto_mode)
        self._attempted = 0
        try:
            for batch, loaded in self._batches(todo, summary):
                if stop():
                    raise Stopped
                self.events.batch(batch)
                for job, im, r in self._restore(pipe, batch, loaded, stop):
                    self._attempted += 1
                    if isinstance(r, str):
                        self._fail(summary, job.item, job.dest, r)
                    else:
                        self._write(summary, job, im, r)
        except (Stopped, KeyboardInterrupt):
            summary.interrupted = True
        self.events.ended(summary.interrupted)
        summary.left = len(todo) - self._attempted
        return summary

    def _triage(self, jobs: list[Job], summary: Summary) -> list[Job]:
        """Jobs to run; existing outputs are skipped (proved ours) or reported, never replaced unasked."""
        spec = self.spec
        proof = finished_outputs(spec.output) if spec.skip_existing else {}
        todo = []
        for j in jobs:
            if spec.overwrite or not j.dest.exists():
                todo.append(j)
                continue
            if not spec.skip_existing:
                self._fail(summary, j.item, j.dest, f"{j.dest}: exists; use --overwrite, or --skip-existing to resume")
                continue
            why = _why_not_ours(proof, j, spec.output, self.base["config_hash"])
            if why:
                self._fail(summary, j.item, j.dest, f"{j.dest}: exists and {why}; use --overwrite to replace it")
                continue
            self.log.write(ImageRecord(str(j.item.path), str(j.dest), "skipped", sample=j.sample or 0,
                                       relpath=_rel(j.dest, spec.output), **self.base))
            summary.skipped += 1
            self.events.skipped(j)
        return todo

    def _batches(self, jobs: list[Job], summary: Summary) -> Iterator[tuple[list[Job], list[imageio.LoadedImage]]]:
        """Consecutive same-size jobs grouped up to batch_size; unreadable inputs are logged and dropped."""
        batch, loaded = [], []
        for j in jobs:
            try:
                im = imageio.load(j.item.path)
            except InputError as e:
                self._attempted += 1
                self._fail(summary, j.item, j.dest, str(e))
                continue
            if batch and (len(batch) == self.cfg.batch_size or loaded[0].rgb.shape != im.rgb.shape):
                yield batch, loaded
                batch, loaded = [], []
            batch.append(j)
            loaded.append(im)
        if batch:
            yield batch, loaded

    def _restore(self, pipe, batch: list[Job], loaded: list[imageio.LoadedImage], stop: Callable[[], bool]):
        """(job, image, result or error message) per job. A batch that fails (CUDA out of memory,
        a model error) is retried one image at a time, so one image cannot sink the rest."""
        import torch

        from code_cli.pipeline import image_seed

        seeds = [image_seed(self.cfg.seed, j.item.rel.as_posix(), j.sample or 0) for j in batch]

        def progress(n: int) -> None:
            self.events.calls(n * len(batch))  # one call advances every image of the batch
            if stop():
                raise Stopped

        try:
            results = pipe(torch.stack([im.rgb for im in loaded]), seeds=seeds, config=self.cfg, progress=progress)
            return list(zip(batch, loaded, results))
        except (RuntimeError, ValueError) as e:
            if len(batch) > 1:
                self.events.warning(f"a batch of {len(batch)} failed ({first_line(e)}); retrying one image at a time")
                return [t for j, im in zip(batch, loaded) for t in self._restore(pipe, [j], [im], stop)]
            return [(batch[0], loaded[0], f"{batch[0].item.path}: restoration failed ({first_line(e)})")]

    def _write(self, summary: Summary, j: Job, im: imageio.LoadedImage, r) -> None:
        out = self.spec.output
        try:
            if not r.finite:
                raise NumericalError(f"{j.item.path}: the model produced NaN or Inf; nothing written")
            restored = imageio.to_pil(r.image, im)
            if self.spec.grid:
                before = imageio.to_pil(im.rgb, im)
                gdest = out / "grids" / j.dest.relative_to(out).with_suffix(".png")
                imageio.save_atomic(imageio.strip([before, restored]), gdest, None)

            def record(digest: str) -> None:
                # Logged before the rename: a kill between the two leaves a log line for a file that is
                # not there (redone on resume), never a file the log cannot vouch for.
                self.log.write(ImageRecord(
                    str(j.item.path), str(j.dest), "ok", sample=j.sample or 0, seed=r.seed, nfe=r.nfe,
                    seconds=round(r.seconds, 3), note=im.note, relpath=_rel(j.dest, out), sha256=digest,
                    config_hash=self.base["config_hash"], params={**self.base["params"], **r.info},
                ))

            imageio.save_atomic(restored, j.dest, im.icc, before_rename=record)
        except CodeRestoreError as e:
            self._fail(summary, j.item, j.dest, str(e))
            return
        summary.ok += 1
        # auto mode says whether it edited; a fixed method always edits
        self.events.done(j, r.seconds, r.nfe, edited=r.info.get("auto", {}).get("edit", True))

    def _fail(self, summary: Summary, item: imageio.InputItem, dest: Path | None, msg: str) -> None:
        self.log.write(ImageRecord(str(item.path), str(dest) if dest else None, "failed", error=msg,
                                   relpath=_rel(dest, self.spec.output) if dest else None, **self.base))
        summary.failed.append((str(item.path), msg))
        self.events.failed(msg)


def plan_outputs(items: list[imageio.InputItem], output: Path, cfg: RestoreConfig, fmt: str, suffix: str) -> Plan:
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
                clashes.append((item, f"{item.path}: output {dest} is already the output of {claimed[dest]}; "
                                      "rename one or use --suffix"))
                break
            claimed[dest] = item.path
            jobs.append(Job(item, sample, dest))
    return Plan(jobs, clashes)


def _rel(dest: Path, output: Path) -> str:
    return dest.relative_to(output).as_posix()


def _why_not_ours(proof: dict, j: Job, output: Path, cfg_hash: str) -> str | None:
    """None if the log proves this config made the file as it is now; else the reason it does not."""
    rec = proof.get(_rel(j.dest, output)) or proof.get(str(j.dest))
    if rec is None:
        return f"{output / 'run.jsonl'} has no record of making it"
    if rec.config_hash != cfg_hash:
        return "was made with another config (seed, depth, model, ...)"
    if rec.input != str(j.item.path) and Path(rec.input).resolve() != j.item.path.resolve():
        return f"was made from another input ({rec.input})"
    if rec.sha256 is not None and imageio.file_sha256(j.dest) != rec.sha256:
        return "was changed since it was written"
    return None


@dataclass(frozen=True)
class Estimate:
    seconds_per_call: float  # for one image of this size
    tiles: int  # network evaluations per call (1 = untiled)
    tile: int  # tile edge in pixels, 0 = untiled


_CALIBRATION: dict[tuple, float] = {}


def estimate_seconds(pipe, cfg: RestoreConfig, size: tuple[int, int], edge: int = 128) -> Estimate:
    """Seconds per network call for one image of `size` (W, H), from timing this model on this device
    at edge x edge pixels (at the tile's edge when the image is tiled: the cost per pixel depends on the
    size evaluated) and scaling by the pixels each call evaluates, tiles included. A first call warms up
    (allocations, kernel choice)."""
    import torch

    from code_cli import tiles as T
    from code_cli.pipeline import tile_overlap

    # --model auto (routing.PriorRouter): its priors share one architecture; time one of them, as
    # timing the router would add its choice's calls to every calibration call
    pipe = getattr(pipe, "default", pipe)
    w, h = size
    tile = 0 if pipe.size_mode(cfg.size_policy) == "resize" else pipe.tile_size(cfg.tile, (h, w))
    edge = tile or edge

    key = (id(pipe), cfg.device, cfg.dtype, edge)
    if key not in _CALIBRATION:
        probe = replace(cfg, method="sdedit", steps=1000, tile=0, samples=1, batch_size=1)
        x = torch.zeros(1, 3, edge, edge)
        pipe(x, seeds=[0], config=replace(probe, depth=1))
        start = time.perf_counter()
        pipe(x, seeds=[0], config=replace(probe, depth=3))
        _CALIBRATION[key] = (time.perf_counter() - start) / 3 / (edge * edge)
    if pipe.size_mode(cfg.size_policy) == "resize":
        s = pipe.unet.config.sample_size
        return Estimate(_CALIBRATION[key] * (s * s if isinstance(s, int) else s[0] * s[1]), 1, 0)
    n = T.count(h, w, tile, tile_overlap(tile)) if tile else 1
    pixels = n * tile * tile if tile else h * w
    return Estimate(_CALIBRATION[key] * pixels, n, tile)


def first_line(e: BaseException) -> str:
    return (str(e).splitlines() or [e.__class__.__name__])[0][:200]

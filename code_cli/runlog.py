"""run.jsonl: one JSON line per image attempt, appended and flushed as each finishes.

Lines are only ever appended (never rewritten), each in one write() followed
by fsync, so an interrupted run keeps every finished record and a resumed run
can read them back to decide what to skip.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from code_cli.errors import OutputError

LOG_NAME = "run.jsonl"


@dataclass
class ImageRecord:
    input: str
    output: str | None
    status: str  # ok | failed | skipped
    error: str | None = None
    sample: int = 0
    seed: int | None = None
    nfe: int | None = None
    seconds: float | None = None
    note: str = ""
    relpath: str | None = None  # the output relative to OUTPUT: the key --skip-existing looks up
    sha256: str | None = None  # of the output file as written: proves it was not changed since
    config_hash: str = ""
    run_id: str = ""
    params: dict[str, Any] = field(default_factory=dict)


def _append(path: Path, text: str) -> None:
    """One write() in append mode, then fsync: lines from concurrent writers never interleave, and a
    record is on disk before the caller goes on. The mode is the umask's, as for any new file."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        os.write(fd, text.encode("utf-8", "surrogateescape"))
        os.fsync(fd)
    finally:
        os.close(fd)


def rank_log_name(rank: int) -> str:
    """Each process of a multi-process run appends to its own log; rank 0 merges them at the end."""
    return f"run.rank{rank}.jsonl"


class RunLog:
    def __init__(self, out_dir: Path, run_id: str, name: str = LOG_NAME):
        self.path = out_dir / name
        self.run_id = run_id
        self.counts: Counter[str] = Counter()
        self.failed: list[tuple[str, str]] = []

    def write(self, rec: ImageRecord) -> None:
        rec.run_id = self.run_id
        line = json.dumps(asdict(rec), ensure_ascii=False, sort_keys=False) + "\n"
        try:
            _append(self.path, line)
        except OSError as e:
            raise OutputError(f"{self.path}: cannot write the run log ({e.strerror or e.__class__.__name__})") from None
        self.counts[rec.status] += 1
        if rec.status == "failed":
            self.failed.append((rec.input, rec.error or ""))


@dataclass(frozen=True)
class Made:
    """What the log says about one output the tool wrote."""

    input: str
    config_hash: str
    sha256: str | None  # None in logs written before outputs were hashed


def _logs(out_dir: Path) -> list[Path]:
    """run.jsonl, then any per-rank logs a multi-process run has not merged yet (a crashed rank's)."""
    return [p for p in [out_dir / LOG_NAME, *sorted(out_dir.glob("run.rank*.jsonl"))] if p.is_file()]


def finished_outputs(out_dir: Path) -> dict[str, Made]:
    """Output (relative to OUTPUT; the path as logged for older logs) -> its last successful record.

    A later failed attempt at the same output does not erase the proof: a failed attempt
    never touches the file (writes are atomic)."""
    done: dict[str, Made] = {}
    for path in _logs(out_dir):
        with path.open(encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line cut by SIGKILL: that image is simply redone
                if rec.get("status") == "ok" and rec.get("output"):
                    key = rec.get("relpath") or rec["output"]
                    done[key] = Made(rec.get("input", ""), rec.get("config_hash", ""), rec.get("sha256"))
    return done


def merge_rank_logs(out_dir: Path) -> int:
    """Append every per-rank log to run.jsonl (in rank order, one write, fsynced), then remove them.
    Returns the number of lines merged."""
    ranks = sorted(out_dir.glob("run.rank*.jsonl"), key=lambda p: int(p.name[8:-6] or 0))
    text = "".join(p.read_text(encoding="utf-8", errors="surrogateescape") for p in ranks)
    text = "".join(line + "\n" for line in text.splitlines() if line.strip())
    if text:
        _append(out_dir / LOG_NAME, text)
    for p in ranks:
        p.unlink()
    return text.count("\n")

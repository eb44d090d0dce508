"""A benchmark run on disk (run.npz), so that a later run can keep what it measured (--reuse).

Re-measuring one changed preset should not cost the hour the whole table takes, and it must see the
same corrupted pixels as the methods it is compared with (ImageNet-C's glass blur is not reproducible
from its seed). So a run stores its clean and corrupted images, each method's outputs (8-bit, for the
grids), its rows and its patch-SWD rows. Numbers are kept as measured, never recomputed from the 8-bit
outputs. Plain arrays and JSON only: loading never unpickles.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from code_cli.bench.metrics import to_uint8
from code_cli.errors import ConfigError

FILE = "run.npz"
VERSION = 1


@dataclass(frozen=True)
class SavedRun:
    photos: list[str]  # per image
    corruptions: list[str]  # per image
    clean: np.ndarray  # (N, H, W, 3) uint8
    corrupted: np.ndarray  # (N, H, W, 3) uint8
    sigma: np.ndarray  # (N,) Immerkaer's estimate on the corrupted image
    severity: int
    seed: int  # the corruptions' seed
    command: str
    wall: float  # seconds the run took
    machine: str
    kept: dict | None  # what this run itself kept from an earlier one: {"methods": [...], "command": ...}
    methods: list[str]  # in the order they were reported
    restored: dict[str, np.ndarray]  # method -> (N, H, W, 3) uint8
    rows: list[dict]
    swd_rows: list[dict]


def save(folder: Path, items, restored: dict[str, list[np.ndarray]], rows: list[dict], swd_rows: list[dict],
         severity: int, seed: int, command: str, wall: float, machine: str, kept: dict | None = None) -> Path:
    """Write folder/run.npz atomically (a stopped run leaves the previous file whole)."""
    meta = {"version": VERSION, "severity": severity, "seed": seed, "command": command, "wall": wall,
            "machine": machine, "kept": kept, "methods": list(restored), "rows": rows, "swd_rows": swd_rows}
    arrays = {
        "photo": np.array([it.photo for it in items]), "corruption": np.array([it.corruption for it in items]),
        "clean": to_uint8(np.stack([it.clean for it in items])),
        "corrupted": to_uint8(np.stack([it.corrupted for it in items])),
        "sigma": np.array([it.sigma for it in items], np.float64), "meta": np.array(json.dumps(meta)),
        **{f"restored/{k}": to_uint8(np.stack(v)) for k, v in restored.items()},
    }
    path = folder / FILE
    tmp = folder / f".{FILE}.tmp.npz"
    np.savez_compressed(tmp, **arrays)
    tmp.replace(path)
    return path


def load(folder: Path) -> SavedRun:
    path = folder / FILE
    if not path.is_file():
        raise ConfigError(f"--reuse: {path}: no saved run there (a run writes it when it finishes)")
    try:
        with np.load(path, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("version") != VERSION:
                raise ConfigError(f"--reuse: {path}: saved by another version ({meta.get('version')}); run it again")
            return SavedRun(
                photos=[str(p) for p in z["photo"]], corruptions=[str(c) for c in z["corruption"]],
                clean=z["clean"], corrupted=z["corrupted"], sigma=z["sigma"], severity=int(meta["severity"]),
                seed=int(meta.get("seed", 0)),
                command=meta["command"], wall=float(meta["wall"]), machine=meta["machine"], kept=meta.get("kept"),
                methods=list(meta["methods"]),
                restored={k: z[f"restored/{k}"] for k in meta["methods"]},
                rows=meta["rows"], swd_rows=meta["swd_rows"],
            )
    except (OSError, ValueError, KeyError) as e:
        raise ConfigError(f"--reuse: {path}: not a readable saved run ({e.__class__.__name__}: {e})") from None


def check_matches(run: SavedRun, photos: list[str], corruptions: list[str], size: int, severity: int, seed: int,
                  folder: Path) -> None:
    """The saved run must hold exactly the images this run asks for, or its numbers compare nothing."""
    want = [(p, c) for p in photos for c in corruptions]
    have = list(zip(run.photos, run.corruptions))
    got_size = run.clean.shape[1] if len(run.clean) else 0
    if want != have or got_size != size or run.severity != severity or run.seed != seed:
        raise ConfigError(
            f"--reuse: {folder}: its run has {len(set(run.photos))} photographs x {len(set(run.corruptions))} "
            f"corruptions at {got_size} px, severity {run.severity}, seed {run.seed}; this one asks for "
            f"{len(photos)} x {len(corruptions)} at {size} px, severity {severity}, seed {seed}: give the same "
            "--photos, --photo-names, --max-photos, --corruptions, --size, --severity and --seed")

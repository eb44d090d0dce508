"""CPU threads for the network: as many as this process may really use, and none that spin.

PyTorch's default is one intra-op thread per core of the machine. Under a CPU
affinity mask or a container's CPU quota that is more threads than CPUs, and
OpenMP's worker threads busy-wait at every barrier: with a second process on
the same cores each barrier waits for a descheduled thread, and a restoration
ran 10x slower instead of 2x. Counting the CPUs we may use and letting idle
workers sleep (OMP_WAIT_POLICY=PASSIVE) brings that back to about the fair share.
"""

from __future__ import annotations

import math
import os
from pathlib import Path


def passive_openmp() -> None:
    """Ask OpenMP workers to sleep rather than spin when idle. Only has an effect before the
    OpenMP runtime starts (before torch is imported), and never overrides the user's setting."""
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def cgroup_cpu_limit(root: Path = Path("/sys/fs/cgroup")) -> float | None:
    """CPUs allowed by a cgroup quota (v2 cpu.max, or v1 cfs quota/period); None if unlimited."""
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def available_cpus() -> int:
    """CPUs this process may run on: the affinity mask, capped by the cgroup quota."""
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        n = os.cpu_count() or 1
    limit = cgroup_cpu_limit()
    if limit is not None:
        n = min(n, max(1, math.ceil(limit)))
    return max(1, n)


def configure(threads: int = 0) -> int:
    """Set torch's intra-op threads: `threads`, or 0 for every CPU this process may use."""
    import torch

    n = threads or available_cpus()
    torch.set_num_threads(n)
    return n

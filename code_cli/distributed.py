"""Many processes, one run: `torchrun --nproc-per-node N -m code_cli INPUT OUTPUT ...`.

The launcher (torchrun, or `accelerate launch`, which sets the same variables) does
rendezvous; each process reads its rank from the environment, takes every
world-th image of the sorted plan, runs on `cuda:LOCAL_RANK` or the CPU, and appends
to its own log. Per-image seeds depend only on the run seed and the image's path,
so the files written do not depend on the number of processes.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Rank:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def multi(self) -> bool:
        return self.world > 1


def from_env(env: dict[str, str] | None = None) -> Rank:
    """The launcher's RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE; one process when absent."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1"))
    rank = int(env.get("RANK", "0"))
    if not 0 <= rank < max(world, 1):
        raise ValueError(f"RANK={rank} is outside WORLD_SIZE={world}")
    local_world = int(env.get("LOCAL_WORLD_SIZE", str(world)))
    return Rank(rank, world, int(env.get("LOCAL_RANK", str(rank))), local_world)


def shard(items: list[T], r: Rank) -> list[T]:
    """Every world-th item from this rank's index: a fixed split of a sorted list."""
    return items[r.rank :: r.world]


def init(r: Rank, device_type: str) -> None:
    """Join the launcher's process group: NCCL between GPUs, gloo on CPUs."""
    if not r.multi:
        return
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("nccl" if device_type == "cuda" else "gloo")


def barrier(r: Rank) -> None:
    if r.multi:
        import torch.distributed as dist

        dist.barrier()


def broadcast(r: Rank, value: Any) -> Any:
    """Rank 0's value on every rank (e.g. the run id)."""
    if not r.multi:
        return value
    import torch.distributed as dist

    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(r: Rank, value: T) -> list[T]:
    """Every rank's value, in rank order, on every rank."""
    if not r.multi:
        return [value]
    import torch.distributed as dist

    box: list[Any] = [None] * r.world
    dist.all_gather_object(box, value)
    return box


def finish(r: Rank) -> None:
    if r.multi:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

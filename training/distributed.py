"""Distributed data-parallel training under ``torchrun`` (DDP; NCCL on GPUs, gloo on CPUs).

``torchrun --nproc_per_node N -m streamcount train ...`` sets ``RANK``, ``WORLD_SIZE`` and
``LOCAL_RANK``; without them training runs in one process as usual. Each rank takes every
``WORLD_SIZE``-th item of the epoch's (seeded, identical on every rank) item list, with
``batch_size / WORLD_SIZE`` items a step, so the ranks together see exactly the batches a single
process would. Only rank 0 validates, logs and writes checkpoints; checkpoints hold the plain
(unwrapped) weights, so a run can resume with another world size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from streamcount.errors import InputError


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        """True under torchrun with more than one process."""
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """True on the rank that validates, logs and writes checkpoints."""
        return self.rank == 0


def from_env() -> DistInfo:
    """Read torchrun's environment (one process when it is absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return DistInfo(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def init(info: DistInfo, device: str, batch_size: int) -> str:
    """Start the process group; returns the device this rank trains on.

    Raises:
        InputError: ``batch_size`` is not a multiple of the world size.
    """
    if not info.enabled:
        return device
    import torch
    import torch.distributed as dist

    if batch_size % info.world:
        raise InputError(
            f"--batch-size {batch_size} must be a multiple of the {info.world} processes"
        )
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    if device.startswith("cuda"):
        torch.cuda.set_device(info.local_rank)
        return f"cuda:{info.local_rank}"
    return device


def wrap(model: Any, info: DistInfo, device: str) -> Any:
    """The model wrapped in DistributedDataParallel (or as is in one process)."""
    if not info.enabled:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [info.local_rank] if device.startswith("cuda") else None
    return DistributedDataParallel(model, device_ids=ids)


def mean_over_ranks(value: float, info: DistInfo, device: str) -> float:
    """Average a float over the ranks (the value itself in one process)."""
    if not info.enabled:
        return value
    import torch
    import torch.distributed as dist

    t = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return float(t.item()) / info.world


def shutdown(info: DistInfo) -> None:
    """Leave the process group."""
    if info.enabled:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

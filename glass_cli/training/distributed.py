"""The processes of one run: a single process, or DistributedDataParallel under ``torchrun``.

``torchrun`` sets WORLD_SIZE, RANK and LOCAL_RANK; with WORLD_SIZE > 1 the run's processes
join one process group (gloo on CPU, NCCL on GPU). Each rank takes every WORLD_SIZE-th
sample, sums and gathers go through the group, and only rank 0 writes files or prints.
With one process every collective is the identity and torch.distributed is never imported.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Processes:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls) -> Processes:
        """This process's place in the run, from torchrun's environment (one process without it)."""
        return cls(int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("LOCAL_RANK", "0")))

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def start(self, device: str) -> None:
        """Join the process group (once per process); nothing with a single process."""
        if not self.distributed:
            return
        import torch
        import torch.distributed as dist

        if not dist.is_initialized():
            cuda = device.startswith("cuda")
            if cuda:
                torch.cuda.set_device(device)
            dist.init_process_group(backend="nccl" if cuda else "gloo")

    def wrap(self, model, device: str):
        """The module that trains: ``model`` itself, or its DistributedDataParallel wrapper."""
        if not self.distributed:
            return model
        from torch.nn.parallel import DistributedDataParallel

        return DistributedDataParallel(model, device_ids=[self.local_rank] if device.startswith("cuda") else None)

    def barrier(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def all_reduce(self, tensor):
        """``tensor`` summed over the processes, in place."""
        if self.distributed:
            import torch.distributed as dist

            dist.all_reduce(tensor)
        return tensor

    def gather(self, obj: Any) -> list[Any]:
        """Every process's ``obj``, in rank order."""
        if not self.distributed:
            return [obj]
        import torch.distributed as dist

        gathered: list[Any] = [None] * self.world
        dist.all_gather_object(gathered, obj)
        return gathered

    def close(self) -> None:
        if self.distributed:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()

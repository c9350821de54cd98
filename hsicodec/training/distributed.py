"""Multi-process training through torchrun / DDP; a single process needs none of it."""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Processes:
    """This process's place among the training processes (rank 0 logs, validates and saves)."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def average_gradients(self, parameters: list[torch.nn.Parameter]) -> None:
        """All-reduce the gradients DDP does not see (the entropy bottleneck's quantiles)."""
        if not self.distributed:
            return
        for p in parameters:
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= self.world

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()


def start(device: torch.device) -> Processes:
    """Join the process group torchrun set up (WORLD_SIZE > 1), else a single process on `device`."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Processes(device=device)
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Processes(rank, world, device)


def stop(processes: Processes) -> None:
    if processes.distributed:
        dist.destroy_process_group()

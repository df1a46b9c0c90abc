"""Run a function in W processes joined by a gloo process group (torchrun's environment)."""
from __future__ import annotations

import os
import socket
import time

import torch
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, fn, world: int, port: int, args: tuple) -> None:
    # What torchrun sets; mmgraph.distributed.init() reads it, as under torchrun.
    os.environ.update({"RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1",
                       "MASTER_PORT": str(port), "MMGRAPH_DIST_TIMEOUT": "120"})
    torch.set_num_threads(1)
    fn(rank, world, *args)


def run_ranks(fn, *args, world: int = 2, timeout: float = 240.0) -> None:
    """``fn(rank, world, *args)`` in ``world`` spawned processes (``fn`` initialises the group
    itself, or not); re-raises the first failure, kills the processes after ``timeout`` s."""
    ctx = mp.start_processes(_entry, args=(fn, world, free_port(), args), nprocs=world, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + timeout
    try:
        while not ctx.join(timeout=0.5):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{fn.__name__} did not finish in {timeout:.0f} s")
    finally:
        for p in ctx.processes:
            if p.is_alive():
                p.kill()
                p.join()

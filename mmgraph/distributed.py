"""Several processes (``torchrun``): the process group, collectives and data sharding.

``torchrun --nproc_per_node=N -m mmgraph.bench ...`` starts N copies of the program with
``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT`` in their
environment. :func:`init` turns that into a process group (gloo for CPU tensors, and NCCL for
CUDA tensors where a GPU exists, as one default group ``"cpu:gloo,cuda:nccl"``); everything else
here is a no-op, or the identity, in a single process, so callers need no branches.

What the rest of mmgraph does with it:

- training (:class:`mmgraph.tasks.NodeClassification` with ``batch_size``): every rank draws the
  same permutation of the training nodes per epoch and takes its part of every *global* batch
  (:class:`ShardedBatchSampler`); gradients are averaged by ``DistributedDataParallel``
  (:func:`ddp`); evaluation is sharded and the predictions combined (:func:`all_reduce`), so all
  ranks see the same metrics and take the same early-stopping decisions;
- feature extraction (:mod:`mmgraph.features.sharded`): every rank encodes every W-th batch and
  rank 0 merges the shards into one cache entry;
- the runner (:mod:`mmgraph.bench.torchrun`): only rank 0 writes results and prints.
"""
from __future__ import annotations

import atexit
import math
import os
from contextlib import contextmanager
from datetime import timedelta
from typing import Any, Iterator, Sequence

import torch
from torch import nn

__all__ = ["launched", "init", "destroy", "active", "rank", "launch_rank", "local_rank",
           "world_size", "is_main", "local_main_first", "barrier", "all_reduce", "all_reduce_sum",
           "broadcast_object", "all_gather_rows", "broadcast_module", "broadcast_buffers", "ddp",
           "unwrap", "backend_for", "local_device", "ShardedBatchSampler"]


def launched() -> bool:
    """Whether this process was started by torchrun (or alike) as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1) > 1 and "RANK" in os.environ


def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() else None


def active() -> bool:
    """A process group of more than one process is initialised."""
    dist = _dist()
    return bool(dist and dist.is_initialized() and dist.get_world_size() > 1)


def init(timeout_s: float | None = None) -> bool:
    """Initialise the default process group from torchrun's environment (once); returns
    :func:`active`. Without torchrun's variables this does nothing and returns ``False``.

    The group is ``gloo``, or ``cpu:gloo,cuda:nccl`` where CUDA and NCCL are available (CPU
    tensors go through gloo, CUDA tensors through NCCL; the current CUDA device is set to
    ``cuda:<LOCAL_RANK>``). It is destroyed when the process exits. ``timeout_s`` (default:
    ``$MMGRAPH_DIST_TIMEOUT`` or PyTorch's 30 minutes) bounds how long a collective waits for a
    rank that never comes.
    """
    dist = _dist()
    if dist is None or not launched():
        return False
    if not dist.is_initialized():
        backend = "gloo"
        if torch.cuda.is_available() and dist.is_nccl_available():
            torch.cuda.set_device(_gpu())
            backend = "cpu:gloo,cuda:nccl"
        timeout_s = timeout_s or float(os.environ.get("MMGRAPH_DIST_TIMEOUT", 0) or 0) or None
        kwargs = {"timeout": timedelta(seconds=timeout_s)} if timeout_s else {}
        dist.init_process_group(backend=backend, init_method="env://", **kwargs)
        atexit.register(destroy)
    return active()


def destroy() -> None:
    """Destroy the default process group, if any (idempotent)."""
    dist = _dist()
    if dist is not None and dist.is_initialized():
        dist.destroy_process_group()


def rank() -> int:
    """This process' rank in the initialised group; 0 without one (like :func:`world_size`)."""
    dist = _dist()
    return dist.get_rank() if dist is not None and dist.is_initialized() else 0


def launch_rank() -> int:
    """This process' rank as torchrun set it (``RANK``; 0 when not launched), known before
    the process group exists (e.g. to report a configuration error once)."""
    return int(os.environ.get("RANK", "0") or 0) if launched() else 0


def local_rank() -> int:
    """The rank on this machine (torchrun's ``LOCAL_RANK``), which picks the GPU."""
    return int(os.environ.get("LOCAL_RANK", "0") or 0) if launched() else 0


def world_size() -> int:
    """Processes in the initialised group; 1 without one."""
    dist = _dist()
    return dist.get_world_size() if dist is not None and dist.is_initialized() else 1


def is_main() -> bool:
    """Rank 0 (always true in a single process): the one that writes files and prints. Before
    the group exists, torchrun's ``RANK`` decides."""
    dist = _dist()
    return (rank() if dist is not None and dist.is_initialized() else launch_rank()) == 0


@contextmanager
def local_main_first():
    """Run the block on local rank 0 of every machine first, then on the other ranks (e.g. a
    data set that downloads or builds files the first time): they find the files made."""
    waits = active() and local_rank() != 0
    if waits:
        barrier()
    yield
    if active() and not waits:
        barrier()


def barrier() -> None:
    """Wait for every rank (a CPU all-reduce, so it works the same on gloo and NCCL groups)."""
    if active():
        _dist().all_reduce(torch.zeros(1))


_OPS = {"sum": "SUM", "max": "MAX", "min": "MIN"}


def all_reduce(tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
    """Reduce ``tensor`` in place over all ranks (``sum``, ``max`` or ``min``) and return it."""
    if active():
        dist = _dist()
        dist.all_reduce(tensor, op=getattr(dist.ReduceOp, _OPS[op]))
    return tensor


def all_reduce_sum(values: Sequence[float]) -> list[float]:
    """Sums over all ranks of a few numbers (float64 on the CPU)."""
    t = torch.tensor(list(values), dtype=torch.float64)
    return all_reduce(t, "sum").tolist()


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of rank ``src`` on every rank (pickled; for small objects)."""
    if not active():
        return obj
    box = [obj]
    _dist().broadcast_object_list(box, src=src, device=torch.device("cpu"))
    return box[0]


def all_gather_rows(rows: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's ``rows`` (the same trailing shape and dtype, any number of rows), in rank
    order. Exact: rows are padded to the longest and gathered, never summed."""
    if not active():
        return [rows]
    dist = _dist()
    count = torch.tensor([rows.size(0)], dtype=torch.long, device=rows.device)
    counts = [torch.zeros_like(count) for _ in range(world_size())]
    dist.all_gather(counts, count)
    counts = [int(c) for c in counts]
    longest = max(counts)
    padded = rows.new_zeros((longest, *rows.shape[1:]))
    padded[:rows.size(0)] = rows
    out = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(out, padded.contiguous())
    return [t[:c] for t, c in zip(out, counts)]


def broadcast_module(module: nn.Module, src: int = 0) -> None:
    """Copy the parameters and buffers of rank ``src`` into ``module`` on every rank."""
    if active():
        with torch.no_grad():
            for t in [*module.parameters(), *module.buffers()]:
                _dist().broadcast(t.data, src=src)


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy the buffers (e.g. batch-norm running statistics) of rank ``src`` to every rank."""
    if active():
        for t in module.buffers():
            _dist().broadcast(t.data, src=src)


def ddp(module: nn.Module) -> nn.Module:
    """``module`` in a :class:`~torch.nn.parallel.DistributedDataParallel` (which averages the
    gradients over the ranks in ``backward``), or ``module`` itself in a single process.

    ``device_ids`` stays ``None``: the module and its inputs are already on this rank's device
    (``cuda:<LOCAL_RANK>`` or the CPU), and DDP does not have to copy (or understand) the inputs.
    """
    if not active():
        return module
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(module, device_ids=None)  # buffers: rank 0's at every forward


def unwrap(module: nn.Module) -> nn.Module:
    """The model inside a DDP (or DataParallel) wrapper; ``module`` itself otherwise."""
    from torch.nn.parallel import DataParallel, DistributedDataParallel

    while isinstance(module, (DistributedDataParallel, DataParallel)):
        module = module.module
    return module


def backend_for(device: torch.device | str) -> str | None:
    """The collective backend tensors on ``device`` use (``None`` in a single process)."""
    if not active():
        return None
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


def local_device(device: torch.device) -> torch.device:
    """Under torchrun a bare ``cuda`` means this rank's GPU, ``cuda:<LOCAL_RANK>``; an explicit
    ``cuda:<i>`` is kept as given."""
    if launched() and device.type == "cuda" and device.index is None:
        return torch.device("cuda", _gpu())
    return device


def _gpu() -> int:
    """This rank's GPU: ``LOCAL_RANK`` (modulo the visible GPUs, for launchers that show each
    process only its own)."""
    return local_rank() % max(torch.cuda.device_count(), 1)


class ShardedBatchSampler(torch.utils.data.Sampler):
    """This rank's part of every global mini-batch of one shared permutation.

    Every epoch, all ranks draw the same permutation of ``range(num_items)`` from ``generator``
    (seed it identically on every rank), cut it into global batches of ``batch_size`` and take
    part ``rank`` of ``world_size`` near-equal contiguous parts of each
    (``torch.tensor_split``). So W processes make exactly as many optimiser steps as one, on
    batches of the same global size, and every rank makes the same number of steps. Where a
    global batch has fewer items than ranks (only possible for the last one), a rank with an
    empty part gets the batch's first item as a stand-in that must not count:
    :meth:`plan` gives, per step, ``(items of this rank, items of the global batch)``, and
    weighting each rank's summed loss by ``world_size / global`` makes DDP's gradient average
    equal the gradient of the global batch's mean loss (0 for a stand-in).
    """

    def __init__(self, num_items: int, batch_size: int, rank: int = 0, world_size: int = 1,
                 shuffle: bool = True, generator: torch.Generator | None = None):
        if num_items < 1 or batch_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"bad sharding: {num_items} items, batch size {batch_size}, "
                             f"rank {rank} of {world_size}")
        self.num_items, self.batch_size = int(num_items), int(batch_size)
        self.rank, self.world_size = int(rank), int(world_size)
        self.shuffle, self.generator = shuffle, generator

    def __len__(self) -> int:
        return math.ceil(self.num_items / self.batch_size)

    def plan(self) -> list[tuple[int, int]]:
        """Per step: (items this rank takes, items in the global batch)."""
        out = []
        for start in range(0, self.num_items, self.batch_size):
            size = min(self.batch_size, self.num_items - start)
            out.append((size // self.world_size + (self.rank < size % self.world_size), size))
        return out

    def __iter__(self) -> Iterator[list[int]]:
        order = (torch.randperm(self.num_items, generator=self.generator) if self.shuffle
                 else torch.arange(self.num_items))
        for chunk in order.split(self.batch_size):
            part = chunk.tensor_split(self.world_size)[self.rank]
            yield (part if part.numel() else chunk[:1]).tolist()

"""Feature extraction split over the processes of a torchrun launch.

Used by :func:`mmgraph.features.encode_nodes` whenever a process group of W > 1 processes is
initialised (``torchrun ... -m mmgraph.features`` or ``-m mmgraph.bench``). One process encodes
the distinct items in a fixed order (:func:`mmgraph.features.loop.item_order`) in batches of
``bs``. Here rank ``r`` takes batches ``r, r + W, r + 2W, ...`` of that same sequence
(:func:`shard_items`) and runs the same extraction loop on them
(:func:`mmgraph.features.loop.encode_items`), so every batch holds exactly the items it holds in
one process, padded alike, and the encoder's outputs are the same bits (given the same kernels:
the same device and thread count).

With a cache (``cache_dir`` not ``False``):

1. rank 0 looks for the finished entry and every rank follows its verdict: a finished entry is
   loaded, never rebuilt (and shard folders a killed merge left behind are removed);
2. otherwise each rank fills its own resumable entry ``<entry>.shard-<r>-of-<W>`` (a
   :class:`~mmgraph.features.cache.FeatureCache` of its rows only, in its order, plus
   ``items.npy``, their item indices), sealed by the usual atomic rename. A killed launch
   resumes every shard where it stopped (a sealed shard is reused whole);
3. barrier; rank 0 copies the shards' rows into the entry (``FeatureCache`` again, so the
   entry appears whole or not at all) and removes the shard folders; barrier; every rank loads
   the entry.

Without a cache the ranks exchange their rows (:func:`mmgraph.distributed.all_gather_rows`).
With several machines the cache folder must be one shared file system (rank 0 reads every
shard, every rank reads the merged entry).
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from mmgraph import distributed
from mmgraph.errors import DataError
from mmgraph.features.cache import FeatureCache
from mmgraph.features.encoders import Encoder
from mmgraph.features.loop import Items, encode_items, item_order

__all__ = ["shard_items", "shard_folder", "encode_sharded"]

_SHARED = (" (with several machines the feature cache folder must be shared by all of them, or "
           "set features.cache_dir=false to exchange the features over the network)")


def shard_items(order: Sequence[int], batch_size: int, rank: int, world_size: int) -> list[int]:
    """The items of batches ``rank, rank + world_size, ...`` of ``order`` cut into batches of
    ``batch_size``, in order. Every batch but the last of the whole sequence is full, so cutting
    the result into batches of ``batch_size`` gives back exactly those batches."""
    out: list[int] = []
    for start in range(rank * batch_size, len(order), world_size * batch_size):
        out.extend(order[start:start + batch_size])
    return out


def shard_folder(entry: Path, rank: int, world_size: int) -> Path:
    """Where rank ``rank`` of ``world_size`` keeps its part of ``entry``."""
    return entry.with_name(f"{entry.name}.shard-{rank}-of-{world_size}")


def _shard_fingerprint(fp: str, rank: int, world_size: int, batch_size: int) -> str:
    return f"{fp}/shard-{rank}-of-{world_size}/batch-{batch_size}"


def _remove_shards(entry: Path) -> None:
    """Every shard folder of ``entry`` (any world size, sealed or partial)."""
    for path in entry.parent.glob(f"{entry.name}.shard-*-of-*"):
        shutil.rmtree(path, ignore_errors=True)


def encode_sharded(enc: Encoder, items: Items, folder: Path | None, fp: str, storage: str,
                   meta: dict[str, Any], *, batch_size: int, num_workers: int = 2,
                   progress: bool | None = None) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """This rank's share of :func:`~mmgraph.features.encode_nodes`' work on the distinct
    ``items``, cached in the entry ``folder`` (``None``: no cache); every rank returns
    ``(values, valid, unreadable, from_cache)`` for all of them."""
    t0 = time.perf_counter()
    rank, world = distributed.rank(), distributed.world_size()
    main = rank == 0
    n_unique, bs = len(items), batch_size
    if folder is not None:  # 1. a finished entry: rank 0 decides for all
        verdict = FeatureCache.load_finished(folder, fp, n_unique, storage) if main else None
        if distributed.broadcast_object(verdict is not None):
            loaded = verdict if main else FeatureCache.load_finished(folder, fp, n_unique, storage)
            if loaded is None:
                raise DataError(f"feature cache entry {folder} vanished or is unreadable on rank {rank}"
                                f"{_SHARED}")
            if main:
                _remove_shards(folder)  # left over by a launch killed after its merge
            values, valid = loaded
            return values, valid, int((~np.asarray(valid)).sum()), True

    enc.load()
    dim = enc.output_dim(items.modality)
    parts = [shard_items(item_order(enc, items), bs, r, world) for r in range(world)]
    mine = parts[rank]
    loop = {"batch_size": bs, "num_workers": num_workers, "progress": progress if main else False}

    if folder is None:  # no cache: encode, then exchange the rows
        if mine:
            vals, ok, unreadable = encode_items(enc, items.subset(mine), None, **loop)
        else:
            vals, ok, unreadable = np.zeros((0, dim), np.float32), np.zeros(0, bool), 0
        got_vals = distributed.all_gather_rows(torch.from_numpy(np.ascontiguousarray(vals)))
        got_ok = distributed.all_gather_rows(torch.from_numpy(ok.astype(np.uint8)))
        values = np.zeros((n_unique, dim), dtype=np.float32)
        valid = np.zeros(n_unique, dtype=bool)
        for rows, v, o in zip(parts, got_vals, got_ok):
            values[rows] = v.numpy()
            valid[rows] = o.numpy().astype(bool)
        unreadable = int(distributed.all_reduce_sum([unreadable])[0])
        return values, valid, unreadable, False

    # 2. this rank's shard entry, resumable on its own
    if mine:
        shard = FeatureCache(shard_folder(folder, rank, world), _shard_fingerprint(fp, rank, world, bs),
                             len(mine), dim, storage)
        if not (shard.final.is_dir() and shard.load() is not None):  # sealed by an earlier launch
            encode_items(enc, items.subset(mine), shard, **loop)
            np.save(shard.partial / "items.npy", np.asarray(mine, dtype=np.int64))
            shard.finish({**meta, "shard": {"rank": rank, "world_size": world, "batch_size": bs}})

    # 3. rank 0 merges the shards into the entry
    distributed.barrier()
    entry = FeatureCache(folder, fp, n_unique, dim, storage)
    if main:
        entry.open()
        seen = np.zeros(n_unique, dtype=bool)
        for r, rows in enumerate(parts):
            if not rows:
                continue
            got = FeatureCache(shard_folder(folder, r, world), _shard_fingerprint(fp, r, world, bs),
                               len(rows), dim, storage).load()
            stored = np.load(shard_folder(folder, r, world) / "items.npy") if got is not None else None
            if got is None or stored.shape != (len(rows),) or seen[stored].any():
                raise DataError(f"feature shard {shard_folder(folder, r, world).name} is missing or "
                                f"does not hold the items of rank {r}; delete the shard folders and "
                                f"rerun{_SHARED}")
            seen[stored] = True
            entry.write(stored, np.asarray(got[0]), np.asarray(got[1]), entry.done)
        if not seen.all():
            raise DataError(f"feature shards of {folder.name} miss {int((~seen).sum())} items")
        entry.write(np.zeros(0, dtype=np.int64), np.zeros((0, dim)), np.zeros(0, dtype=bool), n_unique)
        values, valid = entry.finish({**meta, "seconds": round(time.perf_counter() - t0, 3),
                                      "world_size": world})
        _remove_shards(folder)
    distributed.barrier()
    if not main:
        loaded = entry.load()
        if loaded is None:
            raise DataError(f"feature cache entry {folder} merged by rank 0 is unreadable on rank "
                            f"{rank}{_SHARED}")
        values, valid = loaded
    return values, valid, int((~np.asarray(valid)).sum()), False

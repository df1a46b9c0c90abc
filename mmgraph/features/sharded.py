"""Feature extraction split over the processes of a torchrun launch.

Used by :func:`mmgraph.features.encode_nodes` whenever a process group of W > 1 processes is
initialised (``torchrun ... -m mmgraph.features`` or ``-m mmgraph.bench``). One process encodes
the distinct items in a fixed order (:func:`mmgraph.features.extract._item_order`) in batches of
``bs``. Here rank ``r`` takes batches ``r, r + W, r + 2W, ...`` of that same sequence
(:func:`shard_items`), so every batch holds exactly the items it holds in one process, padded
alike, and the encoder's outputs are the same bits (given the same kernels: the same device and
thread count).

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
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from mmgraph import distributed
from mmgraph.errors import DataError
from mmgraph.features.cache import FeatureCache
from mmgraph.features.encoders import Encoder

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


def encode_sharded(enc: Encoder, modality: str, first: list[int], texts, refs, data,
                   folder: Path | None, fp: str, n_unique: int, storage: str, bs: int,
                   num_workers: int, progress, meta: dict[str, Any], t0: float):
    """This rank's share of :func:`~mmgraph.features.encode_nodes`' work; every rank returns
    ``(values, valid, unreadable, from_cache, cache)`` for all ``n_unique`` items (``cache``:
    the entry's :class:`FeatureCache`, ``None`` without a cache folder)."""
    from mmgraph.features.extract import _cached_dim, _compute, _item_order

    rank, world = distributed.rank(), distributed.world_size()
    main = rank == 0
    progress = progress if main else False
    if folder is not None:  # 1. a finished entry: rank 0 decides for all
        verdict = None
        if main and folder.is_dir():
            verdict = FeatureCache(folder, fp, n_unique, _cached_dim(folder), storage).load()
        if distributed.broadcast_object(verdict is not None):
            loaded = verdict if main else FeatureCache(folder, fp, n_unique, _cached_dim(folder),
                                                       storage).load()
            if loaded is None:
                raise DataError(f"feature cache entry {folder} vanished or is unreadable on rank {rank}"
                                f"{_SHARED}")
            if main:
                _remove_shards(folder)  # left over by a launch killed after its merge
            values, valid = loaded
            unreadable = int((~np.asarray(valid)).sum())
            if unreadable and main:
                warnings.warn(f"{unreadable} of {n_unique} {modality} items could not be encoded when "
                              f"{folder.name} was computed; treated as missing", stacklevel=3)
            return values, valid, unreadable, True, FeatureCache(folder, fp, n_unique, values.shape[1],
                                                                 storage)

    enc.load()
    dim = enc.output_dim(modality)
    order = _item_order(enc, modality, first, texts, n_unique)
    parts = [shard_items(order, bs, r, world) for r in range(world)]
    mine = parts[rank]
    local_first = [first[u] for u in mine]

    if folder is None:  # no cache: encode, then exchange the rows
        if mine:
            vals, ok, unreadable = _compute(enc, modality, local_first, texts, refs, data, None, bs,
                                            num_workers, progress, len(mine), order=list(range(len(mine))))
        else:
            vals, ok, unreadable = np.zeros((0, dim), np.float32), np.zeros(0, bool), 0
        got_vals = distributed.all_gather_rows(torch.from_numpy(np.ascontiguousarray(vals)))
        got_ok = distributed.all_gather_rows(torch.from_numpy(ok.astype(np.uint8)))
        values = np.zeros((n_unique, dim), dtype=np.float32)
        valid = np.zeros(n_unique, dtype=bool)
        for items, v, o in zip(parts, got_vals, got_ok):
            values[items] = v.numpy()
            valid[items] = o.numpy().astype(bool)
        unreadable = int(distributed.all_reduce_sum([unreadable])[0])
        return values, valid, unreadable, False, None

    # 2. this rank's shard entry, resumable on its own
    if mine:
        shard = FeatureCache(shard_folder(folder, rank, world), _shard_fingerprint(fp, rank, world, bs),
                             len(mine), dim, storage)
        if not (shard.final.is_dir() and shard.load() is not None):  # sealed by an earlier launch
            _compute(enc, modality, local_first, texts, refs, data, shard, bs, num_workers, progress,
                     len(mine), order=list(range(len(mine))))
            np.save(shard.partial / "items.npy", np.asarray(mine, dtype=np.int64))
            shard.finish({**meta, "shard": {"rank": rank, "world_size": world, "batch_size": bs}})

    # 3. rank 0 merges the shards into the entry
    distributed.barrier()
    entry = FeatureCache(folder, fp, n_unique, dim, storage)
    if main:
        entry.open()
        seen = np.zeros(n_unique, dtype=bool)
        for r, items in enumerate(parts):
            if not items:
                continue
            got = FeatureCache(shard_folder(folder, r, world), _shard_fingerprint(fp, r, world, bs),
                               len(items), dim, storage).load()
            stored = np.load(shard_folder(folder, r, world) / "items.npy") if got is not None else None
            if got is None or stored.shape != (len(items),) or seen[stored].any():
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
    return values, valid, int((~np.asarray(valid)).sum()), False, entry

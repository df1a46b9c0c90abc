"""Feature extraction split over two processes: the merged cache entry is the one a single
process writes, byte for byte, and a killed sharded run resumes every shard where it stopped."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from mmgraph import distributed
from mmgraph.features import encode_nodes, get_encoder
from mmgraph.features.encoders import HFTextEncoder
from mmgraph.features.loop import Items, item_order
from mmgraph.features.sharded import shard_folder, shard_items
from tests.distributed.launch import run_ranks

BS = 16  # texts per batch (MiniLM's CPU default)


class Crash(RuntimeError):
    """A simulated crash of one process in the middle of its shard."""


class CountingMiniLM(HFTextEncoder):
    """The real MiniLM (the registry's settings, so the same fingerprint and cache entry) that
    counts the texts it encodes and, with ``crash_after``, fails on the next batch."""

    def __init__(self, crash_after: int | None = None):
        base = get_encoder("minilm")
        super().__init__(base.model_path, revision=base.revision, max_length=base.max_length,
                         normalize=base.normalize, name=base.name, model_id=base.model_id)
        self.crash_after, self.calls, self.items = crash_after, 0, 0

    def encode_text(self, texts):
        if self.crash_after is not None and self.calls >= self.crash_after:
            raise Crash(f"simulated crash after {self.calls} batches")
        self.calls += 1
        self.items += len(texts)
        return super().encode_text(texts)


def _graph(num_nodes: int = 300):
    from mmgraph.data import make_synthetic

    return make_synthetic(num_nodes=num_nodes, num_edges=2 * num_nodes, text_length=(3, 8), seed=1)


def _crashing_worker(rank, world, cache_dir, crash_after):
    assert distributed.init() and distributed.world_size() == world
    encode_nodes(_graph(), "text", CountingMiniLM(crash_after if rank == 1 else None),
                 cache_dir=cache_dir, batch_size=BS, progress=False)


def _resuming_worker(rank, world, cache_dir, out_dir):
    assert distributed.init()
    enc = CountingMiniLM()
    res = encode_nodes(_graph(), "text", enc, cache_dir=cache_dir, batch_size=BS, progress=False)
    assert not res.from_cache and res.cache is not None
    # a finished entry is loaded, never rebuilt
    again_enc = CountingMiniLM()
    again = encode_nodes(_graph(), "text", again_enc, cache_dir=cache_dir, batch_size=BS)
    assert again.from_cache and again_enc.calls == 0 and torch.equal(again.x, res.x)
    # without a cache the ranks exchange their rows (a smaller graph: 5 batches, uneven shares)
    plain = encode_nodes(_graph(80), "text", CountingMiniLM(), cache_dir=False, batch_size=BS,
                         progress=False)
    torch.save({"items": enc.items, "x": res.x, "mask": res.mask, "x_plain": plain.x,
                "mask_plain": plain.mask}, out_dir / f"rank{rank}.pt")


def test_two_processes_write_the_single_process_cache_and_resume_after_a_crash(tmp_path):
    # the single-process reference, one thread like the workers (the same kernels)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        ref = encode_nodes(_graph(), "text", get_encoder("minilm"), cache_dir=tmp_path / "ref",
                           batch_size=BS, progress=False)
        ref_plain = encode_nodes(_graph(80), "text", get_encoder("minilm"), cache_dir=False,
                                 batch_size=BS, progress=False)
        enc = get_encoder("minilm")
        texts = [t.strip() if isinstance(t, str) else None for t in _graph()["item"].text]
        order = item_order(enc, Items("text", _first_rows(texts), texts))
    finally:
        torch.set_num_threads(threads)
    assert CountingMiniLM().spec() == enc.spec()
    n = ref.num_unique
    assert n > 8 * BS  # several batches per rank
    parts = [shard_items(order, BS, r, 2) for r in range(2)]
    assert sorted(parts[0] + parts[1]) == list(range(n)) and not set(parts[0]) & set(parts[1])
    assert len(parts[0]) > 3 * BS and len(parts[1]) > 3 * BS

    cache = tmp_path / "cache"
    crash_after = 3
    with pytest.raises(Exception, match="simulated crash after 3 batches"):
        run_ranks(_crashing_worker, cache, crash_after, world=2)
    final = cache / "synthetic" / ref.cache.name
    assert not final.exists()  # nothing merged: no entry at all
    partial1 = Path(str(shard_folder(final, 1, 2)) + ".partial")
    done1 = json.loads((partial1 / "progress.json").read_text())["done"]
    assert done1 == crash_after * BS  # every finished batch kept, the one in flight lost
    sealed0 = shard_folder(final, 0, 2)
    if sealed0.is_dir():  # rank 0 finished its shard before rank 1 crashed
        done0 = len(parts[0])
        assert (sealed0 / "items.npy").is_file() and (sealed0 / "meta.json").is_file()
    else:  # rank 0 was stopped in the middle of its shard
        done0 = json.loads((Path(str(sealed0) + ".partial") / "progress.json").read_text())["done"]

    out = tmp_path / "out"
    out.mkdir()
    run_ranks(_resuming_worker, cache, out, world=2)
    got = [torch.load(out / f"rank{r}.pt") for r in range(2)]
    # each shard resumed on its own: only what it had not done
    assert got[0]["items"] == len(parts[0]) - done0
    assert got[1]["items"] == len(parts[1]) - done1
    # the merged entry is the single-process entry, byte for byte; no shard folders are left
    for name in ("values.npy", "valid.npy"):
        assert (final / name).read_bytes() == (ref.cache / name).read_bytes(), name
    assert sorted(p.name for p in final.parent.iterdir()) == [final.name]
    for r in range(2):
        assert torch.equal(got[r]["x"], ref.x) and torch.equal(got[r]["mask"], ref.mask)
        assert torch.equal(got[r]["x_plain"], ref_plain.x)
        assert torch.equal(got[r]["mask_plain"], ref_plain.mask)


def _first_rows(texts):
    """The node of each distinct non-empty text, in order of first occurrence (as encode_nodes)."""
    seen, out = set(), []
    for i, t in enumerate(texts):
        if t and t not in seen:
            seen.add(t)
            out.append(i)
    return out

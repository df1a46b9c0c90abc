"""Choosing the ``k`` neighbours whose content goes into a node's prompt.

The graph is read as undirected: a node's neighbours are the union of its in- and
out-neighbours in ``edge_index``, without self loops and without duplicates. Strategies:

- ``random``: a seeded sample without replacement. Every (node, neighbour) pair gets a score
  from a hash of ``(seed, node, neighbour)`` and the ``k`` lowest scores are taken, so a node's
  choice depends only on the seed, the node, its neighbours and ``k`` -- never on which other
  nodes are asked or in what order -- and the sample for ``k`` is a prefix of the one for
  ``k + 1``;
- ``similar``: the ``k`` neighbours with the highest cosine similarity of ``features`` to the
  node's (ties by lower id);
- ``degree``: the ``k`` neighbours of highest (undirected, deduplicated) degree (ties by lower id).

Each node's list is in the order of selection: random order, most similar first, highest degree
first. Everything is vectorised (a CSR built by sorting, one ``lexsort`` over the queried nodes'
neighbour lists), so 100k nodes and 1M edges take a second or two.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import Tensor

from mmgraph.errors import ConfigError, DataError

__all__ = ["select_neighbors", "STRATEGIES"]

STRATEGIES = ("random", "similar", "degree")


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on a ``uint64`` array (wrapping arithmetic)."""
    x = x.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        x += np.uint64(0x9E3779B97F4A7C15)
        x ^= x >> np.uint64(30)
        x *= np.uint64(0xBF58476D1CE4E5B9)
        x ^= x >> np.uint64(27)
        x *= np.uint64(0x94D049BB133111EB)
        x ^= x >> np.uint64(31)
    return x


def _undirected_csr(edge_index: Tensor, num_nodes: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ptr [N+1], col [nnz])``: sorted, deduplicated neighbour lists without self loops."""
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        shape = tuple(edge_index.shape) if isinstance(edge_index, Tensor) else type(edge_index).__name__
        raise DataError(f"edge_index must be a [2, E] integer tensor; got {shape}")
    ei = edge_index.detach().cpu().numpy().astype(np.int64, copy=False)
    if ei.size and (ei.min() < 0 or ei.max() >= num_nodes):
        raise DataError(f"edge_index refers to node {int(ei.min()) if ei.min() < 0 else int(ei.max())}; "
                        f"the graph has {num_nodes} nodes")
    src = np.concatenate([ei[0], ei[1]])
    dst = np.concatenate([ei[1], ei[0]])
    keep = src != dst
    key = np.sort(src[keep] * np.int64(num_nodes) + dst[keep])     # sorted by (src, dst)
    if key.size:
        first = np.empty(key.size, dtype=bool)
        first[0] = True
        np.not_equal(key[1:], key[:-1], out=first[1:])
        key = key[first]
    src, col = np.divmod(key, np.int64(num_nodes))
    ptr = np.zeros(num_nodes + 1, dtype=np.int64)
    np.cumsum(np.bincount(src, minlength=num_nodes), out=ptr[1:])
    return ptr, col


def select_neighbors(edge_index: Tensor, num_nodes: int, nodes: Tensor | Sequence[int], k: int,
                     strategy: str = "random", *, features: Tensor | None = None,
                     seed: int = 0) -> list[list[int]]:
    """Up to ``k`` neighbour ids for each node of ``nodes`` (see the module docstring).

    Args:
        edge_index: ``long [2, E]`` edges of a graph with ``num_nodes`` nodes (any direction).
        num_nodes: the number of nodes.
        nodes: the node ids to choose neighbours for (repeats allowed; one list per entry).
        k: how many neighbours at most; a node with fewer gets all of them; ``0`` gives empty lists.
        strategy: ``random``, ``similar`` or ``degree``.
        features: ``[num_nodes, d]`` node features, required by ``similar``.
        seed: the seed of ``random``.

    Raises:
        ConfigError: unknown strategy, negative ``k``, ``similar`` without features.
        DataError: malformed ``edge_index``, node ids or features.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown neighbour strategy {strategy!r}; valid strategies: {', '.join(STRATEGIES)}")
    try:
        bad_k = isinstance(k, bool) or int(k) != k or k < 0
    except (TypeError, ValueError):
        bad_k = True
    if bad_k:
        raise ConfigError(f"the number of neighbours must be an integer >= 0; got {k!r} "
                          f"(valid strategies: {', '.join(STRATEGIES)})")
    k = int(k)
    num_nodes = int(num_nodes)
    q = (nodes.detach().cpu().numpy() if isinstance(nodes, Tensor) else np.asarray(nodes)).reshape(-1)
    if q.size and not np.issubdtype(q.dtype, np.integer):
        raise DataError(f"nodes must be integer node ids; got dtype {q.dtype}")
    q = q.astype(np.int64, copy=False)
    if q.size and (q.min() < 0 or q.max() >= num_nodes):
        raise DataError(f"node id {int(q.min()) if q.min() < 0 else int(q.max())} is out of range "
                        f"for a graph of {num_nodes} nodes")
    if strategy == "similar":
        if features is None:
            raise ConfigError("neighbour strategy 'similar' needs node features; none were given "
                              f"(valid strategies: {', '.join(STRATEGIES)})")
        if features.dim() != 2 or features.size(0) != num_nodes:
            raise DataError(f"features must be [num_nodes={num_nodes}, d]; got {tuple(features.shape)}")
    ptr, col = _undirected_csr(edge_index, num_nodes)
    if k == 0 or q.size == 0:
        return [[] for _ in range(q.size)]

    # The queried nodes' neighbour lists, flattened: entry e belongs to query seg[e].
    start, deg = ptr[q], ptr[q + 1] - ptr[q]
    total = int(deg.sum())
    seg = np.repeat(np.arange(q.size, dtype=np.int64), deg)
    offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(deg) - deg, deg)
    nbr = col[np.repeat(start, deg) + offset]
    center = q[seg]

    if strategy == "random":
        pair = (center.astype(np.uint64) << np.uint64(32)) ^ nbr.astype(np.uint64)
        salt = _splitmix64(np.array([int(seed) & 0xFFFFFFFFFFFFFFFF], dtype=np.uint64))[0]
        score = _splitmix64(pair ^ salt)                       # lower first
    elif strategy == "degree":
        score = -np.diff(ptr)[nbr]                             # higher degree first
    else:
        x = torch.nn.functional.normalize(features.detach().float().cpu(), dim=1)
        score = np.empty(total, dtype=np.float32)
        chunk = max(1, (1 << 24) // max(1, x.size(1)))         # ~64 MB of gathered rows at a time
        for lo in range(0, total, chunk):
            a = torch.from_numpy(center[lo:lo + chunk])
            b = torch.from_numpy(nbr[lo:lo + chunk])
            score[lo:lo + chunk] = (-(x[a] * x[b]).sum(dim=1)).numpy()   # most similar first

    # Sort by (query, score, neighbour id). Within a query the entries are in ascending id order,
    # so a stable sort by score ranks ties by id; the rank then makes a unique int64 sort key.
    by_score = np.argsort(score, kind="stable")
    rank = np.empty(total, dtype=np.int64)
    rank[by_score] = np.arange(total, dtype=np.int64)
    key = np.sort(seg * np.int64(total) + rank)                # seg is sorted: key's query part is seg
    order = by_score[key - seg * np.int64(total)]
    chosen = nbr[order][offset < k]                            # offset = position within the query
    counts = np.minimum(deg, k)
    flat = chosen.tolist()
    out, pos = [], 0
    for c in counts.tolist():
        out.append(flat[pos:pos + c])
        pos += c
    return out

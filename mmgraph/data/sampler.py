r"""Neighbour sampling for mini-batch training, with or without PyG's compiled samplers.

PyG's :class:`~torch_geometric.loader.NeighborLoader` needs ``pyg-lib`` or ``torch-sparse``,
which have no wheels for many torch builds. :class:`UniformNeighborSampler` is a pure-PyTorch
replacement with the same semantics, plugged into PyG's loader interface
(:class:`~torch_geometric.sampler.BaseSampler` + :class:`~torch_geometric.loader.NodeLoader`),
so its mini-batches are ordinary :class:`~torch_geometric.data.Data` objects with ``n_id``,
``e_id``, ``input_id``, ``batch_size``, ``num_sampled_nodes`` and ``num_sampled_edges``,
exactly like NeighborLoader's. :func:`neighbor_loader` picks PyG's loader when a compiled
backend is importable and this one otherwise.

**Semantics** (PyG's directional, ``disjoint=False``, ``replace=False`` sampling):

- the graph is stored once in CSC form (edges sorted by destination, ``colptr`` from
  ``bincount`` + ``cumsum``), so a node's candidates are its *in*-neighbours, the sources of
  the messages it receives;
- hop ``l`` samples, for every node first reached in hop ``l - 1`` (the seeds for hop 1),
  ``min(k_l, in-degree)`` distinct in-edges uniformly at random (``k_l = -1``: all of them);
- ``n_id`` lists the seeds first, in the given order, then every newly reached node in the order
  it was first sampled; the subgraph's ``edge_index`` holds the sampled edges only, in local ids,
  ``edge_index[0]`` the sampled neighbour and ``edge_index[1]`` the node that receives the
  message, so the first ``batch_size`` rows of a GNN's output are the seeds' predictions;
- ``e_id`` are the sampled edges' positions in the original ``edge_index``.

With fanouts of ``-1`` the sampled subgraph of an ``L``-layer GNN contains every edge that
reaches a seed within ``L`` hops, so its outputs on the seeds equal full-batch outputs (tested).

**Vectorised.** Per hop: gather degrees; nodes with ``deg <= k`` take all their edges
(``repeat_interleave`` + ``arange``); nodes with ``deg > k`` draw ``k`` distinct positions
with Robert Floyd's algorithm run for all such nodes at once (``k`` tensor steps; each step draws
``t`` uniform in ``[0, j]`` and takes ``j`` instead when ``t`` was already drawn), which gives
every ``k``-subset the same probability exactly; new nodes are found and relabelled through a
global-id → local-id map (one ``[num_nodes]`` tensor per sampler, reset after every batch) with
a ``scatter_reduce(amin)`` for first occurrences, so no sorting at all. There is no Python loop
over nodes or edges; the loops are over hops and over the ``k`` steps of Floyd's algorithm. The
map makes one sampler object non-reentrant: do not share it between threads (DataLoader worker
*processes* are fine, each has its own copy).

**Randomness.** A sampler draws from its own :class:`torch.Generator` (``seed=``), or from
PyTorch's global generator when it has none. In DataLoader worker processes it reseeds from the
worker's seed (which PyTorch derives from the global RNG), so workers never share a stream.
"""
from __future__ import annotations

import logging
from typing import Any, Sequence

import torch
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.sampler import BaseSampler, NodeSamplerInput, SamplerOutput

from mmgraph.checks import integers
from mmgraph.errors import ConfigError

log = logging.getLogger(__name__)

BACKENDS = ("auto", "pyg", "torch")


def build_csc(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, Tensor, Tensor]:
    """``(colptr, row, perm)``: the edges sorted (stably) by destination.

    ``row[colptr[v]:colptr[v + 1]]`` are the sources of ``v``'s in-edges and ``perm`` their
    positions in ``edge_index``.
    """
    col = edge_index[1]
    perm = torch.sort(col, stable=True).indices
    row = edge_index[0][perm]
    colptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    torch.cumsum(torch.bincount(col, minlength=num_nodes), 0, out=colptr[1:])
    return colptr, row, perm


def _segment_arange(counts: Tensor, total: int) -> Tensor:
    """``cat([arange(c) for c in counts])`` without a loop."""
    starts = torch.cumsum(counts, 0) - counts
    offsets = torch.repeat_interleave(starts, counts, output_size=total)
    return torch.arange(total, dtype=torch.long) - offsets


def _floyd(deg: Tensor, k: int, generator: torch.Generator | None) -> Tensor:
    """``[len(deg), k]`` distinct positions in ``[0, deg_i)`` per row, each k-subset equally likely.

    Robert Floyd's algorithm, one tensor step per draw for all rows at once (``deg_i > k``).
    """
    rows = deg.numel()
    out = torch.empty(rows, k, dtype=torch.long)
    for step in range(k):
        j = deg - k + step                                   # per row, the step's upper bound
        t = torch.randint(0, 2**62, (rows,), generator=generator) % (j + 1)   # uniform in [0, j]
        if step:
            taken = (out[:, :step] == t.unsqueeze(1)).any(dim=1)
            t = torch.where(taken, j, t)
        out[:, step] = t
    return out


class UniformNeighborSampler(BaseSampler):
    """Uniform neighbour sampling without replacement, vectorised, pure PyTorch.

    Args:
        data: a homogeneous :class:`~torch_geometric.data.Data` with ``edge_index``
            (source → destination) and ``num_nodes``.
        num_neighbors: neighbours to sample per hop (``-1``: all); one entry per GNN layer.
        seed: seed of the sampler's own generator; ``None`` draws from PyTorch's global RNG.
        csc: ``(colptr, row, perm)`` of ``data`` from :func:`build_csc` (e.g. another sampler's
            :attr:`csc`), to share one copy of the graph between samplers.
    """

    def __init__(self, data: Data, num_neighbors: Sequence[int], seed: int | None = None,
                 csc: tuple[Tensor, Tensor, Tensor] | None = None):
        self.num_neighbors = integers("num_neighbors", num_neighbors, -1)
        if data.edge_index is None:
            raise ValueError("UniformNeighborSampler needs data.edge_index")
        self.num_nodes = int(data.num_nodes)
        if csc is None:
            csc = build_csc(data.edge_index.cpu(), self.num_nodes)
        self.colptr, self.row, self.perm = csc
        self.generator = torch.Generator().manual_seed(seed) if seed is not None else None
        self._worker: int | None = None
        self._local: Tensor | None = None  # scratch map, allocated on first use

    @property
    def csc(self) -> tuple[Tensor, Tensor, Tensor]:
        return self.colptr, self.row, self.perm

    def reseed(self, seed: int) -> None:
        """Restart the sampler's own random stream at ``seed``."""
        if self.generator is None:
            self.generator = torch.Generator()
        self.generator.manual_seed(int(seed))

    # -------------------------------------------------------------- BaseSampler interface

    def sample_from_nodes(self, index: NodeSamplerInput, **kwargs) -> SamplerOutput:
        if index.input_type is not None:
            raise NotImplementedError("UniformNeighborSampler samples homogeneous graphs only")
        if index.time is not None:
            raise NotImplementedError("UniformNeighborSampler does not sample temporally")
        out = self.sample(index.node)
        out.metadata = (index.input_id, index.time)
        return out

    def sample_from_edges(self, index, neg_sampling=None):
        raise NotImplementedError("UniformNeighborSampler samples from seed nodes only")

    @property
    def edge_permutation(self) -> None:
        return None  # ``edge`` already holds positions in the original edge_index

    # -------------------------------------------------------------- sampling

    def _generator(self) -> torch.Generator | None:
        info = torch.utils.data.get_worker_info()
        if info is not None and self._worker != info.id:  # a worker process: its own stream
            self._worker = info.id
            self.reseed(info.seed)
        return self.generator

    def sample_edges(self, nodes: Tensor, k: int) -> tuple[Tensor, Tensor]:
        """For each node, ``min(k, in-degree)`` distinct in-edges (all if ``k < 0``).

        Returns ``(count, pos)``: the number taken per node and their CSC positions, grouped
        by node in the order of ``nodes``.
        """
        start = self.colptr[nodes]
        deg = self.colptr[nodes + 1] - start
        count = deg if k < 0 else deg.clamp(max=k)
        total = int(count.sum())
        within = _segment_arange(count, total)
        if k >= 0:
            big = (deg > k).nonzero().view(-1)
            if big.numel():
                at = (torch.cumsum(count, 0) - count)[big].unsqueeze(1) + torch.arange(k)
                within[at.view(-1)] = _floyd(deg[big], k, self._generator()).view(-1)
        pos = torch.repeat_interleave(start, count, output_size=total) + within
        return count, pos

    def sample(self, seeds: Tensor) -> SamplerOutput:
        """Sample the multi-hop neighbourhood of ``seeds`` (global ids)."""
        seeds = seeds.to(torch.long).cpu().view(-1)
        if self._local is None:  # global id -> local id of the batch being sampled, else -1
            self._local = torch.full((self.num_nodes,), -1, dtype=torch.long)
        local_of = self._local
        # Seeds keep their positions; a repeated seed maps to its first position.
        local_of[seeds] = seeds.numel()
        local_of.scatter_reduce_(0, seeds, torch.arange(seeds.numel()), reduce="amin")
        parts = [seeds]
        frontier, frontier_local = seeds, torch.arange(seeds.numel())
        rows, cols, edges = [], [], []
        num_nodes, num_edges, n = [seeds.numel()], [], seeds.numel()
        try:
            for k in self.num_neighbors:
                count, pos = self.sample_edges(frontier, k)
                nbr = self.row[pos]
                new = _first_seen_new(local_of, nbr)
                local_of[new] = torch.arange(n, n + new.numel())
                rows.append(local_of[nbr])
                cols.append(torch.repeat_interleave(frontier_local, count, output_size=pos.numel()))
                edges.append(self.perm[pos])
                num_edges.append(pos.numel())
                parts.append(new)
                frontier, frontier_local = new, torch.arange(n, n + new.numel())
                n += new.numel()
                num_nodes.append(new.numel())
            node = torch.cat(parts)
        finally:
            for part in parts:  # leave the map all -1 for the next batch
                local_of[part] = -1
        empty = torch.empty(0, dtype=torch.long)
        return SamplerOutput(node=node, row=torch.cat(rows) if rows else empty,
                             col=torch.cat(cols) if cols else empty,
                             edge=torch.cat(edges) if edges else empty, batch=None,
                             num_sampled_nodes=num_nodes, num_sampled_edges=num_edges)


def _first_seen_new(local_of: Tensor, nbr: Tensor) -> Tensor:
    """The distinct entries of ``nbr`` not yet in the batch (``local_of == -1``), in order of
    first occurrence; uses ``local_of`` as scratch and leaves it unchanged."""
    cand_pos = (local_of[nbr] < 0).nonzero().view(-1)
    cand = nbr[cand_pos]
    local_of[cand] = cand_pos.numel()                                 # above any position
    local_of.scatter_reduce_(0, cand, torch.arange(cand_pos.numel()), reduce="amin")
    first = local_of[cand] == torch.arange(cand_pos.numel())
    local_of[cand] = -1
    return cand[first]


def check_backend(backend: Any, key: str = "backend") -> str:
    """``backend`` if it is one of :data:`BACKENDS`; ``key`` names it in the error."""
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ConfigError(f"{key}: unknown sampler backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    return backend


def pyg_backend() -> str | None:
    """The compiled sampler PyG's NeighborLoader would use, or ``None``."""
    import torch_geometric.typing as pyg_typing

    if pyg_typing.WITH_PYG_LIB:
        return "pyg-lib"
    if pyg_typing.WITH_TORCH_SPARSE:
        return "torch-sparse"
    return None


def neighbor_loader(data: Data, num_neighbors: Sequence[int], input_nodes: Tensor | None = None,
                    batch_size: int = 1024, shuffle: bool = False, backend: str = "auto",
                    seed: int | None = None, csc: tuple[Tensor, Tensor, Tensor] | None = None,
                    **kwargs: Any):
    """A neighbour-sampling loader over ``data``: PyG's NeighborLoader or the vectorised one.

    Args:
        data: homogeneous graph (``edge_index``, node attributes of size ``num_nodes``).
        num_neighbors: fanout per hop (``-1``: all neighbours).
        input_nodes: seed nodes (indices or a boolean mask); all nodes by default.
        batch_size: seeds per mini-batch.
        shuffle: reshuffle the seeds every epoch.
        backend: ``"pyg"`` (NeighborLoader; needs pyg-lib or torch-sparse), ``"torch"``
            (:class:`UniformNeighborSampler` in a :class:`~torch_geometric.loader.NodeLoader`)
            or ``"auto"`` (``"pyg"`` when importable).
        seed: seed of the vectorised sampler's generator (``backend="torch"`` only; PyG's
            samplers draw from the global RNG).
        csc: the graph in CSC form for the vectorised sampler (see
            :class:`UniformNeighborSampler`); built from ``data`` when not given.
        **kwargs: passed to the loader (``num_workers``, ``generator``, ``drop_last``, ...).

    The returned loader has the attribute ``backend`` (``"pyg-lib"``, ``"torch-sparse"`` or
    ``"torch"``); its sampler is ``loader.node_sampler``.
    """
    from torch_geometric.loader import NeighborLoader, NodeLoader

    check_backend(backend)
    fanouts = integers("num_neighbors", num_neighbors, -1)
    compiled = pyg_backend()
    if backend == "pyg" and compiled is None:
        raise ConfigError("sampler backend 'pyg' needs pyg-lib or torch-sparse, and neither is "
                          "importable; use backend='torch' or 'auto'")
    if backend == "pyg" or (backend == "auto" and compiled is not None):
        loader = NeighborLoader(data, num_neighbors=fanouts, input_nodes=input_nodes,
                                batch_size=batch_size, shuffle=shuffle, **kwargs)
        loader.backend = compiled
    else:
        sampler = UniformNeighborSampler(data, fanouts, seed=seed, csc=csc)
        loader = NodeLoader(data, node_sampler=sampler, input_nodes=input_nodes,
                            batch_size=batch_size, shuffle=shuffle, **kwargs)
        loader.backend = "torch"
    log.info("neighbour sampling with %s (fanouts %s, batch size %d)", loader.backend, fanouts,
             batch_size)
    return loader

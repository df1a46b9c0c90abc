r"""Layer trimming for mini-batches of sampled neighbourhoods.

A neighbour sampler with ``H`` hops returns a subgraph whose nodes are the seeds, then the nodes
first reached in hop 1, ..., then those first reached in hop ``H``, and whose edges are those
sampled in hop 1 (into the seeds), then those of hop 2 (into the hop-1 nodes), and so on
(``num_sampled_nodes`` ``[n_0, ..., n_H]`` and ``num_sampled_edges`` ``[e_1, ..., e_H]`` count
them; :class:`~mmgraph.data.sampler.UniformNeighborSampler` and PyG's NeighborLoader both emit
this order). An ``L``-layer GNN run on the whole subgraph computes every layer on every node,
although only the seeds' outputs are used: layer ``l`` (1-based) only needs its outputs on the
nodes within ``L - l`` hops of the seeds, and those depend only on the edges into them, which
are a prefix of the edge list. :class:`HopGraph` hands each layer that part as a *block*: an
:class:`~mmgraph.nn.sparse.Adjacency` with the ``num_dst`` nodes within ``L - l`` hops as
destinations (rows) and the ``num_src`` nodes within ``L - l + 1`` hops as sources, the
destinations being the first ``num_dst`` sources. The last layer then computes the seeds only,
the one before the seeds and their 1-hop neighbours, and so on.

For a 2-layer GraphSAGE with fanouts ``[15, 10]`` and 1,024 seeds, the first layer computes
~15k rows instead of ~53k and the second 1,024 instead of ~53k (``benchmarks/minibatch_scale.py``
measures it).

**Exact on the seeds.** The nodes and edges left out never reach a seed within the remaining
layers, so the seeds' outputs are those of the untrimmed model (tested), with one caveat of
GCN's normalisation: its weights use the in-degrees of the *whole* sampled subgraph (a source
node in the outermost hop of a block keeps its degree), which :class:`Block` takes from its
:class:`HopGraph`. In training mode, layers that mix rows (BatchNorm's batch statistics) see
only the rows the layer computes, as with DGL's blocks, so training with and without trimming
differs in those statistics (and in dropout's random draws); in evaluation mode the outputs
agree.

A model uses trimming when it is called with a :class:`HopGraph` as its graph; the
:class:`~mmgraph.tasks.NodeClassification` task builds one per mini-batch for models whose
``supports_trimming`` is true (``task.trim_layers``). Example::

    graph = HopGraph(batch.edge_index, batch.num_sampled_nodes, batch.num_sampled_edges)
    out = model(batch.x, graph)          # [batch.batch_size, out_channels]: the seeds only
"""
from __future__ import annotations

import weakref
from itertools import accumulate
from typing import Sequence

import torch
from torch import Tensor

from mmgraph.errors import DataError
from mmgraph.nn.sparse import Adjacency


class Block(Adjacency):
    """A layer's part of a sampled subgraph: ``num_dst`` destination rows, ``num_src`` sources,
    the destinations being the first ``num_dst`` sources (so ``x[:num_dst]`` are their own rows).

    Besides the :class:`~mmgraph.nn.sparse.Adjacency` operations it adds self loops to the
    destinations only, and computes GCN weights from the in-degrees of the whole subgraph
    (:attr:`hops`), so that a GCN layer on a block equals the same layer on the whole subgraph
    for the destination nodes.
    """

    def __init__(self, crow: Tensor, col: Tensor, num_src: int, num_dst: int,
                 hops: "HopGraph | None" = None, looped: bool = False):
        super().__init__(crow, col, num_src, num_dst)
        self.hops, self.looped = hops, looped

    def __repr__(self) -> str:
        return f"Block(num_src={self.num_src}, num_dst={self.num_dst}, num_edges={self.num_edges})"

    def to(self, device: torch.device | str) -> "Block":
        if torch.device(device) == self.device:
            return self
        hops = self.hops.to(device) if self.hops is not None else None
        return Block(self.crow.to(device), self.col.to(device), self.num_src, self.num_dst, hops,
                     self.looped)

    def with_self_loops(self) -> "Block":
        """Existing self loops removed and one added per destination node."""
        if "loops" not in self._cache:
            keep = self.col != self.row
            loops = torch.arange(self.num_dst, device=self.device)
            edges = torch.stack([torch.cat([self.col[keep], loops]), torch.cat([self.row[keep], loops])])
            block = Block.from_edge_index(edges, (self.num_src, self.num_dst))
            block.hops, block.looped = self.hops, True
            self._cache["loops"] = block
        return self._cache["loops"]  # type: ignore[return-value]

    def gcn_weights(self, dtype: torch.dtype = torch.float) -> Tensor:
        r"""Edge weights of :math:`D^{-1/2} A D^{-1/2}` with the in-degrees :math:`D` of the whole
        subgraph (with one self loop per node when this block has them)."""
        if self.hops is None:
            raise DataError("a Block without its HopGraph has no degrees for GCN weights")
        key = f"gcn:{dtype}"
        if key not in self._cache:
            deg = self.hops.in_degree(self.looped)[:self.num_src].to(dtype)
            inv = deg.pow(-0.5).masked_fill(deg == 0, 0.0)
            self._cache[key] = inv[self.row] * inv[self.col]
        return self._cache[key]  # type: ignore[return-value]


class HopGraph:
    """A sampled subgraph ordered by hop, from which each layer takes the block it needs.

    Args:
        edge_index: ``[2, E]`` sampled edges in local ids (row 0: source, row 1: destination),
            the edges of hop 1 first, then those of hop 2, ...
        num_sampled_nodes: ``[n_0, ..., n_H]``, the seeds and the nodes first reached per hop
            (the nodes are ordered so).
        num_sampled_edges: ``[e_1, ..., e_H]``, the edges sampled per hop.

    The order is checked (each hop's edges point into the previous hop's nodes, from nodes
    reached by then): a subgraph in another order raises :class:`~mmgraph.errors.DataError`
    instead of silently losing edges.
    """

    def __init__(self, edge_index: Tensor, num_sampled_nodes: Sequence[int],
                 num_sampled_edges: Sequence[int]):
        self.edge_index = edge_index
        self.num_sampled_nodes = [int(n) for n in num_sampled_nodes]
        self.num_sampled_edges = [int(e) for e in num_sampled_edges]
        nodes, edges = self.num_sampled_nodes, self.num_sampled_edges
        if len(nodes) != len(edges) + 1 or sum(edges) != edge_index.size(1):
            raise DataError(f"a HopGraph needs one node count per hop plus the seeds and one edge "
                            f"count per hop summing to the {edge_index.size(1)} edges; got nodes "
                            f"{nodes}, edges {edges}")
        self.num_nodes = sum(nodes)
        self._check_order()
        # Weak: a block refers to its HopGraph (for the degrees), and a strong cache here would
        # make a reference cycle that keeps every batch's tensors alive until Python's cyclic
        # garbage collector happens to run (on large graphs, hundreds of MiB of peak memory over
        # an epoch). A block lives as long as a layer or autograd uses it.
        self._blocks: weakref.WeakValueDictionary[tuple[int, int, int], Block] = \
            weakref.WeakValueDictionary()
        self._degree: dict[bool, Tensor] = {}

    @property
    def num_hops(self) -> int:
        return len(self.num_sampled_edges)

    @property
    def device(self) -> torch.device:
        return self.edge_index.device

    def to(self, device: torch.device | str) -> "HopGraph":
        if torch.device(device) == self.device:
            return self
        return HopGraph(self.edge_index.to(device), self.num_sampled_nodes, self.num_sampled_edges)

    def __repr__(self) -> str:
        return (f"HopGraph(num_nodes={self.num_nodes}, num_sampled_nodes={self.num_sampled_nodes}, "
                f"num_sampled_edges={self.num_sampled_edges})")

    def _check_order(self) -> None:
        node_end = list(accumulate(self.num_sampled_nodes))
        first = 0
        for hop, count in enumerate(self.num_sampled_edges):
            if count:
                src, dst = self.edge_index[:, first:first + count]
                lo, hi = (node_end[hop - 1] if hop else 0), node_end[hop]
                if int(dst.min()) < lo or int(dst.max()) >= hi or int(src.min()) < 0 \
                        or int(src.max()) >= node_end[hop + 1]:
                    raise DataError(f"the sampled edges are not ordered by hop: hop {hop + 1}'s "
                                    f"edges must go into nodes [{lo}, {hi}) from nodes "
                                    f"[0, {node_end[hop + 1]})")
            first += count

    def sizes(self, layer: int, num_layers: int) -> tuple[int, int, int]:
        """``(num_src, num_dst, num_edges)`` of ``layer`` (0-based) of a ``num_layers`` stack."""
        if not 0 <= layer < num_layers:
            raise ValueError(f"layer {layer} of a {num_layers}-layer model")
        hops = num_layers - 1 - layer            # this layer's outputs: nodes within `hops` hops
        nodes, h = self.num_sampled_nodes, self.num_hops
        return (sum(nodes[:min(hops + 1, h) + 1]), sum(nodes[:min(hops, h) + 1]),
                sum(self.num_sampled_edges[:min(hops + 1, h)]))

    def layer(self, layer: int, num_layers: int) -> Block:
        """The block of ``layer`` (0-based) of a ``num_layers``-layer model (built once while
        something holds it)."""
        key = self.sizes(layer, num_layers)
        block = self._blocks.get(key)
        if block is None:
            num_src, num_dst, num_edges = key
            block = Block.from_edge_index(self.edge_index[:, :num_edges], (num_src, num_dst))
            block.hops = self
            self._blocks[key] = block
        return block

    def in_degree(self, self_loops: bool = False) -> Tensor:
        """In-degree of every node in the whole subgraph; with ``self_loops``, as after removing
        its self loops and adding one per node (GCN's convention)."""
        if self_loops not in self._degree:
            src, dst = self.edge_index
            if self_loops:
                deg = torch.bincount(dst[src != dst], minlength=self.num_nodes) + 1
            else:
                deg = torch.bincount(dst, minlength=self.num_nodes)
            self._degree[self_loops] = deg
        return self._degree[self_loops]

    def adjacency(self) -> Adjacency:
        """The whole subgraph as one square :class:`~mmgraph.nn.sparse.Adjacency` (no trimming)."""
        return Adjacency.from_edge_index(self.edge_index, self.num_nodes)


__all__ = ["HopGraph", "Block"]

r"""A sparse adjacency for full-batch message passing without per-edge feature tensors.

PyG's default path gathers a feature row per edge, ``x[src]`` of shape ``[E, d]``, and scatters
it back to the destinations. On large graphs that costs ``E * d`` memory traffic per layer and
dominates an epoch. :class:`Adjacency` stores the graph once as a compressed sparse row matrix
(rows are destination nodes) together with its transpose, so that

- aggregation is one sparse-dense product ``A @ X`` (:func:`spmm`),
- the backward pass is another product with the precomputed transpose ``A^T @ G`` (no
  transposition, and for GCN no edge gathering at all),
- the gradient with respect to edge weights (attention coefficients) is a sampled dense-dense
  product ``(G X^T)`` evaluated only on the edges (``torch.sparse.sampled_addmm``).

Only ``[E]``-sized edge tensors are ever built. Every homogeneous model of :mod:`mmgraph.nn`
except GATv2 takes an :class:`Adjacency` wherever it takes an ``edge_index`` (its
``accepts_adjacency`` is true) and computes the same function as PyG's convolutions with the
same parameters (tested). Models that are handed an ``edge_index`` convert it with
:class:`ToAdjacency`, so there is one normalisation, one sparse product and one cache rule.

Example::

    adj = Adjacency.from_edge_index(edge_index, num_nodes)
    out = model(x, adj)          # GCN, GraphSAGE, GAT, MLP, SGC, APPNP, GCNII, JKNet, RevGAT
"""
from __future__ import annotations

import warnings
from functools import cached_property

import torch
from torch import Tensor, nn

from mmgraph.errors import DataError

# "Sparse CSR tensor support is in beta state": the operations used here are stable ones.
warnings.filterwarnings("ignore", message=".*Sparse CSR tensor support is in beta.*")


class Adjacency:
    """A directed graph as CSR (rows = destinations, columns = sources) plus its transpose.

    Duplicate edges are kept (they count twice, as in PyG's message passing). Build it once per
    graph with :meth:`from_edge_index`; derived forms (with self loops, normalised weights) are
    computed on first use and cached on the object.

    Attributes:
        crow: ``[num_dst + 1]`` row pointers. col: ``[E]`` source node of each edge, in row order.
        row: ``[E]`` destination node of each edge. perm: ``[E]`` order of the edges in the
        transpose (``col_t = row[perm]``). crow_t: ``[num_src + 1]``. col_t: ``[E]``.
    """

    def __init__(self, crow: Tensor, col: Tensor, num_src: int, num_dst: int):
        self.crow, self.col = crow, col
        self.num_src, self.num_dst = int(num_src), int(num_dst)
        self.row = torch.repeat_interleave(torch.arange(num_dst, device=col.device), crow.diff())
        # Transpose: edges ordered by (source, destination).
        key = self.col * max(self.num_dst, 1) + self.row
        self.perm = torch.argsort(key, stable=True)
        self.col_t = self.row[self.perm]
        counts = torch.bincount(self.col, minlength=self.num_src)
        self.crow_t = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        self._cache: dict[str, object] = {}

    @classmethod
    def from_edge_index(cls, edge_index: Tensor, num_nodes: int | tuple[int, int]) -> "Adjacency":
        """From PyG's ``edge_index`` ``[2, E]`` (row 0: source, row 1: destination)."""
        if edge_index.dim() != 2 or edge_index.size(0) != 2:
            raise DataError(f"edge_index must have shape [2, E]; got {tuple(edge_index.shape)}")
        num_src, num_dst = (num_nodes, num_nodes) if isinstance(num_nodes, int) else num_nodes
        src, dst = edge_index[0].long(), edge_index[1].long()
        if src.numel() and (int(src.max()) >= num_src or int(dst.max()) >= num_dst or int(edge_index.min()) < 0):
            raise DataError(f"edge_index refers to nodes outside [0, {max(num_src, num_dst)})")
        order = torch.argsort(dst * max(num_src, 1) + src, stable=True)
        counts = torch.bincount(dst, minlength=num_dst)
        crow = torch.cat([counts.new_zeros(1), counts.cumsum(0)])
        return cls(crow, src[order].contiguous(), num_src, num_dst)

    # ------------------------------------------------------------------ properties
    @property
    def num_edges(self) -> int:
        return int(self.col.numel())

    @property
    def device(self) -> torch.device:
        return self.col.device

    @cached_property
    def in_degree(self) -> Tensor:
        return self.crow.diff()

    @property
    def edge_index(self) -> Tensor:
        """``[2, E]`` (source, destination) in CSR order."""
        return torch.stack([self.col, self.row])

    def to(self, device: torch.device | str) -> "Adjacency":
        if torch.device(device) == self.device:
            return self
        return Adjacency(self.crow.to(device), self.col.to(device), self.num_src, self.num_dst)

    def __repr__(self) -> str:
        return f"Adjacency(num_src={self.num_src}, num_dst={self.num_dst}, num_edges={self.num_edges})"

    # ------------------------------------------------------------------ derived graphs
    def with_self_loops(self) -> "Adjacency":
        """Existing self loops removed and one added per node (PyG's GCN/GAT convention)."""
        if "loops" not in self._cache:
            if self.num_src != self.num_dst:
                raise DataError("self loops need a square adjacency (same source and destination nodes)")
            keep = self.col != self.row
            n = self.num_dst
            loops = torch.arange(n, device=self.device)
            src = torch.cat([self.col[keep], loops])
            dst = torch.cat([self.row[keep], loops])
            self._cache["loops"] = Adjacency.from_edge_index(torch.stack([src, dst]), n)
        return self._cache["loops"]  # type: ignore[return-value]

    def gcn_norm(self, add_self_loops: bool = True,
                 dtype: torch.dtype = torch.float) -> tuple["Adjacency", Tensor]:
        r"""GCN's propagation matrix :math:`\hat D^{-1/2}(A + I)\hat D^{-1/2}` as a graph and its
        edge weights (both cached), like PyG's ``gcn_norm``; ``add_self_loops=False`` leaves
        out the :math:`I`."""
        adj = self.with_self_loops() if add_self_loops else self
        return adj, adj.gcn_weights(dtype)

    def gcn_weights(self, dtype: torch.dtype = torch.float) -> Tensor:
        r"""Edge weights of :math:`D^{-1/2} A D^{-1/2}` (in-degrees, as PyG's ``gcn_norm``)."""
        key = f"gcn:{dtype}"
        if key not in self._cache:
            deg = self.in_degree.to(dtype)
            inv = deg.pow(-0.5).masked_fill(deg == 0, 0.0)
            self._cache[key] = inv[self.row] * inv[self.col]
        return self._cache[key]  # type: ignore[return-value]

    def mean_weights(self, dtype: torch.dtype = torch.float) -> Tensor:
        """Edge weights of the mean over in-neighbours: ``1 / in_degree(destination)``."""
        key = f"mean:{dtype}"
        if key not in self._cache:
            deg = self.in_degree.to(dtype).clamp(min=1)
            self._cache[key] = deg.reciprocal()[self.row]
        return self._cache[key]  # type: ignore[return-value]

    # ------------------------------------------------------------------ products
    def matmul(self, values: Tensor, x: Tensor) -> Tensor:
        """``A @ x`` with edge weights ``values`` ``[E]`` (no autograd; see :func:`spmm`)."""
        a = torch.sparse_csr_tensor(self.crow, self.col, values, (self.num_dst, self.num_src),
                                     check_invariants=False)
        return a @ x

    def t_matmul(self, values: Tensor, x: Tensor) -> Tensor:
        """``A^T @ x`` with the edge weights of ``A`` given in CSR order."""
        a = torch.sparse_csr_tensor(self.crow_t, self.col_t, values[self.perm], (self.num_src, self.num_dst),
                                     check_invariants=False)
        return a @ x

    def sddmm(self, a: Tensor, b: Tensor) -> Tensor:
        """``(a @ b^T)`` evaluated at the edges, in CSR order: ``out[e] = <a[row_e], b[col_e]>``."""
        pattern = torch.sparse_csr_tensor(self.crow, self.col, torch.zeros(self.num_edges, dtype=a.dtype,
                                                                           device=a.device),
                                          (self.num_dst, self.num_src), check_invariants=False)
        return torch.sparse.sampled_addmm(pattern, a, b.t(), beta=0.0).values()


class _SpMM(torch.autograd.Function):
    @staticmethod
    def forward(ctx, adj: Adjacency, values: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj = adj
        ctx.save_for_backward(values, x if values.requires_grad else None)
        return adj.matmul(values, x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        values, x = ctx.saved_tensors
        adj: Adjacency = ctx.adj
        grad = grad.contiguous()
        grad_values = grad_x = None
        if ctx.needs_input_grad[2]:
            grad_x = adj.t_matmul(values, grad)
        if ctx.needs_input_grad[1]:
            grad_values = adj.sddmm(grad, x)
        return None, grad_values, grad_x


class _SpMMHeads(torch.autograd.Function):
    """One product per head: ``values [E, H]``, ``x [N_src, H, C]`` -> ``[N_dst, H, C]``.

    Heads are laid out ``[H, N, C]`` internally, so each head is a contiguous block and the
    backward pass writes every head's gradient into one tensor (no per-head zero-filled
    gradients of the whole input)."""

    @staticmethod
    def forward(ctx, adj: Adjacency, values: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        heads = values.size(1)
        xs = x.permute(1, 0, 2).contiguous()
        out = x.new_empty((heads, adj.num_dst, x.size(2)))
        for k in range(heads):
            out[k] = adj.matmul(values[:, k].contiguous(), xs[k])
        ctx.adj = adj
        ctx.save_for_backward(values, xs if values.requires_grad else None)
        return out.permute(1, 0, 2).contiguous()

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        values, xs = ctx.saved_tensors
        adj: Adjacency = ctx.adj
        heads = values.size(1)
        gs = grad.permute(1, 0, 2).contiguous()
        grad_values = grad_x = None
        if ctx.needs_input_grad[2]:
            grad_x = gs.new_empty((heads, adj.num_src, gs.size(2)))
            for k in range(heads):
                grad_x[k] = adj.t_matmul(values[:, k].contiguous(), gs[k])
            grad_x = grad_x.permute(1, 0, 2)
        if ctx.needs_input_grad[1]:
            grad_values = torch.stack([adj.sddmm(gs[k], xs[k]) for k in range(heads)], dim=1)
        return None, grad_values, grad_x


def spmm(adj: Adjacency, values: Tensor, x: Tensor) -> Tensor:
    """Differentiable ``A @ x`` for the adjacency ``adj`` with edge weights ``values``.

    ``values [E]`` with ``x [N, C]``, or one weight per edge and head, ``values [E, H]`` with
    ``x [N, H, C]`` (attention). Gradients flow to ``x`` (through the cached transpose) and to
    ``values`` (sampled product), each only when required.
    """
    if x.dtype != values.dtype:
        values = values.to(x.dtype)
    if values.dim() == 2:
        if x.dim() != 3 or x.size(1) != values.size(1):
            raise ValueError(f"per-head weights {tuple(values.shape)} need x [N, {values.size(1)}, C]; "
                             f"got {tuple(x.shape)}")
        return _SpMMHeads.apply(adj, values, x)
    return _SpMM.apply(adj, values, x.contiguous())


def as_adjacency(graph: Tensor | Adjacency, num_nodes: int) -> Adjacency:
    """The :class:`Adjacency` of a model's graph argument.

    ``graph`` is an :class:`Adjacency` (returned as it is), PyG's ``edge_index [2, E]`` over
    ``num_nodes`` nodes, or an unweighted torch sparse CSR ``adj_t`` (rows are destinations,
    as :func:`torch_geometric.utils.to_torch_csr_tensor` builds it from ``edge_index.flip(0)``).
    """
    if isinstance(graph, Adjacency):
        return graph
    if graph.layout == torch.sparse_csr:
        if not bool((graph.values() == 1).all()):
            raise DataError("a weighted sparse adjacency is not supported; pass the edge_index "
                            "(edge weights are not used by these models)")
        rows = torch.repeat_interleave(torch.arange(graph.size(0), device=graph.device),
                                       graph.crow_indices().diff())
        return Adjacency.from_edge_index(torch.stack([graph.col_indices().long(), rows]),
                                         (graph.size(1), graph.size(0)))
    if graph.layout != torch.strided:
        raise DataError(f"the graph must be an edge_index, an Adjacency or a sparse CSR adj_t; "
                        f"got a tensor of layout {graph.layout}")
    return Adjacency.from_edge_index(graph, num_nodes)


class SameInputs:
    """The inputs a cached result was computed from, to tell when it may be reused.

    :meth:`matches` is true only for the very same objects (held here, so their ids cannot be
    reused), tensors not modified in place since (their version counters), and equal
    ``extra`` values such as a node count. A call with another graph, such as a mini-batch,
    therefore never receives a stale result.
    """

    def __init__(self, *objects: object, extra: tuple = ()):
        self.objects, self.extra = objects, extra
        self.versions = _versions(objects)

    def matches(self, *objects: object, extra: tuple = ()) -> bool:
        return (len(objects) == len(self.objects) and all(a is b for a, b in zip(objects, self.objects))
                and _versions(objects) == self.versions and extra == self.extra)


def _versions(objects: tuple) -> tuple:
    return tuple(o._version if isinstance(o, Tensor) else None for o in objects)


class ToAdjacency(nn.Module):
    """Turns a model's graph argument into an :class:`Adjacency` (see :func:`as_adjacency`).

    An :class:`Adjacency` passes through: its normalisations are cached on it, so building it
    once per graph (as the tasks do) is all the caching there is. An ``edge_index`` is
    converted on every call, or with ``cached=True`` once and again only when the model is
    called with another graph (:class:`SameInputs`). ``reset_parameters()`` drops the cache.
    """

    def __init__(self, cached: bool = False):
        super().__init__()
        self.cached = cached
        self._cache: tuple[SameInputs, Adjacency] | None = None

    def reset_parameters(self) -> None:
        self._cache = None

    def forward(self, graph: Tensor | Adjacency, num_nodes: int) -> Adjacency:
        if isinstance(graph, Adjacency):
            return graph
        if self._cache is not None and self._cache[0].matches(graph, extra=(num_nodes,)):
            return self._cache[1]
        adj = as_adjacency(graph, num_nodes)
        if self.cached:
            self._cache = (SameInputs(graph, extra=(num_nodes,)), adj)
        return adj

    def extra_repr(self) -> str:
        return f"cached={self.cached}"


def segment_softmax(scores: Tensor, adj: Adjacency) -> Tensor:
    """Softmax of per-edge ``scores`` ``[E, H]`` over the incoming edges of each destination."""
    index = adj.row.unsqueeze(-1).expand_as(scores)
    peak = scores.new_full((adj.num_dst, scores.size(1)), float("-inf"))
    peak = peak.scatter_reduce(0, index, scores.detach(), "amax", include_self=True)
    ex = (scores - peak[adj.row]).exp()
    total = scores.new_zeros((adj.num_dst, scores.size(1))).index_add_(0, adj.row, ex)
    return ex / (total[adj.row] + 1e-16)


__all__ = ["Adjacency", "spmm", "segment_softmax", "as_adjacency", "SameInputs", "ToAdjacency"]

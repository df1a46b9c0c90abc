r"""A sparse adjacency for full-batch message passing without per-edge feature tensors.

PyG's default path gathers a feature row per edge, ``x[src]`` of shape ``[E, d]``, and scatters
it back to the destinations. On large graphs that costs ``E * d`` memory traffic per layer and
dominates an epoch. :class:`Adjacency` stores the graph once as a compressed sparse row matrix
(rows are destination nodes) together with its transpose, so that

- aggregation is one sparse-dense product ``A @ X`` (:func:`spmm`; on CPU a compiled kernel,
  :mod:`mmgraph.nn.cpu_spmm`, else torch's product),
- the backward pass is another product with the precomputed transpose ``A^T @ G`` (no
  transposition, and for GCN no edge gathering at all),
- the gradient with respect to edge weights (attention coefficients) is a sampled dense-dense
  product ``(G X^T)`` evaluated only on the edges (``torch.sparse.sampled_addmm``),
- GAT's attention (:func:`attention`: per-edge scores, softmax over each node's incoming
  edges, one product per head on the heads' slices of ``[N, heads, C]`` features) is one
  autograd function that keeps only the features and the ``[E, heads]`` weights for the
  backward pass.

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
from mmgraph.nn.cpu_spmm import csr_spmm

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
    def matmul(self, values: Tensor, x: Tensor, out: Tensor | None = None) -> Tensor:
        """``A @ x`` with edge weights ``values`` ``[E]`` (no autograd; see :func:`spmm`).

        ``x`` may be a strided view such as one head ``h[:, k]`` of ``[N, H, C]`` features, and
        the product is written into ``out`` when given (it may be such a view too)."""
        fast = csr_spmm(self.crow, self.col, values, x, (self.num_dst, self.num_src), out)
        if fast is not None:
            return fast
        a = torch.sparse_csr_tensor(self.crow, self.col, values, (self.num_dst, self.num_src),
                                     check_invariants=False)
        return _product(a, x, out)

    def t_matmul(self, values: Tensor, x: Tensor, out: Tensor | None = None) -> Tensor:
        """``A^T @ x`` with the edge weights of ``A`` given in CSR order (``out`` as in
        :meth:`matmul`)."""
        values = values[self.perm]
        fast = csr_spmm(self.crow_t, self.col_t, values, x, (self.num_src, self.num_dst), out)
        if fast is not None:
            return fast
        a = torch.sparse_csr_tensor(self.crow_t, self.col_t, values, (self.num_src, self.num_dst),
                                     check_invariants=False)
        return _product(a, x, out)

    def sddmm(self, a: Tensor, b: Tensor) -> Tensor:
        """``(a @ b^T)`` evaluated at the edges, in CSR order: ``out[e] = <a[row_e], b[col_e]>``."""
        pattern = torch.sparse_csr_tensor(self.crow, self.col, torch.zeros(self.num_edges, dtype=a.dtype,
                                                                           device=a.device),
                                          (self.num_dst, self.num_src), check_invariants=False)
        return torch.sparse.sampled_addmm(pattern, a, b.t(), beta=0.0).values()


def _product(a: Tensor, x: Tensor, out: Tensor | None) -> Tensor:
    """``a @ x`` for a sparse CSR ``a``, written into ``out`` (a new tensor when ``None``).

    ``addmm`` with ``beta=0`` into an uninitialised output: the same result as ``a @ x``, which
    on CPU also zero-fills a fresh output first and takes about twice as long."""
    if out is None:
        out = x.new_empty((a.size(0), x.size(-1)))
    return torch.addmm(out, a, x, beta=0.0, out=out)


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


def _heads_matmul(adj: Adjacency, values: Tensor, x: Tensor, transpose: bool = False) -> Tensor:
    """``out[:, k] = A_k @ x[:, k]`` (``A_k^T`` with ``transpose``) for per-head edge weights
    ``values [E, H]`` and ``x [N, H, C]``.

    Each head's product reads its slice of ``x`` in place and writes into its slice of one
    output: no ``[H, N, C]`` copy of the features or of the result is made."""
    rows = adj.num_src if transpose else adj.num_dst
    product = adj.t_matmul if transpose else adj.matmul
    out = x.new_empty((rows, x.size(1), x.size(2)))
    for k in range(values.size(1)):
        product(values[:, k].contiguous(), x[:, k], out=out[:, k])
    return out


def _heads_sddmm(adj: Adjacency, a: Tensor, b: Tensor) -> Tensor:
    """``out[e, k] = <a[row_e, k], b[col_e, k]>`` ``[E, H]`` for ``a [N_dst, H, C]``, ``b [N_src, H, C]``.

    The sampled product reads row-major matrices: one head at a time is copied into the same
    two buffers (torch would allocate a pair of copies per head)."""
    out = a.new_empty((adj.num_edges, a.size(1)))
    a_k, b_k = a.new_empty((a.size(0), a.size(2))), b.new_empty((b.size(0), b.size(2)))
    for k in range(a.size(1)):
        out[:, k] = adj.sddmm(a_k.copy_(a[:, k]), b_k.copy_(b[:, k]))
    return out


class _SpMMHeads(torch.autograd.Function):
    """One product per head: ``values [E, H]``, ``x [N_src, H, C]`` -> ``[N_dst, H, C]``.

    Saved for the backward pass: ``values`` and ``x`` itself (which the layer keeps anyway)."""

    @staticmethod
    def forward(ctx, adj: Adjacency, values: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        ctx.adj = adj
        ctx.save_for_backward(values, x if values.requires_grad else None)
        return _heads_matmul(adj, values, x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        values, x = ctx.saved_tensors
        adj: Adjacency = ctx.adj
        grad_x = _heads_matmul(adj, values, grad, transpose=True) if ctx.needs_input_grad[2] else None
        grad_values = _heads_sddmm(adj, grad, x) if ctx.needs_input_grad[1] else None
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


def attention_matrix(att_src: Tensor, att_dst: Tensor) -> Tensor:
    """The ``[2H, H * C]`` block-diagonal matrix of GAT's attention vectors ``[1, H, C]``: the
    product of features ``h [N, H, C]`` viewed as ``[N, H * C]`` with its transpose is
    ``[a_src | a_dst]`` ``[N, 2H]``, ``a = (h * att).sum(-1)``, without the ``[N, H, C]``
    products (two in the forward pass, four in the backward pass, each the size of ``h``)."""
    heads, ch = att_src.shape[-2], att_src.shape[-1]
    eye = torch.eye(heads, dtype=att_src.dtype, device=att_src.device).unsqueeze(-1)  # [H, H, 1]
    blocks = torch.cat([eye * att_src.reshape(heads, 1, ch), eye * att_dst.reshape(heads, 1, ch)])
    return blocks.view(2 * heads, heads * ch)


def attention_logits(h: Tensor, att_src: Tensor, att_dst: Tensor) -> tuple[Tensor, Tensor]:
    """GAT's per-node logits ``(h * att_src).sum(-1)``, ``(h * att_dst).sum(-1)`` ``[N, H]`` of
    features ``h [N, H, C]`` (one product with :func:`attention_matrix`)."""
    heads = h.size(1)
    logits = torch.nn.functional.linear(h.reshape(h.size(0), -1), attention_matrix(att_src, att_dst))
    return logits[:, :heads], logits[:, heads:]


class _Attention(torch.autograd.Function):
    """GAT's attention and aggregation in one function (see :func:`attention`).

    Saved for the backward pass: ``x`` (which the layer's projection produced and its backward
    pass does not keep), the logits ``[N, 2H]`` and the attention weights ``[E, H]``; the
    scores before the LeakyReLU are recomputed from the logits. No other per-edge tensor
    outlives the forward pass, the ones computed there are updated in place, and the logits'
    share of the gradient of ``x`` is added to the aggregation's in place."""

    @staticmethod
    def forward(ctx, adj: Adjacency, x: Tensor, att: Tensor,  # type: ignore[override]
                negative_slope: float) -> Tensor:
        heads = x.size(1)
        logits = torch.nn.functional.linear(x.reshape(x.size(0), -1), att)
        a_src, a_dst = logits[:, :heads], logits[:, heads:]
        alpha = torch.nn.functional.leaky_relu_(a_src[adj.col] + a_dst[adj.row], negative_slope)
        # segment_softmax's operations, in place
        peak = alpha.new_full((adj.num_dst, heads), float("-inf"))
        peak = peak.scatter_reduce_(0, adj.row.unsqueeze(-1).expand_as(alpha), alpha, "amax")
        alpha.sub_(peak[adj.row]).exp_()
        total = alpha.new_zeros((adj.num_dst, heads)).index_add_(0, adj.row, alpha)
        alpha.div_(total.add_(1e-16)[adj.row])
        ctx.adj, ctx.negative_slope = adj, negative_slope
        ctx.save_for_backward(x, att, logits, alpha)
        return _heads_matmul(adj, alpha, x)

    @staticmethod
    def backward(ctx, grad: Tensor):  # type: ignore[override]
        x, att, logits, alpha = ctx.saved_tensors
        adj: Adjacency = ctx.adj
        heads = x.size(1)
        a_src, a_dst = logits[:, :heads], logits[:, heads:]
        # softmax: d score_e = alpha_e * (d alpha_e - sum over the destination's edges of alpha * d alpha)
        d = _heads_sddmm(adj, grad, x).mul_(alpha)
        total = d.new_zeros((adj.num_dst, heads)).index_add_(0, adj.row, d)
        d.sub_(alpha * total[adj.row])
        # LeakyReLU, at the recomputed scores
        d = torch.where(a_src[adj.col] + a_dst[adj.row] > 0, d, d * ctx.negative_slope)
        grad_logits = logits.new_zeros(logits.shape)
        grad_logits[:, :heads].index_add_(0, adj.col, d)
        grad_logits[:, heads:].index_add_(0, adj.row, d)
        grad_x = grad_att = None
        if ctx.needs_input_grad[1]:
            grad_x = _heads_matmul(adj, alpha, grad, transpose=True)
            grad_x.view(x.size(0), -1).addmm_(grad_logits, att)
        if ctx.needs_input_grad[2]:
            grad_att = grad_logits.t() @ x.reshape(x.size(0), -1)
        return None, grad_x, grad_att, None


def attention(adj: Adjacency, x: Tensor, att_src: Tensor, att_dst: Tensor,
              negative_slope: float = 0.2) -> Tensor:
    r"""GAT's attention and aggregation (PyG's ``GATConv`` after its projection, with one graph
    and no edge features): ``out [N_dst, H, C]`` from projected features ``x [N_src, H, C]``
    and the attention vectors ``att_src``, ``att_dst`` ``[1, H, C]``.

    .. math::
        \alpha_{j \to i} = \mathrm{softmax}_j\big(\mathrm{LeakyReLU}(\langle x_j, att_{src}\rangle
        + \langle x_i, att_{dst}\rangle)\big), \qquad out_i = \sum_j \alpha_{j \to i} \, x_j

    per head, as ``spmm(adj, segment_softmax(leaky_relu(a_src[col] + a_dst[row]), adj), x)``
    with :func:`attention_logits` computes it, in one autograd function: of the per-edge
    tensors only the attention weights ``[E, H]`` are kept for the backward pass, and no
    per-node tensor besides ``x`` (see :class:`_Attention`).
    """
    if x.dim() != 3 or x.size(0) != adj.num_src or adj.num_dst > adj.num_src:
        raise ValueError(f"attention needs x [num_src, H, C] over an adjacency with at most as many "
                         f"destinations as sources; got x {tuple(x.shape)} for {adj}")
    return _Attention.apply(adj, x, attention_matrix(att_src, att_dst).to(x.dtype), float(negative_slope))


__all__ = ["Adjacency", "spmm", "segment_softmax", "attention", "attention_logits",
           "attention_matrix", "as_adjacency", "SameInputs", "ToAdjacency"]

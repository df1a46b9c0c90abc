r"""Parameter-free propagation with GCN's normalised adjacency
:math:`\hat A = \hat D^{-1/2}(A + I)\hat D^{-1/2}`.

Both operators take the graph as an :class:`~mmgraph.nn.sparse.Adjacency`, an ``edge_index``
``[2, E]`` or a sparse CSR ``adj_t`` (converted by :class:`~mmgraph.nn.sparse.ToAdjacency`), and
aggregate with the adjacency's cached normalisation and its sparse product.

- :class:`SymmetricPropagation` — :math:`\hat A^K X` (SGC's pre-processing).
- :class:`PPRPropagation` — ``K`` steps of approximate personalised PageRank (APPNP).
"""
from __future__ import annotations

from torch import Tensor, nn

from mmgraph.errors import ConfigError
from mmgraph.nn.sparse import Adjacency, SameInputs, ToAdjacency, spmm


def check_hops(model: str, K: int) -> None:
    """``K`` propagation steps must be an integer >= 0; the message names ``model``."""
    if isinstance(K, bool) or not isinstance(K, int) or K < 0:
        raise ConfigError(f"{model}: K (propagation steps) must be an integer >= 0, got {K!r}")


class SymmetricPropagation(nn.Module):
    r"""Parameter-free smoothing :math:`\hat A^K X` (the pre-processing of SGC).

    Args:
        K: number of propagation steps (0 returns the input).
        cached: keep the result (and the adjacency built from an ``edge_index``) and return it
            again while the module is called with the very same ``x`` and graph objects,
            unmodified (full-batch transductive training; see
            :class:`~mmgraph.nn.sparse.SameInputs`). Never caches when ``x`` requires a
            gradient.

    Shapes:
        - input: ``x [N, F]``; graph: ``Adjacency``, ``edge_index [2, E]`` or ``adj_t [N, N]``
        - output: ``[N, F]``
    """

    def __init__(self, K: int, cached: bool = False):
        super().__init__()
        self.K, self.cached = K, cached
        self.to_adjacency = ToAdjacency(cached)
        self._cache: tuple[SameInputs, Tensor] | None = None

    def reset_parameters(self) -> None:
        self.to_adjacency.reset_parameters()
        self._cache = None

    def forward(self, x: Tensor, edge_index: Tensor | Adjacency) -> Tensor:
        if self._cache is not None and self._cache[0].matches(x, edge_index):
            return self._cache[1]
        out = x
        if self.K > 0:
            adj, weight = self.to_adjacency(edge_index, x.size(0)).gcn_norm(dtype=x.dtype)
            for _ in range(self.K):
                out = spmm(adj, weight, out)
        if self.cached and not x.requires_grad:
            self._cache = (SameInputs(x, edge_index), out.detach())
        return out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(K={self.K}, cached={self.cached})"


class PPRPropagation(nn.Module):
    r"""``K`` steps of approximate personalised PageRank, :math:`Z \leftarrow (1-\alpha)\hat A Z + \alpha H`.

    Edge dropout is drawn afresh from the normalised weights at every step. (PyG 2.8's
    ``APPNP`` layer feeds each step's dropped weights into the next step, so edges vanish and
    the survivors' weights grow like :math:`(1-p)^{-K}`; pyg-team/pytorch_geometric#10783.)

    Args:
        K: propagation steps (0 returns the input).
        alpha: teleport probability; 1 returns the input.
        edge_dropout: dropout on the normalised edge weights (an ``nn.Dropout``).
        cached: keep the adjacency built from an ``edge_index`` while called with the same
            graph (an :class:`~mmgraph.nn.sparse.Adjacency` caches its own normalisation).

    Shapes:
        - input: ``h [N, F]``; graph: ``Adjacency``, ``edge_index [2, E]`` or ``adj_t [N, N]``
        - output: ``[N, F]``
    """

    def __init__(self, K: int, alpha: float, edge_dropout: float = 0.0, cached: bool = False):
        super().__init__()
        self.K, self.alpha, self.cached = K, alpha, cached
        self.to_adjacency = ToAdjacency(cached)
        self.edge_drop = nn.Dropout(edge_dropout)

    def reset_parameters(self) -> None:
        self.to_adjacency.reset_parameters()

    def forward(self, h: Tensor, edge_index: Tensor | Adjacency) -> Tensor:
        if self.K == 0:
            return h
        adj, weight = self.to_adjacency(edge_index, h.size(0)).gcn_norm(dtype=h.dtype)
        drop_edges = self.edge_drop.p > 0 and self.edge_drop.training
        z = h
        for _ in range(self.K):
            weight_k = self.edge_drop(weight) if drop_edges else weight  # a fresh mask per step
            z = (1.0 - self.alpha) * spmm(adj, weight_k, z) + self.alpha * h
        return z

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(K={self.K}, alpha={self.alpha}, cached={self.cached})"


__all__ = ["SymmetricPropagation", "PPRPropagation", "check_hops"]

r"""More homogeneous GNNs: GCNII, APPNP, SGC, JKNet and RevGAT.

Every model here takes the arguments of :class:`~mmgraph.nn.basic_gnn.BasicGNN`
(``in_channels, hidden_channels, out_channels, num_layers, dropout, input_dropout, norm,
activation``) followed by its own, is called as ``model(x, edge_index)``, and
re-initialises all its weights with ``reset_parameters()``. ``edge_index`` is either a
``[2, E]`` index tensor or a torch sparse CSR adjacency ``adj_t`` (row = target node,
column = source node, as :func:`torch_geometric.utils.to_torch_csr_tensor` builds it from
``edge_index.flip(0)``). Built on PyTorch Geometric's layers; every dropout is an
``nn.Dropout`` module, so the train/eval switch also survives FX tracing. (``to_hetero`` does
not apply: GCN normalisation with self loops and GAT self-attention need one node type.)

- :class:`SGC` — propagate ``K`` times with the normalised adjacency, then a linear model.
- :class:`APPNP` — an MLP, then ``K`` steps of personalised-PageRank propagation.
- :class:`GCNII` — deep GCN with an initial residual and identity mapping per layer.
- :class:`JKNet` — a GCN (or GraphSAGE) stack whose layer outputs are combined by jumping
  knowledge (concatenation, max or LSTM attention).
- :class:`RevGAT` — GAT whose middle layers are grouped reversible blocks, so activations of
  those layers need not be stored for the backward pass.

As in :mod:`mmgraph.nn.basic_gnn`, models are configured only by constructor arguments.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Iterator

import torch
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCN2Conv, GCNConv, GroupAddRev, JumpingKnowledge, SAGEConv
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.utils import spmm, to_torch_csr_tensor
from torch_geometric.utils.sparse import set_sparse_value

from mmgraph.errors import ConfigError
from mmgraph.nn.basic_gnn import make_activation, make_norm
from mmgraph.nn.mlp import MLP


def _check_common(model: str, hidden_channels: int, num_layers: int, dropout: float,
                  input_dropout: float, norm: str | None, activation: str,
                  min_layers: int = 1) -> None:
    """The checks every model shares; messages name the model and the offending value."""
    if isinstance(num_layers, bool) or not isinstance(num_layers, int) or num_layers < min_layers:
        raise ConfigError(f"{model}: num_layers must be an integer >= {min_layers}, got {num_layers!r}")
    if isinstance(hidden_channels, bool) or not isinstance(hidden_channels, int) or hidden_channels < 1:
        raise ConfigError(f"{model}: hidden_channels must be a positive integer, got {hidden_channels!r}")
    for name, p in (("dropout", dropout), ("input_dropout", input_dropout)):
        if not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
            raise ConfigError(f"{model}: {name} must be in [0, 1), got {p!r}")
    make_norm(norm, 1)  # raise now, even where no layer would use them
    make_activation(activation)


def _check_hops(model: str, K: int) -> None:
    if isinstance(K, bool) or not isinstance(K, int) or K < 0:
        raise ConfigError(f"{model}: K (propagation steps) must be an integer >= 0, got {K!r}")


def _reset(*modules: nn.Module) -> None:
    for module in modules:
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()


class GCNNormalisation:
    r"""The GCN adjacency :math:`\hat A = \hat D^{-1/2}(A + I)\hat D^{-1/2}` as a sparse CSR ``adj_t``.

    Called with ``(edge_index or adj_t, num_nodes, dtype)``, returns ``(adj_t, None)``, the
    graph argument for PyG layers built with ``normalize=False``: they then aggregate with one
    sparse-dense product per layer instead of gathering a feature row per edge (3-4 times
    faster for GCNII and about twice for JKNet on a 3,000-node CPU benchmark). With
    ``cached=True`` the result is kept and reused while the graph is the *same tensor object*
    with the same number of nodes, so a call with another graph (a mini-batch, another data
    set) recomputes instead of silently reusing a stale adjacency, as PyG's ``cached=True``
    layers would.
    """

    def __init__(self, cached: bool = False):
        self.cached = cached
        self._cache: tuple[Tensor, int, Tensor, None] | None = None

    def clear(self) -> None:
        self._cache = None

    def __call__(self, edge_index: Tensor, num_nodes: int, dtype: torch.dtype):
        cache = self._cache
        if cache is not None and cache[0] is edge_index and cache[1] == num_nodes:
            return cache[2], cache[3]
        adj, weight = gcn_norm(edge_index, None, num_nodes, False, True, "source_to_target", dtype)
        if weight is not None:  # index form: row = target, column = source
            with warnings.catch_warnings():  # torch: "sparse CSR support is in beta" (once)
                warnings.filterwarnings("ignore", message="Sparse (CSR tensor support|invariant)")
                adj = to_torch_csr_tensor(adj.flip(0), weight, size=(num_nodes, num_nodes))
            weight = None
        if self.cached:
            self._cache = (edge_index, num_nodes, adj, weight)
        return adj, weight


class _NormalisedPropagation(MessagePassing):
    """Parameter-free propagation with the (optionally cached) GCN adjacency."""

    def __init__(self, cached: bool = False):
        super().__init__(aggr="add")
        self.normalised = GCNNormalisation(cached)

    @property
    def cached(self) -> bool:
        return self.normalised.cached

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.normalised.clear()

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:
        return spmm(adj_t, x, reduce="sum")


class SymmetricPropagation(_NormalisedPropagation):
    r"""Parameter-free smoothing :math:`\hat A^K X` (the pre-processing of SGC).

    Args:
        K: number of propagation steps (0 returns the input).
        cached: keep the normalised adjacency and the result, and return the result again
            while the module is called with the very same ``x`` and ``edge_index`` tensor
            objects (full-batch transductive training). Never caches when ``x`` requires a
            gradient.

    Shapes:
        - input: ``x [N, F]``, ``edge_index [2, E]`` or sparse ``adj_t [N, N]``
        - output: ``[N, F]``
    """

    def __init__(self, K: int, cached: bool = False):
        super().__init__(cached)
        self.K = K
        self._cache: tuple[Tensor, Tensor, Tensor] | None = None

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self._cache = None

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        if self._cache is not None and self._cache[0] is x and self._cache[1] is edge_index:
            return self._cache[2]
        out = x
        if self.K > 0:
            adj, _ = self.normalised(edge_index, x.size(0), x.dtype)
            for _ in range(self.K):
                out = self.propagate(adj, x=out)
        if self.cached and not x.requires_grad:
            self._cache = (x, edge_index, out.detach())
        return out

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(K={self.K})"


class PPRPropagation(_NormalisedPropagation):
    r"""``K`` steps of approximate personalised PageRank, :math:`Z \leftarrow (1-\alpha)\hat A Z + \alpha H`.

    Edge dropout is drawn afresh from the normalised weights at every step. (PyG 2.8's
    ``APPNP`` layer feeds each step's dropped weights into the next step, so edges vanish and
    the survivors' weights grow like :math:`(1-p)^{-K}`; pyg-team/pytorch_geometric#10783.)

    Args:
        K: propagation steps (0 returns the input).
        alpha: teleport probability; 1 returns the input.
        edge_dropout: dropout on the normalised edge weights (an ``nn.Dropout``).
        cached: reuse the normalised adjacency while called with the same graph tensor.

    Shapes:
        - input: ``h [N, F]``, ``edge_index [2, E]`` or sparse ``adj_t [N, N]``
        - output: ``[N, F]``
    """

    def __init__(self, K: int, alpha: float, edge_dropout: float = 0.0, cached: bool = False):
        super().__init__(cached)
        self.K, self.alpha = K, alpha
        self.edge_drop = nn.Dropout(edge_dropout)

    def forward(self, h: Tensor, edge_index: Tensor) -> Tensor:
        if self.K == 0:
            return h
        adj, _ = self.normalised(edge_index, h.size(0), h.dtype)
        z = h
        for _ in range(self.K):
            adj_k = adj
            if self.edge_drop.p > 0 and self.edge_drop.training:  # fresh mask on the weights
                adj_k = set_sparse_value(adj, self.edge_drop(adj.values()))
            z = (1.0 - self.alpha) * self.propagate(adj_k, x=z) + self.alpha * h
        return z

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(K={self.K}, alpha={self.alpha})"


class SGC(nn.Module):
    r"""Simplified graph convolution (Wu et al., ICML 2019): :math:`\hat y = \mathrm{MLP}(\hat A^K X)`.

    The ``K``-step smoothing has no parameters, so with ``cached=True`` it is computed once and
    training costs no more than the MLP. With ``num_layers=1`` (the paper's model) the MLP is
    one ``Linear`` layer and the whole model is linear in ``X``; more layers add hidden layers
    of width ``hidden_channels`` with ``norm``, ``activation`` and ``dropout``.

    Args:
        in_channels: input feature size.
        hidden_channels: width of the MLP's hidden layers (unused when ``num_layers=1``).
        out_channels: output size.
        num_layers: layers of the MLP after the propagation (>= 1).
        dropout: dropout after each hidden MLP layer.
        input_dropout: dropout on the *propagated* features (so that the cache stays valid).
        norm: normalisation between MLP layers (``"batch"``, ``"layer"``, ``None``).
        activation: activation between MLP layers.
        K: propagation steps (>= 0; 0 gives a plain MLP).
        cached: compute :math:`\hat A^K X` once and reuse it while called with the same ``x``
            and graph tensors (full-batch training; see :class:`SymmetricPropagation`).

    Shapes:
        - input: ``x [N, in_channels]``, ``edge_index [2, E]`` or sparse ``adj_t [N, N]``
        - output: ``[N, out_channels]``
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 1, dropout: float = 0.5, input_dropout: float = 0.0,
                 norm: str | None = "batch", activation: str = "relu", K: int = 2,
                 cached: bool = False):
        super().__init__()
        _check_common("SGC", hidden_channels, num_layers, dropout, input_dropout, norm, activation)
        _check_hops("SGC", K)
        self.K = K
        self.prop = SymmetricPropagation(K, cached=cached)
        self.mlp = MLP(in_channels, hidden_channels, out_channels, num_layers=num_layers,
                       dropout=dropout, input_dropout=input_dropout, norm=norm, activation=activation)

    def reset_parameters(self) -> None:
        _reset(self.prop, self.mlp)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.mlp(self.prop(x, edge_index), edge_index)


class APPNP(nn.Module):
    r"""Predict, then propagate (Gasteiger, Bojchevski & Günnemann, ICLR 2019).

    An MLP computes :math:`H = f_\theta(X)` without the graph; then ``K`` steps of
    approximate personalised PageRank, :math:`Z \leftarrow (1-\alpha)\hat A Z + \alpha H`,
    spread the predictions (:class:`PPRPropagation`). ``alpha=1`` returns the MLP's output.

    Args:
        in_channels, hidden_channels, out_channels, num_layers, dropout, input_dropout, norm,
            activation: of the MLP, as in :class:`~mmgraph.nn.basic_gnn.BasicGNN`.
        K: propagation steps (>= 0).
        alpha: teleport (restart) probability, in [0, 1].
        edge_dropout: dropout on the normalised edge weights during propagation (training only).
        cached: reuse the normalised adjacency while called with the same graph tensor (see
            :class:`GCNNormalisation`).

    Shapes:
        - input: ``x [N, in_channels]``, ``edge_index [2, E]`` or sparse ``adj_t [N, N]``
        - output: ``[N, out_channels]``
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 2, dropout: float = 0.5, input_dropout: float = 0.0,
                 norm: str | None = "batch", activation: str = "relu", K: int = 10,
                 alpha: float = 0.1, edge_dropout: float = 0.0, cached: bool = False):
        super().__init__()
        _check_common("APPNP", hidden_channels, num_layers, dropout, input_dropout, norm, activation)
        _check_hops("APPNP", K)
        if not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"APPNP: alpha (teleport probability) must be in [0, 1], got {alpha!r}")
        if not isinstance(edge_dropout, (int, float)) or not 0.0 <= edge_dropout < 1.0:
            raise ConfigError(f"APPNP: edge_dropout must be in [0, 1), got {edge_dropout!r}")
        self.K, self.alpha = K, alpha
        self.mlp = MLP(in_channels, hidden_channels, out_channels, num_layers=num_layers,
                       dropout=dropout, input_dropout=input_dropout, norm=norm, activation=activation)
        self.prop = PPRPropagation(K, alpha, edge_dropout=edge_dropout, cached=cached)

    def reset_parameters(self) -> None:
        _reset(self.mlp, self.prop)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        return self.prop(self.mlp(x, edge_index), edge_index)


class GCNII(nn.Module):
    r"""GCN with initial residual and identity mapping (Chen et al., ICML 2020), on ``GCN2Conv``.

    A linear layer maps the input to :math:`h^{(0)}` (followed by the activation); each of the
    ``num_layers`` layers computes

    .. math::
        h^{(l)} = \sigma\Big(\mathrm{norm}\big(((1-\alpha)\hat A h^{(l-1)} + \alpha h^{(0)})
                  ((1-\beta_l) I + \beta_l W_l)\big)\Big), \quad \beta_l = \log(\theta / l + 1),

    with dropout before every layer, and a linear layer maps the last one to the output. As in
    the paper there is no normalisation by default: BatchNorm after each of many dropout-fed
    layers makes the evaluation-mode network drift far from the trained one (see
    ``models/gnn.md``); ``norm="layer"`` is safe.

    Args:
        in_channels: input feature size.
        hidden_channels: width of every ``GCN2Conv`` layer.
        out_channels: output size.
        num_layers: number of ``GCN2Conv`` layers (the two linear layers not counted).
        dropout: dropout before every ``GCN2Conv`` layer and before the output layer.
        input_dropout: dropout on the input features.
        norm: normalisation after each ``GCN2Conv`` (``None``, ``"layer"``, ``"batch"``).
        activation: activation after the input layer and after each ``GCN2Conv``.
        alpha: strength of the initial residual, in [0, 1].
        theta: controls the identity mapping strength :math:`\beta_l` (> 0; the paper's
            :math:`\lambda`).
        shared_weights: one weight for the smoothed and the initial representation (GCNII);
            ``False`` gives GCNII* with separate weights.
        cached: reuse the normalised adjacency while called with the same graph tensor
            (see :class:`GCNNormalisation`); it is computed once per call for all layers anyway.

    Shapes:
        - input: ``x [N, in_channels]``, ``edge_index [2, E]`` or sparse ``adj_t [N, N]``
        - output: ``[N, out_channels]``
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 16, dropout: float = 0.5, input_dropout: float = 0.0,
                 norm: str | None = None, activation: str = "relu", alpha: float = 0.1,
                 theta: float = 0.5, shared_weights: bool = True, cached: bool = False):
        super().__init__()
        _check_common("GCNII", hidden_channels, num_layers, dropout, input_dropout, norm, activation)
        if not isinstance(alpha, (int, float)) or not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"GCNII: alpha (initial residual) must be in [0, 1], got {alpha!r}")
        if not isinstance(theta, (int, float)) or theta <= 0:
            raise ConfigError(f"GCNII: theta must be > 0, got {theta!r}")
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.out_channels, self.num_layers = out_channels, num_layers
        self.lin_in = nn.Linear(in_channels, hidden_channels)
        self.convs = nn.ModuleList(
            GCN2Conv(hidden_channels, alpha=alpha, theta=theta, layer=i + 1,
                     shared_weights=shared_weights, normalize=False) for i in range(num_layers))
        self.normalised = GCNNormalisation(cached)  # once for all layers
        self.norms = nn.ModuleList(make_norm(norm, hidden_channels) for _ in range(num_layers))
        self.act = make_activation(activation)
        self.lin_out = nn.Linear(hidden_channels, out_channels)
        self.input_drop = nn.Dropout(input_dropout)
        self.drop = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        _reset(self.lin_in, *self.convs, *self.norms, self.act, self.lin_out)
        self.normalised.clear()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        adj, weight = self.normalised(edge_index, x.size(0), x.dtype)
        h = h0 = self.act(self.lin_in(self.input_drop(x)))
        for conv, norm in zip(self.convs, self.norms):
            h = self.act(norm(conv(self.drop(h), h0, adj, weight)))
        return self.lin_out(self.drop(h))

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}, hidden={self.hidden_channels}, out={self.out_channels}, "
                f"layers={self.num_layers}")


_JK_MODES = ("cat", "max", "lstm")
_JK_CONVS = ("gcn", "sage")


class JKNet(nn.Module):
    r"""Jumping knowledge network (Xu et al., ICML 2018).

    ``num_layers`` graph convolutions of width ``hidden_channels``, each followed by ``norm``,
    ``activation`` and ``dropout``; the outputs of *all* layers are combined per node by
    ``mode`` and a linear layer maps the combination to the output. Each node thus chooses
    its own effective neighbourhood range.

    Args:
        in_channels: input feature size.
        hidden_channels: width of every convolution.
        out_channels: output size.
        num_layers: number of graph convolutions (>= 1).
        dropout: dropout after each convolution.
        input_dropout: dropout on the input features.
        norm: normalisation after each convolution.
        activation: activation after each convolution.
        mode: layer aggregation: ``"cat"`` (concatenation), ``"max"`` (element-wise max
            pooling) or ``"lstm"`` (bi-LSTM attention over the layers).
        conv: the convolution, ``"gcn"`` (``GCNConv``) or ``"sage"`` (``SAGEConv``, mean).
        cached: reuse the normalised adjacency while called with the same graph tensor
            (``conv="gcn"`` only; see :class:`GCNNormalisation`).

    Shapes:
        - input: ``x [N, in_channels]``, ``edge_index [2, E]`` or sparse ``adj_t [N, N]``
        - output: ``[N, out_channels]``
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 4, dropout: float = 0.5, input_dropout: float = 0.0,
                 norm: str | None = "batch", activation: str = "relu", mode: str = "cat",
                 conv: str = "gcn", cached: bool = False):
        super().__init__()
        _check_common("JKNet", hidden_channels, num_layers, dropout, input_dropout, norm, activation)
        if mode not in _JK_MODES:
            raise ConfigError(f"JKNet: unknown mode {mode!r}; choose one of: {', '.join(_JK_MODES)}")
        if conv not in _JK_CONVS:
            raise ConfigError(f"JKNet: unknown conv {conv!r}; choose one of: {', '.join(_JK_CONVS)}")
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.out_channels, self.num_layers, self.mode = out_channels, num_layers, mode

        def make_conv(c_in: int) -> nn.Module:
            if conv == "gcn":
                return GCNConv(c_in, hidden_channels, normalize=False)
            return SAGEConv(c_in, hidden_channels, aggr="mean")

        self.convs = nn.ModuleList(
            make_conv(in_channels if i == 0 else hidden_channels) for i in range(num_layers))
        self.norms = nn.ModuleList(make_norm(norm, hidden_channels) for _ in range(num_layers))
        self.act = make_activation(activation)
        self.normalised = GCNNormalisation(cached) if conv == "gcn" else None
        self.jk = (JumpingKnowledge("lstm", channels=hidden_channels, num_layers=num_layers)
                   if mode == "lstm" else JumpingKnowledge(mode))
        self.lin = nn.Linear(hidden_channels * (num_layers if mode == "cat" else 1), out_channels)
        self.input_drop = nn.Dropout(input_dropout)
        self.drop = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        _reset(*self.convs, *self.norms, self.act, self.jk, self.lin)
        if self.normalised is not None:
            self.normalised.clear()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        graph: tuple = (edge_index,)
        if self.normalised is not None:  # GCN: normalise once for all layers
            graph = self.normalised(edge_index, x.size(0), x.dtype)
        h = self.input_drop(x)
        layers = []
        for conv, norm in zip(self.convs, self.norms):
            h = self.drop(self.act(norm(conv(h, *graph))))
            layers.append(h)
        return self.lin(self.jk(layers))

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}, hidden={self.hidden_channels}, out={self.out_channels}, "
                f"layers={self.num_layers}, mode={self.mode}")


@contextlib.contextmanager
def _frozen_running_stats(module: nn.Module) -> Iterator[None]:
    """Batch statistics as usual, but leave BatchNorm running statistics untouched."""
    norms = [m for m in module.modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    for m in norms:
        m.track_running_stats = False
    try:
        yield
    finally:
        for m in norms:
            m.track_running_stats = True


class _RevGATBlock(nn.Module):
    """One group of a reversible layer: norm -> activation -> shared dropout mask -> GATConv."""

    def __init__(self, channels: int, heads: int, norm: str | None, activation: str,
                 negative_slope: float, residual: bool):
        super().__init__()
        self.norm = make_norm(norm, channels)
        self.act = make_activation(activation)
        # No attention dropout here: the block is recomputed in the backward pass and must
        # give the same result every time, so its only randomness is the shared mask.
        self.conv = GATConv(channels, channels // heads, heads=heads, concat=True,
                            negative_slope=negative_slope, residual=residual)

    def reset_parameters(self) -> None:
        _reset(self.norm, self.act, self.conv)

    def forward(self, x: Tensor, edge_index: Tensor, mask: Tensor) -> Tensor:
        return self.conv(self.act(self.norm(x)) * mask, edge_index)


class _ReversibleLayer(GroupAddRev):
    """PyG's grouped additive coupling whose recomputations leave BatchNorm statistics alone.

    With memory savings the blocks run three times per training step (forward, inverse and
    recomputation in the backward pass); only the first run updates the running statistics,
    so they match those of the same network run without memory savings.
    """

    def _fn_apply(self, args, fn, fn_inverse):
        if self.disable or not self.training:
            return super()._fn_apply(args, fn, fn_inverse)
        first = True

        def forward_updating_once(*inputs):
            nonlocal first
            if first:
                first = False
                return fn(*inputs)
            with _frozen_running_stats(self):
                return fn(*inputs)

        def inverse_frozen(*inputs):
            with _frozen_running_stats(self):
                return fn_inverse(*inputs)

        return super()._fn_apply(args, forward_updating_once, inverse_frozen)


class RevGAT(nn.Module):
    r"""Reversible GAT (Li, Müller, Ghanem & Koltun, ICML 2021), as in MAGB and ogbn-arxiv.

    Layer 1 is a ``GATConv`` with ``heads`` concatenated heads; layers 2 .. L-1 are grouped
    reversible layers: the hidden channels are split into ``num_groups`` groups and group
    :math:`i` computes :math:`y_i = x_i + f_i(y_{i-1})` (with :math:`y_0 = \sum_{j\ge2} x_j`),
    where :math:`f_i` = norm -> activation -> dropout -> ``GATConv``. One dropout mask is
    drawn per forward pass and shared by all reversible layers, so the inverse
    :math:`x_i = y_i - f_i(y_{i-1})` recovers the inputs exactly and the inputs' memory is
    freed; the backward pass recomputes them (PyG's ``GroupAddRev``). Then norm ->
    activation -> dropout -> an output ``GATConv`` averaging ``out_heads`` heads.

    Differences from the DGL original used by MAGB: PyG's ``GATConv`` (attention on both
    endpoints, no symmetric degree normalisation, no edge dropout).

    Args:
        in_channels: input feature size.
        hidden_channels: total hidden width (``heads`` x per-head width); must be divisible
            by ``heads * num_groups``.
        out_channels: output size.
        num_layers: GAT layers in all, >= 2 (``num_layers - 2`` of them reversible).
        dropout: the shared dropout of the reversible layers and the dropout before the output.
        input_dropout: dropout on the input features.
        norm: normalisation inside each reversible block and before the output layer.
        activation: activation inside each reversible block and before the output layer.
        heads: attention heads of the input layer and of every reversible block.
        out_heads: attention heads of the output layer (averaged).
        num_groups: groups of a reversible layer (>= 2).
        attn_dropout: dropout on the attention coefficients of the input and output layers
            (not inside reversible blocks, which must recompute identically).
        negative_slope: LeakyReLU slope inside the attention.
        residual: linear residual connection inside every ``GATConv`` (as in RevGAT).
        reversible: ``True`` frees and recomputes the reversible layers' inputs (less memory,
            about twice the compute of those layers in the backward pass); ``False`` runs the
            same network with ordinary autograd.

    Shapes:
        - input: ``x [N, in_channels]``, ``edge_index [2, E]`` or sparse ``adj_t [N, N]``
        - output: ``[N, out_channels]``
    """

    def __init__(self, in_channels: int, hidden_channels: int, out_channels: int,
                 num_layers: int = 3, dropout: float = 0.5, input_dropout: float = 0.0,
                 norm: str | None = "batch", activation: str = "relu", heads: int = 3,
                 out_heads: int = 1, num_groups: int = 2, attn_dropout: float = 0.0,
                 negative_slope: float = 0.2, residual: bool = True, reversible: bool = True):
        super().__init__()
        _check_common("RevGAT", hidden_channels, num_layers, dropout, input_dropout, norm, activation,
                      min_layers=2)
        for name, value, low in (("heads", heads, 1), ("out_heads", out_heads, 1),
                                 ("num_groups", num_groups, 2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"RevGAT: {name} must be an integer >= {low}, got {value!r}")
        if hidden_channels % (heads * num_groups):
            raise ConfigError(f"RevGAT: hidden_channels ({hidden_channels}) must be divisible by "
                              f"heads * num_groups ({heads} * {num_groups} = {heads * num_groups})")
        if not isinstance(attn_dropout, (int, float)) or not 0.0 <= attn_dropout < 1.0:
            raise ConfigError(f"RevGAT: attn_dropout must be in [0, 1), got {attn_dropout!r}")
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.out_channels, self.num_layers = out_channels, num_layers
        self.num_groups, self.reversible = num_groups, reversible
        self.conv_in = GATConv(in_channels, hidden_channels // heads, heads=heads, concat=True,
                               dropout=attn_dropout, negative_slope=negative_slope,
                               residual=residual)
        group = hidden_channels // num_groups
        self.rev_layers = nn.ModuleList(
            _ReversibleLayer(nn.ModuleList(
                _RevGATBlock(group, heads, norm, activation, negative_slope, residual)
                for _ in range(num_groups)), disable=not reversible)
            for _ in range(num_layers - 2))
        self.norm = make_norm(norm, hidden_channels)
        self.act = make_activation(activation)
        self.conv_out = GATConv(hidden_channels, out_channels, heads=out_heads, concat=False,
                                dropout=attn_dropout, negative_slope=negative_slope,
                                residual=residual)
        self.input_drop = nn.Dropout(input_dropout)
        # Applied to a tensor of ones, this module draws the shared mask (scaled by
        # 1 / (1 - p) in training, all ones in evaluation).
        self.mask_drop = nn.Dropout(dropout)
        self.drop = nn.Dropout(dropout)

    def reset_parameters(self) -> None:
        _reset(self.conv_in, *self.rev_layers, self.norm, self.act, self.conv_out)

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        h = self.conv_in(self.input_drop(x), edge_index)
        if self.rev_layers:
            mask = self.mask_drop(torch.ones_like(h))
            for layer in self.rev_layers:
                h = layer(h, edge_index, mask)
        return self.conv_out(self.drop(self.act(self.norm(h))), edge_index)

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}, hidden={self.hidden_channels}, out={self.out_channels}, "
                f"layers={self.num_layers}, groups={self.num_groups}, reversible={self.reversible}")


__all__ = ["SGC", "APPNP", "GCNII", "JKNet", "RevGAT", "GCNNormalisation", "SymmetricPropagation",
           "PPRPropagation"]

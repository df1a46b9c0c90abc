r"""Modality fusion around any node model (MLP, GCN, GraphSAGE, GAT, ...).

:class:`FusionModel` takes the concatenated model input ``x = [x_{m_1} | ... | x_{m_M}]`` (as
:func:`mmgraph.data.graph.set_model_input` builds it; ``dims`` gives the width of each block in
the order of ``data.meta["input"]["modalities"]``) and a boolean ``modality_mask [N, M]``
(``True`` = the node has that modality). The mask, not zero rows, is the truth: every kind first
zeroes the rows of missing modalities, so whatever a missing row holds never reaches the output,
and then treats the missing modality explicitly instead of as a feature vector of zeros.

==============  ==========================================================================
``kind``        what
==============  ==========================================================================
``concat``      early fusion. Per-modality LayerNorm (``norm``), a missing modality's row
                replaced by a learned per-modality *missing* vector, concatenation, then
                ``backbone(sum(dims) -> out)``.
``sum``         early fusion, project-and-sum. Per-modality (LayerNorm +) Linear to
                ``fusion_dim``, mean over the *present* modalities, then
                ``backbone(fusion_dim -> out)``.
``late``        one backbone per modality on that modality alone (prepared as for ``concat``).
                ``late_level="logits"``: the mean of the per-modality outputs over the present
                modalities. ``"embedding"``: per-modality ``fusion_dim``-d embeddings, their
                masked mean, ReLU, then a Linear head.
``attention``   per-modality projection as for ``sum``; a shared scorer
                (Linear-tanh-Linear) gives each node a score per modality; softmax over the
                present modalities only (missing ones get weight exactly 0); the weighted sum
                goes to ``backbone(fusion_dim -> out)``. The last weights are kept in
                :attr:`FusionModel.last_weights` ``[N, M]``.
``lowrank``     low-rank multimodal fusion (Liu et al., ACL 2018): with
                :math:`z_m = [h_m, 1]` and rank-``rank`` factors :math:`W_m^{(i)}`,
                :math:`h = \sum_i \lambda_i \prod_m z_m W_m^{(i)} + b`, then
                ``backbone(fusion_dim -> out)``. A missing modality is skipped in the
                product (its factor is 1), not fed as zeros.
==============  ==========================================================================

Nodes with *no* modality present: ``concat`` and ``late`` see only the learned missing
vectors (and, through a GNN, their neighbours), and ``late`` averages over all modalities;
``sum`` and ``attention`` use a learned *empty* vector as the fused input; ``lowrank`` gets
:math:`\sum_i \lambda_i + b`. Every node therefore gets a prediction.

One modality (``len(dims) == 1``) works with every kind: it degenerates to normalisation (and
projection) in front of the backbone.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
from torch import Tensor, nn

from mmgraph.checks import boolean, integer
from mmgraph.errors import ConfigError, DataError

KINDS = ("concat", "sum", "late", "attention", "lowrank")
LATE_LEVELS = ("logits", "embedding")
BackboneFactory = Callable[[int, int], nn.Module]


class FusionModel(nn.Module):
    """A fusion front-end (or per-modality backbones) around a node model.

    Args:
        dims: feature size of each modality, in the order of the blocks of ``x``.
        backbone_factory: ``(in_channels, out_channels) -> nn.Module`` with
            ``forward(x, edge_index)``; called once (``late``: once per modality).
        out_channels: output size (classes, or embedding size for link prediction).
        kind: ``concat``, ``sum``, ``late``, ``attention`` or ``lowrank``.
        fusion_dim: width of the fused representation (``sum``, ``attention``, ``lowrank``,
            ``late`` with ``late_level="embedding"``).
        norm: LayerNorm each modality before fusing (brings blocks of different scales
            together).
        late_level: ``logits`` or ``embedding`` (``late`` only).
        rank: rank of the low-rank factors (``lowrank`` only).
        attention_hidden: hidden width of the attention scorer (``attention`` only).
        modalities: names of the modalities, only for printing.

    Shapes:
        - input: ``x [N, sum(dims)]``, ``edge_index [2, E]``, ``modality_mask bool [N, M]``
          (``None``: every modality present)
        - output: ``[N, out_channels]``
    """

    wants_modality_mask = True

    def __init__(self, dims: Sequence[int], backbone_factory: BackboneFactory, out_channels: int,
                 kind: str = "concat", fusion_dim: int = 256, norm: bool = True,
                 late_level: str = "logits", rank: int = 4, attention_hidden: int = 64,
                 modalities: Sequence[str] | None = None):
        super().__init__()
        if kind not in KINDS:
            raise ConfigError(f"unknown fusion kind {kind!r}; choose one of: none, {', '.join(KINDS)}")
        dims = [int(d) for d in dims]
        if not dims or any(d < 1 for d in dims):
            raise ConfigError(f"fusion needs at least one modality of positive width; got dims={dims}")
        if late_level not in LATE_LEVELS:
            raise ConfigError(f"unknown late_level {late_level!r}; choose one of: {', '.join(LATE_LEVELS)}")
        fusion_dim, rank = integer("fusion.fusion_dim", fusion_dim, 1), integer("fusion.rank", rank, 1)
        attention_hidden = integer("fusion.attention_hidden", attention_hidden, 1)
        norm = boolean("fusion.norm", norm)
        if modalities is not None and len(modalities) != len(dims):
            raise ConfigError(f"{len(modalities)} modality names for {len(dims)} feature blocks")
        self.dims, self.kind, self.out_channels = dims, kind, int(out_channels)
        self.fusion_dim, self.rank, self.late_level = fusion_dim, rank, late_level
        self.use_norm = norm
        self.modalities = list(modalities) if modalities is not None else [f"m{i}" for i in range(len(dims))]
        self.last_weights: Tensor | None = None

        self.norms = nn.ModuleList(nn.LayerNorm(d) if norm else nn.Identity() for d in dims)
        self.missing = self.proj = self.empty = self.scorer = self.factors = self.head = None
        if kind in ("concat", "late"):
            self.missing = nn.ParameterList(nn.Parameter(torch.empty(d)) for d in dims)
        if kind in ("sum", "attention"):
            self.proj = nn.ModuleList(nn.Linear(d, self.fusion_dim) for d in dims)
            self.empty = nn.Parameter(torch.empty(self.fusion_dim))
        if kind == "attention":
            self.scorer = nn.Sequential(nn.Linear(self.fusion_dim, attention_hidden), nn.Tanh(),
                                        nn.Linear(attention_hidden, 1, bias=False))
        if kind == "lowrank":
            self.factors = nn.ParameterList(nn.Parameter(torch.empty(d + 1, self.rank * self.fusion_dim))
                                            for d in dims)
            self.rank_weights = nn.Parameter(torch.empty(self.rank))
            self.fusion_bias = nn.Parameter(torch.empty(self.fusion_dim))

        if kind == "late":
            width = self.out_channels if late_level == "logits" else self.fusion_dim
            self.backbones = nn.ModuleList(backbone_factory(d, width) for d in dims)
            if late_level == "embedding":
                self.head = nn.Linear(self.fusion_dim, self.out_channels)
            self.backbone = None
        else:
            self.backbone = backbone_factory(sum(dims) if kind == "concat" else self.fusion_dim,
                                             self.out_channels)
            self.backbones = None
        self._reset_fusion()

    # ------------------------------------------------------------------ parameters

    def _reset_fusion(self) -> None:
        for module in list(self.norms) + list(self.proj or []) + list(self.scorer or []):
            if hasattr(module, "reset_parameters"):
                module.reset_parameters()
        if self.missing is not None:
            for p in self.missing:  # small and random: learned, but never the zero vector
                nn.init.normal_(p, std=0.1)
        if self.empty is not None:
            nn.init.normal_(self.empty, std=0.1)
        if self.factors is not None:
            for d, p in zip(self.dims, self.factors):  # z_m W_m^(i) of about unit scale
                nn.init.normal_(p, std=1.0 / math.sqrt(d + 1))
            nn.init.constant_(self.rank_weights, 1.0 / math.sqrt(self.rank))
            nn.init.zeros_(self.fusion_bias)
        if self.head is not None:
            self.head.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-initialise the fusion parameters and the backbone(s)."""
        self._reset_fusion()
        for backbone in [self.backbone] if self.backbone is not None else list(self.backbones):
            if hasattr(backbone, "reset_parameters"):
                backbone.reset_parameters()

    @property
    def accepts_adjacency(self) -> bool:
        """The graph argument is handed to the backbone(s) untouched: whatever they accept."""
        backbones = [self.backbone] if self.backbone is not None else list(self.backbones)
        return all(getattr(b, "accepts_adjacency", False) for b in backbones)

    # ------------------------------------------------------------------ forward

    def _inputs(self, x: Tensor, modality_mask: Tensor | None) -> tuple[list[Tensor], Tensor]:
        """The per-modality blocks with missing rows zeroed, and the mask as bool ``[N, M]``."""
        if x.dim() != 2 or x.size(1) != sum(self.dims):
            raise DataError(f"fusion input must be [N, {sum(self.dims)}] (modality widths {self.dims}); "
                            f"got shape {tuple(x.shape)}")
        n, m = x.size(0), len(self.dims)
        if modality_mask is None:
            mask = torch.ones(n, m, dtype=torch.bool, device=x.device)
        else:
            mask = modality_mask.to(device=x.device, dtype=torch.bool)
            if mask.dim() == 1 and m == 1:
                mask = mask.unsqueeze(1)
            if tuple(mask.shape) != (n, m):
                raise DataError(f"modality_mask must be [N={n}, M={m}]; got shape {tuple(mask.shape)}")
        blocks = [b.masked_fill(~mask[:, i:i + 1], 0.0) for i, b in enumerate(torch.split(x, self.dims, dim=1))]
        return blocks, mask

    def _filled(self, blocks: list[Tensor], mask: Tensor) -> list[Tensor]:
        """Normalised blocks with the learned missing vector in the rows of missing modalities."""
        return [torch.where(mask[:, i:i + 1], self.norms[i](b), self.missing[i].to(b.dtype))
                for i, b in enumerate(blocks)]

    def _projected(self, blocks: list[Tensor]) -> Tensor:
        return torch.stack([self.proj[i](self.norms[i](b)) for i, b in enumerate(blocks)], dim=1)

    @staticmethod
    def _masked_mean(h: Tensor, weights: Tensor) -> Tensor:
        """``h [N, M, C]`` averaged over M with 0/1 ``weights [N, M]`` (rows of zeros give 0)."""
        w = weights.to(h.dtype).unsqueeze(-1)
        return (h * w).sum(1) / w.sum(1).clamp(min=1.0)

    def forward(self, x: Tensor, edge_index: Tensor, modality_mask: Tensor | None = None) -> Tensor:
        blocks, mask = self._inputs(x, modality_mask)
        some = mask.any(dim=1, keepdim=True)  # [N, 1]: at least one modality present
        if self.kind == "concat":
            return self.backbone(torch.cat(self._filled(blocks, mask), dim=1), edge_index)
        if self.kind == "late":
            outs = torch.stack([bb(h, edge_index) for bb, h in zip(self.backbones, self._filled(blocks, mask))], 1)
            # A node without any modality falls back to the mean over all modalities.
            fused = self._masked_mean(outs, torch.where(some, mask, torch.ones_like(mask)))
            return fused if self.head is None else self.head(torch.relu(fused))
        if self.kind == "sum":
            proj = self._projected(blocks)
            fused = torch.where(some, self._masked_mean(proj, mask), self.empty.to(proj.dtype))
            return self.backbone(fused, edge_index)
        if self.kind == "attention":
            proj = self._projected(blocks)
            scores = self.scorer(proj).squeeze(-1)  # [N, M]
            scores = scores.masked_fill(~mask, float("-inf"))
            scores = torch.where(some, scores, torch.zeros_like(scores))  # no all -inf rows
            weights = torch.softmax(scores, dim=1) * mask.to(scores.dtype)  # exactly 0 where missing
            self.last_weights = weights.detach()
            fused = (weights.unsqueeze(-1) * proj).sum(1)
            fused = torch.where(some, fused, self.empty.to(proj.dtype))
            return self.backbone(fused, edge_index)
        # lowrank
        prod = None
        for i, b in enumerate(blocks):
            h = self.norms[i](b)
            z = torch.cat([h, torch.ones_like(h[:, :1])], dim=1)
            f = (z @ self.factors[i]).view(-1, self.rank, self.fusion_dim)
            f = torch.where(mask[:, i].view(-1, 1, 1), f, torch.ones_like(f))  # skipped, not zeroed
            prod = f if prod is None else prod * f
        fused = torch.einsum("r,nrf->nf", self.rank_weights, prod) + self.fusion_bias
        return self.backbone(fused, edge_index)

    def extra_repr(self) -> str:
        parts = [f"kind={self.kind}", f"modalities={'+'.join(self.modalities)}", f"dims={self.dims}",
                 f"norm={self.use_norm}"]
        if self.kind in ("sum", "attention", "lowrank") or (self.kind == "late" and self.late_level == "embedding"):
            parts.append(f"fusion_dim={self.fusion_dim}")
        if self.kind == "late":
            parts.append(f"late_level={self.late_level}")
        if self.kind == "lowrank":
            parts.append(f"rank={self.rank}")
        return ", ".join(parts)


__all__ = ["FusionModel", "KINDS", "LATE_LEVELS"]

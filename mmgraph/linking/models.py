"""Entity linkers: a mention's representation scored against every entity of a knowledge base.

Every linker has the same three methods, which :class:`mmgraph.tasks.EntityLinking` calls:

- ``encode_kb(kb, index=None)`` -> ``[E, d]`` (or the rows ``index``): entity representations,
  recomputed at every evaluation (they depend on the trained weights, and for the graph linker
  on the whole KB);
- ``encode_mentions(features, masks)`` -> ``[B, d]``;
- ``score(mentions, entities)`` -> ``[B, E]`` logits (higher = better).

Features are the cached outputs of mmgraph's frozen encoders (``x_text`` / ``x_image`` of the
``mention`` and ``entity`` nodes and of other KB node types); the linkers train projections on
top of them (and, for :class:`GraphLinker`, a GNN over the KB's relations).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmgraph.errors import ConfigError

EdgeType = tuple[str, str, str]


@dataclass
class KBInput:
    """The knowledge base as a linker reads it.

    Attributes:
        x: ``{node type: {modality: [N_t, d_m]}}`` frozen features (``entity`` always present).
        masks: ``{node type: {modality: bool [N_t]}}`` which rows hold a real feature.
        edge_index: ``{(src, relation, dst): [2, R]}`` the KB's relations (no mentions).
    """

    x: dict[str, dict[str, Tensor]]
    masks: dict[str, dict[str, Tensor]]
    edge_index: dict[EdgeType, Tensor] = field(default_factory=dict)

    def to(self, device: torch.device | str) -> "KBInput":
        return KBInput({t: {m: v.to(device) for m, v in d.items()} for t, d in self.x.items()},
                       {t: {m: v.to(device) for m, v in d.items()} for t, d in self.masks.items()},
                       {et: ei.to(device) for et, ei in self.edge_index.items()})


class ModalityProjection(nn.Module):
    """Per-modality linear maps of L2-normalised frozen features into one space, summed over
    the modalities a row has (a missing modality adds nothing)."""

    def __init__(self, dims: Mapping[str, int], channels: int):
        super().__init__()
        if not dims:
            raise ConfigError("a linker needs at least one input modality")
        self.modalities = list(dims)
        self.proj = nn.ModuleDict({m: nn.Linear(int(d), channels) for m, d in dims.items()})

    def reset_parameters(self) -> None:
        for lin in self.proj.values():
            lin.reset_parameters()

    def forward(self, x: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        out = None
        for m in self.modalities:
            h = self.proj[m](F.normalize(x[m], dim=-1)) * masks[m].unsqueeze(-1).to(x[m].dtype)
            out = h if out is None else out + h
        return out


class DualEncoder(nn.Module):
    """The dual-encoder baseline (CLIP-style): frozen text and image features, trained linear
    projections, cosine similarity times a learned scale.

    Args:
        dims: ``{modality: feature size}`` of the inputs (the same encoders on both sides).
        kb_dims, kb_edge_types: the KB's other node types and relations (unused here; every linker
            takes them so configs can swap linkers).
        channels: the joint space's size.
        share_projections: mentions and entities through the same projections (their features
            come from the same encoders); ``False``: one set per side.
        init_scale: the initial similarity scale (CLIP: 1 / 0.07); learned, capped at 100.
    """

    def __init__(self, dims: Mapping[str, int], kb_dims: Mapping[str, Mapping[str, int]] | None = None,
                 kb_edge_types: Sequence[EdgeType] | None = None, channels: int = 256,
                 share_projections: bool = True, init_scale: float = 1 / 0.07):
        super().__init__()
        if int(channels) < 1:
            raise ConfigError(f"channels must be positive; got {channels}")
        if not init_scale > 0:
            raise ConfigError(f"init_scale must be positive; got {init_scale}")
        self.channels = int(channels)
        self.mention_proj = ModalityProjection(dims, self.channels)
        self.entity_proj = self.mention_proj if share_projections else ModalityProjection(dims, self.channels)
        self.share_projections = bool(share_projections)
        self.init_scale = float(init_scale)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(self.init_scale)))

    def reset_parameters(self) -> None:
        self.mention_proj.reset_parameters()
        if not self.share_projections:
            self.entity_proj.reset_parameters()
        with torch.no_grad():
            self.logit_scale.fill_(math.log(self.init_scale))

    def entity_features(self, kb: KBInput) -> Tensor:
        """``[E, channels]`` entity representations before any KB propagation."""
        return self.entity_proj(kb.x["entity"], kb.masks["entity"])

    def encode_kb(self, kb: KBInput, index: Tensor | None = None) -> Tensor:
        if index is not None:  # only the rows asked for: no KB-wide computation here
            return F.normalize(self.entity_proj({m: v[index] for m, v in kb.x["entity"].items()},
                                                {m: v[index] for m, v in kb.masks["entity"].items()}), dim=-1)
        return F.normalize(self.entity_features(kb), dim=-1)

    def encode_mentions(self, x: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> Tensor:
        return F.normalize(self.mention_proj(x, masks), dim=-1)

    def score(self, mentions: Tensor, entities: Tensor) -> Tensor:
        scale = self.logit_scale.clamp(max=math.log(100.0)).exp()
        scores = mentions @ entities.t()
        # evaluation: scale in place (no second [B, E] tensor); training keeps the graph
        return scores.mul_(scale) if not torch.is_grad_enabled() else scores * scale


class KBPropagation(nn.Module):
    """Entity states propagated over the KB's relations: GraphSAGE per relation, summed per node
    type (PyG's ``HeteroConv``), ``num_layers`` rounds; other KB node types (``group``,
    ``subgroup``) enter through their own projections of their features. Returns the entities'
    propagated states (the caller adds its residual).

    Args:
        channels: the state width.
        kb_dims: ``{node type: {modality: width}}`` of the KB's other node types.
        kb_edge_types: the KB's relations.
        num_layers, dropout, aggr: as :class:`GraphLinker`.
    """

    def __init__(self, channels: int, kb_dims: Mapping[str, Mapping[str, int]] | None,
                 kb_edge_types: Sequence[EdgeType] | None, num_layers: int = 2, dropout: float = 0.1,
                 aggr: str = "mean"):
        super().__init__()
        from torch_geometric.nn import HeteroConv, SAGEConv

        edge_types = [tuple(et) for et in (kb_edge_types or [])]
        if not edge_types:
            raise ConfigError("a graph linker needs the knowledge base's relations, and this data set "
                              "has none; use a linker without the graph (model=dual_encoder or mimic)")
        if int(num_layers) < 1:
            raise ConfigError(f"num_layers must be at least 1; got {num_layers}")
        if aggr not in ("mean", "sum", "max"):
            raise ConfigError(f"aggr must be mean, sum or max; got {aggr!r}")
        types = {t for et in edge_types for t in (et[0], et[2])}
        other = sorted(types - {"entity"})
        missing = [t for t in other if not (kb_dims or {}).get(t)]
        if missing:
            raise ConfigError(f"KB node type {missing[0]!r} has no features; add it to "
                              f"dataset.feature_node_types")
        self.other = nn.ModuleDict({t: ModalityProjection(kb_dims[t], channels) for t in other})
        self.edge_types = edge_types
        self.dropout = float(dropout)
        self.convs = nn.ModuleList(
            HeteroConv({et: SAGEConv(channels, channels, aggr=aggr) for et in edge_types}, aggr="sum")
            for _ in range(int(num_layers)))

    def reset_parameters(self) -> None:
        for proj in self.other.values():
            proj.reset_parameters()
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, entity: Tensor, kb: KBInput, senders: Tensor | None = None) -> Tensor:
        """``senders``: ``bool [E]``, the entities that send messages (default: all); edges from
        the others are left out, so they neither count in a mean nor floor a max."""
        h = {"entity": entity, **{t: proj(kb.x[t], kb.masks[t]) for t, proj in self.other.items()}}
        edges = {et: kb.edge_index[et] for et in self.edge_types}
        if senders is not None:
            edges = {et: ei[:, senders[ei[0]]] if et[0] == "entity" else ei for et, ei in edges.items()}
        for i, conv in enumerate(self.convs):
            out = conv(h, edges)
            out = {t: out.get(t, h[t]) for t in h}  # a type nothing points to keeps its state
            if i < len(self.convs) - 1:
                out = {t: F.dropout(F.relu(v), self.dropout, self.training) for t, v in out.items()}
            h = out
        return h["entity"]


class GraphLinker(DualEncoder):
    """A dual encoder whose entity representations are propagated over the KB's relations by a
    heterogeneous GNN (:class:`KBPropagation`: GraphSAGE per relation, summed), trained end to end
    with the matcher: an entity no training mention links to borrows from its neighbours (its base
    emoji, its components, its subgroup).

    Other KB node types (``group``, ``subgroup``) enter through their own projections of their
    features. The output is ``entity_features + GNN(...)`` (a residual), L2-normalised.

    Args:
        num_layers: message-passing layers.
        dropout: dropout between layers (training only).
        aggr: SAGE neighbour aggregation (``mean``, ``sum``, ``max``).
        (others: :class:`DualEncoder`)
    """

    def __init__(self, dims: Mapping[str, int], kb_dims: Mapping[str, Mapping[str, int]] | None = None,
                 kb_edge_types: Sequence[EdgeType] | None = None, channels: int = 256,
                 share_projections: bool = True, init_scale: float = 1 / 0.07, num_layers: int = 2,
                 dropout: float = 0.1, aggr: str = "mean"):
        super().__init__(dims, kb_dims, kb_edge_types, channels, share_projections, init_scale)
        self.propagation = KBPropagation(self.channels, kb_dims, kb_edge_types, num_layers, dropout, aggr)

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.propagation.reset_parameters()

    def encode_kb(self, kb: KBInput, index: Tensor | None = None) -> Tensor:
        h0 = self.entity_features(kb)
        z = F.normalize(h0 + self.propagation(h0, kb), dim=-1)
        return z if index is None else z[index]

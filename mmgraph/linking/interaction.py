"""An interaction linker in the manner of MIMIC's three units (Luo et al., KDD 2023): a mention's
global and local features meet each entity's global features.

Inputs are multi-vector features (:func:`mmgraph.features.encoders.split_local`): a text feature is
the pooled vector followed by ``text_tokens`` token vectors (``minilm`` with ``tokens``), an image
feature the pooled vector followed by ``image_cells`` region vectors (``efficientnet_lite0`` with
``output=grid``). ``configs/features/local.yaml`` asks for both.

For a mention ``m`` and an entity ``e`` (``q_e``: the entity's projected global vector):

- **text unit** (global-to-local): ``1/2 [cos(g_m, q_e) + cos(l_m(e), q_e)]`` where ``l_m(e)`` is
  the attention-weighted sum of the mention's token vectors with ``q_e`` as the query;
- **visual unit** (dual level): the same over the mention's image: the global image vector and an
  attention-weighted sum of its region vectors;
- **cross-modal unit**: each side's text and image globals fused by a learned gate, compared by
  cosine.

A unit a side cannot form (a missing modality) scores 0. The score is the mean of the units times
a learned scale; training adds each unit's own contrastive loss to the overall one
(:meth:`InteractionLinker.linking_loss`, which the task calls when a linker has it).

The entity side uses global vectors only, so the KB's representations are computed once per
evaluation, and a chunk of ``B`` mentions against ``E`` entities needs ``[B, K, E]`` attention
weights, never a ``[B, E, channels]`` tensor: the norm of the attended vector comes from the
tokens' Gram matrix.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmgraph.errors import ConfigError
from mmgraph.features.encoders import split_local
from mmgraph.linking.models import KBInput

EdgeType = tuple[str, str, str]


class InteractionLinker(nn.Module):
    """See the module doc.

    Args:
        dims: ``{modality: feature width}``; each width is ``(parts + 1) * d``.
        kb_dims, kb_edge_types: unused (every linker takes them).
        channels: the joint space's size.
        text_tokens: the token vectors per text feature (the encoder's ``tokens``).
        image_cells: the region vectors per image feature (the encoder's ``grid ** 2``).
        init_scale: the initial similarity scale (learned, capped at 100).
        attention_scale: the initial inverse temperature of the local attention (learned).
        unit_loss_weight: the weight of each unit's own contrastive loss.
    """

    def __init__(self, dims: Mapping[str, int], kb_dims: Mapping[str, Mapping[str, int]] | None = None,
                 kb_edge_types: Sequence[EdgeType] | None = None, channels: int = 256,
                 text_tokens: int = 32, image_cells: int = 4, init_scale: float = 1 / 0.07,
                 attention_scale: float = 10.0, unit_loss_weight: float = 0.5):
        super().__init__()
        if int(channels) < 1:
            raise ConfigError(f"channels must be positive; got {channels}")
        if not init_scale > 0 or not attention_scale > 0:
            raise ConfigError("init_scale and attention_scale must be positive")
        unknown = [m for m in dims if m not in ("text", "image")]
        if unknown or not dims:
            raise ConfigError(f"the interaction linker reads text and/or image features; got {sorted(dims)}")
        self.parts = {"text": int(text_tokens), "image": int(image_cells)}
        width = {}
        for m, d in dims.items():
            k = self.parts[m]
            if k < 1 or int(d) % (k + 1):
                what = "tokens" if m == "text" else "grid cells"
                raise ConfigError(f"{m} features of width {d} are not {k + 1} vectors ({k} {what} + the global "
                                  f"one); use features=local and matching model.module.text_tokens / image_cells")
            width[m] = int(d) // (k + 1)
        self.modalities = list(dims)
        c = self.channels = int(channels)
        self.global_proj = nn.ModuleDict({m: nn.Linear(w, c) for m, w in width.items()})
        self.local_proj = nn.ModuleDict({m: nn.Linear(w, c) for m, w in width.items()})
        self.gate = nn.Linear(2 * c, c) if len(self.modalities) == 2 else None
        self.init_scale, self.init_attention = float(init_scale), float(attention_scale)
        self.unit_loss_weight = float(unit_loss_weight)
        self.logit_scale = nn.Parameter(torch.tensor(math.log(self.init_scale)))
        self.attention_logit = nn.Parameter(torch.tensor(math.log(self.init_attention)))

    def reset_parameters(self) -> None:
        for mod in (*self.global_proj.values(), *self.local_proj.values()):
            mod.reset_parameters()
        if self.gate is not None:
            self.gate.reset_parameters()
        with torch.no_grad():
            self.logit_scale.fill_(math.log(self.init_scale))
            self.attention_logit.fill_(math.log(self.init_attention))

    # ------------------------------------------------------------------ representations
    def _globals(self, x: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict:
        out: dict = {"g": {}, "present": {}}
        for m in self.modalities:
            g, local, lmask = split_local(x[m], self.parts[m])
            out["g"][m] = F.normalize(self.global_proj[m](F.normalize(g, dim=-1)), dim=-1)
            out["present"][m] = masks[m].bool()
            out.setdefault("raw_local", {})[m] = (local, lmask)
        if self.gate is not None:
            out["fused"] = self._fuse(out["g"], out["present"])
        return out

    def _fuse(self, g: Mapping[str, Tensor], present: Mapping[str, Tensor]) -> Tensor:
        """The cross-modal unit's vector: text and image globals through a learned gate (a missing
        modality is replaced by the other before the gate)."""
        pt, pi = present["text"].unsqueeze(-1), present["image"].unsqueeze(-1)
        a = torch.where(pt, g["text"], g["image"])
        b = torch.where(pi, g["image"], g["text"])
        z = torch.sigmoid(self.gate(torch.cat([a, b], dim=-1)))
        return F.normalize(z * a + (1 - z) * b, dim=-1)

    def encode_mentions(self, x: Mapping[str, Tensor], masks: Mapping[str, Tensor]) -> dict:
        out = self._globals(x, masks)
        out["local"] = {}
        for m, (local, lmask) in out.pop("raw_local").items():
            h = F.normalize(self.local_proj[m](F.normalize(local, dim=-1)), dim=-1)
            out["local"][m] = (h * lmask.unsqueeze(-1), lmask)
        return out

    def encode_kb(self, kb: KBInput, index: Tensor | None = None) -> dict:
        x, masks = kb.x["entity"], kb.masks["entity"]
        if index is not None:
            x, masks = {m: v[index] for m, v in x.items()}, {m: v[index] for m, v in masks.items()}
        out = self._globals(x, masks)
        out.pop("raw_local")
        return out

    # ------------------------------------------------------------------ scores
    def _local(self, local: Tensor, lmask: Tensor, q: Tensor) -> Tensor:
        """``[B, E]`` cosine between ``q_e`` and the ``q_e``-attended sum of each mention's local
        vectors (``local [B, K, c]``, unit rows; ``lmask [B, K]``; ``q [E, c]``, unit rows)."""
        sim = torch.einsum("bkc,ec->bke", local, q)                        # [B, K, E]
        logits = sim * self.attention_logit.exp()
        logits = logits.masked_fill(~lmask.unsqueeze(-1), float("-inf"))
        empty = ~lmask.any(dim=1)                                          # [B]
        alpha = torch.softmax(logits.masked_fill(empty.view(-1, 1, 1), 0.0), dim=1)
        num = (alpha * sim).sum(dim=1)                                     # [B, E]
        gram = local @ local.transpose(1, 2)                               # [B, K, K]
        sq = (alpha * torch.bmm(gram, alpha)).sum(dim=1)                   # |sum_k alpha_k l_k|^2
        return (num / sq.clamp_min(1e-12).sqrt()).masked_fill(empty.view(-1, 1), 0.0)

    def unit_scores(self, mentions: dict, entities: dict) -> list[Tensor]:
        """The units' ``[B, E]`` similarities (see the module doc)."""
        units = []
        for m in self.modalities:
            q = entities["g"][m]
            both = mentions["present"][m].unsqueeze(1) & entities["present"][m].unsqueeze(0)
            local, lmask = mentions["local"][m]
            glob = mentions["g"][m] @ q.t()
            has_local = lmask.any(dim=1, keepdim=True)
            loc = torch.where(has_local, self._local(local, lmask, q), glob)
            units.append(0.5 * (glob + loc) * both)
        if self.gate is not None:
            both = (mentions["present"]["text"] | mentions["present"]["image"]).unsqueeze(1) & \
                   (entities["present"]["text"] | entities["present"]["image"]).unsqueeze(0)
            units.append((mentions["fused"] @ entities["fused"].t()) * both)
        return units

    def _scale(self) -> Tensor:
        return self.logit_scale.clamp(max=math.log(100.0)).exp()

    def score(self, mentions: dict, entities: dict) -> Tensor:
        units = self.unit_scores(mentions, entities)
        return torch.stack(units).mean(0) * self._scale()

    def linking_loss(self, mentions: dict, entities: dict, target: Tensor) -> Tensor:
        """The overall contrastive loss plus ``unit_loss_weight`` times each unit's own."""
        units = self.unit_scores(mentions, entities)
        scale = self._scale()
        loss = F.cross_entropy(torch.stack(units).mean(0) * scale, target)
        for u in units:
            loss = loss + self.unit_loss_weight * F.cross_entropy(u * scale, target)
        return loss


class GraphInteractionLinker(InteractionLinker):
    """The interaction linker with its entity side propagated over the KB's relations: each
    modality's projected global entity vector (and the fused one after it) gets a residual from
    a GNN over the KB (:class:`~mmgraph.linking.models.KBPropagation`, one per modality), trained
    end to end with the units, so an entity no training mention links to borrows from its
    neighbours. The mention side and the units are :class:`InteractionLinker`'s.

    Args:
        num_layers, dropout, aggr: the propagation's (as :class:`~mmgraph.linking.GraphLinker`).
        (others: :class:`InteractionLinker`)
    """

    def __init__(self, dims: Mapping[str, int], kb_dims: Mapping[str, Mapping[str, int]] | None = None,
                 kb_edge_types: Sequence[EdgeType] | None = None, channels: int = 256,
                 text_tokens: int = 32, image_cells: int = 4, init_scale: float = 1 / 0.07,
                 attention_scale: float = 10.0, unit_loss_weight: float = 0.5, num_layers: int = 2,
                 dropout: float = 0.1, aggr: str = "mean"):
        super().__init__(dims, kb_dims, kb_edge_types, channels, text_tokens, image_cells, init_scale,
                         attention_scale, unit_loss_weight)
        from mmgraph.linking.models import KBPropagation

        self.propagation = nn.ModuleDict({m: KBPropagation(self.channels, kb_dims, kb_edge_types, num_layers,
                                                           dropout, aggr) for m in self.modalities})

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for prop in self.propagation.values():
            prop.reset_parameters()

    def encode_kb(self, kb: KBInput, index: Tensor | None = None) -> dict:
        out = super().encode_kb(kb)  # the whole KB: neighbours are needed
        for m in self.modalities:
            g, present = out["g"][m], out["present"][m]
            # an entity without the modality sends no message (its edges are left out)
            out["g"][m] = F.normalize(g + self.propagation[m](g, kb, senders=present), dim=-1)
        if self.gate is not None:  # the fused vector from the propagated ones
            out["fused"] = self._fuse(out["g"], out["present"])
        if index is not None:
            out = {"g": {m: v[index] for m, v in out["g"].items()},
                   "present": {m: v[index] for m, v in out["present"].items()},
                   **({"fused": out["fused"][index]} if "fused" in out else {})}
        return out

r"""A modality-prompted heterogeneous patient-graph model in the manner of GTP-4o (Li et al.,
ECCV 2024): missing modality nodes completed by learnable prompts conditioned on the present ones,
then multi-relation and meta-path aggregation over the patient graph.

GTP-4o has no public code; this model follows the paper's three ideas with the project's own
design. Every patient graph (:func:`mmgraph.data.cohort.patient_graph`) has one node per modality
and a ``patient`` readout node, so a batch of ``B`` graphs is held densely: ``h_m [B, H]`` per
modality ``m``.

1. **Encoding.** :math:`h_m = \mathrm{GELU}(\mathrm{LN}(W_m x_m))` for present nodes.
2. **Prompted completion.** A missing node ``m`` becomes
   :math:`\tilde h_m = p_m + \frac{1}{|P|}\sum_{a \in P} C_{a \to m} h_a`, a learnable prompt
   :math:`p_m` plus relation-specific maps of the *present* neighbours :math:`P` (only the prompt
   when none is present). In training, present nodes are also hidden at random
   (``modality_dropout``, never a patient's last one) and completed the same way; the completion
   loss :math:`\lVert \tilde h_m - \mathrm{sg}(h_m) \rVert^2` over those nodes, times
   ``completion_weight``, is the model's ``extra_loss`` (the task adds it to the endpoint loss).
3. **Multi-relation aggregation** (``num_layers`` rounds): each node ``b`` receives
   :math:`W^{(l)}_{r} h_a` over every relation :math:`r = a \to b`, weighted by a relation-level
   attention :math:`\beta_r = \mathrm{softmax}_r\, q_b^{(l)\top} \tanh(A^{(l)} W^{(l)}_r h_a)`
   (per patient), then :math:`h_b \leftarrow \mathrm{LN}(h_b + \mathrm{GELU}(\sum_r \beta_r
   W^{(l)}_r h_a))`.
4. **Meta-path aggregation and readout.** A meta-path is a chain of modalities along the relations
   (``metapaths``: ``"pairs"`` = every related pair of modalities, or a list of chains such as
   ``[[genes, clinical]]`` chosen from domain knowledge); its instance in a patient is
   :math:`z = \mathrm{MLP}(h_{a_1} \odot \dots \odot h_{a_k})`. The patient's embedding is the
   attention-weighted sum over the modality nodes and the meta-path instances, plus a projection of
   the readout node's input (the presence flags), then a linear head.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

from mmgraph.checks import number
from mmgraph.errors import ConfigError
from mmgraph.nn.hetero import parse_metadata


class _Attention(nn.Module):
    """Scores ``[B, K, H] -> softmax weights [B, K]`` with a shared ``q^T tanh(A .)``."""

    def __init__(self, channels: int):
        super().__init__()
        self.proj = nn.Linear(channels, channels)
        self.query = nn.Linear(channels, 1, bias=False)

    def forward(self, items: Tensor) -> Tensor:
        return torch.softmax(self.query(torch.tanh(self.proj(items))).squeeze(-1), dim=-1)


class PromptedPatientGNN(nn.Module):
    """The hetero-model contract of :mod:`mmgraph.nn.hetero` (``metadata``, ``in_channels``,
    ``out_channels``, ``target``; ``forward(x_dict, edge_index_dict, present_dict)`` -> logits of
    the ``target`` readout nodes), for graphs with one node per modality type.

    Args:
        hidden_channels: width ``H``.
        num_layers: rounds of multi-relation aggregation.
        dropout: dropout after encoding and in every round.
        input_dropout: dropout on the input features.
        modality_dropout: probability, in training, that a present modality node is hidden and
            completed (at least one stays per patient).
        completion_weight: weight of the completion loss (``extra_loss``).
        metapaths: ``"pairs"`` or a list of modality chains along the relations.
    """

    is_hetero = True
    wants_presence = True

    def __init__(self, metadata: Any, in_channels: Mapping[str, int | None], out_channels: int,
                 target: str, num_nodes: Mapping[str, int] | None = None, hidden_channels: int = 64,
                 num_layers: int = 2, dropout: float = 0.3, input_dropout: float = 0.0,
                 modality_dropout: float = 0.2, completion_weight: float = 0.5,
                 metapaths: str | Sequence[Sequence[str]] = "pairs"):
        super().__init__()
        node_types, edge_types = parse_metadata(metadata)
        if target not in node_types:
            raise ConfigError(f"target node type {target!r} is not among {node_types}")
        self.target = target
        self.modalities = [nt for nt in node_types if nt != target]
        if not self.modalities:
            raise ConfigError("the patient graph has no modality node types")
        self.relations = [(a, b) for a, _, b in edge_types if a in self.modalities and b in self.modalities]
        h = self.hidden_channels = int(hidden_channels)
        self.num_layers = int(num_layers)
        if self.num_layers < 0:
            raise ConfigError(f"num_layers must be >= 0; got {num_layers}")
        for key, value in (("dropout", dropout), ("input_dropout", input_dropout),
                           ("modality_dropout", modality_dropout)):
            number(f"model.module.{key}", value, 0.0, 0.99)
        self.modality_dropout = float(modality_dropout)
        self.completion_weight = number("model.module.completion_weight", completion_weight, 0.0)
        dims = {m: in_channels.get(m) for m in self.modalities}
        if any(not d for d in dims.values()):
            raise ConfigError(f"every modality needs features; in_channels = {dict(in_channels)}")
        self.encoders = nn.ModuleDict({m: nn.Sequential(nn.Dropout(input_dropout), nn.Linear(int(d), h),
                                                        nn.LayerNorm(h), nn.GELU())
                                       for m, d in dims.items()})
        self.prompts = nn.Parameter(torch.empty(len(self.modalities), h))
        self.complete = nn.ModuleDict({self._key(a, b): nn.Linear(h, h) for a, b in self.relations})
        self.layers = nn.ModuleList()
        for _ in range(self.num_layers):
            self.layers.append(nn.ModuleDict({
                "msg": nn.ModuleDict({self._key(a, b): nn.Linear(h, h) for a, b in self.relations}),
                "att": nn.ModuleDict({m: _Attention(h) for m in self.modalities}),
                "norm": nn.ModuleDict({m: nn.LayerNorm(h) for m in self.modalities})}))
        self.metapaths = self._metapaths(metapaths)
        self.path_mlps = nn.ModuleList(nn.Sequential(nn.Linear(h, h), nn.GELU(), nn.Linear(h, h))
                                       for _ in self.metapaths)
        self.readout = _Attention(h)
        self.flags = nn.Linear(int(in_channels.get(target) or len(self.modalities)), h)
        self.head = nn.Linear(h, int(out_channels))
        self.drop = nn.Dropout(dropout)
        self.extra_loss: Tensor | None = None
        self.reset_parameters()

    @staticmethod
    def _key(a: str, b: str) -> str:
        return f"{a}__{b}"

    def _metapaths(self, spec: str | Sequence[Sequence[str]]) -> list[list[str]]:
        if isinstance(spec, str):
            if spec != "pairs":
                raise ConfigError(f"metapaths must be 'pairs' or a list of modality chains; got {spec!r}")
            pairs = []  # an instance is a product of the chain's states: one per unordered pair
            for a, b in self.relations:
                if [b, a] not in pairs:
                    pairs.append([a, b])
            return pairs
        paths = []
        for chain in spec:
            chain = [str(c) for c in chain]
            if len(chain) < 2 or any((a, b) not in self.relations for a, b in zip(chain, chain[1:])):
                raise ConfigError(f"meta-path {chain} must follow the patient graph's relations "
                                  f"{[list(r) for r in self.relations]}")
            paths.append(chain)
        return paths

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and isinstance(module, (nn.Linear, nn.LayerNorm)):
                module.reset_parameters()
        nn.init.normal_(self.prompts, std=0.1)
        self.extra_loss = None

    def _completion(self, h: dict[str, Tensor], present: dict[str, Tensor]) -> dict[str, Tensor]:
        """The prompt-completed vector of every modality node (used where it is absent)."""
        out = {}
        for i, m in enumerate(self.modalities):
            total = self.prompts[i].expand_as(h[m]).clone()
            msgs, count = 0.0, 0.0
            for a, b in self.relations:
                if b != m:
                    continue
                w = present[a].unsqueeze(1).to(h[a].dtype)
                msgs = msgs + self.complete[self._key(a, b)](h[a]) * w
                count = count + w
            if isinstance(count, Tensor):
                total = total + msgs / count.clamp(min=1.0)
            out[m] = total
        return out

    def forward(self, x_dict: Mapping[str, Tensor], edge_index_dict: Mapping | None = None,
                present_dict: Mapping[str, Tensor] | None = None) -> Tensor:
        sizes = {int(x_dict[m].size(0)) for m in self.modalities}
        if len(sizes) != 1:
            raise ConfigError(f"PromptedPatientGNN needs one node per modality per graph; got node "
                              f"counts {sizes}")
        b = sizes.pop()
        ref = x_dict[self.modalities[0]]
        present = {m: (present_dict[m].bool() if present_dict is not None else
                       torch.ones(b, dtype=torch.bool, device=ref.device)) for m in self.modalities}
        enc = {m: self.encoders[m](x_dict[m]) for m in self.modalities}
        visible = dict(present)
        hidden = None
        if self.training and self.modality_dropout > 0 and len(self.modalities) > 1:
            stack = torch.stack([present[m] for m in self.modalities], dim=1)
            drop = stack & (torch.rand(stack.shape, device=stack.device) < self.modality_dropout)
            keep_one = (stack & ~drop).any(dim=1)
            drop &= keep_one.unsqueeze(1)  # a patient never loses its last visible modality
            hidden = {m: drop[:, i] for i, m in enumerate(self.modalities)}
            visible = {m: present[m] & ~hidden[m] for m in self.modalities}
        filled = self._completion({m: enc[m] * visible[m].unsqueeze(1) for m in self.modalities}, visible)
        h = {m: torch.where(visible[m].unsqueeze(1), enc[m], filled[m]) for m in self.modalities}
        if hidden is not None and self.completion_weight > 0:
            losses = [((filled[m] - enc[m].detach()) ** 2).mean(dim=1)[hidden[m]] for m in self.modalities]
            losses = torch.cat(losses)
            self.extra_loss = self.completion_weight * losses.mean() if losses.numel() else None
        else:
            self.extra_loss = None
        h = {m: self.drop(v) for m, v in h.items()}
        for layer in self.layers:
            new = {}
            for m in self.modalities:
                incoming = [layer["msg"][self._key(a, c)](h[a]) for a, c in self.relations if c == m]
                if not incoming:
                    new[m] = h[m]
                    continue
                msgs = torch.stack(incoming, dim=1)  # [B, R_m, H]
                beta = layer["att"][m](msgs)
                agg = (beta.unsqueeze(-1) * msgs).sum(dim=1)
                new[m] = layer["norm"][m](h[m] + self.drop(torch.nn.functional.gelu(agg)))
            h = new
        items = [h[m] for m in self.modalities]
        for chain, mlp in zip(self.metapaths, self.path_mlps):
            prod = h[chain[0]]
            for m in chain[1:]:
                prod = prod * h[m]
            items.append(mlp(prod))
        stack = torch.stack(items, dim=1)
        pooled = (self.readout(stack).unsqueeze(-1) * stack).sum(dim=1)
        flags = x_dict.get(self.target)
        if flags is None:
            flags = torch.stack([present[m].float() for m in self.modalities], dim=1)
        return self.head(self.drop(pooled + self.flags(flags)))

    def extra_repr(self) -> str:
        return (f"modalities={self.modalities}, relations={len(self.relations)}, "
                f"metapaths={self.metapaths}, hidden={self.hidden_channels}, layers={self.num_layers}")

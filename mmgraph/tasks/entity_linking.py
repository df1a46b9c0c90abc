"""Multimodal entity linking as a task of the runner: rank every entity of a knowledge base for
each mention.

The graph is :mod:`mmgraph.data.kb`'s (``entity`` and ``mention`` nodes, the KB's relations,
training links only). Features are the cached frozen-encoder features of both node types
(``features.modalities`` chooses which; entity nodes must have the same ones:
``dataset.feature_node_types: [entity, ...]``). A linker (:mod:`mmgraph.linking`) maps both
sides into one space.

**Training**: in-batch contrastive: each batch of training mentions is scored against the
distinct gold entities of the batch (cross-entropy on the gold one; a linker with a
``linking_loss(mentions, entities, target)`` method computes its own, e.g. one per unit).

**Evaluation**: the KB's representations are recomputed, then every mention of a split is scored
against *all* entities, in chunks of ``eval_chunk`` mentions (never a full mentions x KB matrix).
A mention's rank is ``1 + #{entities scoring >= its gold entity}`` minus the gold itself, so a tie
never favours the gold entity (a constant scorer ranks every mention last). Mentions whose answer
is nil or not in the KB are dropped (counted in ``describe()``). MR, MRR and Hits@K over all
mentions, and MRR / Hits@1 / Hits@5 / MR over mentions of *seen* entities (some training mention
links to them) and of *unseen* ones separately. The training split is scored on a fixed sample.
Selection (epochs, sweeps) is on validation MRR; MR counts as lower-is-better everywhere.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from mmgraph.checks import integer
from mmgraph.data.graph import modality_mask
from mmgraph.data.kb import ENTITY, MENTION, kb_edge_types
from mmgraph.errors import ConfigError, DataError
from mmgraph.evaluator import MetricSpec
from mmgraph.linking.models import KBInput
from mmgraph.metrics import summarize_ranks
from mmgraph.tasks.base import Metrics, Task

OVERALL = ("mrr", "hits@1", "hits@3", "hits@5", "hits@10", "hits@20", "mr")
PER_PART = ("mrr", "hits@1", "hits@5", "mr")
METRICS = OVERALL + tuple(f"{m}_{part}" for part in ("seen", "unseen") for m in PER_PART)


def _linking_metrics(inp: Mapping, names: tuple[str, ...]) -> dict[str, float]:
    rank = torch.as_tensor(inp["rank"], dtype=torch.float64).view(-1)
    seen = torch.as_tensor(inp["seen"], dtype=torch.bool).view(-1)
    if rank.numel() == 0 or seen.numel() != rank.numel():
        raise ValueError(f"rank ({rank.numel()}) and seen ({seen.numel()}) must be non-empty and "
                         f"of equal length")
    if bool((rank < 1).any()) or bool(torch.isnan(rank).any()):
        raise ValueError("ranks must be at least 1")
    parts = {"seen": rank[seen], "unseen": rank[~seen]}
    out = {}
    for name in names:
        base, _, part = name.partition("_")  # "mrr_unseen" -> ("mrr", "unseen"); "mrr" -> ("mrr", "")
        r = parts[part] if part else rank
        out[name] = summarize_ranks(r, [base])[base] if r.numel() else math.nan
    return out


SPEC = MetricSpec(
    task="entity_linking",
    metrics=METRICS,
    primary="mrr",
    expected_input=("{'rank': the gold entity's rank among all KB entities per mention [P] (>= 1; "
                    "ties counted against the gold), 'seen': whether a training mention links to "
                    "the gold entity [P]}"),
    compute=_linking_metrics,
    lower_is_better=frozenset(m for m in METRICS if m == "mr" or m.startswith("mr_")),
)


# the largest entity count a float type counts exactly as a sum of 0/1 values
_EXACT_COUNT = {torch.float32: 2 ** 24, torch.float64: 2 ** 53}


def gold_ranks(scores: Tensor, gold: Tensor, overwrite: bool = False) -> Tensor:
    """``[B]`` ranks of ``gold`` in each row of ``scores [B, E]``: one plus the number of other
    entities scoring at least as high (ties never favour the gold entity).

    ``overwrite=True``: ``scores`` is the caller's scratch (its own tensor, not read again): the
    comparison is written over it as 0/1 and summed in place, the same counts without a ``[B, E]``
    bool mask and its int64 copy for the sum (9 bytes per score, and most of the time). Views,
    other dtypes and KBs too large to count exactly in the float type take the mask path."""
    g = scores.gather(1, gold.view(-1, 1))  # a copy: overwriting the scores leaves it as it is
    if overwrite and scores.size(1) <= _EXACT_COUNT.get(scores.dtype, 0) and scores._base is None \
            and scores.is_contiguous() and not scores.requires_grad:
        return scores.ge_(g).sum(dim=1).double()
    return (scores >= g).sum(dim=1).double()  # counts the gold itself: 1 + others >= it


class EntityLinking(Task):
    """Link mentions to the entities of a knowledge base (see the module doc).

    Args:
        batch_size: training mentions per step (in-batch negatives: their distinct gold entities).
        eval_chunk: mentions scored against the whole KB at once.
        train_eval_sample: training mentions scored per evaluation (a fixed seeded sample).
        sample_seed: seed of that sample.
        relations: the KB relations graph linkers use (relation names; ``None``: all).
    """

    kind = "entity_linking"
    spec = SPEC

    def __init__(self, batch_size: int = 128, eval_chunk: int = 512, train_eval_sample: int = 1000,
                 sample_seed: int = 0, relations: list[str] | None = None):
        super().__init__()
        self.batch_size = integer("task.batch_size", batch_size, 1)
        self.eval_chunk = integer("task.eval_chunk", eval_chunk, 1)
        self.train_eval_sample = integer("task.train_eval_sample", train_eval_sample, 1)
        self.sample_seed = integer("task.sample_seed", sample_seed, 0)
        if relations is not None and (isinstance(relations, str) or
                                      not all(isinstance(r, str) for r in relations)):
            raise ConfigError(f"task.relations must be a list of relation names or null; got {relations!r}")
        self.relations = list(relations) if relations is not None else None
        self.epoch = 0

    # ------------------------------------------------------------------ setup
    def setup(self, data: HeteroData, device: torch.device, split: dict | None = None) -> None:
        if data.meta.get("task") != "entity_linking" or ENTITY not in data.node_types \
                or MENTION not in data.node_types:
            raise ConfigError(f"task=entity_linking needs a knowledge base with mentions (entity and "
                              f"mention nodes); data set {data.meta.get('name')} has node types "
                              f"{', '.join(data.node_types)}")
        if split is not None:
            raise ConfigError("entity linking keeps the data set's own mention split (it is made by "
                              "entity, so that unseen entities exist); drop split=... / dataset.split")
        self.device = device
        self.modalities = list(data.meta.get("input", {}).get("modalities") or [])
        if not self.modalities:
            raise DataError("no input modalities on the mentions; choose them with features.modalities=[...]")
        men, ent = data[MENTION], data[ENTITY]
        for m in self.modalities:
            if f"x_{m}" not in ent:
                raise DataError(f"entity nodes have no {m} features (x_{m}); add entity to "
                                f"dataset.feature_node_types")
        self.mention_x = {m: men[f"x_{m}"].float().to(device) for m in self.modalities}
        self.mention_mask = {m: modality_mask(data, [m], MENTION)[:, 0].to(device) for m in self.modalities}

        edge_types = kb_edge_types(data)
        if self.relations is not None:
            known = sorted({et[1] for et in edge_types})
            unknown = [r for r in self.relations if r not in known]
            if unknown:
                raise ConfigError(f"task.relations: the KB has no relation {unknown[0]!r}; it has: "
                                  f"{', '.join(known) or 'none'}")
            edge_types = [et for et in edge_types if et[1] in self.relations]
        types = [ENTITY] + sorted({t for et in edge_types for t in (et[0], et[2])} - {ENTITY})
        x, masks = {}, {}
        for t in types:
            store = data[t]
            mods = self.modalities if t == ENTITY else sorted(k[2:] for k in store.keys() if k.startswith("x_"))
            x[t] = {m: store[f"x_{m}"].float() for m in mods}
            masks[t] = {m: modality_mask(data, [m], t)[:, 0] for m in mods}
        self.kb = KBInput(x, masks, {et: data[et].edge_index for et in edge_types}).to(device)
        self.kb_dims = {t: {m: int(v.size(1)) for m, v in x[t].items()} for t in types if t != ENTITY}
        self.kb_edge_types = edge_types

        y = men.y.long()
        self.y = y.to(device)
        self.seen = ent.seen.bool().to(device) if "seen" in ent else torch.zeros(ent.num_nodes, dtype=torch.bool)
        self.index, dropped = {}, {}
        for s in ("train", "val", "test"):
            mask = men[f"{s}_mask"].bool()
            self.index[s] = torch.nonzero(mask & (y >= 0)).view(-1).to(device)
            dropped[s] = int((mask & (y < 0)).sum())
            if s != "train" and self.index[s].numel() == 0:
                raise DataError(f"the {s} split has no mention with an answer in the KB")
        if self.index["train"].numel() == 0:
            raise DataError("the training split has no mention with an answer in the KB")
        gen = torch.Generator().manual_seed(self.sample_seed)
        train = self.index["train"].cpu()
        sample = train[torch.randperm(train.numel(), generator=gen)[:self.train_eval_sample]]
        self.eval_index = {"train": sample.sort().values.to(device), "val": self.index["val"],
                           "test": self.index["test"]}
        self.info = {
            "mentions": {s: int(v.numel()) for s, v in self.index.items()},
            "dropped_nil_or_not_in_kb": dropped,
            "unseen_gold": {s: int((~self.seen[self.y[v]]).sum()) for s, v in self.index.items()},
            "entities": int(ent.num_nodes), "seen_entities": int(self.seen.sum()),
            "train_eval_sample": int(sample.numel()),
            "split": dict(data.meta.get("split", {})),
        }

    def model_kwargs(self) -> dict[str, Any]:
        return {"dims": {m: int(v.size(1)) for m, v in self.mention_x.items()},
                "kb_dims": self.kb_dims, "kb_edge_types": [list(et) for et in self.kb_edge_types]}

    def start_run(self, seed: int) -> None:
        super().start_run(seed)
        self.epoch = 0

    def _mentions(self, model: nn.Module, index: Tensor) -> Tensor:
        return model.encode_mentions({m: v[index] for m, v in self.mention_x.items()},
                                     {m: v[index] for m, v in self.mention_mask.items()})

    # ------------------------------------------------------------------ training
    def train_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> float:
        self.epoch += 1
        model.train()
        gen = torch.Generator().manual_seed((self.seed or 0) * 100_003 + self.epoch)
        train = self.index["train"]
        order = train[torch.randperm(train.numel(), generator=gen).to(train.device)]
        total, steps = 0.0, 0
        for start in range(0, order.numel(), self.batch_size):
            batch = order[start:start + self.batch_size]
            gold, target = self.y[batch].unique(return_inverse=True)
            optimizer.zero_grad(set_to_none=True)
            mentions, entities = self._mentions(model, batch), model.encode_kb(self.kb, gold)
            own = getattr(model, "linking_loss", None)  # a linker with several scores (units) sums their losses
            loss = own(mentions, entities, target) if own is not None else \
                F.cross_entropy(model.score(mentions, entities), target)
            loss.backward()
            optimizer.step()
            total += float(loss.detach())
            steps += 1
        return total / max(steps, 1)

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def ranks(self, model: nn.Module, index: Tensor, entities: Tensor | None = None) -> Tensor:
        """``[P]`` the gold entity's rank among all KB entities for the mentions ``index``
        (``entities``: the KB's representations, computed here when not given). The scores a
        linker's ``score`` returns for a chunk (a new tensor per call) are overwritten while ranking."""
        model.eval()
        if entities is None:
            entities = model.encode_kb(self.kb)
        out = []
        for start in range(0, index.numel(), self.eval_chunk):
            chunk = index[start:start + self.eval_chunk]
            scores = model.score(self._mentions(model, chunk), entities)
            out.append(gold_ranks(scores, self.y[chunk], overwrite=True).cpu())  # the chunk's own scores
            del scores  # freed before the next chunk's are computed, not while they are
        return torch.cat(out)

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> Metrics:
        model.eval()
        entities = model.encode_kb(self.kb)  # once per evaluation, with the current weights
        out = {}
        for split, index in self.eval_index.items():
            rank = self.ranks(model, index, entities)
            out[split] = self.evaluator.eval({"rank": rank, "seen": self.seen[self.y[index]].cpu()})
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "modalities": self.modalities, "batch_size": self.batch_size,
                "relations": [list(et) for et in self.kb_edge_types], "ties": "against the gold entity",
                **self.info}

"""Knowledge bases with their mentions as one graph: the data model of entity linking.

A multimodal entity-linking data set is a knowledge base (entities with a name, a description or
attributes, and images; relations between entities where the KB has them) and mentions (the
mention's words, the sentence around them, an image) each linked to one entity or to none (nil).
Every loader (the MIMIC / M3EL file layout, the emoji KB) hands :func:`kb_graph` plain records and
gets the same :class:`~torch_geometric.data.HeteroData`:

``entity`` nodes
    ``key`` (the KB's id: a Wikidata QID, an emoji's code points), ``name``, ``text`` (what the
    text encoder reads: ``name`` and the description), ``text_mask``, ``image`` (a path relative to
    ``meta["image_root"]``, or ``None``), ``image_mask``, ``num_images`` (the KB lists more images
    than the first, which is the one encoded).
``mention`` nodes (the target type)
    ``key``, ``mention`` (the words), ``sentence``, ``text`` (what the text encoder reads),
    ``text_mask``, ``image`` / ``image_mask``, ``y`` (the gold entity's index; ``-1`` = nil or an
    answer the KB lacks), ``train_mask`` / ``val_mask`` / ``test_mask`` (the splits as given) and
    any per-mention extras a loader adds (e.g. ``locale``).
``(entity, <relation>, entity)`` and edges to other KB node types
    the KB's own relations (loaders add them; other node types such as ``group`` carry ``text``).
``(mention, links_to, entity)`` and ``(entity, linked_from, mention)``
    the gold links of **training** mentions only: validation and test answers never enter the graph.

``meta``: ``task = "entity_linking"``, ``target = "mention"``, ``image_root``, ``split`` (sizes and
a fingerprint), ``entity_linking`` (nil counts, seen entities: those a training mention links to)
and ``stats``.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch_geometric.data import HeteroData

from mmgraph.data.graph import RawList, new_graph
from mmgraph.data.splits import apply_split
from mmgraph.errors import DataError

SPLITS = ("train", "val", "test")
ENTITY, MENTION = "entity", "mention"
LINK, LINKED = "links_to", "linked_from"


@dataclass
class Entity:
    """One KB entity. ``images``: paths relative to the graph's ``image_root`` (first = encoded)."""

    key: str
    name: str
    description: str = ""
    images: Sequence[str] = ()

    @property
    def text(self) -> str | None:
        name, desc = self.name.strip(), self.description.strip()
        if name and desc:
            return f"{name}. {desc}"
        return name or desc or None


@dataclass
class Mention:
    """One mention. ``answer``: the gold entity's key, ``None`` for nil."""

    key: str
    mention: str
    sentence: str
    split: str
    answer: str | None
    image: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def text(self) -> str | None:
        words, sentence = self.mention.strip(), self.sentence.strip()
        if words and sentence and words.lower() not in sentence.lower():
            return f"{words}. {sentence}"
        return sentence or words or None


def kb_graph(name: str, version: str, entities: Sequence[Entity], mentions: Sequence[Mention], *,
             image_root: str | None, relations: Mapping[tuple[str, str, str], Any] | None = None,
             node_types: Mapping[str, Mapping[str, Any]] | None = None, **meta) -> HeteroData:
    """The entity-linking graph of ``entities`` and ``mentions`` (see the module doc).

    Args:
        relations: ``{(src type, relation, dst type): [2, R] index pairs}`` among the KB's node
            types (``entity`` and the types of ``node_types``); mentions' links are added here.
        node_types: other KB node types: ``{type: {"text": [...], ...}}`` (each list one per node).
        meta: more ``data.meta`` entries (``source``, ``license``, ``stats``, ...).

    Raises:
        DataError: no entities, duplicate entity keys, a mention in an unknown split, or a
            relation whose indices fall outside its node types.
    """
    if not entities:
        raise DataError(f"{name}: the knowledge base has no entities")
    index: dict[str, int] = {}
    for i, e in enumerate(entities):
        if e.key in index:
            raise DataError(f"{name}: entity key {e.key!r} appears twice in the knowledge base")
        index[e.key] = i
    bad = next((m for m in mentions if m.split not in SPLITS), None)
    if bad is not None:
        raise DataError(f"{name}: mention {bad.key!r} is in split {bad.split!r}; expected one of "
                        f"{', '.join(SPLITS)}")
    data = new_graph(name, version, MENTION, [], task="entity_linking", image_root=image_root, **meta)

    ent = data[ENTITY]
    ent.num_nodes = len(entities)
    ent.key = RawList(e.key for e in entities)
    ent.name = RawList(e.name for e in entities)
    texts = [e.text for e in entities]
    ent.text = RawList(texts)
    ent.text_mask = torch.tensor([t is not None for t in texts], dtype=torch.bool)
    ent.image = RawList(e.images[0] if e.images else None for e in entities)
    ent.image_mask = torch.tensor([bool(e.images) for e in entities], dtype=torch.bool)
    ent.num_images = torch.tensor([len(e.images) for e in entities], dtype=torch.long)

    men = data[MENTION]
    men.num_nodes = len(mentions)
    men.key = RawList(m.key for m in mentions)
    men.mention = RawList(m.mention for m in mentions)
    men.sentence = RawList(m.sentence for m in mentions)
    texts = [m.text for m in mentions]
    men.text = RawList(texts)
    men.text_mask = torch.tensor([t is not None for t in texts], dtype=torch.bool)
    men.image = RawList(m.image for m in mentions)
    men.image_mask = torch.tensor([m.image is not None for m in mentions], dtype=torch.bool)
    y = [index.get(m.answer, -1) if m.answer is not None else -1 for m in mentions]
    men.y = torch.tensor(y, dtype=torch.long)
    for key in sorted({k for m in mentions for k in m.extra}):
        men[key] = RawList(m.extra.get(key) for m in mentions)
    split = np.array([m.split for m in mentions])
    apply_split(data, *(np.flatnonzero(split == s) for s in SPLITS), name="given",
                params={"source": name}, node_type=MENTION)

    sizes = {ENTITY: len(entities)}
    for nt, fields in (node_types or {}).items():
        if nt in (ENTITY, MENTION):
            raise DataError(f"{name}: node type {nt!r} is reserved")
        lengths = {len(v) for v in fields.values()}
        if len(lengths) != 1:
            raise DataError(f"{name}: node type {nt!r} has fields of different lengths {sorted(lengths)}")
        store = data[nt]
        store.num_nodes = sizes[nt] = lengths.pop()
        for k, v in fields.items():
            store[k] = v if isinstance(v, torch.Tensor) else RawList(v)
        if "text" in fields and "text_mask" not in fields:
            store.text_mask = torch.tensor([bool(t) for t in fields["text"]], dtype=torch.bool)
    for et, pairs in (relations or {}).items():
        src, rel, dst = et
        if src not in sizes or dst not in sizes:
            raise DataError(f"{name}: relation {et} joins node types the KB does not have")
        ei = torch.as_tensor(np.asarray(pairs, dtype=np.int64)).reshape(2, -1)
        if ei.numel() and (int(ei[0].max()) >= sizes[src] or int(ei[1].max()) >= sizes[dst]
                           or int(ei.min()) < 0):
            raise DataError(f"{name}: relation {et} has node indices outside its node types")
        data[src, rel, dst].edge_index = ei

    train = men.train_mask & (men.y >= 0)
    links = torch.stack([torch.nonzero(train).view(-1), men.y[train]])
    data[MENTION, LINK, ENTITY].edge_index = links
    data[ENTITY, LINKED, MENTION].edge_index = links.flip(0)

    seen = torch.zeros(len(entities), dtype=torch.bool)
    seen[men.y[train]] = True
    ent.seen = seen
    answers = Counter()
    for m, gold in zip(mentions, y):
        answers[(m.split, "nil" if m.answer is None else ("missing" if gold < 0 else "linked"))] += 1
    data.meta["entity_linking"] = {
        "entities": len(entities), "seen_entities": int(seen.sum()),
        "mentions": {s: int((split == s).sum()) for s in SPLITS},
        "nil": {s: answers[(s, "nil")] for s in SPLITS},
        "answer_not_in_kb": {s: answers[(s, "missing")] for s in SPLITS},
        "unseen_gold": {s: int((~seen[men.y[(torch.from_numpy(split == s)) & (men.y >= 0)]]).sum())
                        for s in SPLITS},
    }
    return data


def kb_node_types(data: HeteroData) -> list[str]:
    """The KB's node types: every type but ``mention``."""
    return [nt for nt in data.node_types if nt != MENTION]


def kb_edge_types(data: HeteroData) -> list[tuple[str, str, str]]:
    """The KB's relations: every edge type that does not touch ``mention``."""
    return [et for et in data.edge_types if MENTION not in (et[0], et[2])]

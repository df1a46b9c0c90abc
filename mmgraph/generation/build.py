"""Generation examples (:class:`~mmgraph.generation.examples.GenerationSet`) from a graph.

Two shapes of graph give examples:

* **one graph of items** (openclipart, Tux Paint): every target node whose ``target_field`` is
  not empty is an example; its local graph is the node and at most ``max_neighbors`` of its
  neighbours over ``relations`` (in the order of ``relations``, then of node index; node index
  order is content-hash order in mmgraph's loaders, never a path), with every edge of those
  relations among them. The node's own image is an ``input`` item; its own text never is (it
  holds or is the target); neighbours give ``context`` items (their text and image).
* **a union of example graphs** (WikiWeb2M, :func:`mmgraph.data.wikiweb2m.wikiweb2m_graph`):
  nodes carry ``example`` (the example they belong to); each example's nodes, in node-type
  order, form its local graph, the target node first; its ``input_text`` is the target's
  ``input_field``.

Items point at rows of the ``x_text`` / ``x_image`` features of every node type (computed by
the runner's feature step; see a data set config's ``feature_node_types``); a node type
without ``x_<modality>`` gives no items of that modality.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Sequence

import numpy as np
import torch
from torch_geometric.data import HeteroData

from mmgraph.data.graph import target_type
from mmgraph.data.splits import normalised_text
from mmgraph.errors import ConfigError, DataError
from mmgraph.generation.examples import Example, GenerationSet, Item

__all__ = ["generation_set"]


class _Tables:
    """The concatenated feature tables: (node type, modality) -> row offset."""

    def __init__(self, data: HeteroData):
        self.offset: dict[tuple[str, str], int] = {}
        parts: dict[str, list[torch.Tensor]] = defaultdict(list)
        size: dict[str, int] = defaultdict(int)
        for nt in data.node_types:
            for m in ("text", "image"):
                x = data[nt].get(f"x_{m}")
                if x is None:
                    continue
                if parts[m] and parts[m][0].size(1) != x.size(1):
                    raise DataError(f"x_{m} of {nt!r} has {x.size(1)} dimensions, other node types "
                                    f"{parts[m][0].size(1)}; encode every node type with one {m} encoder")
                self.offset[(nt, m)] = size[m]
                parts[m].append(x.float())
                size[m] += x.size(0)
        self.tables = {m: torch.cat(p) for m, p in parts.items()}

    def row(self, data: HeteroData, nt: str, m: str, i: int) -> int | None:
        """The table row of node ``i`` of ``nt``'s ``m`` feature, or ``None`` (none, or masked)."""
        if (nt, m) not in self.offset:
            return None
        mask = data[nt].get(f"{m}_mask")
        if mask is not None and not bool(mask[i]):
            return None
        return self.offset[(nt, m)] + i


def _text_of(store, i: int) -> str | None:
    text = store.get("text")
    return text[i] if text is not None else None


def _items(data: HeteroData, tables: _Tables, nodes: list[tuple[str, int]], target_role: str,
           own_image: bool) -> list[Item]:
    items = []
    for j, (nt, i) in enumerate(nodes):
        role = target_role if j == 0 else "context"
        if j > 0:
            row = tables.row(data, nt, "text", i)
            if row is not None:
                items.append(Item("text", j, row, role, _text_of(data[nt], i)))
        if j > 0 or own_image:
            row = tables.row(data, nt, "image", i)
            if row is not None:
                items.append(Item("image", j, row, role))
    return items


def _adjacency(data: HeteroData, relations: Sequence[tuple[str, str, str]]) -> dict:
    """``(type, index) -> [(type, index), ...]``: the out-neighbours over ``relations``, in the
    order of ``relations`` and then of the edge lists."""
    adj: dict[tuple[str, int], list[tuple[str, int]]] = defaultdict(list)
    for src_t, rel, dst_t in relations:
        for s, d in data[src_t, rel, dst_t].edge_index.t().tolist():
            adj[(src_t, s)].append((dst_t, d))
    return adj


def _local_edges(adj: dict, nodes: list[tuple[str, int]]) -> torch.Tensor:
    """Both directions of every edge of ``adj`` between ``nodes``, as local indices."""
    where = {node: j for j, node in enumerate(nodes)}
    pairs = set()
    for a, node in enumerate(nodes):
        for other in adj.get(node, ()):
            b = where.get(other)
            if b is not None and a != b:
                pairs.add((a, b))
                pairs.add((b, a))
    if not pairs:
        return torch.zeros(2, 0, dtype=torch.long)
    return torch.tensor(sorted(pairs), dtype=torch.long).t().contiguous()


def _relations(data: HeteroData, names: Sequence[str] | None) -> list[tuple[str, str, str]]:
    if not names:
        return [et for et in data.edge_types if et[0] == target_type(data)]
    out = []
    for name in names:
        match = [et for et in data.edge_types if et[1] == name]
        if not match:
            raise ConfigError(f"task.relations: {data.meta.get('name')} has no relation {name!r}; it has "
                              f"{', '.join(sorted({et[1] for et in data.edge_types}))}")
        out.extend(match)
    return out


def _split_of(store, i: int) -> str | None:
    for s in ("train", "val", "test"):
        mask = store.get(f"{s}_mask")
        if mask is not None and bool(mask[i]):
            return s
    return None


def generation_set(data: HeteroData, target_field: str, *, input_field: str | None = None,
                   relations: Sequence[str] | None = None, max_neighbors: int = 10,
                   own_image: bool = True) -> GenerationSet:
    """The examples of ``data`` (see the module docstring).

    Args:
        target_field: the target node field to generate (``title``, ``text``, ``target_text``).
        input_field: a target node field read as tokens (WikiWeb2M: ``input_text``); none by default.
        relations: relation names whose neighbours form the context (graphs of items; default:
            every relation from the target type); every relation among a union's nodes is used.
        max_neighbors: neighbours per example (graphs of items).
        own_image: the target node's image is an ``input`` item.

    Splits: the target nodes' ``train/val/test_mask`` (a node in none is left out).
    """
    nt = target_type(data)
    store = data[nt]
    if target_field not in store:
        fields = [k for k in store.keys() if not k.startswith("x")]
        raise ConfigError(f"task.target: {data.meta.get('name')} {nt!r} nodes have no field "
                          f"{target_field!r}; text fields: {', '.join(fields)}")
    if input_field is not None and input_field not in store:
        raise ConfigError(f"task.input: {data.meta.get('name')} {nt!r} nodes have no field {input_field!r}")
    if "train_mask" not in store:
        raise DataError(f"{data.meta.get('name')}: the {nt!r} nodes have no split; choose one (split=grouped)")
    tables = _Tables(data)
    targets = store[target_field]
    union = "example" in store
    rels = list(data.edge_types) if union else _relations(data, relations)
    if union:
        members: dict[int, list[tuple[str, int]]] = defaultdict(list)
        for t in data.node_types:
            ex = data[t].get("example")
            if ex is None:
                continue
            for i, e in enumerate(ex.tolist()):
                members[e].append((t, i))
    adj = _adjacency(data, rels)
    examples: list[Example] = []
    empty = 0
    is_target = store.get("is_target")
    for i in range(int(store.num_nodes)):
        if is_target is not None and not bool(is_target[i]):
            continue
        split = _split_of(store, i)
        target = targets[i]
        if split is None:
            continue
        if not isinstance(target, str) or not target.strip():
            empty += 1
            continue
        if union:
            ex_id = int(store.example[i])
            nodes = [(nt, i)] + [n for n in members[ex_id] if n != (nt, i)]
        else:
            seen, nodes = {(nt, i)}, [(nt, i)]
            for n in adj.get((nt, i), ()):
                if n not in seen and len(nodes) <= max_neighbors:
                    seen.add(n)
                    nodes.append(n)
        inp = store[input_field][i] if input_field is not None else ""
        examples.append(Example(
            id=str(i), split=split, target=" ".join(target.split()), input_text=inp or "",
            items=_items(data, tables, nodes, "input", own_image), num_nodes=len(nodes),
            edge_index=_local_edges(adj, nodes), group=normalised_text(target)))
    if not examples:
        raise DataError(f"{data.meta.get('name')}: no {nt!r} node has a {target_field!r} to generate")
    meta = {"name": data.meta.get("name"), "version": data.meta.get("version"), "target": target_field,
            "input": input_field, "relations": ["/".join(r) for r in rels],
            "max_neighbors": None if union else max_neighbors, "empty_targets": empty}
    gen = GenerationSet(examples, tables.tables, meta)
    gen.meta["counts"] = gen.counts()
    gen.meta["overlap"] = overlap(gen)
    return gen


def overlap(gen: GenerationSet) -> dict[str, Any]:
    """How much of a target can be read or remembered rather than generated: per split, the
    share of examples whose (normalised) target is also a training target, and the share whose
    target is contained in one of its context texts."""
    train = {e.group for e in gen.examples if e.split == "train"}
    out = {}
    for s in ("val", "test"):
        ex = [e for e in gen.examples if e.split == s]
        if not ex:
            continue
        seen = sum(e.group in train for e in ex)
        copy = sum(any(it.text and e.group and e.group in (normalised_text(it.text) or "")
                       for it in e.items if it.modality == "text") for e in ex)
        out[s] = {"examples": len(ex), "target_in_train": round(seen / len(ex), 4),
                  "target_in_context_text": round(copy / len(ex), 4)}
    out["mean_items"] = round(float(np.mean([len(e.items) for e in gen.examples])), 2)
    return out

r"""The heterogeneous model input: every node type and relation a heterogeneous GNN sees.

:func:`homogeneous_view` keeps only the target nodes; :func:`hetero_view` keeps the graph as it
is, in the form PyG's heterogeneous layers (``RGCNConv``, ``HGTConv``, ``to_hetero``) take it:
a :class:`~torch_geometric.data.HeteroData` with ``num_nodes`` and (where there are features)
``x`` on every node type, and ``edge_index`` on every relation.

**Relations.** ``edge_types`` (names or triples) chooses among the relations *between target
nodes*, as for :func:`homogeneous_view` (a data set config's ``edge_types`` then means the same
for both kinds of model); relations that involve another node type (``has_keyword``,
``keyword_of``) are always kept, since they are what a heterogeneous model is for. A relation
``(s, r, d)`` with ``s != d`` and no relation at all from ``d`` back to ``s`` gets a reverse
``(d, "rev_" + r, s)``, so that what reaches ``d`` can flow back towards the target type.
Relations between nodes of one type are used as stored (the data sets store their undirected
relations with both directions). Node types that no kept relation touches are dropped.

**Features.** The target type's ``x`` is the model input built by
:func:`~mmgraph.data.graph.set_model_input`. Another node type uses its own ``x`` if it has
one, else the input modalities (``data.meta["input"]["modalities"]``) it has features for,
concatenated in that order; a node type with neither has no ``x`` and the model learns an
embedding per node (it needs ``num_nodes``).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch_geometric.data import HeteroData

from mmgraph.data.graph import EdgeType, target_type
from mmgraph.errors import DataError

__all__ = ["hetero_view", "REVERSE_PREFIX"]

REVERSE_PREFIX = "rev_"


def _features(data: HeteroData, node_type: str) -> torch.Tensor | None:
    store = data[node_type]
    if "x" in store and store.x is not None:
        return store.x
    chosen = data.meta.get("input", {}).get("modalities") or []
    parts = [store[f"x_{m}"] for m in chosen if f"x_{m}" in store]
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)


def hetero_view(data: HeteroData, edge_types: Sequence[EdgeType | str] | None = None,
                node_type: str | None = None, add_reverse: bool = True) -> HeteroData:
    """A :class:`HeteroData` of the node types and relations a heterogeneous GNN uses.

    Args:
        data: a graph following :mod:`mmgraph.data.graph`, with the model input ``x`` built.
        edge_types: relations between target nodes to keep (names or triples); all by default.
            Relations with another node type are always kept.
        node_type: the target node type (``data.meta["target"]`` by default).
        add_reverse: add ``rev_<relation>`` where a relation between two types has no way back.

    Returns:
        ``HeteroData`` with ``num_nodes`` and, where available, ``x`` per node type and
        ``edge_index`` per relation; the target type first among ``node_types``.
    """
    target = node_type or target_type(data)
    if target not in data.node_types:
        raise DataError(f"the graph has no node type {target!r}")
    if getattr(data[target], "x", None) is None:
        raise DataError("the graph has no model input 'x'; choose modalities with "
                        "features.modalities=[...] (mmgraph.data.set_model_input)")
    own = [et for et in data.edge_types if et[0] == target and et[2] == target]
    if edge_types is not None:
        wanted = [et if isinstance(et, str) else tuple(et) for et in edge_types]
        unknown = [w for w in wanted if not any(w == et or w == et[1] for et in data.edge_types)]
        if unknown:
            raise DataError(f"unknown relation {unknown[0]!r}; available: "
                            f"{', '.join(et[1] for et in data.edge_types) or 'none'}")
        own = [et for et in own if et in wanted or et[1] in wanted]
    kept = [et for et in data.edge_types if et in own or not et[0] == et[2] == target]
    out = HeteroData()
    used = [target] + sorted({t for et in kept for t in (et[0], et[2])} - {target})
    for nt in used:
        out[nt].num_nodes = data[nt].num_nodes
        x = _features(data, nt)
        if x is not None:
            if x.size(0) != data[nt].num_nodes:
                raise DataError(f"features of node type {nt!r} have {x.size(0)} rows for "
                                f"{data[nt].num_nodes} nodes")
            out[nt].x = x
    for et in kept:
        out[et].edge_index = data[et].edge_index
    if add_reverse:
        for s, r, d in kept:
            if s != d and not any(e[0] == d and e[2] == s for e in kept):
                name = REVERSE_PREFIX + r
                if (d, name, s) in out.edge_types:
                    raise DataError(f"cannot add the reverse of {(s, r, d)}: {(d, name, s)} exists")
                out[d, name, s].edge_index = data[s, r, d].edge_index.flip(0)
    return out

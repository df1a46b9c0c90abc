r"""DGL interop: :func:`to_dgl` and :func:`from_dgl`.

.. code-block:: python

    from mmgraph.interop import to_dgl, from_dgl

    g = to_dgl(data)            # HeteroData -> DGL heterograph; Data -> homogeneous DGLGraph
    data2 = from_dgl(g)         # and back: every tensor, node count and edge order preserved
    data3 = from_dgl(dgl.add_self_loop(g), meta=data.meta)   # a new DGL graph: pass meta

**What goes where.** ``to_dgl`` builds a graph with the same node types, canonical edge types
``(src, relation, dst)``, node counts and edges; edge ``i`` of ``data[et].edge_index`` is edge
id ``i`` of that type in DGL. Every tensor node attribute whose first dimension is the node
count (``x``, ``x_text``, ``x_image``, ``text_mask``, ``image_mask``, ``y``, ``train_mask``, ...)
becomes ``g.nodes[ntype].data[key]``, and every tensor edge attribute whose first dimension is
the edge count becomes ``g.edges[etype].data[key]``; the tensors are shared, not copied.

What DGL cannot hold in ``ndata`` / ``edata`` (the raw ``text`` and ``image`` lists, tensors of
another length, scalars, and graph-level attributes such as ``data.meta``) is kept in a plain
Python attribute of the returned graph, ``g.mmgraph``::

    {"kind": "hetero" | "homo",
     "meta": <a deep copy of data.meta, or None>,
     "node": {ntype: {key: value}},      # raw lists, other per-type values
     "edge": {canonical_etype: {key: value}},
     "graph": {key: value},              # other graph-level attributes
     "order": {...},                     # attribute order, to restore it
     "graph_id": id(g)}                  # which graph this was made for

``from_dgl(g)`` restores all of it when ``g`` is the very graph ``to_dgl`` returned. A graph
made from it by a DGL operation may carry ``g.mmgraph`` along (DGL transforms such as
``dgl.add_self_loop`` shallow-copy Python attributes) or lose it (``save_graphs`` /
``load_graphs``). Since such a graph may have other, re-ordered or fewer nodes, ``from_dgl``
then takes only ``meta`` from it (graph-level, still valid) and not the per-node raw lists;
pass ``meta=`` and ``extra=`` (the original ``g.mmgraph``) to restore them yourself, in which
case values whose length no longer matches the graph are dropped.

``from_dgl`` returns a :class:`~torch_geometric.data.HeteroData` (node and edge types named as
in DGL), or a :class:`~torch_geometric.data.Data` for a homogeneous graph (one node type and one
edge type) when ``as_data=True``; by default it returns ``Data`` exactly for graphs that came from
a ``Data`` (``kind == "homo"``) or, without ``g.mmgraph``, for graphs with DGL's default type
names ``_N`` / ``_E`` (what ``dgl.graph`` makes).

DGL is imported lazily; without it both functions raise a one-line
:class:`~mmgraph.errors.ConfigError` that says ``pip install 'mmgraph[dgl]'``.
"""
from __future__ import annotations

import copy
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData

from mmgraph.errors import ConfigError, DataError

__all__ = ["to_dgl", "from_dgl", "EXTRA_ATTR"]

#: Name of the Python attribute of a converted DGL graph that holds what ``ndata`` cannot.
EXTRA_ATTR = "mmgraph"

_INSTALL_HINT = "pip install 'mmgraph[dgl]'"


def _import_dgl():
    """``import dgl``, or a one-line :class:`ConfigError` that says how to install it."""
    try:
        import dgl
    except Exception as exc:  # noqa: BLE001 - ImportError, or a broken install (OSError, ...)
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}".rstrip(": ")
        raise ConfigError(f"DGL interop needs the dgl package, which cannot be imported ({reason}); "
                          f"install it with {_INSTALL_HINT}") from None
    return dgl


def _is_rows(value: Any, n: int) -> bool:
    return isinstance(value, Tensor) and value.dim() > 0 and value.size(0) == n


def _edge_index(value: Any, where: str, num_src: int, num_dst: int) -> Tensor:
    if not isinstance(value, Tensor) or value.dim() != 2 or value.size(0) != 2:
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise DataError(f"{where}: edge_index must be a [2, E] tensor; got {shape}")
    if value.dtype not in (torch.int64, torch.int32):
        raise DataError(f"{where}: edge_index must hold integers; got {value.dtype}")
    value = value.long()
    if value.numel():
        lo = int(value.min())
        if lo < 0 or int(value[0].max()) >= num_src or int(value[1].max()) >= num_dst:
            raise DataError(f"{where}: edge_index refers to a node outside its type "
                            f"(source nodes: {num_src}, target nodes: {num_dst})")
    return value


# ----------------------------------------------------------------------------- to DGL


def to_dgl(data: HeteroData | Data):
    """Convert a :class:`HeteroData` (or a homogeneous :class:`Data`) to a ``dgl.DGLGraph``.

    See the module docstring for what goes into ``ndata`` / ``edata`` and what is kept in
    ``g.mmgraph``. Raises :class:`~mmgraph.errors.DataError` for a graph DGL cannot represent
    (no edge type at all, unknown node counts, edge indices out of range).
    """
    dgl = _import_dgl()
    if isinstance(data, HeteroData):
        return _hetero_to_dgl(dgl, data)
    if isinstance(data, Data):
        return _homo_to_dgl(dgl, data)
    raise DataError(f"to_dgl expects a torch_geometric HeteroData or Data; got {type(data).__name__}")


def _hetero_to_dgl(dgl, data: HeteroData):
    if not data.edge_types:
        raise DataError("to_dgl: the graph has no edge type; DGL cannot hold a graph without edges "
                        "of any type")
    node_types = list(data.node_types)
    for et in data.edge_types:
        for nt in (et[0], et[2]):
            if nt not in node_types:
                node_types.append(nt)
    num_nodes: dict[str, int] = {}
    for nt in node_types:
        n = data[nt].num_nodes if nt in data.node_types else None
        if n is None:      # a type that only occurs in edge types: as many nodes as referenced
            refs = [data[et].edge_index[0 if et[0] == nt else 1] for et in data.edge_types
                    if nt in (et[0], et[2]) and "edge_index" in data[et]]
            n = max((int(r.max()) + 1 for r in refs if r.numel()), default=0)
        num_nodes[nt] = int(n)

    graph_data = {}
    for et in data.edge_types:
        store = data[et]
        if "edge_index" not in store:
            raise DataError(f"to_dgl: edge type {et} has no edge_index")
        ei = _edge_index(store.edge_index, f"edge type {et}", num_nodes[et[0]], num_nodes[et[2]])
        graph_data[tuple(et)] = (ei[0], ei[1])
    device = next(iter(graph_data.values()))[0].device
    g = dgl.heterograph(graph_data, num_nodes_dict=num_nodes, idtype=torch.int64, device=device)

    extra: dict[str, Any] = {"kind": "hetero", "meta": None, "node": {}, "edge": {}, "graph": {},
                             "order": {"node": {}, "edge": {}, "node_types": list(node_types),
                                       "edge_types": [tuple(et) for et in data.edge_types]}}
    for nt in data.node_types:
        store, n = data[nt], num_nodes[nt]
        extra["order"]["node"][nt] = list(store.keys())
        for key, value in store.items():
            if key == "num_nodes":
                continue                                   # DGL's node count
            if _is_rows(value, n):
                g.nodes[nt].data[key] = value
            else:
                extra["node"].setdefault(nt, {})[key] = value
    for et in data.edge_types:
        store, e = data[et], g.num_edges(tuple(et))
        extra["order"]["edge"][tuple(et)] = list(store.keys())
        for key, value in store.items():
            if key == "edge_index":
                continue
            if _is_rows(value, e):
                g.edges[tuple(et)].data[key] = value
            else:
                extra["edge"].setdefault(tuple(et), {})[key] = value
    _global_to_extra(data._global_store.items(), extra)
    extra["graph_id"] = id(g)
    setattr(g, EXTRA_ATTR, extra)
    return g


def _homo_to_dgl(dgl, data: Data):
    if "edge_index" in data:
        n = data.num_nodes
        if n is None:
            raise DataError("to_dgl: the Data has no num_nodes and no node attributes")
        ei = _edge_index(data.edge_index, "Data", n, n)
    else:
        raise DataError("to_dgl: the Data has no edge_index")
    n, e = int(n), ei.size(1)
    g = dgl.graph((ei[0], ei[1]), num_nodes=n, idtype=torch.int64, device=ei.device)
    nt, cet = g.ntypes[0], g.canonical_etypes[0]
    extra: dict[str, Any] = {"kind": "homo", "meta": None, "node": {}, "edge": {}, "graph": {},
                             "order": {"data": list(data.keys())}}
    rest = []
    for key, value in data.items():
        if key in ("edge_index", "num_nodes"):
            continue
        node = _is_rows(value, n) and (n != e or "edge" not in key)
        if node:
            g.ndata[key] = value
        elif _is_rows(value, e):
            g.edata[key] = value
        else:
            rest.append((key, value))
    _global_to_extra(rest, extra)
    extra["node"][nt], extra["edge"][cet] = {}, {}
    extra["graph_id"] = id(g)
    setattr(g, EXTRA_ATTR, extra)
    return g


def _global_to_extra(items, extra: dict) -> None:
    for key, value in items:
        if key == "meta":
            extra["meta"] = copy.deepcopy(value)
        else:
            extra["graph"][key] = value


# ----------------------------------------------------------------------------- from DGL


def from_dgl(g, meta: dict | None = None, *, extra: dict | None = None,
             as_data: bool | None = None) -> HeteroData | Data:
    """Convert a ``dgl.DGLGraph`` to a :class:`HeteroData` (or :class:`Data`), inverse of :func:`to_dgl`.

    Args:
        g: the DGL graph (homogeneous or heterogeneous; not a block).
        meta: ``data.meta`` of the result; by default the ``meta`` that :func:`to_dgl` kept in
            ``g.mmgraph`` (also when DGL copied that attribute to a new graph). Pass it for
            graphs that lost it (e.g. loaded with ``dgl.load_graphs``).
        extra: what :func:`to_dgl` kept besides ``ndata``/``edata`` (``g.mmgraph`` of the
            graph it returned); by default used only when ``g`` is that very graph. Values
            whose length no longer matches ``g`` are dropped.
        as_data: ``True``: return a :class:`Data` (``g`` must have one node and one edge type);
            ``False``: a :class:`HeteroData`; ``None``: see the module docstring.

    Node ``i`` of type ``t`` is node ``i`` of ``data[t]``; ``data[et].edge_index[:, i]`` is the
    edge with id ``i`` (DGL's ``g.edges(order="eid")``). Tensors are shared, not copied.
    """
    dgl = _import_dgl()
    if not isinstance(g, dgl.DGLGraph):
        raise DataError(f"from_dgl expects a dgl.DGLGraph; got {type(g).__name__}")
    if g.is_block:
        raise DataError("from_dgl: message-flow graphs (blocks) are not supported; convert the "
                        "graph they were sampled from")
    if extra is None:
        carried = getattr(g, EXTRA_ATTR, None)
        carried = carried if isinstance(carried, dict) else {}
        if carried.get("graph_id") == id(g):      # the graph to_dgl made: everything applies
            extra = carried
        else:                                     # a copy made by a DGL op, or none: meta only
            extra = {k: carried[k] for k in ("meta", "kind") if k in carried}
    if meta is None:
        meta = extra.get("meta")
    homogeneous = len(g.ntypes) == 1 and len(g.canonical_etypes) == 1
    if as_data is None:
        kind = extra.get("kind")
        as_data = kind == "homo" if kind in ("homo", "hetero") else (
            homogeneous and g.ntypes == ["_N"] and g.etypes == ["_E"])
    if as_data and not homogeneous:
        raise DataError(f"from_dgl(as_data=True) needs one node type and one edge type; the graph "
                        f"has node types {g.ntypes} and edge types {g.canonical_etypes}")
    out = _to_data(g, extra) if as_data else _to_hetero(g, extra)
    if meta is not None:
        out.meta = meta
    return out


def _edges(g, cet) -> Tensor:
    src, dst = g.edges(order="eid", etype=cet)
    return torch.stack([src.long(), dst.long()])


def _fits(value: Any, n: int) -> bool:
    """Whether a kept non-tensor value is still consistent with ``n`` rows (raw lists)."""
    if isinstance(value, (list, tuple)):
        return len(value) == n
    return True


def _ordered(items: dict[str, Any], order: list[str]) -> list[tuple[str, Any]]:
    rank = {k: i for i, k in enumerate(order)}
    return sorted(items.items(), key=lambda kv: rank.get(kv[0], len(rank)))


def _to_hetero(g, extra: dict) -> HeteroData:
    order = extra.get("order", {})
    data = HeteroData()
    node_extra, edge_extra = extra.get("node", {}), extra.get("edge", {})
    ntypes = [nt for nt in order.get("node_types", []) if nt in g.ntypes]
    ntypes += [nt for nt in g.ntypes if nt not in ntypes]
    for nt in ntypes:
        n = g.num_nodes(nt)
        items = {"num_nodes": n, **dict(g.nodes[nt].data)}
        items.update({k: v for k, v in node_extra.get(nt, {}).items() if _fits(v, n)})
        store = data[nt]
        for key, value in _ordered(items, order.get("node", {}).get(nt, ["num_nodes"])):
            store[key] = value
    etypes = [tuple(et) for et in order.get("edge_types", []) if tuple(et) in g.canonical_etypes]
    etypes += [et for et in g.canonical_etypes if et not in etypes]
    for cet in etypes:
        e = g.num_edges(cet)
        items = {"edge_index": _edges(g, cet), **dict(g.edges[cet].data)}
        items.update({k: v for k, v in edge_extra.get(cet, {}).items() if _fits(v, e)})
        store = data[cet]
        for key, value in _ordered(items, order.get("edge", {}).get(cet, ["edge_index"])):
            store[key] = value
    for key, value in extra.get("graph", {}).items():
        setattr(data, key, value)
    return data


def _to_data(g, extra: dict) -> Data:
    nt, cet = g.ntypes[0], g.canonical_etypes[0]
    n, e = g.num_nodes(), g.num_edges()
    items: dict[str, Any] = {"edge_index": _edges(g, cet)}
    items.update(dict(g.ndata))
    items.update(dict(g.edata))
    # hetero-kind extras of the single type are node/edge values; homo-kind keeps them in "graph"
    items.update({k: v for k, v in extra.get("node", {}).get(nt, {}).items() if _fits(v, n)})
    items.update({k: v for k, v in extra.get("edge", {}).get(cet, {}).items() if _fits(v, e)})
    items.update(extra.get("graph", {}))
    order = extra.get("order", {}).get("data")
    if order is None or "num_nodes" in order:    # restore an explicit node count
        items["num_nodes"] = n
    data = Data()
    for key, value in _ordered(items, order or ["edge_index", "num_nodes"]):
        data[key] = value
    return data

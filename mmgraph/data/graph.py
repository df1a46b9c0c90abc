r"""The multimodal attributed graph: conventions on top of PyG's ``HeteroData``.

Every data set in mmgraph is a :class:`torch_geometric.data.HeteroData` that follows the
conventions below, so that any model, encoder or transform can rely on them. Everything
is an ordinary ``HeteroData`` attribute, so PyG's transforms, ``subgraph`` and
``to_hetero`` keep working.

**Node types.** Each data set names its node types (``"item"``, ``"paper"``, ``"keyword"``,
...) and sets ``data[node_type].num_nodes`` explicitly. One of them is the *target* type whose nodes carry labels and splits; its name is in
``data.meta["target"]``.

**Raw attributes** (per node of a type that has them; both are :class:`RawList`, a ``list``
that also accepts index tensors and boolean masks, so ``subgraph`` can slice it):

=================  ==============================  =========================================
attribute          type                            meaning
=================  ==============================  =========================================
``text``           ``RawList[str | None]``         the node's text, ``None`` if missing
``text_mask``      ``bool [N]``                    ``True`` where the text is present
``image``          ``RawList[str | bytes | None]`` a reference: a file path (relative to
                                                   ``data.meta["image_root"]`` or absolute),
                                                   encoded image bytes, or a procedural
                                                   ``"synthetic:..."`` spec rendered on demand
                                                   by :func:`mmgraph.data.images.load_image`
``image_mask``     ``bool [N]``                    ``True`` where the image is present
=================  ==============================  =========================================

**Features.** One float tensor per modality, ``x_<modality>`` of shape ``[N, d_modality]``
(``x_text``, ``x_image``, ``x_joint``, ...). Rows of a missing modality are zero *and* the
modality mask says so; the mask, not the zeros, is the truth. ``x`` is the model input,
built from a chosen list of modalities by :func:`set_model_input` (concatenation).

**Labels and splits.** ``y`` is ``long [N]`` with ``-1`` for unlabelled nodes;
``train_mask``, ``val_mask`` and ``test_mask`` are ``bool [N]`` (see :mod:`mmgraph.data.splits`).

**Edges.** Edge types are ``(src, relation, dst)`` triples with ``edge_index`` of shape
``[2, E]``.

**Metadata.** ``data.meta`` is a plain dict:

- ``name``, ``version``: the data set and the version of its construction;
- ``target``: the target node type; ``class_names``: one name per label id;
- ``features``: for every ``x_<modality>``, ``{"encoder": ..., "dim": ..., "fingerprint": ...}``
  where the fingerprint hashes everything that produced the tensor;
- ``input``: the modalities concatenated into ``x`` and their combined fingerprint;
- ``split``: the split's name, parameters and fingerprint (set by :func:`apply_split`).

Homogeneous GNNs read :func:`homogeneous_view`, a :class:`~torch_geometric.data.Data` of the
target nodes with the chosen relations merged.
"""
from __future__ import annotations

import hashlib
import json
import warnings
from typing import Any, Iterable, Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data, HeteroData

from mmgraph.errors import DataError

EdgeType = tuple[str, str, str]


class RawList(list):
    """A ``list`` of raw per-node values (texts, image references) that PyG can slice.

    Indexing with an int or slice behaves like ``list``; indexing with an integer tensor or
    array, or a boolean mask, returns a new :class:`RawList` of the selected items.
    """

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, (int, np.integer)):
            return list.__getitem__(self, int(index))
        if isinstance(index, slice):
            return RawList(list.__getitem__(self, index))
        if isinstance(index, Tensor):
            index = index.cpu().numpy()
        index = np.asarray(index)
        if index.dtype == bool:
            if index.shape[0] != len(self):
                raise IndexError(f"boolean mask of length {index.shape[0]} for {len(self)} items")
            index = np.flatnonzero(index)
        get = list.__getitem__
        return RawList(get(self, int(i)) for i in index.reshape(-1))


def fingerprint(spec: Any) -> str:
    """A short stable hash of a JSON-serialisable description of how something was made."""
    blob = json.dumps(spec, sort_keys=True, default=str).encode()
    return hashlib.blake2b(blob, digest_size=8).hexdigest()


def tensor_digest(*tensors: Tensor | np.ndarray) -> str:
    """A short hash of the contents (dtype, shape and bytes) of tensors or arrays."""
    h = hashlib.blake2b(digest_size=8)
    for t in tensors:
        a = np.ascontiguousarray(t.detach().cpu().numpy() if isinstance(t, Tensor) else t)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


def new_graph(name: str, version: str, target: str, class_names: Sequence[str], **meta) -> HeteroData:
    """An empty graph with the metadata every mmgraph data set carries."""
    data = HeteroData()
    data.meta = {"name": name, "version": version, "target": target,
                 "class_names": list(class_names), "features": {}, **meta}
    return data


def target_type(data: HeteroData) -> str:
    return data.meta["target"]


def modalities(data: HeteroData, node_type: str | None = None) -> list[str]:
    """The modalities that have a feature tensor ``x_<modality>`` on ``node_type``."""
    store = data[node_type or target_type(data)]
    return sorted(k[2:] for k in store.keys() if k.startswith("x_"))


def feature_fingerprint(data: HeteroData, modality: str, encoder: str, spec: dict | None = None,
                        node_type: str | None = None) -> str:
    """The fingerprint :func:`add_feature` records for ``x_<modality>`` (also a cache key)."""
    return fingerprint({"dataset": data.meta["name"], "version": data.meta["version"],
                        "node_type": node_type or target_type(data), "modality": modality,
                        "encoder": encoder, "spec": spec or {}})


def add_feature(data: HeteroData, modality: str, x: Tensor, encoder: str,
                spec: dict | None = None, node_type: str | None = None,
                mask: Tensor | None = None) -> str:
    """Store ``x_<modality>`` with its provenance (``meta["features"]["x_<modality>"]`` for the
    target node type, ``["<node type>/x_<modality>"]`` for others); returns the fingerprint.

    ``spec`` describes everything that produced ``x`` besides the data set and encoder
    (preprocessing, pooling, dtype, ...). Rows that contain NaN or inf are treated as a
    missing modality: they are zeroed, the mask is cleared and a counted warning is issued.
    """
    node_type = node_type or target_type(data)
    store = data[node_type]
    n = store.num_nodes if len(store.keys()) else None
    if x.dim() != 2 or (n is not None and x.size(0) != n):
        raise DataError(f"x_{modality} must be [num_nodes={n}, dim]; got shape {tuple(x.shape)}")
    x = x.float()
    bad = ~torch.isfinite(x).all(dim=1)
    n_bad = int(bad.sum())
    if mask is None:
        mask = store[f"{modality}_mask"] if f"{modality}_mask" in store else None
    if mask is None:
        mask = torch.ones(x.size(0), dtype=torch.bool)
    if n_bad:
        warnings.warn(f"{n_bad} of {x.size(0)} rows of x_{modality} ({node_type}) contain NaN/inf; "
                      f"treated as missing {modality}", stacklevel=2)
        x = x.masked_fill(bad.unsqueeze(1), 0.0)
        mask = mask & ~bad
    store[f"x_{modality}"] = x
    store[f"{modality}_mask"] = mask.bool()
    fp = feature_fingerprint(data, modality, encoder, spec, node_type)
    key = f"x_{modality}" if node_type == target_type(data) else f"{node_type}/x_{modality}"
    data.meta["features"][key] = {"encoder": encoder, "dim": int(x.size(1)), "fingerprint": fp,
                                  "spec": spec or {}}
    return fp


def set_model_input(data: HeteroData, modalities: Iterable[str] | None = None,
                    node_type: str | None = None) -> HeteroData:
    """Build the model input ``x`` by concatenating the chosen modality features in order."""
    node_type = node_type or target_type(data)
    store = data[node_type]
    available = [k[2:] for k in store.keys() if k.startswith("x_")]
    # Default order: text first, then image, then any other modality alphabetically.
    order = {"text": 0, "image": 1}
    chosen = list(modalities) if modalities is not None else sorted(available, key=lambda m: (order.get(m, 2), m))
    if not chosen:
        raise DataError(f"no modality features on '{node_type}'; available: {sorted(available) or 'none'}")
    missing = [m for m in chosen if m not in available]
    if missing:
        raise DataError(f"modality {missing[0]!r} has no features on '{node_type}'; "
                        f"available: {', '.join(sorted(available)) or 'none'}")
    parts = [store[f"x_{m}"] for m in chosen]
    store.x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
    fps = [data.meta["features"].get(f"x_{m}", {}).get("fingerprint", "?") for m in chosen]
    data.meta["input"] = {"node_type": node_type, "modalities": chosen,
                          "fingerprint": fingerprint(fps)}
    return data


def modality_mask(data: HeteroData | Data, modalities: Sequence[str] | None = None,
                  node_type: str | None = None) -> Tensor:
    """``bool [N, M]``: column ``j`` is ``<modalities[j]>_mask`` (all ``True`` without one).

    ``data`` is a ``HeteroData`` (the ``node_type`` store, the target type by default; the
    modalities default to those of ``data.meta["input"]``) or a ``Data`` such as
    :func:`homogeneous_view` (then ``modalities`` is required). Fusion models
    (:class:`mmgraph.nn.FusionModel`) take it as ``modality_mask``, in the order of ``x``'s blocks.
    """
    if isinstance(data, HeteroData):
        if modalities is None:
            modalities = data.meta.get("input", {}).get("modalities")
        store = data[node_type or data.meta.get("input", {}).get("node_type") or target_type(data)]
    else:
        store = data
    if not modalities:
        raise DataError("no input modalities to build a modality mask from; call set_model_input first")
    n = store.num_nodes
    cols = []
    for m in modalities:
        mask = getattr(store, f"{m}_mask", None) if f"{m}_mask" in store else None
        cols.append(torch.ones(n, dtype=torch.bool) if mask is None else mask.bool().view(-1))
    return torch.stack(cols, dim=1)


def relations(data: HeteroData, node_type: str | None = None) -> list[EdgeType]:
    """Edge types whose source and destination are both ``node_type``."""
    node_type = node_type or target_type(data)
    return [et for et in data.edge_types if et[0] == node_type and et[2] == node_type]


def is_coalesced(edge_index: Tensor, num_nodes: int, chunk: int = 1 << 20) -> bool:
    """Whether ``edge_index`` is sorted by (source, target) without duplicates, i.e. already
    what :func:`torch_geometric.utils.coalesce` returns. Checked in chunks, so a 10M-edge graph
    needs a few MiB of scratch rather than a sorted copy."""
    m = edge_index.size(1)
    for start in range(0, m, chunk):
        part = edge_index[:, start:min(start + chunk + 1, m)]  # one edge of overlap
        key = part[0].long() * num_nodes + part[1]  # int64: no overflow for int32 indices
        if not bool((key[1:] > key[:-1]).all()):
            return False
    return True


def homogeneous_view(data: HeteroData, edge_types: Sequence[EdgeType | str] | None = None,
                     node_type: str | None = None) -> Data:
    """A homogeneous :class:`Data` of the target nodes for homogeneous GNNs.

    Relations between target nodes are merged (duplicate edges removed). ``edge_types``
    selects relations by triple or by relation name; by default all of them are used.
    Tensor node attributes (features, masks, labels) are carried over; raw lists are not.
    """
    from torch_geometric.utils import coalesce

    node_type = node_type or target_type(data)
    store = data[node_type]
    candidates = relations(data, node_type)
    if edge_types is not None:
        wanted = [et if isinstance(et, str) else tuple(et) for et in edge_types]
        chosen = [et for et in candidates if et in wanted or et[1] in wanted]
        unknown = [w for w in wanted if not any(w == et or w == et[1] for et in candidates)]
        if unknown:
            raise DataError(f"unknown relation {unknown[0]!r} for '{node_type}'; "
                            f"available: {', '.join(et[1] for et in candidates) or 'none'}")
    else:
        chosen = candidates
    n = store.num_nodes
    if len(chosen) == 1 and is_coalesced(data[chosen[0]].edge_index, n):
        edge_index = data[chosen[0]].edge_index  # shared, not copied: already what coalesce makes
    elif chosen:
        edge_index = torch.cat([data[et].edge_index for et in chosen], dim=1)
        edge_index = coalesce(edge_index, num_nodes=n)
    else:
        edge_index = torch.empty(2, 0, dtype=torch.long)
    out = Data(edge_index=edge_index, num_nodes=n)
    for key, value in store.items():
        if isinstance(value, Tensor) and value.dim() > 0 and value.size(0) == n:
            out[key] = value
    return out


def split_indices(data: HeteroData | Data, node_type: str | None = None) -> dict[str, Tensor]:
    """The node indices of each split as ``{"train": ..., "val": ..., "test": ...}``."""
    store = data if isinstance(data, Data) else data[node_type or target_type(data)]
    out = {}
    for split in ("train", "val", "test"):
        mask = getattr(store, f"{split}_mask", None)
        if mask is None:
            raise DataError("the graph has no split masks; apply a split (mmgraph.data.splits) first")
        out[split] = mask.nonzero().view(-1)
    return out

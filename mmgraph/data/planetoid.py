"""Planetoid citation graphs (Cora, CiteSeer, PubMed) as multimodal graphs with one modality.

The node features are the papers' bag-of-words vectors, stored as the ``text`` modality
(``x_text``); the raw text itself is not part of the Planetoid files. The split is
Planetoid's public one (20 labelled nodes per class, 500 validation, 1,000 test nodes).
Files are read from ``<root>/<name>/raw/ind.<name>.*`` and downloaded there when missing
(which needs internet access).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch

from mmgraph.data.graph import add_feature, new_graph, tensor_digest
from mmgraph.data.splits import apply_split
from mmgraph.errors import DataError

_NAMES = {"cora": "Cora", "citeseer": "CiteSeer", "pubmed": "PubMed"}
_SUFFIXES = ("x", "tx", "allx", "y", "ty", "ally", "graph", "test.index")


def load_planetoid(name: str = "Cora", root: str | Path = "datasets", normalize_features: bool = True):
    """Load a Planetoid data set as a :class:`~torch_geometric.data.HeteroData`.

    Args:
        name: ``Cora``, ``CiteSeer`` or ``PubMed`` (case-insensitive).
        root: data root; raw files live in ``<root>/<name>/raw``.
        normalize_features: divide each bag-of-words row by its sum (Kipf & Welling's setup).

    Returns:
        A graph with node type ``paper`` and relation ``(paper, cites, paper)``.
    """
    from torch_geometric.datasets import Planetoid

    key = name.lower()
    if key not in _NAMES:
        raise DataError(f"unknown Planetoid data set {name!r}; choose one of: {', '.join(_NAMES.values())}")
    name = _NAMES[key]
    root = Path(root).expanduser()
    raw = root / name / "raw"
    missing = [s for s in _SUFFIXES if not (raw / f"ind.{key}.{s}").is_file()]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = Planetoid(str(root), name, split="public")
    except (OSError, ValueError) as exc:  # URLError is an OSError
        if missing:
            raise DataError(f"{name} raw files missing in {raw} (e.g. ind.{key}.{missing[0]}) and the "
                            f"download failed ({type(exc).__name__}); copy the Planetoid files there "
                            f"or set MMGRAPH_DATA / paths.data_root") from exc
        raise DataError(f"cannot read {name} from {raw}: {exc}".splitlines()[0]) from exc
    except Exception as exc:  # unpickling errors of corrupt files come in many types
        raise DataError(f"cannot read {name} from {raw} (corrupt file?): {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}; delete {root / name} and retry") from exc
    g = dataset[0]
    num_classes = int(g.y.max()) + 1
    raw_digest = tensor_digest(g.x, g.edge_index, g.y)
    data = new_graph(name.lower(), "planetoid-public", "paper",
                     [f"class_{i}" for i in range(num_classes)], source=f"Planetoid {name} raw files")
    data["paper"].num_nodes = g.num_nodes
    data["paper"].y = g.y
    x = g.x
    if normalize_features:
        x = x / x.sum(dim=1, keepdim=True).clamp(min=1)
    add_feature(data, "text", x, encoder="planetoid-bag-of-words",
                spec={"raw": raw_digest, "normalize": normalize_features})
    data["paper", "cites", "paper"].edge_index = g.edge_index
    index = torch.arange(g.num_nodes)
    apply_split(data, index[g.train_mask], index[g.val_mask], index[g.test_mask], name="public",
                params={"source": "planetoid", "train_per_class": 20, "val": 500, "test": 1000})
    return data

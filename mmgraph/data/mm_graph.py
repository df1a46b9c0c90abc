"""MM-GRAPH's data sets (Zhu et al., arXiv 2406.16321) as multimodal graphs.

The files come from the Hugging Face dataset repository ``mm-graph-org/mm-graph`` and are
kept under ``<root>/mm_graph/`` with the Hub's own layout, so a manual download of the Hub
folders works as is::

    <root>/mm_graph/ele-fashion/{nc_edges-nodeid,labels-w-missing,split,node_mapping}.pt
    <root>/mm_graph/ele-fashion/{clip,imagebind,t5vit,t5dino}_feat.pt
    <root>/mm_graph/sports-copurchase/lp-edge-split.pt   (+ the feature files, node_mapping.pt)
    <root>/mm_graph/raw-data/<prefix>-raw-text.jsonl, <prefix>-images.tar

Only the files a call needs are fetched (``huggingface_hub.hf_hub_download``, which resumes
partial downloads). What each file holds, as read by MM-GRAPH's own loaders
(``nc/nc_dataset.py``, ``lp/lp_dataset.py`` of github.com/mm-graph-benchmark/mm-graph-benchmark):

- ``nc_edges-nodeid.pt``: pairs of node ids, ``[E, 2]`` (a plain pickled list; tensors and
  ``[2, E]`` are accepted too);
- ``labels-w-missing.pt``: ``[N]`` integer labels, ``-1`` = unlabelled;
- ``split.pt``: ``{"train_idx", "val_idx", "test_idx"}`` node index lists;
- ``lp-edge-split.pt``: ``{"train": {"source_node", "target_node"}, "valid"/"test":
  {"source_node", "target_node", "target_node_neg"}}``, long tensors ``[P]`` and
  ``target_node_neg [P, K]`` (K corrupted targets per positive pair, OGB-citation2 style);
- ``<feature>_feat.pt``: float tensor ``[N, 2d]``, the text embedding in the first half of the
  columns and the image embedding in the second (MM-GRAPH's MMGCN/MGAT baselines split it so);
- ``node_mapping.pt``: the 1-1 map between node ids and raw ids (file names in the image tar,
  ids in the raw-text JSONL).

Mapping to mmgraph's conventions (see :mod:`mmgraph.data.graph`):

- one node type (``product`` for the Amazon sets, ``book`` for Goodreads), the target type;
- one relation, stored undirected (both directions, self-loops dropped, duplicates merged):
  ``co_purchased`` for sports/cloth-copurchase, ``linked`` for ele-fashion and the book sets;
- ``x_text`` / ``x_image`` from the two halves of ``<feature>_feat.pt`` with encoder
  ``mm-graph:<feature>``; a row of zeros marks the modality missing for that node;
- node classification: ``y`` (``-1`` unlabelled) and MM-GRAPH's split from ``split.pt``
  (``meta["split"]["name"] == "mm-graph"``; configs use ``split: {name: given}`` to keep it);
- link prediction: message-passing ``edge_index`` = the *training* edges only, and on the same
  edge store the published evaluation edges: ``train_pos [2, E_train]``, ``val_pos [2, P_val]``,
  ``val_neg [P_val, K]``, ``test_pos [2, P_test]``, ``test_neg [P_test, K]`` (``*_neg[i]`` are
  the K corrupted targets ranked against ``*_pos[:, i]``, keeping its source); a summary is in
  ``data.meta["lp_split"]``;
- raw text (``text`` / ``text_mask``) from ``raw-data/<prefix>-raw-text.jsonl`` and images
  (``image`` / ``image_mask``, paths relative to ``data.meta["image_root"]``) from
  ``raw-data/<prefix>-images.tar``, extracted once, atomically, on first need.
"""
from __future__ import annotations

import json
import os
import shutil
import tarfile
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mmgraph.data.graph import RawList, add_feature, new_graph, tensor_digest
from mmgraph.data.splits import apply_split
from mmgraph.errors import ConfigError, DataError

__all__ = ["load_mm_graph", "DATASETS", "FEATURES", "REPO_ID"]

REPO_ID = "mm-graph-org/mm-graph"
HUB_URL = f"https://huggingface.co/datasets/{REPO_ID}"
VERSION = "mm-graph-hub-1"

#: MM-GRAPH's precomputed feature sets: ``<name>_feat.pt`` = [text | image] embeddings.
FEATURES = ("clip", "imagebind", "t5vit", "t5dino")
_IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"}


@dataclass(frozen=True)
class _Spec:
    folder: str        # folder on the Hub (and under <root>/mm_graph)
    task: str          # "node_classification" or "link_prediction"
    node_type: str
    relation: str
    raw_prefix: str    # raw-data/<raw_prefix>-raw-text.jsonl, raw-data/<raw_prefix>-images.tar
    config_name: str   # mmgraph data set name (configs/dataset/<config_name>.yaml)


#: The supported data sets, by MM-GRAPH's folder name.
DATASETS: dict[str, _Spec] = {
    "ele-fashion": _Spec("ele-fashion", "node_classification", "product", "linked",
                         "ele-fashion", "mmg_ele_fashion"),
    "books-nc": _Spec("books-nc", "node_classification", "book", "linked",
                      "books-nc", "mmg_books_nc"),
    "sports-copurchase": _Spec("sports-copurchase", "link_prediction", "product", "co_purchased",
                               "sports", "mmg_sports_copurchase"),
    "cloth-copurchase": _Spec("cloth-copurchase", "link_prediction", "product", "co_purchased",
                              "cloth", "mmg_cloth_copurchase"),
    "books-lp": _Spec("books-lp", "link_prediction", "book", "linked",
                      "books-lp", "mmg_books_lp"),
}


def _first_line(exc: BaseException, limit: int = 200) -> str:
    text = str(exc).strip()
    line = text.splitlines()[0] if text else ""
    line = line[:limit] + ("..." if len(line) > limit else "")
    return f"{type(exc).__name__}: {line}" if line else type(exc).__name__


# --------------------------------------------------------------------------- files


def _fetch(base: Path, rel: str, download: bool) -> Path:
    """The local path of Hub file ``rel`` under ``base``, downloading it if allowed."""
    path = base / rel
    if path.is_file():
        return path
    fix = (f"copy it from {HUB_URL} to {path}, or set MMGRAPH_DATA / paths.data_root to a "
           f"root that has mm_graph/{rel}")
    if not download:
        raise DataError(f"MM-GRAPH file {rel} not found in {base} (download=false); {fix}")
    try:
        import huggingface_hub
        got = huggingface_hub.hf_hub_download(repo_id=REPO_ID, repo_type="dataset",
                                              filename=rel, local_dir=str(base))
    except Exception as exc:  # offline, HTTP errors, disk full, missing package ...
        raise DataError(f"MM-GRAPH file {rel} not found in {base} and downloading it from "
                        f"the Hub dataset {REPO_ID} failed ({_first_line(exc)}); be online, "
                        f"or {fix}") from exc
    got = Path(got)
    if got.is_file() and got.resolve() != path.resolve():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(got, path)
    if not path.is_file():
        raise DataError(f"downloading MM-GRAPH file {rel} reported success but {path} is "
                        f"missing; {fix}")
    return path


def _load_pt(path: Path, allow_pickle: bool) -> Any:
    """``torch.load`` with ``weights_only=True``; a file that pickles other classes (whose
    unpickling can run any code) is refused unless ``allow_pickle``."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        unsupported = [line.strip() for line in str(exc).splitlines()
                       if "Unsupported global" in line]
        if not unsupported:
            raise DataError(f"cannot read MM-GRAPH file {path} (corrupt or truncated?): "
                            f"{_first_line(exc)}; delete it and load again to re-download") from exc
        reason = unsupported[0].split("Unsupported global:")[-1].split(" was not")[0].strip()
        if not allow_pickle:
            raise DataError(f"{path} pickles {reason.removeprefix('GLOBAL ')}, which "
                            f"torch.load(weights_only=True) refuses: unpickling it could run any "
                            f"code the file holds; if you trust the file (e.g. it came from "
                            f"{HUB_URL}), set allow_pickle=True (override: "
                            f"dataset.loader.allow_pickle=true)") from exc
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise DataError(f"cannot read MM-GRAPH file {path} (corrupt or truncated?): "
                        f"{_first_line(exc)}; delete it and load again to re-download") from exc


def _as_long(value: Any, what: str) -> Tensor:
    try:
        if isinstance(value, Tensor):
            t = value
        else:
            t = torch.as_tensor(np.asarray(value))
    except Exception as exc:
        raise DataError(f"{what} is not an integer array: {_first_line(exc)}") from exc
    if t.is_floating_point() or t.dtype == torch.bool:
        raise DataError(f"{what} must hold integers; got dtype {t.dtype}")
    return t.long()


def _cheap_digest(path: Path, x: Tensor) -> str:
    """File size plus a hash of up to 256 evenly spaced rows (hashing GBs would be slow)."""
    rows = torch.linspace(0, max(x.size(0) - 1, 0), steps=min(256, x.size(0))).long()
    return f"{path.stat().st_size}-{tensor_digest(x[rows])}"


# --------------------------------------------------------------------------- structure


def _undirected(edge_index: Tensor, num_nodes: int) -> tuple[Tensor, int]:
    from torch_geometric.utils import coalesce

    loops = edge_index[0] == edge_index[1]
    edge_index = edge_index[:, ~loops]
    both = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    return coalesce(both, num_nodes=num_nodes), int(loops.sum())


def _edge_pairs(obj: Any, path: Path) -> Tensor:
    e = _as_long(obj, f"edge list {path.name}")
    if e.dim() != 2 or 2 not in e.shape:
        raise DataError(f"{path} must hold [E, 2] node id pairs; got shape {tuple(e.shape)}")
    return e.t().contiguous() if e.size(1) == 2 else e


def _check_range(index: Tensor, n: int, what: str) -> None:
    if index.numel() and (int(index.min()) < 0 or int(index.max()) >= n):
        raise DataError(f"{what} has node ids outside [0, {n}); got range "
                        f"[{int(index.min())}, {int(index.max())}] (files from different versions?)")


def _lp_split(obj: Any, path: Path) -> dict[str, Tensor]:
    if not isinstance(obj, dict):
        raise DataError(f"{path} must hold a dict with train/valid/test; got {type(obj).__name__}")
    need = {"train": ("source_node", "target_node"),
            "valid": ("source_node", "target_node", "target_node_neg"),
            "test": ("source_node", "target_node", "target_node_neg")}
    out: dict[str, Tensor] = {}
    for part, keys in need.items():
        entry = obj.get(part)
        if not isinstance(entry, dict) or any(k not in entry for k in keys):
            have = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
            raise DataError(f"{path}: '{part}' must have keys {', '.join(keys)}; got {have}")
        src = _as_long(entry["source_node"], f"{path.name} {part}.source_node").view(-1)
        dst = _as_long(entry["target_node"], f"{path.name} {part}.target_node").view(-1)
        if src.numel() != dst.numel():
            raise DataError(f"{path}: {part} has {src.numel()} sources but {dst.numel()} targets")
        name = {"train": "train", "valid": "val", "test": "test"}[part]
        out[f"{name}_pos"] = torch.stack([src, dst])
        if "target_node_neg" in keys:
            neg = _as_long(entry["target_node_neg"], f"{path.name} {part}.target_node_neg")
            if neg.dim() == 1:
                neg = neg.view(-1, 1)
            if neg.size(0) != src.numel():
                raise DataError(f"{path}: {part}.target_node_neg has {neg.size(0)} rows for "
                                f"{src.numel()} positive pairs")
            out[f"{name}_neg"] = neg
    return out


# --------------------------------------------------------------------------- raw ids, text, images


def _raw_ids(obj: Any, n: int, path: Path) -> list[str | None]:
    """Node index -> raw id (as a string) from ``node_mapping.pt``, whichever way it maps."""
    ids: list[str | None] = [None] * n

    def as_index(v) -> int | None:
        if isinstance(v, (bool, np.bool_)):
            return None
        if isinstance(v, (int, np.integer)):
            return int(v)
        if isinstance(v, Tensor) and v.numel() == 1 and not v.is_floating_point():
            return int(v)
        return None

    if isinstance(obj, dict):
        items = list(obj.items())
        keys_idx = [as_index(k) for k, _ in items]
        vals_idx = [as_index(v) for _, v in items]

        def node_ids(values: list[int | None]) -> bool:  # distinct ids, all in [0, n)
            return (all(v is not None and 0 <= v < n for v in values)
                    and len(set(values)) == len(values))

        vals_are_nodes, keys_are_nodes = node_ids(vals_idx), node_ids(keys_idx)
        if vals_are_nodes:          # raw id -> node index (the usual direction)
            pairs = [(v, k) for (k, _), v in zip(items, vals_idx)]
        elif keys_are_nodes:        # node index -> raw id
            pairs = [(k, v) for k, (_, v) in zip(keys_idx, items)]
        else:
            raise DataError(f"{path}: cannot tell the direction of the node mapping (neither its "
                            f"keys nor its values are distinct node ids in [0, {n}))")
    elif isinstance(obj, (list, tuple)):
        pairs = list(enumerate(obj))
    else:
        raise DataError(f"{path} must hold a dict or list; got {type(obj).__name__}")
    for node, raw in pairs:
        if 0 <= node < n:
            ids[node] = str(raw.item() if isinstance(raw, Tensor) else raw)
    return ids


def _pick_naming(keys: set[str], raw_ids: list[str | None] | None,
                 n: int) -> tuple[str, list[str | None]]:
    """Whether raw files are named by raw id or by node index: whichever matches more nodes."""
    by_index = [str(i) for i in range(n)]
    if raw_ids is None:
        return "node_index", by_index
    hits_raw = sum(1 for r in raw_ids if r is not None and r in keys)
    hits_idx = sum(1 for r in by_index if r in keys)
    return ("raw_id", raw_ids) if hits_raw >= hits_idx else ("node_index", by_index)


_TEXT_ID_KEYS = ("id", "asin", "node_id", "book_id", "item_id")


def _record_text(rec: dict) -> str | None:
    for key in ("raw_text", "text"):
        if key in rec and rec[key] is not None:
            value = rec[key]
            break
    else:
        value = [rec[k] for k in ("title", "description") if rec.get(k)]
    if isinstance(value, (list, tuple)):
        value = " ".join(str(v) for v in value if v is not None)
    value = str(value).strip()
    return value or None


def _read_text(path: Path, raw_ids: list[str | None] | None, n: int) -> tuple[RawList, dict]:
    records: list[tuple[str | None, str | None]] = []
    try:
        with open(path, encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.strip()
                if not line:
                    continue
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError(f"line {lineno} is not a JSON object")
                key = next((k for k in _TEXT_ID_KEYS if k in rec), None)
                records.append((None if key is None else str(rec[key]), _record_text(rec)))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"cannot read MM-GRAPH raw text {path} (corrupt or truncated?): "
                        f"{_first_line(exc)}; delete it and load again to re-download") from exc
    texts: list[str | None] = [None] * n
    if records and all(rid is None for rid, _ in records):
        if len(records) != n:
            raise DataError(f"{path}: records carry no id field ({', '.join(_TEXT_ID_KEYS)}) and "
                            f"their number ({len(records)}) differs from the {n} nodes")
        naming = "line_order"
        for i, (_, t) in enumerate(records):
            texts[i] = t
    else:
        by_id = {rid: t for rid, t in records if rid is not None}
        naming, node_keys = _pick_naming(set(by_id), raw_ids, n)
        for i, key in enumerate(node_keys):
            if key is not None:
                texts[i] = by_id.get(key)
    return RawList(texts), {"file": path.name, "matched_by": naming,
                            "records": len(records), "present": sum(t is not None for t in texts)}


def _extract_images(tar_path: Path, dest: Path) -> None:
    """Extract the image files of ``tar_path`` into ``dest`` once (temp folder + rename)."""
    if dest.is_dir():
        return
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    try:
        with tarfile.open(tar_path, "r:*") as tar:
            for member in tar:
                if not member.isfile() or Path(member.name).suffix.lower() not in _IMAGE_EXTS:
                    continue
                try:
                    tar.extract(member, tmp, filter="data")
                except tarfile.FilterError as exc:  # absolute or escaping paths: skip
                    warnings.warn(f"skipped unsafe member of {tar_path.name}: {_first_line(exc)}",
                                  stacklevel=3)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():   # a concurrent loader finishing first is fine
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except (tarfile.TarError, OSError, EOFError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise DataError(f"cannot extract MM-GRAPH images from {tar_path} into {dest} "
                        f"({_first_line(exc)}); delete the tar to re-download, or check the "
                        f"free disk space") from exc


def _index_images(folder: Path) -> dict[str, str]:
    index: dict[str, str] = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.suffix.lower() in _IMAGE_EXTS:
            index.setdefault(p.stem, p.relative_to(folder).as_posix())
    return index


# --------------------------------------------------------------------------- loader


def load_mm_graph(name: str, root: str | Path = "datasets", download: bool = True,
                  feature: str | None = "clip", split: str | None = None,
                  text: bool | None = None, images: bool = False, allow_pickle: bool = False):
    """Load an MM-GRAPH data set as a :class:`~torch_geometric.data.HeteroData`.

    Args:
        name: ``ele-fashion`` or ``books-nc`` (node classification), ``sports-copurchase``,
            ``cloth-copurchase`` or ``books-lp`` (link prediction).
        root: data root; files live in ``<root>/mm_graph/`` with the Hub's layout.
        download: fetch missing files from the Hub (only those this call needs).
        feature: MM-GRAPH feature set to store as ``x_text``/``x_image``: ``clip``,
            ``imagebind``, ``t5vit`` or ``t5dino``; ``None`` for no features.
        split: link prediction only. ``None`` reads the published ``lp-edge-split.pt`` (the one
            file on the Hub); ``"random"`` or ``"hard"`` read ``lp-edge-split-<split>.pt``, the
            names of MM-GRAPH's README, which must then be present locally (or on the Hub).
        text: load the raw text (``raw-data/<prefix>-raw-text.jsonl``): ``True`` always
            (downloading it), ``False`` never, ``None`` only if the file is already local.
        images: attach image references, downloading ``raw-data/<prefix>-images.tar`` and
            extracting it once into ``raw-data/<prefix>-images/`` (``meta["image_root"]``).
        allow_pickle: load ``.pt`` files that pickle classes other than tensors and plain
            containers with ``torch.load(weights_only=False)``, which runs whatever code the
            file holds: only for files you trust. Off: such a file raises a DataError naming
            what it pickles.

    Returns:
        A graph with one node type (``product`` or ``book``) and one undirected relation;
        see the module docstring for every attribute.

    Raises:
        ConfigError: unknown data set, feature set or split kind.
        DataError: a file is missing (and cannot be downloaded), corrupt, inconsistent, or
            pickles other classes while ``allow_pickle`` is off.
    """
    key = str(name).strip().lower().replace("_", "-")
    if key not in DATASETS:
        raise ConfigError(f"unknown MM-GRAPH data set {name!r}; choose one of: "
                          f"{', '.join(DATASETS)}")
    spec = DATASETS[key]
    if feature is not None and feature not in FEATURES:
        raise ConfigError(f"unknown MM-GRAPH feature set {feature!r}; choose one of: "
                          f"{', '.join(FEATURES)} (or null for none)")
    lp = spec.task == "link_prediction"
    if split is not None and not lp:
        raise ConfigError(f"split={split!r} is for MM-GRAPH's link-prediction sets; {key} "
                          f"ships its node split in split.pt")
    if split is not None and split not in ("random", "hard"):
        raise ConfigError(f"unknown MM-GRAPH edge split {split!r}; choose random, hard or null "
                          f"(the published lp-edge-split.pt)")

    base = Path(root).expanduser() / "mm_graph"
    folder = spec.folder
    raw_text_rel = f"raw-data/{spec.raw_prefix}-raw-text.jsonl"
    tar_rel = f"raw-data/{spec.raw_prefix}-images.tar"
    image_dir = base / "raw-data" / f"{spec.raw_prefix}-images"
    want_text = bool(text) or (text is None and (base / raw_text_rel).is_file())

    # Every needed file first, so that a missing one fails before any heavy loading.
    needed: dict[str, str] = {}
    if lp:
        needed["split"] = f"{folder}/lp-edge-split{'' if split is None else '-' + split}.pt"
    else:
        needed.update(edges=f"{folder}/nc_edges-nodeid.pt",
                      labels=f"{folder}/labels-w-missing.pt", split=f"{folder}/split.pt")
    if feature is not None:
        needed["feature"] = f"{folder}/{feature}_feat.pt"
    if want_text or images:
        needed["mapping"] = f"{folder}/node_mapping.pt"
    if want_text:
        needed["text"] = raw_text_rel
    if images and not image_dir.is_dir():
        needed["images"] = tar_rel
    paths = {k: _fetch(base, rel, download) for k, rel in needed.items()}

    # Node count: the feature rows (as MM-GRAPH does), else the labels or the largest id.
    x = _load_pt(paths["feature"], allow_pickle) if feature is not None else None
    if x is not None and (not isinstance(x, Tensor) or x.dim() != 2 or x.size(1) % 2):
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise DataError(f"{paths['feature']} must hold a [N, 2d] tensor (text | image); "
                        f"got {shape}")

    data = new_graph(spec.config_name, VERSION, spec.node_type, [],
                     source=f"{HUB_URL} ({folder})", task=spec.task,
                     mm_graph={"name": key, "files": dict(needed), "feature": feature,
                               "relation": spec.relation})
    nt = spec.node_type
    et = (nt, spec.relation, nt)

    if lp:
        parts = _lp_split(_load_pt(paths["split"], allow_pickle), paths["split"])
        if x is not None:
            n = x.size(0)
        else:
            n = 1 + max(int(t.max()) for t in parts.values() if t.numel())
        for k, t in parts.items():
            _check_range(t, n, f"{needed['split']} {k}")
        data[nt].num_nodes = n
        edge_index, loops = _undirected(parts["train_pos"], n)
        data[et].edge_index = edge_index
        for k, t in parts.items():
            data[et][k] = t
        data.meta["lp_split"] = {
            "name": "mm-graph" if split is None else f"mm-graph-{split}",
            "file": needed["split"], "edge_type": list(et),
            "sizes": {k: int(parts[f"{k}_pos"].size(1)) for k in ("train", "val", "test")},
            "num_neg": int(parts["val_neg"].size(1)),
            "message_passing": "train edges, both directions, self-loops dropped",
            "self_loops_dropped": loops,
            "fingerprint": tensor_digest(*(parts[k] for k in sorted(parts))),
        }
    else:
        labels = _load_pt(paths["labels"], allow_pickle)
        labels = _as_long(labels, f"labels {needed['labels']}").view(-1)
        n = x.size(0) if x is not None else labels.numel()
        if labels.numel() != n:
            raise DataError(f"{needed['labels']} has {labels.numel()} labels but "
                            f"{needed.get('feature', 'the features')} has {n} rows")
        pairs = _edge_pairs(_load_pt(paths["edges"], allow_pickle), paths["edges"])
        _check_range(pairs, n, needed["edges"])
        labels = labels.masked_fill(labels < 0, -1)
        num_classes = int(labels.max()) + 1 if (labels >= 0).any() else 0
        data.meta["class_names"] = [f"class_{i}" for i in range(num_classes)]
        data[nt].num_nodes = n
        data[nt].y = labels
        edge_index, loops = _undirected(pairs, n)
        data[et].edge_index = edge_index
        data.meta["mm_graph"].update(raw_edges=int(pairs.size(1)), self_loops_dropped=loops)
        split_obj = _load_pt(paths["split"], allow_pickle)
        names = ("train_idx", "val_idx", "test_idx")
        if not isinstance(split_obj, dict) or any(k not in split_obj for k in names):
            have = (sorted(map(str, split_obj)) if isinstance(split_obj, dict)
                    else type(split_obj).__name__)
            raise DataError(f"{paths['split']} must hold a dict with {', '.join(names)}; "
                            f"got {have}")
        idx = [_as_long(split_obj[k], f"{needed['split']} {k}").view(-1) for k in names]
        for k, t in zip(names, idx):
            _check_range(t, n, f"{needed['split']} {k}")
        apply_split(data, *idx, name="mm-graph",
                    params={"file": needed["split"],
                            "unlabelled": {s: int((labels[t] < 0).sum())
                                           for s, t in zip(("train", "val", "test"), idx)}},
                    node_type=nt)

    if x is not None:
        d = x.size(1) // 2
        digest = _cheap_digest(paths["feature"], x)
        for modality, cols in (("text", (0, d)), ("image", (d, 2 * d))):
            part = x[:, cols[0]:cols[1]].float().contiguous()
            add_feature(data, modality, part, encoder=f"mm-graph:{feature}", node_type=nt,
                        mask=(part != 0).any(dim=1),
                        spec={"file": needed["feature"], "columns": list(cols),
                              "shape": list(x.shape), "digest": digest})
        del x

    raw_ids = None
    if "mapping" in paths:
        raw_ids = _raw_ids(_load_pt(paths["mapping"], allow_pickle), n, paths["mapping"])
    if want_text:
        texts, info = _read_text(paths["text"], raw_ids, n)
        data[nt].text = texts
        data[nt].text_mask = torch.tensor([t is not None for t in texts], dtype=torch.bool)
        data.meta["mm_graph"]["text"] = info
    if images:
        if not image_dir.is_dir():
            _extract_images(paths["images"], image_dir)
        index = _index_images(image_dir)
        naming, node_keys = _pick_naming(set(index), raw_ids, n)
        refs = RawList(index.get(k) if k is not None else None for k in node_keys)
        data[nt].image = refs
        data[nt].image_mask = torch.tensor([r is not None for r in refs], dtype=torch.bool)
        data.meta["image_root"] = str(image_dir)
        data.meta["mm_graph"]["images"] = {"folder": str(image_dir), "matched_by": naming,
                                           "files": len(index),
                                           "present": sum(r is not None for r in refs)}
    return data

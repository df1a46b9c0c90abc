"""Computing node features from raw text and images, batched, cached and resumable.

:func:`encode_nodes` encodes one modality of one node type:

1. items are read from ``data[node_type].text`` / ``.image``; empty texts and absent images
   are missing (counted warning, ``<modality>_mask`` cleared);
2. identical items (the same text, the same image reference) are encoded once;
3. the rows of a :class:`~mmgraph.features.cache.FeatureCache` entry keyed by the feature
   fingerprint (data set, version, node type, modality, encoder spec, storage dtype, and a digest
   of the items) are loaded if the entry is complete, so a second run takes milliseconds;
4. otherwise the extraction loop (:func:`mmgraph.features.loop.encode_items`) encodes them:
   texts batched by similar token length (little padding), images decoded and preprocessed in
   worker processes while the model runs, every finished batch saved in the entry, so a killed
   run resumes and Ctrl-C ends with :class:`~mmgraph.features.loop.Interrupted`. Under torchrun
   the processes share the batches (:mod:`mmgraph.features.sharded`);
5. the result is stored as ``x_<modality>`` with :func:`mmgraph.data.graph.add_feature`.

Images that cannot be read (missing file, corrupt data) become missing with one counted warning
naming the first failure.
"""
from __future__ import annotations

import hashlib
import logging
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch_geometric.data import HeteroData

from mmgraph import distributed
from mmgraph.checks import choice, integer
from mmgraph.data.graph import add_feature, feature_fingerprint, target_type
from mmgraph.errors import ConfigError, DataError
from mmgraph.features.cache import STORAGE, FeatureCache
from mmgraph.features.encoders import Encoder, get_encoder
from mmgraph.features.loop import Items, encode_items, item_order
from mmgraph.features.sharded import encode_sharded

__all__ = ["encode_nodes", "attach_features", "FeatureResult", "default_cache_dir"]

log = logging.getLogger(__name__)

MODALITIES = ("text", "image", "joint")


@dataclass
class FeatureResult:
    """What :func:`encode_nodes` did: the features, where they live and how long it took."""

    modality: str
    encoder: str
    x: torch.Tensor
    mask: torch.Tensor
    fingerprint: str
    cache: Path | None
    from_cache: bool
    num_items: int
    num_unique: int
    seconds: float
    missing: int
    unreadable: int = 0
    spec: dict = field(default_factory=dict)

    @property
    def items_per_second(self) -> float:
        return self.num_unique / self.seconds if self.seconds > 0 else float("inf")


def default_cache_dir() -> Path:
    from mmgraph.paths import default_data_root

    return default_data_root() / "features"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:60] or "encoder"


def _image_key(ref: Any) -> str:
    if isinstance(ref, (bytes, bytearray, memoryview)):
        return "bytes:" + hashlib.sha1(bytes(ref)).hexdigest()
    return str(ref)


def encode_nodes(data: HeteroData, modality: str, encoder: str | Encoder, *,
                 node_type: str | None = None, cache_dir: str | Path | None = None,
                 storage: str = "float32", batch_size: int | None = None, num_workers: int = 2,
                 device: str | torch.device = "cpu", progress: bool | None = None,
                 attach: bool = True, encoder_kwargs: Mapping[str, Any] | None = None,
                 deduplicate: bool = True) -> FeatureResult:
    """Encode ``modality`` (``text``, ``image`` or ``joint``) of ``node_type`` with ``encoder``.

    Args:
        encoder: a registry name (see :func:`mmgraph.features.get_encoder`) or an instance.
        cache_dir: root of the feature cache; ``None`` = ``<data root>/features``; ``False``
            disables caching.
        storage: ``float32`` or ``float16`` on disk (features are float32 in memory).
        batch_size: items per forward pass (default: the encoder's per-modality default for the
            device; small on CPUs, where big batches are slower per item).
        num_workers: image decoding processes (0 = decode in this process).
        progress: report progress on stderr (:class:`mmgraph.progress.Progress`): ``True``: a bar
            on a terminal, a plain line every ~10 % elsewhere; ``None``: a bar on a terminal
            only; ``False``: nothing.
        attach: store the result as ``x_<modality>`` on ``data``.
        deduplicate: encode identical items once (the output is the same either way).

    Raises:
        Interrupted: Ctrl-C (a ``KeyboardInterrupt``) during the extraction loop, after the
            finished batches were saved; its message says how many and where.
    """
    if modality not in MODALITIES:
        raise ConfigError(f"unknown modality {modality!r}; choose one of: {', '.join(MODALITIES)}")
    node_type = node_type or target_type(data)
    store = data[node_type]
    enc = get_encoder(encoder, device=device, **dict(encoder_kwargs or {}))
    enc.check_modality(modality)
    n = int(store.num_nodes)
    need_text, need_image = modality in ("text", "joint"), modality in ("image", "joint")
    for what, needed in (("text", need_text), ("image", need_image)):
        if needed and what not in store:
            raise DataError(f"'{node_type}' nodes have no raw {what} to encode "
                            f"(data set {data.meta.get('name')}); its features must come with the data set")

    present = torch.ones(n, dtype=torch.bool)
    keys: list[str | None] = [None] * n
    texts = [None] * n
    if need_text:
        raw = store.text
        tmask = store.get("text_mask", torch.ones(n, dtype=torch.bool))
        for i in range(n):
            t = raw[i]
            t = t.strip() if isinstance(t, str) else ""
            texts[i] = t if t and bool(tmask[i]) else None
        empty = sum(t is None for t in texts)
        if empty:
            warnings.warn(f"{empty} of {n} '{node_type}' texts are empty or missing; treated as missing text",
                          stacklevel=2)
        present &= torch.tensor([t is not None for t in texts], dtype=torch.bool)
    refs = None
    if need_image:
        refs = store.image
        imask = store.get("image_mask", torch.ones(n, dtype=torch.bool))
        has = torch.tensor([refs[i] is not None for i in range(n)], dtype=torch.bool) & imask.bool()
        absent = int((~has).sum())
        if absent:
            warnings.warn(f"{absent} of {n} '{node_type}' nodes have no image; treated as missing image",
                          stacklevel=2)
        present &= has
    for i in range(n):
        if present[i]:
            parts = []
            if need_text:
                parts.append(texts[i])
            if need_image:
                parts.append(_image_key(refs[i]))
            keys[i] = "\x00".join(parts)

    # one row per distinct item, in order of first occurrence
    unique: dict[str, int] = {}
    first: list[int] = []
    inverse = np.full(n, -1, dtype=np.int64)
    for i, k in enumerate(keys):
        if k is None:
            continue
        u = unique.get(k) if deduplicate else None
        if u is None:
            u = unique[k] = len(first)
            first.append(i)
        inverse[i] = u
    n_unique = len(first)
    digest = hashlib.sha1()
    for k in keys:
        digest.update(b"\x01" if k is None else k.encode("utf-8", "surrogatepass") + b"\x00")
    spec = {**enc.spec(), "storage": storage, "items": digest.hexdigest()}
    fp = feature_fingerprint(data, modality, enc.name, spec, node_type)
    items = Items(modality, first, texts if need_text else None, refs, data.meta.get("image_root"))
    meta = {"dataset": data.meta.get("name"), "version": data.meta.get("version"), "node_type": node_type,
            "modality": modality, "encoder": enc.name, "spec": spec}
    folder = _entry_folder(cache_dir, data, node_type, modality, enc, fp, deduplicate) if n_unique else None
    loop = {"batch_size": int(batch_size or enc.default_batch_size(modality)), "num_workers": num_workers,
            "progress": progress}
    t0 = time.perf_counter()
    if not n_unique:
        values, valid, unreadable, from_cache = np.zeros((0, 0), np.float32), np.zeros(0, bool), 0, False
    elif distributed.active():  # torchrun: each rank encodes every W-th batch, rank 0 merges
        values, valid, unreadable, from_cache = encode_sharded(enc, items, folder, fp, storage, meta, **loop)
    else:
        values, valid, unreadable, from_cache = _encode_here(enc, items, folder, fp, storage, meta, **loop)
    seconds = time.perf_counter() - t0
    if from_cache and unreadable and distributed.is_main():
        warnings.warn(f"{unreadable} of {n_unique} {modality} items could not be encoded when "
                      f"{folder.name} was computed; treated as missing", stacklevel=2)

    dim = values.shape[1] if n_unique else enc.output_dim(modality)
    x = torch.zeros(n, dim)
    mask = torch.zeros(n, dtype=torch.bool)
    rows = np.nonzero(inverse >= 0)[0]
    if len(rows):
        x[torch.from_numpy(rows)] = torch.from_numpy(np.asarray(values[inverse[rows]], dtype=np.float32))
        mask[torch.from_numpy(rows)] = torch.from_numpy(np.asarray(valid)[inverse[rows]])
    if attach:
        add_feature(data, modality, x, encoder=enc.name, spec=spec, node_type=node_type, mask=mask)
    result = FeatureResult(modality, enc.name, x, mask, fp, folder, from_cache, n, n_unique, seconds,
                           int((~mask).sum()), unreadable, spec)
    log.info("%s features of %s/%s by %s: %d items (%d distinct) %s in %.1fs", modality, data.meta.get("name"),
             node_type, enc.name, n, n_unique, "loaded from cache" if from_cache else "computed", seconds)
    return result


def _encode_here(enc: Encoder, items: Items, folder: Path | None, fp: str, storage: str, meta: dict,
                 **loop) -> tuple[np.ndarray, np.ndarray, int, bool]:
    """In this process: the complete cache entry, or the items encoded (resuming a partial entry)
    and the entry sealed; returns ``(values, valid, unreadable, from_cache)``."""
    t0 = time.perf_counter()
    if folder is not None:
        loaded = FeatureCache.load_finished(folder, fp, len(items), storage)
        if loaded is not None:
            return *loaded, int((~np.asarray(loaded[1])).sum()), True
    cache = FeatureCache(folder, fp, len(items), enc.output_dim(items.modality), storage) if folder else None
    values, valid, unreadable = encode_items(enc, items, cache, order=item_order(enc, items), **loop)
    if cache is not None:
        values, valid = cache.finish({**meta, "seconds": round(time.perf_counter() - t0, 3)})
    return values, valid, unreadable, False


def _entry_folder(cache_dir, data: HeteroData, node_type: str, modality: str, enc: Encoder, fp: str,
                  deduplicate: bool) -> Path | None:
    """The cache entry of these features (``None`` when ``cache_dir`` is ``False``)."""
    if cache_dir is False:
        return None
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / _slug(str(data.meta.get("name", "data"))) / \
        f"{node_type}.{modality}.{_slug(enc.name)}.{fp[:16]}{'' if deduplicate else '.all'}"


def _encoder_spec(value: Any) -> tuple[str, dict]:
    """``"minilm"`` or ``{name: ..., **kwargs}`` -> (name, kwargs)."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        return value["name"], {k: v for k, v in value.items() if k != "name"}
    raise ConfigError(f"an encoder is a name or {{name: ..., options}}, got {value!r}")


def attach_features(data: HeteroData, encoders: Mapping[str, Any] | None = None,
                    defaults: Mapping[str, Any] | None = None, modalities: Sequence[str] | None = None,
                    node_types: Sequence[str] | None = None, **kwargs) -> list[FeatureResult]:
    """Compute or load the features the model input needs (the runner's feature step).

    For each modality in ``modalities`` (default: every raw modality the target nodes have, plus
    those with features already): an entry of ``encoders`` is always used; otherwise features
    the data set came with are kept; otherwise ``defaults`` (the data set config's ``encoders``)
    names the encoder. ``kwargs`` go to :func:`encode_nodes`.

    ``node_types``: further node types to encode (a data set config's ``feature_node_types``:
    neighbours that are not target nodes, such as a page or a caption): each raw ``text`` and
    ``image`` they have and no features for, with the encoder chosen as for the target nodes.
    """
    if "storage" in kwargs:  # checked here, not only when something is encoded
        choice("features.storage", kwargs["storage"], tuple(STORAGE))
    if "batch_size" in kwargs:
        integer("features.batch_size", kwargs["batch_size"], 1, optional=True)
    if "num_workers" in kwargs:
        kwargs["num_workers"] = integer("features.num_workers", kwargs["num_workers"], 0)
    encoders, defaults = dict(encoders or {}), dict(defaults or {})
    store = data[target_type(data)]
    have = {k[2:] for k in store.keys() if k.startswith("x_")}
    raw = {m for m in ("text", "image") if m in store}
    order = {m: i for i, m in enumerate(MODALITIES)}
    wanted = list(modalities) if modalities else sorted(raw | have | set(encoders),
                                                        key=lambda m: (order.get(m, len(order)), m))
    unknown = [m for m in encoders if m not in MODALITIES]
    if unknown:
        raise ConfigError(f"features.encoders has unknown modality {unknown[0]!r}; use text, image or joint")
    results = []
    for m in wanted:
        if m in encoders:
            name, kw = _encoder_spec(encoders[m])
        elif m in have:
            continue
        elif m in defaults:
            name, kw = _encoder_spec(defaults[m])
        else:
            continue  # set_model_input reports a modality that has no features
        results.append(encode_nodes(data, m, name, encoder_kwargs=kw, **kwargs))
    target = target_type(data)
    for nt in node_types or ():
        if nt not in data.node_types:
            raise ConfigError(f"feature_node_types: {data.meta.get('name')} has no node type {nt!r}; "
                              f"it has {', '.join(data.node_types)}")
        if nt == target:
            continue
        other = data[nt]
        for m in ("text", "image"):
            spec = encoders.get(m, defaults.get(m))
            if m in other and f"x_{m}" not in other and spec is not None:
                name, kw = _encoder_spec(spec)
                results.append(encode_nodes(data, m, name, node_type=nt, encoder_kwargs=kw, **kwargs))
    return results

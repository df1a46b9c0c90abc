"""Computing node features from raw text and images, batched, cached and resumable.

:func:`encode_nodes` encodes one modality of one node type:

1. items are read from ``data[node_type].text`` / ``.image``; empty texts and absent images
   are missing (counted warning, ``<modality>_mask`` cleared);
2. identical items (the same text, the same image reference) are encoded once;
3. texts are batched by similar token length (little padding), images are decoded and
   preprocessed in worker processes while the model runs;
4. rows go into a :class:`~mmgraph.features.cache.FeatureCache` entry keyed by the feature
   fingerprint (data set, version, node type, modality, encoder spec, storage dtype, and a digest
   of the items), so a second run loads them in milliseconds and a killed run resumes;
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
from torch.utils.data import DataLoader, Dataset
from torch_geometric.data import HeteroData
from tqdm.auto import tqdm

from mmgraph import distributed
from mmgraph.data.graph import add_feature, feature_fingerprint, target_type
from mmgraph.data.images import load_image
from mmgraph.errors import ConfigError, DataError, MMGraphError
from mmgraph.features.cache import FeatureCache
from mmgraph.features.encoders import Encoder, get_encoder

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


class _ImageItems(Dataset):
    """Decodes and preprocesses the images at ``positions`` (runs in worker processes)."""

    def __init__(self, refs: Sequence[Any], texts: Sequence[str] | None, root: Any, encoder: Encoder,
                 positions: Sequence[int]):
        self.refs, self.texts, self.root, self.encoder, self.positions = refs, texts, root, encoder, positions

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int):
        pos = self.positions[i]
        text = self.texts[pos] if self.texts is not None else None
        try:
            img = load_image(self.refs[pos], root=self.root, max_side=self.encoder.image_size)
            return pos, self.encoder.prepare_image(img), text, None
        except (MMGraphError, OSError, ValueError, SyntaxError) as exc:  # PIL raises all of these
            return pos, None, text, f"{self.refs[pos]!s:.120}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


def _collate(batch):
    return batch


def _worker_init(_):
    torch.set_num_threads(1)


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
        progress: show a progress bar (``None``: only on a terminal).
        attach: store the result as ``x_<modality>`` on ``data``.
        deduplicate: encode identical items once (the output is the same either way).
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
    bs = int(batch_size or enc.default_batch_size(modality))
    t0 = time.perf_counter()
    from_cache, unreadable = False, 0

    cache = None
    meta = {"dataset": data.meta.get("name"), "version": data.meta.get("version"), "node_type": node_type,
            "modality": modality, "encoder": enc.name, "spec": spec}
    sharded = distributed.active() and n_unique > 0
    if sharded:  # torchrun: each rank encodes every W-th batch, rank 0 merges (features/sharded.py)
        from mmgraph.features.sharded import encode_sharded

        folder = _entry_folder(cache_dir, data, node_type, modality, enc, fp, deduplicate)
        values, valid, unreadable, from_cache, cache = encode_sharded(
            enc, modality, first, texts, refs, data, folder, fp, n_unique, storage, bs, num_workers,
            progress, meta, t0)
    elif cache_dir is not False and n_unique:
        folder = _entry_folder(cache_dir, data, node_type, modality, enc, fp, deduplicate)
        loaded = None
        if folder.is_dir():
            loaded = FeatureCache(folder, fp, n_unique, _cached_dim(folder), storage).load()
        if loaded is not None:
            values, valid = loaded
            from_cache = True
            unreadable = int((~np.asarray(valid)).sum())
            if unreadable:
                warnings.warn(f"{unreadable} of {n_unique} {modality} items could not be encoded when "
                              f"{folder.name} was computed; treated as missing", stacklevel=2)
        else:
            cache = FeatureCache(folder, fp, n_unique, enc.output_dim(modality), storage)
    if not n_unique:
        values, valid = np.zeros((0, 0), dtype=np.float32), np.zeros(0, dtype=bool)
    elif not from_cache and not sharded:
        values, valid, unreadable = _compute(enc, modality, first, texts, refs, data, cache, bs,
                                             num_workers, progress, n_unique)
        if cache is not None:
            values, valid = cache.finish({**meta, "seconds": round(time.perf_counter() - t0, 3)})
    seconds = time.perf_counter() - t0

    dim = values.shape[1] if n_unique else enc.output_dim(modality)
    x = torch.zeros(n, dim)
    mask = torch.zeros(n, dtype=torch.bool)
    rows = np.nonzero(inverse >= 0)[0]
    if len(rows):
        x[torch.from_numpy(rows)] = torch.from_numpy(np.asarray(values[inverse[rows]], dtype=np.float32))
        mask[torch.from_numpy(rows)] = torch.from_numpy(np.asarray(valid)[inverse[rows]])
    if attach:
        add_feature(data, modality, x, encoder=enc.name, spec=spec, node_type=node_type, mask=mask)
    result = FeatureResult(modality, enc.name, x, mask, fp, cache.final if cache else (folder if from_cache else None),
                           from_cache, n, n_unique, seconds, int((~mask).sum()), unreadable, spec)
    log.info("%s features of %s/%s by %s: %d items (%d distinct) %s in %.1fs", modality, data.meta.get("name"),
             node_type, enc.name, n, n_unique, "loaded from cache" if from_cache else "computed", seconds)
    return result


def _entry_folder(cache_dir, data: HeteroData, node_type: str, modality: str, enc: Encoder, fp: str,
                  deduplicate: bool) -> Path | None:
    """The cache entry of these features (``None`` when ``cache_dir`` is ``False``)."""
    if cache_dir is False:
        return None
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / _slug(str(data.meta.get("name", "data"))) / \
        f"{node_type}.{modality}.{_slug(enc.name)}.{fp[:16]}{'' if deduplicate else '.all'}"


def _item_order(enc: Encoder, modality: str, first: list[int], texts, n_unique: int) -> list[int]:
    """The order the distinct items are encoded in (batches are consecutive runs of it): texts
    longest first (little padding; an out-of-memory error shows early), images as they come."""
    if modality == "text":
        lengths = enc.text_lengths([texts[i] for i in first])
        return sorted(range(n_unique), key=lambda u: (-lengths[u], u))
    return list(range(n_unique))


def _cached_dim(folder: Path) -> int:
    import json

    try:
        return int(json.loads((folder / "meta.json").read_text())["dim"])
    except (OSError, ValueError, KeyError):
        return -1  # unreadable: FeatureCache.load moves the entry aside


def _compute(enc: Encoder, modality: str, first: list[int], texts, refs, data, cache: FeatureCache | None,
             bs: int, num_workers: int, progress, n_unique: int, order: list[int] | None = None):
    """Encode the distinct items, resuming a partial cache entry; returns (values, valid, unreadable).

    ``order``: the order to encode them in (default :func:`_item_order`), in batches of ``bs``."""
    enc.load()
    dim = enc.output_dim(modality)
    start = cache.open() if cache is not None else 0
    if cache is None:
        values_mem = np.zeros((n_unique, dim), dtype=np.float32)
        valid_mem = np.zeros(n_unique, dtype=bool)
    if order is None:
        order = _item_order(enc, modality, first, texts, n_unique)
    bar = tqdm(total=n_unique, initial=start, unit="item", desc=f"{modality} features ({enc.name})",
               disable=None if progress is None else not progress, dynamic_ncols=True)
    unreadable, first_error = 0, None

    def emit(rows: list[int], vals: np.ndarray, ok: np.ndarray, done: int):
        if cache is not None:
            cache.write(np.asarray(rows, dtype=np.int64), vals, ok, done)
        else:
            values_mem[rows] = vals
            valid_mem[rows] = ok
        bar.update(len(rows))

    try:
        todo = order[start:]
        done = start
        if modality == "text":
            for b in range(0, len(todo), bs):
                rows = todo[b: b + bs]
                out = enc.encode_text([texts[first[u]] for u in rows]).numpy()
                done += len(rows)
                emit(rows, out, np.isfinite(out).all(1), done)
        else:
            positions = [first[u] for u in todo]
            item_texts = texts if modality == "joint" else None
            root = data.meta.get("image_root")
            ds = _ImageItems(refs, item_texts, root, enc, positions)
            workers = num_workers if len(ds) > bs else 0
            loader = DataLoader(ds, batch_size=bs, num_workers=workers, collate_fn=_collate,
                                worker_init_fn=_worker_init if workers else None,
                                prefetch_factor=4 if workers else None)
            row_of = {first[u]: u for u in todo}
            for batch in loader:
                rows = [row_of[p] for p, *_ in batch]
                good = [j for j, (_, item, _, _) in enumerate(batch) if item is not None]
                for _, item, _, err in batch:
                    if item is None:
                        unreadable += 1
                        first_error = first_error or err
                vals = np.zeros((len(batch), dim), dtype=np.float32)
                ok = np.zeros(len(batch), dtype=bool)
                if good:
                    items = [batch[j][1] for j in good]
                    if modality == "joint":
                        out = enc.encode_joint([batch[j][2] for j in good], items).numpy()
                    else:
                        out = enc.encode_image(items).numpy()
                    vals[good] = out
                    ok[good] = np.isfinite(out).all(1)
                done += len(rows)
                emit(rows, vals, ok, done)
    finally:
        bar.close()
    if unreadable:
        warnings.warn(f"{unreadable} of {n_unique} images could not be read and are treated as missing "
                      f"(first: {first_error})", stacklevel=3)
    if cache is not None:
        return None, None, unreadable
    return values_mem, valid_mem, unreadable


def _encoder_spec(value: Any) -> tuple[str, dict]:
    """``"minilm"`` or ``{name: ..., **kwargs}`` -> (name, kwargs)."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, Mapping) and isinstance(value.get("name"), str):
        return value["name"], {k: v for k, v in value.items() if k != "name"}
    raise ConfigError(f"an encoder is a name or {{name: ..., options}}, got {value!r}")


def attach_features(data: HeteroData, encoders: Mapping[str, Any] | None = None,
                    defaults: Mapping[str, Any] | None = None, modalities: Sequence[str] | None = None,
                    **kwargs) -> list[FeatureResult]:
    """Compute or load the features the model input needs (the runner's feature step).

    For each modality in ``modalities`` (default: every raw modality the target nodes have, plus
    those with features already): an entry of ``encoders`` is always used; otherwise features
    the data set came with are kept; otherwise ``defaults`` (the data set config's ``encoders``)
    names the encoder. ``kwargs`` go to :func:`encode_nodes`.
    """
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
    return results

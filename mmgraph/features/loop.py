"""The extraction loop: distinct items become feature rows, batch by batch, in a resumable entry.

:func:`encode_items` is the one loop behind :func:`mmgraph.features.encode_nodes`, whether one
process encodes every item or each process of a torchrun launch encodes its share
(:mod:`mmgraph.features.sharded`):

- the items go to the encoder in batches, in the order the caller gives (:func:`item_order`:
  texts longest first, so batches need little padding and an out-of-memory error shows early);
- images are decoded and preprocessed in worker processes while the model runs; an image that
  cannot be read becomes a missing row, counted in one warning naming the first failure;
- after every batch its rows are written to the :class:`~mmgraph.features.cache.FeatureCache`
  entry and marked final, so a stopped run resumes at the next batch;
- Ctrl-C ends the loop with :class:`Interrupted`, whose message says what was saved and where.
  The image workers ignore Ctrl-C (the terminal sends it to them too) and are shut down by the
  loop, so they print nothing.
"""
from __future__ import annotations

import signal
import warnings
from dataclasses import dataclass, replace
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from mmgraph.data.images import load_image
from mmgraph.errors import MMGraphError
from mmgraph.features.cache import FeatureCache
from mmgraph.features.encoders import Encoder
from mmgraph.progress import Progress

__all__ = ["Items", "Interrupted", "encode_items", "item_order"]


class Interrupted(KeyboardInterrupt):
    """Ctrl-C stopped feature extraction after the finished batches were saved.

    The message is one line for the user, e.g. ``interrupted: 866 of 4,284 image features saved
    in <entry>.partial; run the same command again to resume``. It is a ``KeyboardInterrupt``, so
    whatever handles Ctrl-C already (a sweep worker, optuna, pytest) still sees one, and no
    ``except Exception`` or ``except MMGraphError`` mistakes it for a failure. A command line
    prints ``str(exc)`` and exits with status 130.
    """


@dataclass(frozen=True)
class Items:
    """The distinct items of one modality: item ``u`` is the text and/or image of node ``nodes[u]``."""

    modality: str                              # text, image or joint
    nodes: list[int]                           # the node of each item
    texts: Sequence[str | None] | None = None  # per node (text and joint)
    images: Sequence[Any] | None = None        # image reference per node (image and joint)
    image_root: Any = None                     # the folder relative image paths start in

    def __len__(self) -> int:
        return len(self.nodes)

    def subset(self, rows: Sequence[int]) -> "Items":
        """Items ``rows`` of these, in that order."""
        return replace(self, nodes=[self.nodes[u] for u in rows])


def item_order(enc: Encoder, items: Items) -> list[int]:
    """The order to encode ``items`` in (batches are consecutive runs of it): texts longest
    first, images as they come."""
    if items.modality == "text":
        lengths = enc.text_lengths([items.texts[v] for v in items.nodes])
        return sorted(range(len(items)), key=lambda u: (-lengths[u], u))
    return list(range(len(items)))


def encode_items(enc: Encoder, items: Items, cache: FeatureCache | None, *, batch_size: int,
                 order: Sequence[int] | None = None, num_workers: int = 2,
                 progress: bool | None = None) -> tuple[np.ndarray | None, np.ndarray | None, int]:
    """Encode ``items`` in batches of ``batch_size``, in ``order`` (default: as given).

    With a ``cache`` (not yet opened) the rows go into it, resuming its partial entry, and
    ``(None, None, unreadable)`` comes back (:meth:`FeatureCache.finish` gives the rows); without
    one, ``(values [len(items), dim], valid [len(items)], unreadable)``. ``unreadable`` counts the
    images of this run that could not be read. ``progress``: see :class:`mmgraph.progress.Progress`.

    Raises:
        Interrupted: Ctrl-C, after every finished batch was saved.
    """
    enc.load()
    dim = enc.output_dim(items.modality)
    n = len(items)
    order = list(range(n)) if order is None else list(order)
    if cache is None:
        values, valid = np.zeros((n, dim), dtype=np.float32), np.zeros(n, dtype=bool)
    unreadable, first_error, batches = 0, None, None
    try:
        done = cache.open() if cache is not None else 0
        todo = order[done:]
        batches = (_text_batches(items, todo, batch_size) if items.modality == "text"
                   else _image_batches(enc, items, todo, batch_size, num_workers))
        with Progress(n, f"{items.modality} features ({enc.name})", unit="item", initial=done,
                      enabled=progress) as bar:
            for rows, texts, images, errors in batches:
                vals, ok = _encode_batch(enc, items.modality, dim, texts, images, errors)
                bad = [err for err in errors if err is not None]
                unreadable += len(bad)
                first_error = first_error or (bad[0] if bad else None)
                done += len(rows)
                if cache is not None:
                    cache.write(np.asarray(rows, dtype=np.int64), vals, ok, done)
                else:
                    values[rows], valid[rows] = vals, ok
                bar.update(len(rows))
    except KeyboardInterrupt:
        raise Interrupted(_saved(cache, items.modality, n)) from None
    finally:
        if batches is not None:
            batches.close()  # the image workers end now, not whenever this frame is freed
    if unreadable:
        warnings.warn(f"{unreadable} of {n} images could not be read and are treated as missing "
                      f"(first: {first_error})", stacklevel=2)
    if cache is not None:
        return None, None, unreadable
    return values, valid, unreadable


def _saved(cache: FeatureCache | None, modality: str, n: int) -> str:
    """What an interrupted run leaves behind, in one line."""
    if cache is None:
        return f"interrupted: no {modality} features saved (the feature cache is off)"
    return (f"interrupted: {cache.done:,} of {n:,} {modality} features saved in {cache.partial}; "
            f"run the same command again to resume")


def _encode_batch(enc: Encoder, modality: str, dim: int, texts: list | None, images: list | None,
                  errors: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    """The rows of one batch (``[B, dim]``) and which are valid; an item with an error stays zero."""
    vals, ok = np.zeros((len(errors), dim), dtype=np.float32), np.zeros(len(errors), dtype=bool)
    good = [j for j, err in enumerate(errors) if err is None]
    if good:
        texts = [texts[j] for j in good] if texts else None
        images = [images[j] for j in good] if images else None
        if modality == "text":
            out = enc.encode_text(texts).numpy()
        elif modality == "image":
            out = enc.encode_image(images).numpy()
        else:
            out = enc.encode_joint(texts, images).numpy()
        vals[good], ok[good] = out, np.isfinite(out).all(1)
    return vals, ok


# A batch: (item rows, their texts or None, their prepared images or None, their errors: None
# where the item is ready, else why its image could not be read).
Batch = tuple[list[int], Any, Any, list[Any]]


def _text_batches(items: Items, todo: list[int], batch_size: int) -> Iterator[Batch]:
    for b in range(0, len(todo), batch_size):
        rows = todo[b: b + batch_size]
        yield rows, [items.texts[items.nodes[u]] for u in rows], None, [None] * len(rows)


class _ImageItems(Dataset):
    """Decodes and preprocesses the images of item ``rows`` (runs in worker processes)."""

    def __init__(self, enc: Encoder, items: Items, rows: Sequence[int]):
        self.enc, self.items, self.rows = enc, items, rows
        self.texts = items.texts if items.modality == "joint" else None

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> tuple[int, str | None, Any, str | None]:
        u = self.rows[i]
        node = self.items.nodes[u]
        text = self.texts[node] if self.texts is not None else None
        ref = self.items.images[node]
        try:
            img = load_image(ref, root=self.items.image_root, max_side=self.enc.image_size)
            return u, text, self.enc.prepare_image(img), None
        except (MMGraphError, OSError, ValueError, SyntaxError) as exc:  # PIL raises all of these
            return u, text, None, f"{ref!s:.120}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"


def _collate(batch: list[tuple]) -> Batch:
    rows, texts, images, errors = zip(*batch)
    return list(rows), list(texts), list(images), list(errors)


def _worker_init(_: int) -> None:
    # Ctrl-C reaches every process of the terminal's group. Only the main process acts on it
    # (saves, raises Interrupted, shuts the workers down); a worker hit while starting or
    # exiting, outside torch's worker loop, would print a traceback of its own.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)


def _image_batches(enc: Encoder, items: Items, todo: list[int], batch_size: int,
                   num_workers: int) -> Iterator[Batch]:
    ds = _ImageItems(enc, items, todo)
    workers = num_workers if len(ds) > batch_size else 0
    loader = iter(DataLoader(ds, batch_size=batch_size, num_workers=workers, collate_fn=_collate,
                             worker_init_fn=_worker_init if workers else None,
                             prefetch_factor=4 if workers else None))
    try:
        yield from loader
    finally:
        del loader  # the last reference: the workers are shut down here

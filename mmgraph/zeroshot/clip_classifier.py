"""A CLIP / SigLIP model as a zero-shot node classifier of the runner (``configs/model/clip.yaml``).

Each node's image and/or text embedding, optionally mixed with the mean of its neighbours'
(``alpha``), is compared with "a photo of a {class}." for every class
(:class:`~mmgraph.zeroshot.clip.ClipZeroShot`). A model of
:class:`mmgraph.tasks.ZeroShotNodeClassification`, without trainable parameters.
"""
from __future__ import annotations

from typing import Any, Sequence

from torch import Tensor, nn

from mmgraph.errors import ConfigError

__all__ = ["ClipClassifier"]


class ClipClassifier(nn.Module):
    """Zero-shot classification of nodes by a joint image-text embedding model.

    Args:
        generator: a Hub id or local folder of a CLIP or SigLIP model.
        class_names: the categories (from the task).
        device: where the model runs (from the task).
        image_root: the folder relative image references are read from (from the task).
        use: ``image``, ``text`` or ``both`` (normalised mean of the two embeddings).
        templates: prompts with ``{}`` for the class name; several are averaged.
        num_neighbors: neighbours whose mean embedding is mixed in.
        neighbor_strategy: ``random`` (seeded by the run's seed), ``similar`` or ``degree``.
        alpha: ``0``: the node alone; ``1``: the mean of its neighbours alone.
    """

    def __init__(self, generator: str, class_names: Sequence[str], *, device: str = "cpu",
                 image_root: str | None = None, use: str = "image",
                 templates: Sequence[str] = ("a photo of a {}.",), num_neighbors: int = 0,
                 neighbor_strategy: str = "random", alpha: float = 0.0):
        super().__init__()
        from mmgraph.zeroshot.clip import ClipZeroShot

        if use not in ("image", "text", "both"):
            raise ConfigError(f"use must be one of image, text, both; got {use!r}")
        if isinstance(num_neighbors, bool) or not isinstance(num_neighbors, int) or num_neighbors < 0:
            raise ConfigError(f"num_neighbors must be an integer >= 0; got {num_neighbors!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 <= float(alpha) <= 1.0:
            raise ConfigError(f"alpha must be a number in [0, 1]; got {alpha!r}")
        self.use, self.num_neighbors, self.alpha = use, num_neighbors, float(alpha)
        self.neighbor_strategy = neighbor_strategy
        self.name, self.image_root = str(generator), image_root
        self.clip = ClipZeroShot(self.name, templates=list(templates), device=str(device))
        self.class_emb = self.clip.class_embeddings([c.replace("_", " ") for c in class_names])

    def reset_parameters(self) -> None:
        """Nothing to reset: the model is not trained."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "fingerprint": self.clip.fingerprint(), "accepts_images": True}

    def settings(self) -> dict[str, Any]:
        return {"num_neighbors": self.num_neighbors, "alpha": self.alpha, "use": self.use}

    @property
    def input_label(self) -> str:
        own = self.use.replace("both", "text+image")
        return own + (f", {self.num_neighbors} neighbours (alpha {self.alpha:g})" if self.num_neighbors else "")

    def predict(self, view, nodes: Tensor, seed: int = 0) -> tuple[Tensor, dict[str, Any]]:
        """Classes of ``nodes`` of the :class:`~mmgraph.data.node_view.NodeView` ``view``."""
        from mmgraph.zeroshot.neighbors import select_neighbors

        neigh = select_neighbors(view.edge_index, view.num_nodes, nodes, self.num_neighbors,
                                 self.neighbor_strategy, features=view.x, seed=seed)
        ids = sorted(set(nodes.tolist()) | {j for nb in neigh for j in nb})
        pos = {n: i for i, n in enumerate(ids)}
        emb = self.clip.node_embeddings([view.images[i] for i in ids] if view.images is not None else None,
                                        [view.texts[i] for i in ids] if view.texts is not None else None,
                                        root=view.image_root, use=self.use)
        logits = self.clip.predict(emb[[pos[n] for n in nodes.tolist()]], self.class_emb,
                                   neighbor_index=[[pos[j] for j in nb] for nb in neigh], all_emb=emb,
                                   alpha=self.alpha)
        return logits.argmax(dim=1), {"embedded": len(ids)}

"""Prompts that ask a (vision-)language model for a node's class, in the spirit of MAGB's
VLM-as-predictor: the centre node's image and text, ``k`` neighbours' text (GRE-T), image
(GRE-V) or both (GRE-M), the list of categories and an instruction to answer with exactly one
category name (optionally after thinking step by step, with the final answer on an
``Answer:`` line).

A :class:`Prompt` holds the messages in the Hugging Face chat format with content parts::

    [{"role": "system", "content": [{"type": "text", "text": "..."}]},
     {"role": "user", "content": [{"type": "text", "text": "..."}, {"type": "image"}, ...]}]

``Prompt.images`` lists the image references in the order of the ``{"type": "image"}`` parts,
and ``Prompt.key`` is a stable text naming everything the prompt consists of (texts and image
identities, in order), for caching generations.

For a text-only model (``images=False``) every image is replaced by its ``image_words``, a
textual description such as ``"an image that looks like: jigsaw puzzle, comic book"``, or left
out when there is none.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import Any, Sequence

from mmgraph.errors import ConfigError

__all__ = ["NodeContent", "Prompt", "build_prompt", "image_identity", "MODES"]

#: What each neighbour contributes: its text (GRE-T), its image (GRE-V) or both (GRE-M).
MODES = ("text", "image", "both")

SYSTEM = ("You are an expert at classifying items of a multimodal graph, in which every item has "
          "a text, possibly an image, and links to related items.")
NO_TEXT = "(no text)"
NO_IMAGE = "(no image)"
ELLIPSIS = "…"


@dataclass
class NodeContent:
    """What a node can show the model: its text, an image reference (anything
    :func:`mmgraph.data.images.load_image` accepts) and words describing the image, for
    text-only models."""

    text: str | None
    image: Any | None = None
    image_words: str | None = None


@dataclass
class Prompt:
    """A chat in the Hugging Face format, the images of its ``{"type": "image"}`` parts in order,
    and a stable key that identifies it."""

    messages: list[dict]
    images: list[Any] = field(default_factory=list)
    key: str = ""


def image_identity(ref: Any) -> str:
    """A stable text naming an image reference: the path or spec string itself, a digest of
    encoded bytes, a digest of a PIL image's pixels, else ``repr``."""
    if isinstance(ref, str):
        return repr(ref)
    if isinstance(ref, os.PathLike):
        return repr(os.fspath(ref))
    if isinstance(ref, (bytes, bytearray, memoryview)):
        blob = bytes(ref)
        return f"bytes:{len(blob)}:{hashlib.blake2b(blob, digest_size=16).hexdigest()}"
    tobytes = getattr(ref, "tobytes", None)
    if callable(tobytes) and hasattr(ref, "mode") and hasattr(ref, "size"):   # a PIL image
        h = hashlib.blake2b(f"{ref.mode}{ref.size}".encode(), digest_size=16)
        h.update(tobytes())
        return f"pil:{h.hexdigest()}"
    return repr(ref)


def _clip(text: str | None, max_chars: int) -> str:
    if text is None or not str(text).strip():
        return NO_TEXT
    text = " ".join(str(text).split())
    if len(text) <= max_chars:
        return text
    return text[: max_chars - 1].rstrip() + ELLIPSIS


class _Parts:
    """Accumulates content parts, merging adjacent texts."""

    def __init__(self) -> None:
        self.parts: list[dict] = []
        self.images: list[Any] = []

    def text(self, s: str) -> None:
        if self.parts and self.parts[-1]["type"] == "text":
            self.parts[-1]["text"] += s
        else:
            self.parts.append({"type": "text", "text": s})

    def image(self, ref: Any) -> None:
        self.parts.append({"type": "image"})
        self.images.append(ref)


def _add_image(parts: _Parts, label: str, node: NodeContent, images: bool, *, say_missing: bool) -> bool:
    """The node's image (or its words for a text-only model); returns whether anything was added."""
    if node.image is None:
        if say_missing:
            parts.text(f"{label}: {NO_IMAGE}\n")
            return True
        return False
    if images:
        parts.text(f"{label}: ")
        parts.image(node.image)
        parts.text("\n")
        return True
    if node.image_words and node.image_words.strip():
        parts.text(f"{label} (described in words): {' '.join(node.image_words.split())}\n")
        return True
    return False


def build_prompt(center: NodeContent, neighbors: list[NodeContent], class_names: Sequence[str], *,
                 mode: str = "text", images: bool = True, cot: bool = False,
                 max_chars: int = 1000) -> Prompt:
    """The prompt that asks for ``center``'s class among ``class_names``.

    Args:
        center: the node to classify; it contributes its image (when it has one) and its text.
        neighbors: its chosen neighbours; each contributes what ``mode`` says.
        class_names: the categories, all listed in the prompt.
        mode: ``text`` (GRE-T), ``image`` (GRE-V) or ``both`` (GRE-M) for the neighbours.
        images: whether the model takes images; if not, each image becomes its ``image_words``
            (and is left out when it has none).
        cot: ask for step-by-step reasoning and a final ``Answer: <category>`` line.
        max_chars: texts longer than this are cut, ending in an ellipsis.

    Raises:
        ConfigError: unknown mode, no categories, ``max_chars`` below 1.
    """
    if mode not in MODES:
        raise ConfigError(f"unknown neighbour mode {mode!r}; valid modes: {', '.join(MODES)}")
    if int(max_chars) < 1:
        raise ConfigError(f"max_chars must be at least 1; got {max_chars!r}")
    names = [str(c) for c in class_names]
    if not names:
        raise ConfigError("build_prompt needs at least one category name")

    p = _Parts()
    intro = "Classify the following item into exactly one of the categories listed below."
    if neighbors:
        intro += " Items linked to it are shown as well; they often, but not always, share its category."
    p.text(intro + "\n\n")
    _add_image(p, "Image of the item", center, images, say_missing=False)
    p.text(f"Description of the item: {_clip(center.text, max_chars)}\n")
    for i, nb in enumerate(neighbors, 1):
        p.text(f"\nLinked item {i}:\n")
        shown = False
        if mode in ("image", "both"):
            shown = _add_image(p, "Image", nb, images, say_missing=images)
        if mode in ("text", "both"):
            p.text(f"Description: {_clip(nb.text, max_chars)}\n")
            shown = True
        if not shown:   # image mode, text-only model, no words for the image (or no image)
            p.text(f"{NO_IMAGE if nb.image is None else '(image not described)'}\n")
    p.text("\nAvailable categories:\n" + "".join(f"- {c}\n" for c in names))
    if cot:
        p.text("\nThink step by step about what the item's image, text and linked items suggest. "
               "Then, on the last line, write \"Answer:\" followed by exactly one category name "
               "from the list, copied exactly.")
    else:
        p.text("\nAnswer with exactly one category name from the list, copied exactly, and nothing else.")

    messages = [{"role": "system", "content": [{"type": "text", "text": SYSTEM}]},
                {"role": "user", "content": p.parts}]
    it = iter(p.images)
    key_parts = [[m["role"], [part["text"] if part["type"] == "text" else {"image": image_identity(next(it))}
                              for part in m["content"]]] for m in messages]
    key = json.dumps(key_parts, ensure_ascii=False, separators=(",", ":"))
    return Prompt(messages=messages, images=p.images, key=key)

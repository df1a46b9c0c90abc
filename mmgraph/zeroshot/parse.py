"""Turning a language model's answer into a class.

:class:`AnswerParser` tries, in order:

1. if the output has an ``Answer:`` line (a chain of thought), only the text after the last
   one counts;
2. ``exact``: the class name that appears earliest (case-sensitive, whole words); when names
   overlap at the same position ("wild cat" / "cat") the longest wins;
3. ``normalized``: the same on normalised text -- lower case, punctuation, underscores and
   hyphens as spaces, whitespace collapsed, a trailing plural "s" ignored on every word;
4. ``embedding`` (when an ``embed`` function is given): the class whose name embedding has the
   highest cosine with the embedding of the answer's first line, if at least ``min_similarity``;
5. otherwise ``unknown`` (``index=-1``, ``label=None``), as is an empty answer.

:func:`mismatch_rate` is the share of unknown answers (MAGB's mismatch rate).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch import Tensor

from mmgraph.errors import ConfigError

__all__ = ["AnswerParser", "Parsed", "mismatch_rate", "normalize"]

# The last line that starts (after markdown decoration) with "Answer:" / "Final answer:".
_ANSWER = re.compile(r"^[ \t>*#_\-]*(?:final[ \t]+)?answer[ \t*_]*[:：]", re.IGNORECASE | re.MULTILINE)


@dataclass
class Parsed:
    """The class an answer names: ``index`` into the class names (-1 if none), its ``label``
    and ``how`` it was found: ``exact``, ``normalized``, ``embedding`` or ``unknown``."""

    index: int
    label: str | None
    how: str


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def normalize(text: str) -> str:
    """Lower case; everything but letters and digits (underscores and hyphens included) becomes
    a space; whitespace collapsed; a trailing ``s`` dropped from words longer than three letters
    (but not ``ss``)."""
    words = re.sub(r"[\W_]+", " ", text.lower()).split()
    return " ".join(_singular(w) for w in words)


def _first_match(pattern: re.Pattern | None, text: str, lookup: dict[str, int]) -> int:
    if pattern is None:
        return -1
    m = pattern.search(text)
    return lookup[m.group(1)] if m else -1


def _alternation(names: list[str]) -> re.Pattern | None:
    """Whole-word alternatives, longest first, so the earliest position wins and, at one
    position, the longest name that ends on a word boundary."""
    names = sorted({n for n in names if n}, key=lambda n: (-len(n), n))
    if not names:
        return None
    return re.compile(r"(?<!\w)(" + "|".join(re.escape(n) for n in names) + r")(?!\w)")


class AnswerParser:
    """Parses generated answers into one of ``class_names`` (see the module docstring).

    Args:
        class_names: the categories, in label order.
        embed: optional ``list[str] -> Tensor [n, d]`` text embedding for the nearest-class
            fallback; class names are embedded once, on first use.
        min_similarity: the lowest cosine similarity the fallback accepts.
    """

    def __init__(self, class_names: Sequence[str], embed: Callable[[list[str]], Tensor] | None = None,
                 min_similarity: float = 0.5) -> None:
        names = list(class_names)
        if not names:
            raise ConfigError("AnswerParser needs at least one class name")
        bad = [n for n in names if not isinstance(n, str) or not n.strip()]
        if bad:
            raise ConfigError(f"class names must be non-empty strings; got {bad[0]!r}")
        self.class_names = names
        self.embed = embed
        self.min_similarity = float(min_similarity)
        self._exact_lookup: dict[str, int] = {}
        self._norm_lookup: dict[str, int] = {}
        for i, n in enumerate(names):            # the first of duplicate names keeps its index
            self._exact_lookup.setdefault(n, i)
            self._norm_lookup.setdefault(normalize(n), i)
        self._exact = _alternation(list(self._exact_lookup))
        self._norm = _alternation(list(self._norm_lookup))
        self._class_emb: Tensor | None = None

    @staticmethod
    def answer_part(output: str) -> str:
        """The text after the last ``Answer:`` line, or the whole output if there is none."""
        last = None
        for last in _ANSWER.finditer(output):
            pass
        return output[last.end():] if last is not None else output

    def _class_embeddings(self) -> Tensor:
        if self._class_emb is None:
            self._class_emb = torch.nn.functional.normalize(
                torch.as_tensor(self.embed(list(self.class_names))).detach().float().cpu(), dim=-1)
        return self._class_emb

    def _result(self, index: int, how: str) -> Parsed:
        return Parsed(index=index, label=self.class_names[index], how=how)

    def _match(self, text: str) -> Parsed | None:
        i = _first_match(self._exact, text, self._exact_lookup)
        if i >= 0:
            return self._result(i, "exact")
        i = _first_match(self._norm, normalize(text), self._norm_lookup)
        if i >= 0:
            return self._result(i, "normalized")
        return None

    @staticmethod
    def _first_line(text: str) -> str:
        return next(line.strip() for line in text.splitlines() if line.strip())

    def _nearest(self, lines: list[str]) -> list[Parsed]:
        emb = torch.nn.functional.normalize(torch.as_tensor(self.embed(lines)).detach().float().cpu(), dim=-1)
        sim = emb @ self._class_embeddings().T
        best, idx = sim.max(dim=1)
        return [self._result(int(i), "embedding") if float(b) >= self.min_similarity else _UNKNOWN()
                for b, i in zip(best.tolist(), idx.tolist())]

    def parse(self, output: str) -> Parsed:
        """The class ``output`` names."""
        return self.parse_many([output])[0]

    def parse_many(self, outputs: Sequence[str]) -> list[Parsed]:
        """:meth:`parse` for many outputs, with one ``embed`` call for all that need the fallback."""
        results: list[Parsed | None] = []
        pending: dict[int, str] = {}
        for j, output in enumerate(outputs):
            text = self.answer_part(output or "")
            if not text.strip():
                results.append(_UNKNOWN())
                continue
            hit = self._match(text)
            results.append(hit)
            if hit is None:
                if self.embed is not None:
                    pending[j] = self._first_line(text)
                else:
                    results[j] = _UNKNOWN()
        if pending:
            for j, r in zip(pending, self._nearest(list(pending.values()))):
                results[j] = r
        return results  # type: ignore[return-value]


def _UNKNOWN() -> Parsed:
    return Parsed(index=-1, label=None, how="unknown")


def mismatch_rate(parsed: Sequence[Parsed]) -> float:
    """The share of answers that named no class (0.0 for no answers)."""
    parsed = list(parsed)
    if not parsed:
        return 0.0
    return sum(p.how == "unknown" for p in parsed) / len(parsed)

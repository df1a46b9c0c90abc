"""A resumable, append-only cache of generated answers.

:class:`GenerationCache` keeps one JSON line per answer::

    {"key": sha1(model fingerprint, settings, prompt key), "text": ..., "new_tokens": ..., "seconds": ...}

Lines are only ever appended (flushed and fsynced per batch), so a killed run loses at most
the batch in flight; a truncated or corrupt line (the end of a killed write) is skipped with a
warning when the file is read, and never rewritten. One file may hold answers of several models
and settings: the key tells them apart.

:func:`cached_generate` answers a list of prompts, generating only those missing from the cache,
batch by batch, writing every batch as soon as it is done; running it again after an
interruption resumes where it stopped.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

from mmgraph.errors import ConfigError
from mmgraph.zeroshot.generate import Generation

__all__ = ["GenerationCache", "cached_generate"]


class GenerationCache:
    """Answers of one model (``model_fingerprint``) under one set of ``settings``, in a JSONL file.

    Args:
        path: the JSONL file (created with its folder on the first :meth:`put`).
        model_fingerprint: :meth:`Generator.fingerprint` of the model that answers.
        settings: everything else that changes the answers to the same prompt key (e.g.
            ``max_new_tokens``); JSON-serialisable.
    """

    def __init__(self, path: str | os.PathLike, model_fingerprint: str, settings: dict[str, Any]):
        self.path = Path(path)
        self.model_fingerprint = str(model_fingerprint)
        self.settings = dict(settings)
        try:
            self._scope = json.dumps([self.model_fingerprint, self.settings], sort_keys=True)
        except TypeError as exc:
            raise ConfigError(f"generation cache settings must be JSON values: {exc}") from exc
        self._entries: dict[str, Generation] = {}
        #: lines skipped as truncated or corrupt when the file was read
        self.skipped_lines = 0
        self._needs_newline = False
        self._read()

    # -- reading -------------------------------------------------------------------------------
    def _read(self) -> None:
        try:
            blob = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise ConfigError(f"cannot read the generation cache {self.path}: {exc}") from exc
        self._needs_newline = bool(blob) and not blob.endswith(b"\n")
        for line in blob.split(b"\n"):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                gen = Generation(text=str(row["text"]), new_tokens=int(row["new_tokens"]),
                                 seconds=float(row["seconds"]))
                key = row["key"]
                if not isinstance(key, str) or not isinstance(row["text"], str):
                    raise ValueError("bad types")
            except (ValueError, KeyError, TypeError, UnicodeDecodeError):
                self.skipped_lines += 1
                continue
            self._entries[key] = gen
        if self.skipped_lines:
            warnings.warn(f"generation cache {self.path}: skipped {self.skipped_lines} truncated or corrupt "
                          f"line(s) (an interrupted write); their prompts will be generated again",
                          RuntimeWarning, stacklevel=3)

    # -- lookups -------------------------------------------------------------------------------
    def key(self, prompt) -> str:
        """The cache key of ``prompt`` (uses only ``prompt.key``)."""
        return hashlib.sha1(f"{self._scope}\x00{prompt.key}".encode()).hexdigest()

    def get(self, prompt) -> Generation | None:
        return self._entries.get(self.key(prompt))

    def __contains__(self, prompt) -> bool:
        return self.key(prompt) in self._entries

    def __len__(self) -> int:
        """Entries in the file, of every model and settings."""
        return len(self._entries)

    # -- writing -------------------------------------------------------------------------------
    def put(self, prompt, generation: Generation) -> None:
        self.put_many([(prompt, generation)])

    def put_many(self, items: Iterable[tuple[Any, Generation]]) -> None:
        """Append answers in one write, then flush and fsync (a batch is on disk or not at all,
        apart from a truncated last line that the next read skips)."""
        rows = []
        for prompt, g in items:
            key = self.key(prompt)
            rows.append(json.dumps({"key": key, "text": g.text, "new_tokens": int(g.new_tokens),
                                    "seconds": round(float(g.seconds), 6)}, ensure_ascii=False))
            self._entries[key] = Generation(g.text, int(g.new_tokens), float(g.seconds))
        if not rows:
            return
        data = ("\n" if self._needs_newline else "") + "\n".join(rows) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "ab") as f:
            f.write(data.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        self._needs_newline = False

    def __repr__(self) -> str:
        return f"GenerationCache({str(self.path)!r}, entries={len(self)})"


def cached_generate(generator, prompts: Sequence, cache: GenerationCache, *, batch_size: int = 8,
                    progress: bool | None = None, **gen_kwargs) -> list[Generation]:
    """``generator.generate(prompts, ...)``, answering from ``cache`` what it holds already.

    Missing prompts (one per distinct key) are generated in batches of ``batch_size`` of similar
    length; each batch is written to the cache as soon as it is done, so an interrupted call
    resumes on the next. ``max_new_tokens`` defaults to ``cache.settings["max_new_tokens"]``
    and must agree with it when both are given (the settings are part of the cache key).

    Raises:
        ConfigError: the cache belongs to another model fingerprint, or its settings disagree
            with ``max_new_tokens``.
    """
    from mmgraph.progress import Progress

    prompts = list(prompts)
    if int(batch_size) < 1:
        raise ConfigError(f"batch_size must be positive, got {batch_size}")
    if generator.fingerprint() != cache.model_fingerprint:
        raise ConfigError(f"the generation cache {cache.path} is for model fingerprint "
                          f"{cache.model_fingerprint!r}, not {generator.fingerprint()!r} of {generator.name!r}")
    if "max_new_tokens" in cache.settings:
        wanted = int(cache.settings["max_new_tokens"])
        given = gen_kwargs.setdefault("max_new_tokens", wanted)
        if int(given) != wanted:
            raise ConfigError(f"max_new_tokens={given} but the generation cache settings say {wanted}; "
                              f"they are part of the cache key and must agree")
    missing: dict[str, Any] = {}
    for p in prompts:
        if p not in cache:
            missing.setdefault(cache.key(p), p)
    todo = list(missing.values())
    if todo:
        for p in todo:  # refuse unreadable prompts before generating anything
            if hasattr(generator, "check"):
                generator.check(p)
        lengths = getattr(generator, "prompt_lengths", None)
        if callable(lengths):
            costs = lengths(todo)
            todo = [todo[i] for i in sorted(range(len(todo)), key=lambda i: costs[i])]
        bar = Progress(len(todo), f"generate {generator.name}", unit="prompt", enabled=progress)
        try:
            for start in range(0, len(todo), int(batch_size)):
                chunk = todo[start:start + int(batch_size)]
                gens = generator.generate(chunk, batch_size=int(batch_size), progress=False, **gen_kwargs)
                cache.put_many(zip(chunk, gens))
                bar.update(len(chunk))
        finally:
            bar.close()
    out = [cache.get(p) for p in prompts]
    assert all(g is not None for g in out)
    return out  # type: ignore[return-value]

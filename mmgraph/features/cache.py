"""An on-disk feature cache that is written atomically and resumes after an interruption.

One entry is a folder named by the feature fingerprint::

    <cache_dir>/<data set>/<node type>.<modality>.<encoder>.<fingerprint[:16]>/
        values.npy   [num_items, dim]  float32 or float16, memory-mappable
        valid.npy    [num_items]       bool, False where the item could not be encoded
        meta.json    fingerprint, spec, shape, dtype, timings

While features are computed, the entry lives in ``<name>.partial/``: ``values.npy`` and
``valid.npy`` are memory-mapped and filled batch by batch, and ``progress.json`` records how
many items (in the deterministic processing order) are final. ``progress.json`` is replaced
atomically only after the rows it covers were flushed, so a killed run loses at most the batch
in flight and the next run resumes where it stopped. When every item is done, ``meta.json`` is
written and the folder is renamed to its final name in one step: a complete entry either exists
whole or not at all. A final entry that cannot be read is moved aside (never deleted) and
recomputed.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from mmgraph.errors import DataError

__all__ = ["FeatureCache", "check_writable"]

STORAGE = {"float32": np.float32, "float16": np.float16}


def _write_json(path: Path, obj: Any) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w") as fh:
        json.dump(obj, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def check_writable(folder: Path) -> None:
    """Raise a one-line DataError if ``folder`` cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataError(f"feature cache folder {folder} is not writable ({exc.strerror or exc}); "
                        f"set features.cache_dir (CLI: cache_dir=...) or MMGRAPH_DATA to a writable "
                        f"folder") from exc


class FeatureCache:
    """One cache entry: ``num_items`` rows of ``dim`` features under a fingerprint."""

    def __init__(self, folder: str | os.PathLike, fingerprint: str, num_items: int, dim: int,
                 storage: str = "float32"):
        if storage not in STORAGE:
            raise DataError(f"unknown feature storage dtype {storage!r}; choose float32 or float16")
        self.final = Path(folder)
        self.partial = self.final.with_name(self.final.name + ".partial")
        self.fingerprint, self.num_items, self.dim, self.storage = fingerprint, int(num_items), int(dim), storage
        self._values: np.memmap | None = None
        self._valid: np.memmap | None = None
        self.done = 0

    # -- reading a finished entry --------------------------------------------------------------
    @classmethod
    def load_finished(cls, folder: str | os.PathLike, fingerprint: str, num_items: int,
                      storage: str = "float32") -> tuple[np.ndarray, np.ndarray] | None:
        """:meth:`load` the entry at ``folder`` whatever its width (read from its ``meta.json``,
        so no encoder has to be loaded to learn it); ``None`` if there is no complete entry."""
        folder = Path(folder)
        if not folder.is_dir():
            return None
        try:
            dim = int(json.loads((folder / "meta.json").read_text())["dim"])
        except (OSError, ValueError, KeyError, TypeError):
            dim = -1  # unreadable: load() moves the entry aside
        return cls(folder, fingerprint, num_items, dim, storage).load()

    def load(self) -> tuple[np.ndarray, np.ndarray] | None:
        """``(values, valid)`` of a complete entry (values memory-mapped), else ``None``."""
        if not self.final.is_dir():
            return None
        try:
            meta = json.loads((self.final / "meta.json").read_text())
            values = np.load(self.final / "values.npy", mmap_mode="r")
            valid = np.load(self.final / "valid.npy")
            if (meta.get("fingerprint") != self.fingerprint or values.shape != (self.num_items, self.dim)
                    or valid.shape != (self.num_items,) or valid.dtype != np.bool_):
                raise ValueError(f"shape {values.shape}/{valid.shape} does not match "
                                 f"({self.num_items}, {self.dim})")
            return values, valid
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            aside = self.final.with_name(f"{self.final.name}.corrupt-{int(time.time())}")
            os.replace(self.final, aside)
            warnings.warn(f"feature cache entry {self.final} is unreadable ({exc}); moved to {aside.name} "
                          f"and recomputing", stacklevel=2)
            return None

    # -- writing -------------------------------------------------------------------------------
    def open(self) -> int:
        """Open (or resume) the partial entry; returns the number of items already done."""
        check_writable(self.final.parent)
        progress = self.partial / "progress.json"
        if self.partial.is_dir() and progress.is_file():
            try:
                state = json.loads(progress.read_text())
                if (state.get("fingerprint") == self.fingerprint and state.get("num_items") == self.num_items
                        and state.get("dim") == self.dim and state.get("storage") == self.storage):
                    self._values = np.load(self.partial / "values.npy", mmap_mode="r+")
                    self._valid = np.load(self.partial / "valid.npy", mmap_mode="r+")
                    if self._values.shape == (self.num_items, self.dim) and self._valid.shape == (self.num_items,):
                        self.done = int(state["done"])
                        return self.done
            except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
                warnings.warn(f"cannot resume {self.partial.name} ({exc}); starting over", stacklevel=2)
            self._values = self._valid = None
        if self.partial.exists():
            shutil.rmtree(self.partial)
        self.partial.mkdir(parents=True)
        self._values = np.lib.format.open_memmap(self.partial / "values.npy", mode="w+",
                                                 dtype=STORAGE[self.storage], shape=(self.num_items, self.dim))
        self._valid = np.lib.format.open_memmap(self.partial / "valid.npy", mode="w+", dtype=np.bool_,
                                                shape=(self.num_items,))
        self.done = 0
        self._commit()
        return 0

    def _commit(self) -> None:
        _write_json(self.partial / "progress.json",
                    {"fingerprint": self.fingerprint, "num_items": self.num_items, "dim": self.dim,
                     "storage": self.storage, "done": self.done})

    def write(self, rows: np.ndarray, values: np.ndarray, valid: np.ndarray, done: int) -> None:
        """Store ``values``/``valid`` at item ``rows``, then mark the first ``done`` items final."""
        assert self._values is not None and self._valid is not None, "call open() first"
        if len(rows):
            self._values[rows] = values.astype(self._values.dtype, copy=False)
            self._valid[rows] = valid
        self._values.flush()
        self._valid.flush()
        self.done = int(done)
        self._commit()

    def finish(self, meta: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        """Seal the entry (atomic rename) and return it as from :meth:`load`."""
        if self.done != self.num_items:
            raise DataError(f"feature cache {self.partial} is incomplete ({self.done}/{self.num_items})")
        assert self._values is not None and self._valid is not None
        self._values.flush()
        self._valid.flush()
        self._values = self._valid = None
        _write_json(self.partial / "meta.json", {**meta, "fingerprint": self.fingerprint,
                                                 "num_items": self.num_items, "dim": self.dim,
                                                 "storage": self.storage})
        (self.partial / "progress.json").unlink()
        if self.final.exists():  # another process finished the same entry first
            shutil.rmtree(self.partial)
        else:
            os.replace(self.partial, self.final)
        out = self.load()
        if out is None:
            raise DataError(f"feature cache entry {self.final} could not be read back after writing")
        return out

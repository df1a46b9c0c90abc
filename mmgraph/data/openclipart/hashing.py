"""Content hashes: the identity of an item and the seeded, order-free tie-breakers.

Every choice in the construction (node order, duplicate representative, twin cap, creator
rings, keyword tie-breaks) is made on these, never on the file path, which names the category.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np


def sha1_file(path: Path) -> str:
    """The SHA-1 hex digest of a file's bytes (read in 1 MiB chunks)."""
    h = hashlib.sha1()
    with open(path, "rb") as fp:
        for chunk in iter(lambda: fp.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def seeded_hash(keys: Sequence[str], seed: int) -> np.ndarray:
    """A seeded 63-bit hash of each content key (order-free tie-breaker), ``[len(keys)]`` int64."""
    return np.array([int.from_bytes(hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=8).digest(),
                                    "big") >> 1 for k in keys], dtype=np.int64)

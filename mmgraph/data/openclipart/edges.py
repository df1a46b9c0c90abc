"""The relations: ``same_creator`` and ``shares_keyword`` between items, and keyword nodes.

Every edge list is undirected (both directions stored), sorted, without self loops or
duplicates; every choice is ordered by a seeded hash of the content keys, never by path.
"""
from __future__ import annotations

import math
import re
from collections import defaultdict

import numpy as np
import torch

#: Creator names that do not identify anyone: they make no ``same_creator`` edges.
PLACEHOLDER_CREATORS = frozenset({"", "unknown", "anonymous", "none", "n/a"})


def creator_key(name: str) -> str:
    """Creators compare case-insensitively with whitespace collapsed."""
    return re.sub(r"\s+", " ", name).strip().casefold()


def undirected(pairs: np.ndarray, n: int) -> torch.Tensor:
    """[2, E] both directions, sorted, unique, no self loops, from an [P, 2] pair array."""
    if pairs.size == 0:
        return torch.empty(2, 0, dtype=torch.long)
    a, b = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    keep = a != b
    a, b = a[keep], b[keep]
    keys = np.unique(np.concatenate([a * n + b, b * n + a]))
    return torch.from_numpy(np.stack([keys // n, keys % n]))


def creator_pairs(creators: list[str], rnd: np.ndarray, k: int) -> np.ndarray:
    """[P, 2] pairs of items by one creator: a clique up to ``k + 1`` items, else a ring
    lattice in ``rnd`` order linking each item to its ``k // 2`` successors."""
    groups: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(creators):
        if c not in PLACEHOLDER_CREATORS:
            groups[c].append(i)
    half = k // 2
    out = []
    for members in groups.values():
        m = len(members)
        if m < 2 or k < 1:
            continue
        idx = np.array(members)[np.argsort(rnd[members], kind="stable")]
        if m <= k + 1:
            iu = np.triu_indices(m, 1)
            out.append(np.stack([idx[iu[0]], idx[iu[1]]], 1))
        elif half > 0:
            pos = np.arange(m)
            for d in range(1, half + 1):
                out.append(np.stack([idx[pos], idx[(pos + d) % m]], 1))
    return np.concatenate(out) if out else np.empty((0, 2), dtype=np.int64)


def keyword_pairs(kw_nodes: dict[str, list[int]], n: int, rnd: np.ndarray, k: int,
                  max_df: int) -> tuple[np.ndarray, int]:
    """Greedy degree-bounded keyword pairs ``[P, 2]``; also returns the number of keywords used.

    Pairs sharing keywords of document frequency in ``[2, max_df]`` are scored by the sum of
    the shared keywords' IDF and accepted by score while both ends have fewer than ``k``.
    """
    src, dst, wts = [], [], []
    used = 0
    for kw in sorted(kw_nodes):
        members = np.array(sorted(set(kw_nodes[kw])), dtype=np.int64)
        df = members.size
        if df < 2 or df > max_df:
            continue
        used += 1
        iu = np.triu_indices(df, 1)
        src.append(members[iu[0]])
        dst.append(members[iu[1]])
        wts.append(np.full(iu[0].size, math.log(n / df)))
    if not src or k < 1:
        return np.empty((0, 2), dtype=np.int64), used
    keys = np.concatenate(src) * n + np.concatenate(dst)
    uniq, inv = np.unique(keys, return_inverse=True)
    score = np.round(np.bincount(inv, weights=np.concatenate(wts)), 9)
    a, b = uniq // n, uniq % n
    # A symmetric seeded pair hash (splitmix-style finaliser of r_a xor r_b) breaks ties.
    with np.errstate(over="ignore"):
        t = (rnd[a] ^ rnd[b]).astype(np.uint64)
        t = (t ^ (t >> np.uint64(31))) * np.uint64(0xBF58476D1CE4E5B9)
        t = t ^ (t >> np.uint64(29))
    order = np.lexsort((t, -score))
    deg = np.zeros(n, dtype=np.int64)
    chosen = []
    for i in order.tolist():
        u, v = int(a[i]), int(b[i])
        if deg[u] < k and deg[v] < k:
            deg[u] += 1
            deg[v] += 1
            chosen.append(i)
    chosen = np.array(chosen, dtype=np.int64)
    return np.stack([a[chosen], b[chosen]], 1), used


def keyword_links(kw_nodes: dict[str, list[int]], keywords: list[list[str]], n: int,
                  min_df: int) -> tuple[list[str], torch.Tensor, torch.Tensor]:
    """Keyword nodes (the sorted keywords of at least ``min_df`` items) and their edges:
    ``has_keyword`` ``[2, E]`` sorted by item, ``keyword_of`` ``[2, E]`` sorted by keyword."""
    vocab = sorted(w for w, m in kw_nodes.items() if len(m) >= min_df)
    vid = {w: j for j, w in enumerate(vocab)}
    hk = sorted((i, vid[w]) for i, kws in enumerate(keywords) for w in kws if w in vid)
    has_keyword = torch.tensor(hk, dtype=torch.long).t().reshape(2, -1)
    back = has_keyword.flip(0)
    keyword_of = back[:, torch.argsort(back[0] * max(n, 1) + back[1])]
    return vocab, has_keyword, keyword_of


def homophily(ei: torch.Tensor, y: torch.Tensor) -> float | None:
    """The share of edges whose ends have the same label (``None`` without edges)."""
    if ei.size(1) == 0:
        return None
    return round(float((y[ei[0]] == y[ei[1]]).float().mean()), 4)

"""Which items become nodes: exact duplicates merged or dropped, metadata twins capped, small
classes dropped, repeated until the set of classes is stable."""
from __future__ import annotations

from collections import Counter, defaultdict

import numpy as np

from mmgraph.data.openclipart.hashing import seeded_hash
from mmgraph.data.openclipart.metadata import Item

#: (representative item, number of byte-identical files it stands for)
Node = tuple[Item, int]


def _dedup_and_cap(items: list[Item], classes: set[str], max_twins: int | None,
                   seed: int) -> tuple[list[Node], Counter]:
    """Dedup and twin-cap the items of ``classes``: (kept nodes, stats)."""
    by_key: dict[str, list[Item]] = defaultdict(list)
    for it in items:
        if it.category in classes:
            by_key[it.key].append(it)
    stats = Counter()
    nodes: list[Node] = []
    for group in by_key.values():
        cats = {it.category for it in group}
        if len(group) > 1:
            stats["duplicate_groups"] += 1
            stats["duplicate_files"] += len(group)
        if len(cats) > 1:
            stats["ambiguous_groups_dropped"] += 1
            stats["ambiguous_files_dropped"] += len(group)
            continue
        if len(group) > 1:
            stats["merged_groups"] += 1
            stats["merged_files"] += len(group)
        rep = min(group, key=lambda it: (it.svg_sha1, it.title, it.description, it.creator,
                                         tuple(it.keywords)))
        nodes.append((rep, len(group)))
    if max_twins is not None:
        twins: dict[tuple, list[Node]] = defaultdict(list)
        for node in nodes:
            it = node[0]
            twins[(it.category, it.creator.casefold(), it.title, it.description,
                   tuple(sorted(set(it.keywords))))].append(node)
        kept = []
        for group in twins.values():
            if len(group) > max_twins:
                h = seeded_hash([n[0].key for n in group], seed)
                group = [group[i] for i in np.argsort(h, kind="stable")[:max_twins]]
                stats["twin_groups_capped"] += 1
            kept.extend(group)
        stats["twins_dropped"] = len(nodes) - len(kept)
        nodes = kept
    return nodes, stats


def select_nodes(items: list[Item], classes: set[str], max_twins: int | None,
                 min_class_size: int, seed: int) -> tuple[list[Node], set[str], Counter]:
    """The nodes, the kept classes (a subset of ``classes``) and the selection's counts.

    Duplicates and twins are resolved among the items of ``classes``; classes left with fewer
    than ``min_class_size`` nodes are dropped and the selection is redone on the rest.
    """
    classes = set(classes)
    for _ in range(len(classes) + 1):      # each pass either stops or drops a class
        nodes, stats = _dedup_and_cap(items, classes, max_twins, seed)
        sizes = Counter(it.category for it, _m in nodes)
        small = {c for c in classes if sizes[c] < min_class_size}
        if not small:
            break
        classes -= small
    return nodes, classes, stats

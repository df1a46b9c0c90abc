"""Assembling the graph from the files: nodes, text, image references, relations, statistics."""
from __future__ import annotations

import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import HeteroData

from mmgraph.data.graph import RawList, new_graph
from mmgraph.data.openclipart.dedup import select_nodes
from mmgraph.data.openclipart.download import LIBRARY_VERSION
from mmgraph.data.openclipart.edges import (PLACEHOLDER_CREATORS, creator_key, creator_pairs,
                                            homophily, keyword_links, keyword_pairs, undirected)
from mmgraph.data.openclipart.hashing import seeded_hash
from mmgraph.data.openclipart.metadata import scan
from mmgraph.data.openclipart.text import item_text, label_pattern, label_words
from mmgraph.errors import DataError

#: Version of the construction logic of this subpackage; bump it when the built graph changes.
BUILD_VERSION = "2"   # 2: the title field (a generation target)
TARGET = "clipart"


def build_graph(tree: Path, opts: dict, version: str, progress: bool) -> HeteroData:
    """The graph of the extracted ``tree`` under the validated build options ``opts``."""
    items, scanned = scan(tree, progress)
    if not items:
        raise DataError(f"no Open Clip Art items under {tree}/png or {tree}/svg; the tree is "
                        f"empty or corrupt: delete it and retry")
    if scanned.get("svg_corrupt"):
        warnings.warn(f"{scanned['svg_corrupt']} corrupt or unreadable SVG file(s) in "
                      f"{tree / 'svg'} (e.g. {scanned['_corrupt_example']}); their items keep "
                      f"empty metadata", stacklevel=3)
    excluded = set(opts["exclude_categories"])
    all_cats = sorted({it.category for it in items})
    nodes, classes, sel = select_nodes(items, {c for c in all_cats if c not in excluded},
                                       opts["max_metadata_twins"], opts["min_class_size"],
                                       opts["seed"])
    class_names = sorted(classes)
    if not class_names:
        raise DataError(f"no category of {tree} has min_class_size={opts['min_class_size']} "
                        f"items; lower min_class_size")
    cls_id = {c: i for i, c in enumerate(class_names)}
    nodes.sort(key=lambda node: node[0].key)                 # content order, never path order
    reps = [it for it, _m in nodes]
    n = len(reps)
    # The words of every folder found, not only the kept classes: folder names used as keywords
    # are filing artefacts, and the texts then do not depend on which classes are kept.
    pattern = None if opts["keep_label_words"] else label_pattern(label_words(all_cats))
    cleaned = [item_text(it.title, it.description, it.keywords, pattern) for it in reps]
    texts = [c.text for c in cleaned]
    keywords = [c.keywords for c in cleaned]

    data = new_graph("openclipart", version, TARGET, class_names,
                     source=f"Open Clip Art Library {LIBRARY_VERSION} (Debian openclipart-png/"
                            f"openclipart-svg, public domain) at {tree}",
                     image_root=str(tree / "png"), build_options=dict(opts))
    store = data[TARGET]
    store.num_nodes = n
    store.y = torch.tensor([cls_id[it.category] for it in reps], dtype=torch.long)
    store.text = RawList(texts)
    store.text_mask = torch.tensor([t is not None for t in texts], dtype=torch.bool)
    store.image = RawList(it.png for it in reps)
    store.image_mask = torch.tensor([it.png is not None for it in reps], dtype=torch.bool)
    store.content_hash = RawList(it.key for it in reps)
    store.title = RawList(c.title or None for c in cleaned)  # the generation target (label words kept)

    rnd = seeded_hash([it.key for it in reps], opts["seed"])
    creators = [creator_key(it.creator) for it in reps]
    creator_ei = undirected(creator_pairs(creators, rnd, opts["creator_k"]), n)
    kw_nodes: dict[str, list[int]] = defaultdict(list)
    for i, kws in enumerate(keywords):
        for w in kws:
            kw_nodes[w].append(i)
    max_df = max(2, int(opts["max_keyword_df"] * n))
    kw_pairs, kw_used = keyword_pairs(kw_nodes, n, rnd, opts["keyword_k"], max_df)
    keyword_ei = undirected(kw_pairs, n)
    data[TARGET, "same_creator", TARGET].edge_index = creator_ei
    data[TARGET, "shares_keyword", TARGET].edge_index = keyword_ei

    vocab, hk_ei, back = keyword_links(kw_nodes, keywords, n, opts["min_keyword_df"])
    data["keyword"].num_nodes = len(vocab)
    data["keyword"].name = RawList(vocab)
    data[TARGET, "has_keyword", "keyword"].edge_index = hk_ei
    data["keyword", "keyword_of", TARGET].edge_index = back

    y = store.y
    union = torch.cat([creator_ei, keyword_ei], 1)
    deg_union = torch.bincount(union[0], minlength=n)
    words = [len(t.split()) for t in texts if t]
    stats = {
        "files": len(items) + scanned.get("no_category", 0),
        "categories_found": all_cats,
        "excluded_categories": sorted(set(all_cats) & excluded),
        "small_categories_dropped": sorted(set(all_cats) - excluded - set(class_names)),
        "excluded_files": sum(it.category in excluded for it in items),
        "small_class_files": sum(it.category not in classes and it.category not in excluded
                                 for it in items),
        "duplicate_groups": sel["duplicate_groups"], "duplicate_files": sel["duplicate_files"],
        "merged_groups": sel["merged_groups"], "merged_files": sel["merged_files"],
        "merged_files_removed": sel["merged_files"] - sel["merged_groups"],
        "ambiguous_groups_dropped": sel["ambiguous_groups_dropped"],
        "ambiguous_files_dropped": sel["ambiguous_files_dropped"],
        "twin_groups_capped": sel["twin_groups_capped"], "twins_dropped": sel["twins_dropped"],
        "nodes": n,
        "per_class": {c: int((y == i).sum()) for i, c in enumerate(class_names)},
        "png_missing": int((~store.image_mask).sum()),
        "svg_missing": sum(it.svg_status == "missing" for it in reps),
        "svg_corrupt": sum(it.svg_status == "corrupt" for it in reps),
        "svg_corrupt_files": scanned.get("svg_corrupt", 0),
        "junk_descriptions_dropped": sum(c.junk_description for c in cleaned),
        "nodes_with_label_words_removed": sum(c.label_words_removed for c in cleaned),
        "empty_text": int((~store.text_mask).sum()),
        "distinct_texts": len({t for t in texts if t}),
        "text_words_mean": round(float(np.mean(words)), 2) if words else 0.0,
        "text_words_median": float(np.median(words)) if words else 0.0,
        "creators": len({c for c in creators if c not in PLACEHOLDER_CREATORS}),
        "keyword_nodes": len(vocab),
        "keywords_distinct": len(kw_nodes),
        "keywords_used_for_edges": kw_used,
        "max_keyword_df_nodes": max_df,
        "edges": {}, "edge_homophily": {}, "isolated": {}, "max_degree": {},
    }
    for rel, ei in (("same_creator", creator_ei), ("shares_keyword", keyword_ei)):
        deg = torch.bincount(ei[0], minlength=n)
        stats["edges"][rel] = int(ei.size(1))
        stats["edge_homophily"][rel] = homophily(ei, y)
        stats["isolated"][rel] = int((deg == 0).sum())
        stats["max_degree"][rel] = int(deg.max()) if n else 0
    merged = torch.unique(union[0] * n + union[1])
    merged_ei = torch.stack([merged // n, merged % n])
    stats["edges"]["merged"] = int(merged_ei.size(1))
    stats["edge_homophily"]["merged"] = homophily(merged_ei, y)
    stats["isolated"]["merged"] = int((deg_union == 0).sum())
    stats["edges"]["has_keyword"] = int(hk_ei.size(1))
    data.meta["stats"] = stats
    return data

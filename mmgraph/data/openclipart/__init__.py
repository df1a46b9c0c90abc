r"""Open Clip Art Library 0.18 as a multimodal attributed graph (``dataset=openclipart``).

Source: the Debian packages ``openclipart-png`` and ``openclipart-svg`` (public domain). Both
hold the same 8,121 items as ``<png|svg>/<category>/[<sub>/...]<name>.<ext>``; a PNG and its
SVG share the path stem. The SVG's RDF metadata gives a title, a description, keywords
(``dc:subject`` / ``rdf:Bag`` / ``rdf:li``) and a creator (``dc:creator`` / ``cc:Agent`` /
``dc:title``). The top-level folder is the label.

**Nodes** (type ``clipart``, the target): one per kept item, in the order of the SHA-1 of the
PNG bytes (of the SVG bytes where the PNG is missing), never in path order: paths contain the
category folder. Construction, in order:

1. Items of ``exclude_categories`` (default ``unsorted``: not a category) are left out.
2. *Exact duplicates* (byte-identical PNGs; Debian stores many as symlinks): a group inside one
   category becomes one node (its metadata is that of the member with the smallest SVG
   SHA-1); a group spanning several categories is dropped, its label being ambiguous.
3. *Metadata twins*: items of one category with identical creator, title, description and
   keywords (e.g. 1,375 near-identical generated stars by one creator) are capped at
   ``max_metadata_twins`` per group, chosen by a seeded hash of their content.
4. Categories with fewer than ``min_class_size`` nodes left are dropped; steps 2-4 are
   repeated on the remaining categories until the set of classes is stable.

**Text** = title, description and keywords joined (``None`` when all are empty).
Perl-reference artefacts (``HASH(0x8a0b6a8)``, the keyword ``hash``), descriptions that are
only contact addresses (e-mail or URL) and hex digests are dropped, and so is a description
that repeats the title. With ``keep_label_words=False`` the names of all category folders found
(not only the kept classes: folder names used as keywords are filing artefacts) and their variants
(:data:`LABEL_WORDS`, case-insensitive whole words, ``_`` and ``-`` count as word separators)
are removed from title, description and keywords. **Image** = the PNG path relative to
``meta["image_root"]`` (the ``png`` folder); images are never decoded here (huge PNGs are
handled by :func:`mmgraph.data.images.load_image`). Note that the path itself names the
category: use it to load the image, never as a feature.

**Relations** (undirected, both directions stored, no self loops or duplicates; every choice is
ordered by content hashes and a seeded hash, never by path):

- ``(clipart, same_creator, clipart)``: items by the same creator. A creator with at most
  ``creator_k + 1`` items gives a clique; a larger one gives a ring lattice in seeded-hash order
  where every item links to its ``creator_k // 2`` successors (degree ``2 * (creator_k // 2)``).
- ``(clipart, shares_keyword, clipart)``: pairs sharing at least one keyword whose document
  frequency is between 2 and ``max_keyword_df`` (a fraction of the nodes), scored by the sum of
  the shared keywords' IDF ``log(N / df)``; pairs are accepted greedily by score (ties by a
  seeded pair hash) while both endpoints have fewer than ``keyword_k`` neighbours.
- ``(clipart, has_keyword, keyword)`` and ``(keyword, keyword_of, clipart)``: node type
  ``keyword`` (``name`` = the keyword strings, sorted) for every keyword of at least
  ``min_keyword_df`` items (no upper cap).

One module per role: :mod:`~.download` finds, downloads and extracts the files;
:mod:`~.metadata` reads the items and their SVG metadata; :mod:`~.hashing` holds the content
hashes and seeded tie-breakers; :mod:`~.dedup` decides which items become nodes;
:mod:`~.text` cleans the texts; :mod:`~.edges` builds the relations; :mod:`~.build` assembles
the graph and its statistics. This module validates the options and caches the built graph.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from torch_geometric.data import HeteroData

from mmgraph.data.graph import fingerprint
from mmgraph.data.graph_cache import cached_graph
from mmgraph.data.openclipart.build import BUILD_VERSION, TARGET, build_graph
from mmgraph.data.openclipart.download import LIBRARY_VERSION, find_tree, tree_signature
from mmgraph.data.openclipart.text import LABEL_WORDS, label_words, remove_label_words
from mmgraph.errors import DataError

__all__ = ["load_openclipart", "LABEL_WORDS", "label_words", "remove_label_words",
           "LIBRARY_VERSION", "BUILD_VERSION", "TARGET", "SYSTEM_TREE"]

#: Where Debian installs the packages (checked when ``<root>/openclipart`` has no tree).
SYSTEM_TREE = Path("/usr/share/openclipart")


def load_openclipart(root: str | os.PathLike = "datasets", download: bool = True,
                     keep_label_words: bool = False,
                     exclude_categories: Sequence[str] = ("unsorted",),
                     min_class_size: int = 50, max_metadata_twins: int | None = 100,
                     creator_k: int = 10, keyword_k: int = 10, max_keyword_df: float = 0.05,
                     min_keyword_df: int = 2, seed: int = 0, tree: str | os.PathLike | None = None,
                     use_cache: bool = True, progress: bool = True) -> HeteroData:
    """Load the Open Clip Art graph (built once, then read from the processed cache).

    Args:
        root: data root; files live in ``<root>/openclipart`` (``usr/share/openclipart`` = the
            extracted packages, ``debs/`` = the ``.deb`` files, ``processed/`` = cached graphs).
        download: when no extracted tree, system install or ``.deb`` files exist, run
            ``apt-get download openclipart-png openclipart-svg`` (no root needed).
        keep_label_words: keep category names and their variants in the texts (leaks labels).
        exclude_categories: top-level folders that are not classes.
        min_class_size: categories with fewer nodes (after deduplication) are dropped.
        max_metadata_twins: at most this many items per category share identical creator,
            title, description and keywords (``None``: no cap).
        creator_k: neighbour bound per node of ``same_creator`` (rounded down to even for
            creators with more than ``creator_k + 1`` items).
        keyword_k: neighbour bound per node of ``shares_keyword``.
        max_keyword_df: keywords on more than this fraction of the nodes make no edges.
        min_keyword_df: keywords of fewer items get no ``keyword`` node.
        seed: seeds every hash-based choice (twin cap, creator rings, keyword tie-breaks).
        tree: an already extracted folder holding ``png/`` and ``svg/`` (overrides the lookup).
        use_cache: read/write ``<root>/openclipart/processed/<fingerprint>.pt``.
        progress: show a progress bar while reading files (only on a terminal).

    Returns:
        A ``HeteroData`` with target node type ``clipart``, node type ``keyword`` and the
        relations ``same_creator``, ``shares_keyword``, ``has_keyword``, ``keyword_of``.

    Raises:
        DataError: files missing or corrupt, or download/extraction failed (one-line message).
    """
    if isinstance(min_class_size, bool) or int(min_class_size) < 1:
        raise DataError(f"min_class_size must be a positive integer; got {min_class_size!r}")
    if max_metadata_twins is not None and int(max_metadata_twins) < 1:
        raise DataError(f"max_metadata_twins must be positive or null; got {max_metadata_twins!r}")
    if int(creator_k) < 0 or int(keyword_k) < 0:
        raise DataError(f"creator_k and keyword_k must be >= 0; got {creator_k}, {keyword_k}")
    if not 0 < float(max_keyword_df) <= 1:
        raise DataError(f"max_keyword_df must be a fraction in (0, 1]; got {max_keyword_df!r}")
    opts = {"keep_label_words": bool(keep_label_words),
            "exclude_categories": sorted(str(c) for c in (exclude_categories or ())),
            "min_class_size": int(min_class_size),
            "max_metadata_twins": None if max_metadata_twins is None else int(max_metadata_twins),
            "creator_k": int(creator_k), "keyword_k": int(keyword_k),
            "max_keyword_df": float(max_keyword_df), "min_keyword_df": int(min_keyword_df),
            "seed": int(seed)}
    version = f"oca-{LIBRARY_VERSION}/build-{BUILD_VERSION}/{fingerprint(opts)}"
    base = Path(root).expanduser().resolve() / "openclipart"
    tree_path = find_tree(base, tree, download, SYSTEM_TREE)
    key = fingerprint({"version": version, "tree": tree_signature(tree_path)})
    return cached_graph(base / "processed" / f"{key}.pt", version, use_cache,
                        lambda: build_graph(tree_path, opts, version, progress))



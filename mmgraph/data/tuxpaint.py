r"""Tux Paint's default stamps as a multimodal graph (``load_tuxpaint``).

Source: the Debian package ``tuxpaint-stamps-default`` (GPL-2), which installs
``usr/share/tuxpaint/stamps/<category>/[<sub>/...]<name>.<ext>``. A stamp is an image
``<name>.png`` and/or ``<name>.svg`` (Tux Paint prefers the SVG, the PNG being its fallback);
beside it ``<name>.txt`` holds the description, ``<name>.dat`` options (``colorable``,
``noflip``, ``scale 25%``, ...), and ``.ogg`` files its sounds. ``<name>_mirror.png`` and
``<name>_flip.png`` are alternate images of the stamp ``<name>``, not stamps.

A description file is UTF-8: its first line is the English (C locale) description, then one
line per translation, ``<locale>.utf8=<text>`` (``fr.utf8=Une grenouille.``). A file whose
first line is already a translation has no English description.

**Nodes.** ``stamp`` (the target type), one per image stem, in the order of the SHA-1 of the
image bytes (ties by path), never in path order (paths name the category):

- ``text``: the English description, whitespace collapsed (``None`` when the ``.txt`` is
  missing, unreadable, empty or has only translations), ``text_mask``;
- ``image``: the PNG's path relative to ``meta["image_root"]`` (the ``stamps`` folder), the
  SVG's where there is no PNG; ``image_mask``;
- ``category`` (the folder path, ``"animals/birds"``; ``""`` for a stamp in the root), ``name``
  (the file stem), ``content_hash`` (SHA-1 of the image, ``"svg:"``-prefixed for an SVG),
  ``options`` (the ``.dat`` lines, a list of strings), all :class:`RawList`.

``category``: one node per folder below the root (also folders that hold only sounds), sorted
by path; ``name`` = the folder's name, ``path`` = its path, ``text`` = the path in words
(``"animals / birds"``; a neighbour text for generation), ``depth`` (1 for a top-level folder).

**Relations.** ``(category, subcategory_of, category)``: each folder to its parent folder (none
for top-level folders). ``(stamp, in_category, category)`` and ``(category, has_stamp, stamp)``:
each stamp and the folder that holds it. ``(stamp, same_category, stamp)``: undirected, between
stamps of the same folder; a folder of at most ``same_category_k + 1`` stamps gives a clique,
a larger one a ring lattice in seeded-content-hash order where each stamp links to its
``same_category_k // 2`` successors (degree ``2 * (same_category_k // 2)``); deterministic for a
given ``seed``. Stamps in the root folder get no ``same_category`` edges.
"""
from __future__ import annotations

import gzip
import os
import re
import warnings
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch_geometric.data import HeteroData

from mmgraph.data.graph import RawList, fingerprint, new_graph
from mmgraph.data.graph_cache import cached_graph
from mmgraph.data.openclipart.download import Layout, find_tree, tree_signature
from mmgraph.data.openclipart.edges import creator_pairs, undirected
from mmgraph.data.openclipart.hashing import seeded_hash, sha1_file
from mmgraph.errors import DataError

__all__ = ["load_tuxpaint", "english_description", "BUILD_VERSION", "TARGET", "SYSTEM_TREE",
           "PACKAGE", "LICENSE"]

#: Version of the construction logic; bump it when the built graph changes.
BUILD_VERSION = "2"   # 2: category nodes carry text (their path in words)
TARGET = "stamp"
PACKAGE = "tuxpaint-stamps-default"
LICENSE = "GPL-2.0-or-later"
#: Where Debian installs the package (checked when ``<root>/tuxpaint`` has no tree).
SYSTEM_TREE = Path("/usr/share/tuxpaint/stamps")
#: Alternate images of a stamp ``<name>``: ``<name>_mirror.png``, ``<name>_flip.png``.
ALTERNATE_SUFFIXES = ("_mirror", "_flip")
IMAGE_EXTS = (".png", ".svg")

# A translation line: ``fr.utf8=``, ``pt_BR.utf8=``, ``sr@latin.utf8=``, ``fr=`` ...
_LOCALE_LINE = re.compile(r"^[a-z]{2,3}(?:_[A-Za-z]{2,4})?(?:@[A-Za-z]+)?(?:\.utf-?8)?\s*=",
                          re.IGNORECASE)


def tree_ok(path: Path) -> bool:
    """Whether ``path`` is a stamps folder: it holds at least one category folder."""
    try:
        return path.is_dir() and any(p.is_dir() for p in path.iterdir())
    except OSError:
        return False


LAYOUT = Layout("Tux Paint stamps", (PACKAGE,), "tuxpaint/stamps", tree_ok,
                "category folders", "<category>/<name>.png")


def english_description(raw: str) -> str | None:
    """The English description of a stamp's ``.txt`` contents (``None`` if it has none)."""
    lines = [ln for ln in raw.lstrip("\ufeff").splitlines() if ln.strip()]
    if not lines or _LOCALE_LINE.match(lines[0].strip()):
        return None
    return re.sub(r"\s+", " ", lines[0]).strip() or None


@dataclass
class Stamp:
    rel: str                # path stem relative to the stamps folder, without extension
    category: str           # the folder path ("" in the root)
    image: str | None       # PNG path (SVG without PNG) relative to the stamps folder
    key: str                # content hash of the image
    text: str | None
    options: list[str]


def _package_version(tree: Path) -> str:
    """The Debian version from the package's changelog beside the tree, or ``"unknown"``."""
    log = tree.parent.parent / "doc" / PACKAGE / "changelog.Debian.gz"
    try:
        with gzip.open(log, "rt", encoding="utf-8") as fp:
            m = re.match(r"^\S+ \(([^)]+)\)", fp.readline())
        return m.group(1) if m else "unknown"
    except (OSError, EOFError, UnicodeDecodeError):
        return "unknown"


def _scan(tree: Path, progress: bool) -> tuple[list[Stamp], list[str], Counter, dict]:
    """The stamps and folders under ``tree``, with counts and an example of each problem."""
    from mmgraph.progress import track

    files: dict[str, set[str]] = defaultdict(set)      # stem -> extensions
    folders = []
    for dirpath, dirs, names in os.walk(tree):
        dirs.sort()
        rel_dir = os.path.relpath(dirpath, tree)
        if rel_dir != ".":
            folders.append(Path(rel_dir).as_posix())
        for f in names:
            stem, ext = os.path.splitext(f)
            if ext.lower() in IMAGE_EXTS + (".txt", ".dat"):
                rel = f if rel_dir == "." else f"{rel_dir}/{f}"
                files[Path(rel).with_suffix("").as_posix()].add(ext.lower())
    images = {s for s, e in files.items() if e & set(IMAGE_EXTS)}
    alternates = {s for s in images for suf in ALTERNATE_SUFFIXES
                  if s.endswith(suf) and s[: -len(suf)] in images}
    counts: Counter = Counter(alternate_images=len(alternates),
                              descriptions_without_image=sum(".txt" in e and s not in images
                                                             for s, e in files.items()))
    examples: dict[str, str] = {}
    stamps = []
    for rel in track(sorted(images - alternates), "tuxpaint: reading stamps", unit="stamp",
                     enabled=bool(progress)):
        exts = files[rel]
        counts["png_and_svg" if {".png", ".svg"} <= exts else
               "png_only" if ".png" in exts else "svg_only"] += 1
        image = rel + (".png" if ".png" in exts else ".svg")
        try:
            key = ("" if image.endswith(".png") else "svg:") + sha1_file(tree / image)
        except OSError:
            counts["image_unreadable"] += 1
            examples.setdefault("image_unreadable", image)
            image, key = None, "unreadable:" + rel
        text = None
        if ".txt" not in exts:
            counts["txt_missing"] += 1
            examples.setdefault("no_english", rel + ".txt (missing)")
        else:
            try:
                text = english_description((tree / f"{rel}.txt").read_bytes().decode("utf-8"))
                if text is None:
                    counts["txt_without_english"] += 1
                    examples.setdefault("no_english", rel + ".txt")
            except (OSError, UnicodeDecodeError):
                counts["txt_unreadable"] += 1
                examples.setdefault("txt_unreadable", rel + ".txt")
        options: list[str] = []
        if ".dat" in exts:
            try:
                options = [ln.strip() for ln in (tree / f"{rel}.dat").read_text(
                    "utf-8", errors="replace").splitlines() if ln.strip()]
            except OSError:
                counts["dat_unreadable"] += 1
        category = rel.rsplit("/", 1)[0] if "/" in rel else ""
        stamps.append(Stamp(rel, category, image, key, text, options))
    return stamps, folders, counts, examples


def _warn(counts: Counter, examples: dict, n: int, tree: Path) -> None:
    no_english = counts["txt_missing"] + counts["txt_without_english"]
    if no_english:
        warnings.warn(f"{no_english} of {n} Tux Paint stamps have no English description "
                      f"({counts['txt_missing']} without a .txt, {counts['txt_without_english']} "
                      f"with only translations or empty; e.g. {examples['no_english']}); their "
                      f"text is None", stacklevel=4)
    if counts["txt_unreadable"]:
        warnings.warn(f"{counts['txt_unreadable']} unreadable or non-UTF-8 description file(s) "
                      f"in {tree} (e.g. {examples['txt_unreadable']}); their text is None",
                      stacklevel=4)
    if counts["image_unreadable"]:
        warnings.warn(f"{counts['image_unreadable']} unreadable stamp image(s) in {tree} (e.g. "
                      f"{examples['image_unreadable']}); their image is None", stacklevel=4)


def build_graph(tree: Path, opts: dict, version: str, package_version: str,
                progress: bool) -> HeteroData:
    """The graph of the stamps folder ``tree`` under the validated options ``opts``."""
    stamps, folders, counts, examples = _scan(tree, progress)
    if not stamps:
        raise DataError(f"no stamp images (.png/.svg) under {tree}; the tree is empty or "
                        f"corrupt: delete it and retry")
    _warn(counts, examples, len(stamps), tree)
    stamps.sort(key=lambda s: (s.key, s.rel))                # content order, never path order
    n = len(stamps)
    folders = sorted(folders)
    cat_id = {c: i for i, c in enumerate(folders)}

    data = new_graph("tuxpaint", version, TARGET, [],
                     source=f"Tux Paint stamps (Debian {PACKAGE} {package_version}) at {tree}",
                     license=LICENSE, package_version=package_version,
                     image_root=str(tree), build_options=dict(opts))
    store = data[TARGET]
    store.num_nodes = n
    texts = [s.text for s in stamps]
    store.text = RawList(texts)
    store.text_mask = torch.tensor([t is not None for t in texts], dtype=torch.bool)
    store.image = RawList(s.image for s in stamps)
    store.image_mask = torch.tensor([s.image is not None for s in stamps], dtype=torch.bool)
    store.category = RawList(s.category for s in stamps)
    store.name = RawList(s.rel.rsplit("/", 1)[-1] for s in stamps)
    store.content_hash = RawList(s.key for s in stamps)
    store.options = RawList(s.options for s in stamps)

    cats = data["category"]
    cats.num_nodes = len(folders)
    cats.name = RawList(c.rsplit("/", 1)[-1] for c in folders)
    cats.path = RawList(folders)
    cats.text = RawList(c.replace("/", " / ").replace("_", " ") for c in folders)  # "animals / birds"
    cats.text_mask = torch.ones(len(folders), dtype=torch.bool)
    depth = torch.tensor([c.count("/") + 1 for c in folders], dtype=torch.long)
    cats.depth = depth
    child = [cat_id[c] for c in folders if "/" in c]
    parent = [cat_id[c.rsplit("/", 1)[0]] for c in folders if "/" in c]
    data["category", "subcategory_of", "category"].edge_index = torch.tensor(
        [child, parent], dtype=torch.long).view(2, -1)
    placed = [(i, cat_id[s.category]) for i, s in enumerate(stamps) if s.category]
    ic = torch.tensor(placed, dtype=torch.long).view(-1, 2).t().contiguous()
    data[TARGET, "in_category", "category"].edge_index = ic
    data["category", "has_stamp", TARGET].edge_index = ic.flip(0)
    rnd = seeded_hash([s.key for s in stamps], opts["seed"])
    # creator_pairs groups by a key, skipping "" (stamps in the root): here the folder path
    same = undirected(creator_pairs([s.category for s in stamps], rnd, opts["same_category_k"]), n)
    data[TARGET, "same_category", TARGET].edge_index = same

    words = [len(t.split()) for t in texts if t]
    text_counts = Counter(t for t in texts if t)
    key_counts = Counter(s.key for s in stamps if s.image)
    per_folder = Counter(s.category for s in stamps)
    deg = torch.bincount(same[0], minlength=n)
    data.meta["stats"] = {
        "stamps": n,
        "with_english": int(store.text_mask.sum()),
        "without_english": int((~store.text_mask).sum()),
        "txt_missing": counts["txt_missing"],
        "txt_without_english": counts["txt_without_english"],
        "txt_unreadable": counts["txt_unreadable"],
        "png_only": counts["png_only"], "svg_only": counts["svg_only"],
        "png_and_svg": counts["png_and_svg"],
        "image_unreadable": counts["image_unreadable"],
        "alternate_images_skipped": counts["alternate_images"],
        "descriptions_without_image": counts["descriptions_without_image"],
        "with_options": sum(bool(s.options) for s in stamps),
        "categories": len(folders),
        "top_level_categories": int((depth == 1).sum()),
        "max_depth": int(depth.max()) if len(folders) else 0,
        "categories_with_stamps": sum(1 for c in per_folder if c),
        "stamps_in_root": per_folder.get("", 0),
        "stamp_depth_mean": round(float(np.mean([s.category.count("/") + 1 if s.category else 0
                                                 for s in stamps])), 2),
        "text_words_mean": round(float(np.mean(words)), 2) if words else 0.0,
        "text_words_median": float(np.median(words)) if words else 0.0,
        "distinct_texts": len(text_counts),
        "duplicated_texts": sum(c > 1 for c in text_counts.values()),
        "stamps_with_duplicated_text": sum(c for c in text_counts.values() if c > 1),
        "duplicate_image_groups": sum(c > 1 for c in key_counts.values()),
        "edges": {"subcategory_of": len(child), "in_category": int(ic.size(1)),
                  "same_category": int(same.size(1))},
        "same_category_max_degree": int(deg.max()) if n else 0,
        "same_category_isolated": int((deg == 0).sum()),
    }
    return data


def load_tuxpaint(root: str | os.PathLike = "datasets", download: bool = True,
                  tree: str | os.PathLike | None = None, progress: bool = True,
                  same_category_k: int = 10, seed: int = 0,
                  use_cache: bool = True) -> HeteroData:
    """Load the Tux Paint stamps graph (built once, then read from the processed cache).

    Args:
        root: data root; files live in ``<root>/tuxpaint`` (``usr/share/tuxpaint/stamps`` = the
            extracted package, ``debs/`` = the ``.deb`` file, ``processed/`` = cached graphs).
        download: when no extracted tree, system install or ``.deb`` file exists, run
            ``apt-get download tuxpaint-stamps-default`` (no root needed).
        tree: an already extracted stamps folder (overrides the lookup).
        progress: show progress while reading the files.
        same_category_k: neighbour bound per stamp of ``same_category`` (see the module).
        seed: seeds the ring order of large folders.
        use_cache: read/write ``<root>/tuxpaint/processed/<fingerprint>.pt``.

    Raises:
        DataError: files missing or corrupt, or download/extraction failed (one-line message).
    """
    if isinstance(same_category_k, bool) or int(same_category_k) < 0:
        raise DataError(f"same_category_k must be >= 0; got {same_category_k!r}")
    opts = {"same_category_k": int(same_category_k), "seed": int(seed)}
    base = Path(root).expanduser().resolve() / "tuxpaint"
    tree_path = find_tree(base, tree, download, SYSTEM_TREE, LAYOUT)
    package_version = _package_version(tree_path)
    version = f"{PACKAGE}-{package_version}/build-{BUILD_VERSION}/{fingerprint(opts)}"
    key = fingerprint({"version": version, "tree": tree_signature(tree_path, ("",))})
    return cached_graph(base / "processed" / f"{key}.pt", version, use_cache,
                        lambda: build_graph(tree_path, opts, version, package_version, progress))

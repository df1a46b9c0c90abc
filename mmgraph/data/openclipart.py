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
"""
from __future__ import annotations

import hashlib
import math
import os
import re
import shutil
import subprocess
import tempfile
import warnings
import xml.etree.ElementTree as ET
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch_geometric.data import HeteroData

from mmgraph.data.graph import RawList, fingerprint, new_graph
from mmgraph.errors import DataError

__all__ = ["load_openclipart", "LABEL_WORDS", "label_words", "remove_label_words",
           "LIBRARY_VERSION", "BUILD_VERSION"]

#: Upstream version of the Open Clip Art Library in the Debian packages.
LIBRARY_VERSION = "0.18"
#: Version of the construction logic below; bump it when the built graph changes.
BUILD_VERSION = "1"
TARGET = "clipart"
PACKAGES = ("openclipart-png", "openclipart-svg")
#: Where Debian installs the packages (checked when ``<root>/openclipart`` has no tree).
SYSTEM_TREE = Path("/usr/share/openclipart")

#: Words removed from the texts for each category (when it is a kept class), besides the
#: folder name itself: plural/singular forms and stems that name the category in other words.
LABEL_WORDS: dict[str, tuple[str, ...]] = {
    "animals": ("animals", "animal"),
    "buildings": ("buildings", "building"),
    "buttons": ("buttons", "button"),
    "computer": ("computer", "computers", "computing"),
    "containers": ("containers", "container"),
    "decorations": ("decorations", "decoration", "decorative"),
    "education": ("education", "educational"),
    "electronics": ("electronics", "electronic"),
    "food": ("food", "foods"),
    "geography": ("geography", "geographic", "geographical"),
    "logos": ("logos", "logo"),
    "office": ("office", "offices"),
    "people": ("people", "peoples", "person", "persons"),
    "plants": ("plants", "plant"),
    "recreation": ("recreation", "recreational"),
    "science": ("science", "sciences", "scientific"),
    "shapes": ("shapes", "shape"),
    "signs_and_symbols": ("signs and symbols", "signs", "sign", "symbols", "symbol"),
    "special": ("special",),
    "tools": ("tools", "tool"),
    "transportation": ("transportation", "transport", "transports"),
    "unsorted": ("unsorted",),
}

_DC = "{http://purl.org/dc/elements/1.1/}"
_RDF = "{http://www.w3.org/1999/02/22-rdf-syntax-ns#}"
_PERL_REF = re.compile(r"^(?:\s*(?:hash|array|scalar|code|ref|glob)\(0x[0-9a-f]+\)\s*)+$", re.I)
_HEX_DIGEST = re.compile(r"^\s*[0-9a-f]{16,}\s*$", re.I)
_CONTACT = re.compile(r"^(?:\s*(?:[\w.+-]+@[\w-]+(?:\.[\w-]+)+|(?:https?://|www\.)\S+)[\s,;]*)+$",
                      re.I)
#: Keywords that are artefacts of the library's metadata export, not descriptions.
ARTIFACT_KEYWORDS = frozenset({"hash"})
_PLACEHOLDER_CREATORS = frozenset({"", "unknown", "anonymous", "none", "n/a"})
_MASK64 = (1 << 64) - 1


# ----------------------------------------------------------------------------- text cleaning

def label_words(categories: Iterable[str]) -> list[str]:
    """The words and phrases removed from texts for ``categories`` (longest first).

    Known categories use :data:`LABEL_WORDS`; any other name contributes itself (underscores
    read as spaces) and its singular (trailing ``s`` removed) or plural (``s`` added).
    """
    words: set[str] = set()
    for cat in categories:
        base = cat.lower().replace("_", " ").replace("-", " ").strip()
        words.add(base)
        if cat in LABEL_WORDS:
            words.update(LABEL_WORDS[cat])
        else:
            words.add(base[:-1] if base.endswith("s") else base + "s")
    return sorted((w for w in words if w), key=lambda w: (-len(w), w))


def _label_pattern(words: Sequence[str]) -> re.Pattern | None:
    if not words:
        return None
    alts = [r"[\s_-]+".join(re.escape(p) for p in w.split()) for w in words]
    return re.compile(r"(?<![a-z0-9])(?:" + "|".join(alts) + r")(?![a-z0-9])", re.I)


def _tidy(s: str) -> str:
    s = re.sub(r"\s+([.,;:!?])", r"\1", re.sub(r"\s+", " ", s)).strip(" \t,;:-_/|")
    return s if re.search(r"[^\W_]", s) else ""


def remove_label_words(text: str, pattern: re.Pattern | None) -> str:
    """``text`` with every whole-word match of ``pattern`` removed and whitespace tidied."""
    if pattern is None or not text:
        return text
    out = pattern.sub(" ", text)
    out = re.sub(r"\(\s*\)", " ", out)
    return _tidy(out)


def _join(parts: list[str]) -> str:
    out = parts[0]
    for p in parts[1:]:
        out += (" " if out[-1] in ".!?" else ". ") + p
    return out


def _is_junk(s: str) -> bool:
    return bool(_PERL_REF.match(s) or _HEX_DIGEST.match(s) or _CONTACT.match(s))


def _keywords(raw: Iterable[str]) -> list[str]:
    """Normalised keywords: lower case, ``_`` as space, split on ``,``/``;``, artefacts out."""
    out = []
    for item in raw:
        for kw in re.split(r"[,;]", item or ""):
            kw = _tidy(kw.lower().replace("_", " "))
            if kw and kw not in ARTIFACT_KEYWORDS and not _is_junk(kw):
                out.append(kw)
    return out


# ----------------------------------------------------------------------------- files

def _tree_ok(path: Path) -> bool:
    return (path / "png").is_dir() and (path / "svg").is_dir()


def _find_debs(debs: Path) -> dict[str, Path] | None:
    found = {}
    for pkg in PACKAGES:
        cands = sorted(debs.glob(f"{pkg}_*.deb")) if debs.is_dir() else []
        if not cands:
            return None
        found[pkg] = cands[-1]
    return found


def _run(cmd: list[str], cwd: Path, what: str, hint: str) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    except OSError as exc:
        raise DataError(f"cannot run {cmd[0]} to {what} ({exc.strerror or exc}); {hint}") from exc
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout or "").splitlines() if ln.strip()]
        detail = lines[-1].strip() if lines else f"exit status {proc.returncode}"
        raise DataError(f"{' '.join(cmd[:2])} failed to {what} ({detail}); {hint}")


def _obtain(base: Path, download: bool) -> Path:
    """The folder that holds ``png/`` and ``svg/``, extracting or downloading if needed."""
    tree = base / "usr" / "share" / "openclipart"
    if _tree_ok(tree):
        return tree
    if _tree_ok(SYSTEM_TREE):
        return SYSTEM_TREE
    debs_dir = base / "debs"
    hint = (f"place openclipart-png_*.deb and openclipart-svg_*.deb in {debs_dir}, or extract "
            f"them yourself (dpkg-deb -x FILE {base}), or install them (apt-get install "
            f"{' '.join(PACKAGES)})")
    debs = _find_debs(debs_dir)
    if debs is None:
        if not download:
            raise DataError(f"Open Clip Art files not found in {tree} or {SYSTEM_TREE} and "
                            f"download=false; {hint}")
        debs_dir.mkdir(parents=True, exist_ok=True)
        how = "run `apt-get update` first (needs the Debian/Ubuntu archive), or " + hint
        try:
            _run(["apt-get", "download", *PACKAGES], debs_dir, "download the Open Clip Art packages", how)
        except DataError:
            if not (hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get")):
                raise
            # as root on a fresh machine the package lists may be empty or stale: refresh once
            _run(["apt-get", "update", "-qq"], debs_dir, "refresh the package lists", how)
            _run(["apt-get", "download", *PACKAGES], debs_dir, "download the Open Clip Art packages", how)
        debs = _find_debs(debs_dir)
        if debs is None:
            raise DataError(f"apt-get download left no .deb files in {debs_dir}; {hint}")
    if (base / "usr").exists():
        raise DataError(f"{base / 'usr'} exists but has no png/ and svg/ folders under "
                        f"share/openclipart; delete it and retry")
    tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=base))
    try:
        for deb in debs.values():
            _run(["dpkg-deb", "-x", str(deb), str(tmp)], base, f"extract {deb.name}",
                 "the .deb may be corrupt: delete it and retry, or " + hint)
        if not _tree_ok(tmp / "usr" / "share" / "openclipart"):
            raise DataError(f"the packages in {debs_dir} do not contain usr/share/openclipart/"
                            f"{{png,svg}}; {hint}")
        os.rename(tmp / "usr", base / "usr")   # atomic: a partial extraction is never visible
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return tree


# ----------------------------------------------------------------------------- items

@dataclass
class _Item:
    rel: str                      # path stem relative to png/ and svg/, without extension
    category: str
    png: str | None               # path relative to the png folder, None if missing
    key: str                      # content hash: sha1 of the PNG (or "svg:" + sha1 of the SVG)
    svg_sha1: str
    title: str = ""
    description: str = ""
    keywords: list[str] = field(default_factory=list)
    creator: str = ""
    svg_status: str = "ok"        # ok | missing | corrupt


def _sha1_file(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as fp:
        for chunk in iter(lambda: fp.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _parse_svg(path: Path) -> tuple[str, str, list[str], str]:
    """(title, description, keywords, creator) from the SVG's ``cc:Work`` RDF metadata."""
    title = desc = creator = ""
    kws: list[str] = []
    stack: list[str] = []
    for event, el in ET.iterparse(path, events=("start", "end")):
        if event == "start":
            stack.append(el.tag)
            continue
        stack.pop()
        tag = el.tag
        if tag == _RDF + "RDF":
            break                              # the rest of the file is drawing
        parent = stack[-1] if stack else ""
        if tag == _DC + "title" and parent.endswith("}Work"):
            title = (el.text or "").strip()
        elif tag == _DC + "description" and parent.endswith("}Work"):
            desc = (el.text or "").strip()
        elif tag == _RDF + "li" and _DC + "subject" in stack:
            kws.append((el.text or "").strip())
        elif tag == _DC + "title" and _DC + "creator" in stack:
            creator = (el.text or "").strip()
    return title, desc, kws, creator


def _scan(tree: Path, progress: bool) -> tuple[list[_Item], Counter]:
    from tqdm.auto import tqdm

    stems: dict[str, set[str]] = defaultdict(set)
    for kind in ("png", "svg"):
        top = tree / kind
        for dirpath, _dirs, files in os.walk(top):
            for f in files:
                if f.lower().endswith("." + kind):
                    rel = os.path.relpath(os.path.join(dirpath, f), top)[: -len(kind) - 1]
                    stems[rel.replace(os.sep, "/")].add(kind)
    counts: Counter = Counter()
    items = []
    # Iterating in sorted path order only fixes the order of work; nothing downstream uses it.
    for rel in tqdm(sorted(stems), desc="openclipart: reading files", unit="item",
                    disable=None if progress else True):
        parts = rel.split("/")
        if len(parts) < 2:                     # a file directly under png/: no category
            counts["no_category"] += 1
            continue
        png_path, svg_path = tree / "png" / f"{rel}.png", tree / "svg" / f"{rel}.svg"
        has_png = "png" in stems[rel] and png_path.is_file()   # is_file: no dangling links
        has_svg = "svg" in stems[rel] and svg_path.is_file()
        try:
            png_sha1 = _sha1_file(png_path) if has_png else None
            svg_sha1 = _sha1_file(svg_path) if has_svg else ""
        except OSError as exc:
            raise DataError(f"cannot read {png_path if has_png else svg_path}: "
                            f"{exc.strerror or exc}") from exc
        if png_sha1 is None and not has_svg:
            continue
        item = _Item(rel=rel, category=parts[0], png=f"{rel}.png" if has_png else None,
                     key=png_sha1 or f"svg:{svg_sha1}", svg_sha1=svg_sha1)
        if not has_png:
            counts["png_missing"] += 1
        if not has_svg:
            item.svg_status = "missing"
            counts["svg_missing"] += 1
        else:
            try:
                item.title, item.description, item.keywords, item.creator = _parse_svg(svg_path)
            except (ET.ParseError, UnicodeDecodeError, ValueError) as exc:
                item.svg_status = "corrupt"
                counts["svg_corrupt"] += 1
                counts.setdefault("_corrupt_example", f"{rel}.svg: {str(exc).splitlines()[0]}")
        items.append(item)
    return items, counts


def _seeded(keys: Sequence[str], seed: int) -> np.ndarray:
    """A seeded 63-bit hash of each content key (order-free tie-breaker)."""
    return np.array([int.from_bytes(hashlib.blake2b(f"{seed}:{k}".encode(), digest_size=8).digest(),
                                    "big") >> 1 for k in keys], dtype=np.int64)


def _select(items: list[_Item], classes: set[str], max_twins: int | None, seed: int):
    """Dedup and twin-cap the items of ``classes``: (kept items, stats)."""
    by_key: dict[str, list[_Item]] = defaultdict(list)
    for it in items:
        if it.category in classes:
            by_key[it.key].append(it)
    stats = Counter()
    nodes: list[tuple[_Item, int]] = []          # (representative, number of merged files)
    for key, group in by_key.items():
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
        twins: dict[tuple, list[tuple[_Item, int]]] = defaultdict(list)
        for node in nodes:
            it = node[0]
            twins[(it.category, it.creator.casefold(), it.title, it.description,
                   tuple(sorted(set(it.keywords))))].append(node)
        kept = []
        for group in twins.values():
            if len(group) > max_twins:
                h = _seeded([n[0].key for n in group], seed)
                group = [group[i] for i in np.argsort(h, kind="stable")[:max_twins]]
                stats["twin_groups_capped"] += 1
            kept.extend(group)
        stats["twins_dropped"] = len(nodes) - len(kept)
        nodes = kept
    return nodes, stats


# ----------------------------------------------------------------------------- edges

def _undirected(pairs: np.ndarray, n: int) -> torch.Tensor:
    """[2, E] both directions, sorted, unique, no self loops, from an [P, 2] pair array."""
    if pairs.size == 0:
        return torch.empty(2, 0, dtype=torch.long)
    a, b = pairs[:, 0].astype(np.int64), pairs[:, 1].astype(np.int64)
    keep = a != b
    a, b = a[keep], b[keep]
    keys = np.unique(np.concatenate([a * n + b, b * n + a]))
    return torch.from_numpy(np.stack([keys // n, keys % n]))


def _creator_edges(creators: list[str], rnd: np.ndarray, k: int) -> np.ndarray:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, c in enumerate(creators):
        if c not in _PLACEHOLDER_CREATORS:
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


def _keyword_edges(kw_nodes: dict[str, list[int]], n: int, rnd: np.ndarray, k: int,
                   max_df: int) -> tuple[np.ndarray, int]:
    """Greedy degree-bounded keyword pairs; also returns the number of keywords used."""
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


def _homophily(ei: torch.Tensor, y: torch.Tensor) -> float | None:
    if ei.size(1) == 0:
        return None
    return round(float((y[ei[0]] == y[ei[1]]).float().mean()), 4)


# ----------------------------------------------------------------------------- build

def _build(tree: Path, opts: dict, version: str, progress: bool) -> HeteroData:
    items, scan = _scan(tree, progress)
    if not items:
        raise DataError(f"no Open Clip Art items under {tree}/png or {tree}/svg; the tree is "
                        f"empty or corrupt: delete it and retry")
    if scan.get("svg_corrupt"):
        warnings.warn(f"{scan['svg_corrupt']} corrupt or unreadable SVG file(s) in {tree / 'svg'} "
                      f"(e.g. {scan['_corrupt_example']}); their items keep empty metadata",
                      stacklevel=3)
    all_cats = sorted({it.category for it in items})
    classes = {c for c in all_cats if c not in set(opts["exclude_categories"])}
    for _ in range(len(all_cats) + 1):   # drop small classes until the class set is stable
        nodes, sel = _select(items, classes, opts["max_metadata_twins"], opts["seed"])
        sizes = Counter(it.category for it, _m in nodes)
        small = {c for c in classes if sizes[c] < opts["min_class_size"]}
        if not small:
            break
        classes -= small
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
    pattern = None if opts["keep_label_words"] else _label_pattern(label_words(all_cats))

    texts, keywords, junk_desc, label_hits = [], [], 0, 0
    for it in reps:
        title = _tidy(it.title.replace("_", " "))
        desc = it.description.strip()
        if desc and _is_junk(desc):
            junk_desc += 1
            desc = ""
        if title and _is_junk(title):
            title = ""
        kws = _keywords(it.keywords)
        if pattern is not None:
            before = (title, desc, kws)
            title, desc = remove_label_words(title, pattern), remove_label_words(desc, pattern)
            kws = [w for w in (remove_label_words(x, pattern) for x in kws) if w]
            label_hits += before != (title, desc, kws)
        if desc and desc.casefold().rstrip(".") == title.casefold().rstrip("."):
            desc = ""                            # a description that repeats the title
        kws = list(dict.fromkeys(kws))           # unique, first occurrence order
        keywords.append(kws)
        parts = [p for p in (title, desc) if p]
        if kws:
            parts.append("keywords: " + ", ".join(kws))
        texts.append(_join(parts) if parts else None)

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

    rnd = _seeded([it.key for it in reps], opts["seed"])
    creators = [re.sub(r"\s+", " ", it.creator).strip().casefold() for it in reps]
    creator_ei = _undirected(_creator_edges(creators, rnd, opts["creator_k"]), n)
    kw_nodes: dict[str, list[int]] = defaultdict(list)
    for i, kws in enumerate(keywords):
        for w in kws:
            kw_nodes[w].append(i)
    max_df = max(2, int(opts["max_keyword_df"] * n))
    kw_pairs, kw_used = _keyword_edges(kw_nodes, n, rnd, opts["keyword_k"], max_df)
    keyword_ei = _undirected(kw_pairs, n)
    data[TARGET, "same_creator", TARGET].edge_index = creator_ei
    data[TARGET, "shares_keyword", TARGET].edge_index = keyword_ei

    vocab = sorted(w for w, m in kw_nodes.items() if len(m) >= opts["min_keyword_df"])
    vid = {w: j for j, w in enumerate(vocab)}
    hk = sorted((i, vid[w]) for i, kws in enumerate(keywords) for w in kws if w in vid)
    hk_ei = torch.tensor(hk, dtype=torch.long).t().reshape(2, -1)
    data["keyword"].num_nodes = len(vocab)
    data["keyword"].name = RawList(vocab)
    data[TARGET, "has_keyword", "keyword"].edge_index = hk_ei
    back = hk_ei.flip(0)
    back = back[:, torch.argsort(back[0] * max(n, 1) + back[1])]      # sorted by keyword
    data["keyword", "keyword_of", TARGET].edge_index = back

    y = store.y
    union = torch.cat([creator_ei, keyword_ei], 1)
    deg_union = torch.bincount(union[0], minlength=n)
    words = [len(t.split()) for t in texts if t]
    stats = {
        "files": len(items) + scan.get("no_category", 0),
        "categories_found": all_cats,
        "excluded_categories": sorted(set(all_cats) & set(opts["exclude_categories"])),
        "small_categories_dropped": sorted(set(all_cats) - set(opts["exclude_categories"])
                                           - set(class_names)),
        "excluded_files": sum(it.category in opts["exclude_categories"] for it in items),
        "small_class_files": sum(it.category not in classes and it.category not in
                                 opts["exclude_categories"] for it in items),
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
        "svg_corrupt_files": scan.get("svg_corrupt", 0),
        "junk_descriptions_dropped": junk_desc,
        "nodes_with_label_words_removed": label_hits,
        "empty_text": int((~store.text_mask).sum()),
        "distinct_texts": len({t for t in texts if t}),
        "text_words_mean": round(float(np.mean(words)), 2) if words else 0.0,
        "text_words_median": float(np.median(words)) if words else 0.0,
        "creators": len({c for c in creators if c not in _PLACEHOLDER_CREATORS}),
        "keyword_nodes": len(vocab),
        "keywords_distinct": len(kw_nodes),
        "keywords_used_for_edges": kw_used,
        "max_keyword_df_nodes": max_df,
        "edges": {}, "edge_homophily": {}, "isolated": {}, "max_degree": {},
    }
    for rel, ei in (("same_creator", creator_ei), ("shares_keyword", keyword_ei)):
        deg = torch.bincount(ei[0], minlength=n)
        stats["edges"][rel] = int(ei.size(1))
        stats["edge_homophily"][rel] = _homophily(ei, y)
        stats["isolated"][rel] = int((deg == 0).sum())
        stats["max_degree"][rel] = int(deg.max()) if n else 0
    merged = torch.unique(union[0] * n + union[1])
    merged_ei = torch.stack([merged // n, merged % n])
    stats["edges"]["merged"] = int(merged_ei.size(1))
    stats["edge_homophily"]["merged"] = _homophily(merged_ei, y)
    stats["isolated"]["merged"] = int((deg_union == 0).sum())
    stats["edges"]["has_keyword"] = int(hk_ei.size(1))
    data.meta["stats"] = stats
    return data


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
    if tree is not None:
        tree_path = Path(tree).expanduser()
        if not _tree_ok(tree_path):
            raise DataError(f"tree={tree_path} has no png/ and svg/ folders; point it at "
                            f".../usr/share/openclipart")
    else:
        base.mkdir(parents=True, exist_ok=True)
        tree_path = _obtain(base, download)
    key = fingerprint({"version": version, "tree": _signature(tree_path)})
    cache = base / "processed" / f"{key}.pt"
    if use_cache and cache.is_file():
        try:
            data = torch.load(cache, weights_only=False)
            if not isinstance(data, HeteroData) or data.meta.get("version") != version:
                raise ValueError("not a graph of this version")
            return data
        except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt cache
            warnings.warn(f"corrupt processed cache {cache} ({type(exc).__name__}); rebuilding",
                          stacklevel=2)
    data = _build(tree_path, opts, version, progress)
    if use_cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=cache.parent)
        os.close(fd)
        umask = os.umask(0)
        os.umask(umask)
        try:
            os.chmod(tmp, 0o666 & ~umask)            # mkstemp's 0600 -> an ordinary file mode
            torch.save(data, tmp)
            os.replace(tmp, cache)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    return data


def _signature(tree: Path) -> str:
    """A cheap identity of the extracted tree: relative paths and sizes of all files."""
    h = hashlib.blake2b(digest_size=8)
    h.update(str(tree.resolve()).encode())
    for kind in ("png", "svg"):
        top = tree / kind
        entries = []
        for dirpath, _dirs, files in os.walk(top):
            for f in files:
                p = os.path.join(dirpath, f)
                try:
                    entries.append(f"{os.path.relpath(p, top)}\0{os.stat(p).st_size}")
                except OSError:
                    entries.append(f"{os.path.relpath(p, top)}\0missing")
        for e in sorted(entries):
            h.update(e.encode())
            h.update(b"\n")
    return h.hexdigest()

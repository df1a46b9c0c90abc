r"""WikiWeb2M section summarization as prepared by MMGL (Yoon et al. 2023, github.com/minjiyoon/MMGL).

One example per target section: a small :class:`~torch_geometric.data.HeteroData` that holds the
section, its page and the neighbours MMGL gives it as context, with raw text and image paths
(no features; encoders add them later).

**Files** in ``root`` (what MMGL's ``wikiweb2m/preprocess_data.py`` writes)::

    wikiweb2m_train_large.parquet   one row per page; text values are byte strings
    wikiweb2m_val_large.parquet
    wikiweb2m_test_large.parquet
    section_id_split_large.pkl      {'train'|'val'|'test': [(page_id, section_id), ...]}
    images/{page_id}_{section_id}_{image_index}.{ext}   ext from the image URL; may be missing

Columns: ``page_id``, ``page_url``, ``page_title``, ``page_description`` (one value per page);
``section_title``, ``section_depth``, ``section_heading``, ``section_parent_index``,
``section_summary`` (the target: the section's first sentence), ``section_rest_sentence`` (the
input) with one value per section; ``image_url``, ``image_caption`` with the images of every
section. MMGL densifies the images to ``[sections, images per section]`` (padded with empty
URLs) and flattens them, then reads them back with ``reshape(num_sections, -1)``; a list of lists
(one per section) is accepted too. As in MMGL, a section's image is the first of its images
whose file exists; the caption is that image's caption.

**Splits.** ``split_source="mmgl"``: the ``(page_id, section_id)`` pairs of the pickle (MMGL's
split; MMGL lists only WikiWeb2M's section-summarization samples). ``split_source="wikiweb2m"``:
every section of every page, the split being the page's ``split`` column when the files have
one, else the file the page is in. (MMGL's script fills the three files with its own page-order
split, first 400k / next 100k / next 100k pages, and does not store WikiWeb2M's ``split``
field; on files made by that script the two options therefore split pages the same way and
differ only in which sections are targets.)

**Neighbours** (MMGL's order and caps): the page (title + ", " + description); the target's
image and its caption; then, for the other sections in page order, the section's text (summary
+ ", " + rest, as MMGL does for context sections) while fewer than ``max_text_neighbors`` texts
are taken, and the section's image while fewer than ``max_image_neighbors`` images are taken,
followed by its caption while the text budget lasts. A section whose text no longer fits but
whose image does is a node with ``text`` ``None`` and ``text_mask`` false, so the image has a
section to hang on. Text neighbours are the page, the context sections with text and the
captions; both caps are hard bounds (unlike MMGL, an image whose file is missing still takes an
image slot: it is a node with ``image`` ``None`` and ``image_mask`` false, and its caption is
kept). Texts are decoded as UTF-8 and their whitespace collapsed, as in MMGL.

**Graph** (every example has every edge type, possibly empty, so examples batch together):

===============================================  ===============================================
edge type                                        meaning
===============================================  ===============================================
``(section, in_page, page)`` and reverse         the target section belongs to the page
``(page, has_section, section)``
``(section, has_image, image)`` and reverse      a section (target or context) and its image
``(image, image_of, section)``
``(section, has_caption, caption)`` and reverse  a section and its image's caption
``(caption, caption_of, section)``
``(image, captioned_by, caption)`` and reverse   an image and its caption
``(caption, describes, image)``
``(section, next, section)`` and reverse         sections ``i`` -> ``i + 1`` in page order, both
``(section, prev, section)``                     present in the example
``(section, child_of, section)`` and reverse     a section -> its ``section_parent_index`` (when
``(section, parent_of, section)``                that section is present and not itself)
===============================================  ===============================================

Node ``section``: node 0 is the target. ``text`` (the target's input text, the context
sections' summary + rest), ``text_mask``, ``title``, ``section_index`` (position in the page),
``depth``, ``heading``, ``parent_index``, ``is_target``, ``input_text`` and ``target_text``
(the target's ``section_rest_sentence`` and ``section_summary`` at node 0, ``None``
elsewhere). Node ``page``: ``text``, ``text_mask``, ``url``. Node ``image``: ``image`` (path
relative to ``meta["image_root"]`` or ``None``), ``image_mask``, ``url``, ``section_index``.
Node ``caption``: ``text``, ``text_mask``, ``section_index``. Graph attributes: ``split``,
``page_id``, ``section_id`` and ``meta`` (name, version, source, target, split source, caps).

**Bad input.** Missing files, missing columns, unreadable parquet or pickle raise a one-line
:class:`~mmgraph.errors.DataError`. Invalid UTF-8 is replaced (one counted warning), missing
image files keep ``image_mask`` false (one counted warning), examples with an empty target text
are dropped (one counted warning), and split pairs naming an unknown page or section are
skipped (one counted warning).
"""
from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path
from typing import Any

import torch
from torch_geometric.data import HeteroData

from mmgraph import checks
from mmgraph.data.graph import RawList, fingerprint, new_graph
from mmgraph.errors import DataError, first_line
from mmgraph.progress import Progress

__all__ = ["load_wikiweb2m", "load_wikiweb2m_graph", "union_graph", "WikiWeb2MExamples", "COLUMNS",
           "SPLITS", "EDGE_TYPES"]

VERSION = "mmgl-wikiweb2m-large"
SOURCE = ("WikiWeb2M (Burns et al. 2023, github.com/google-research-datasets/wit) as prepared "
          "by MMGL (Yoon et al. 2023, github.com/minjiyoon/MMGL)")
SPLITS = ("train", "val", "test")
PAGE_COLUMNS = ("page_id", "page_url", "page_title", "page_description")
SECTION_COLUMNS = ("section_title", "section_depth", "section_heading", "section_parent_index",
                   "section_summary", "section_rest_sentence")
IMAGE_COLUMNS = ("image_url", "image_caption")
COLUMNS = PAGE_COLUMNS + SECTION_COLUMNS + IMAGE_COLUMNS
SPLIT_FILE = "section_id_split_large.pkl"
EDGE_TYPES = (("section", "in_page", "page"), ("page", "has_section", "section"),
              ("section", "has_image", "image"), ("image", "image_of", "section"),
              ("section", "has_caption", "caption"), ("caption", "caption_of", "section"),
              ("image", "captioned_by", "caption"), ("caption", "describes", "image"),
              ("section", "next", "section"), ("section", "prev", "section"),
              ("section", "child_of", "section"), ("section", "parent_of", "section"))
_REVERSE = {"in_page": "has_section", "has_image": "image_of", "has_caption": "caption_of",
            "captioned_by": "describes", "next": "prev", "child_of": "parent_of"}


def parquet_name(split: str) -> str:
    """The file name MMGL gives the pages of ``split``."""
    return f"wikiweb2m_{split}_large.parquet"


class WikiWeb2MExamples(list):
    """The examples (one :class:`HeteroData` per target section), in split order.

    A plain ``list`` with ``meta`` (the data set's name, version, source, split source, caps,
    files fingerprint and the number of examples per split) and :meth:`split`.
    """

    def __init__(self, examples=(), meta: dict | None = None):
        super().__init__(examples)
        self.meta = dict(meta or {})

    def split(self, name: str) -> list[HeteroData]:
        """The examples of split ``name`` (``train``, ``val`` or ``test``)."""
        checks.choice("split", name, SPLITS)
        return [ex for ex in self if ex.split == name]

    def counts(self) -> dict[str, int]:
        """The number of examples per split."""
        out = dict.fromkeys(SPLITS, 0)
        for ex in self:
            out[ex.split] += 1
        return out


# ----------------------------------------------------------------------------- reading


class _Counts:
    """Problems counted while loading, reported as one warning line each at the end."""

    def __init__(self):
        self.replaced = 0          # text values with invalid UTF-8
        self.missing_images = 0    # section images whose file is not on disk
        self.empty_targets = 0     # dropped examples
        self.unknown_ids = 0       # split pairs naming no page / section

    def report(self, root: Path, images_dir_exists: bool) -> None:
        if self.replaced:
            warnings.warn(f"WikiWeb2M: {self.replaced} text values are not valid UTF-8; invalid bytes "
                          f"were replaced by U+FFFD", stacklevel=3)
        if self.missing_images:
            where = "" if images_dir_exists else f" (no folder {root / 'images'})"
            warnings.warn(f"WikiWeb2M: {self.missing_images} section images have no file in "
                          f"{root / 'images'}{where}; their image_mask is false", stacklevel=3)
        if self.empty_targets:
            warnings.warn(f"WikiWeb2M: dropped {self.empty_targets} examples whose target text "
                          f"(section_summary) is empty", stacklevel=3)
        if self.unknown_ids:
            warnings.warn(f"WikiWeb2M: skipped {self.unknown_ids} split entries whose page or section "
                          f"is not in the parquet files", stacklevel=3)


def _text(value: Any, counts: _Counts) -> str:
    """A byte string (or str, or None) as text with collapsed whitespace; '' if empty."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytes(value)
        try:
            value = raw.decode("utf-8")
        except UnicodeDecodeError:
            counts.replaced += 1
            value = raw.decode("utf-8", errors="replace")
    return " ".join(str(value).split())


def _key(page_id: Any) -> Any:
    """A page id as the same key whether it came as int, numpy int, bytes or str."""
    if isinstance(page_id, (bytes, bytearray)):
        page_id = page_id.decode("utf-8", errors="replace")
    if isinstance(page_id, str):
        return int(page_id) if page_id.strip().lstrip("-").isdigit() else page_id.strip()
    try:
        return int(page_id)
    except (TypeError, ValueError):
        return page_id


def _int(value: Any, default: int = -1) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def _read_parquet(path: Path) -> dict[str, list]:
    """The columns of one MMGL parquet file as Python lists (``split`` too when present)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if not path.is_file():
        raise DataError(f"WikiWeb2M file {path.name} not found in {path.parent}; create it with MMGL's "
                        f"wikiweb2m/preprocess_data.py or point root at the folder that holds it")
    try:
        names = pq.read_schema(path).names
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read WikiWeb2M parquet {path} ({first_line(exc)}); the file is corrupt "
                        f"or not parquet: re-create it") from None
    missing = [c for c in COLUMNS if c not in names]
    if missing:
        raise DataError(f"WikiWeb2M parquet {path} lacks column {missing[0]!r} (has: {', '.join(names)}); "
                        f"it must be MMGL's layout with columns {', '.join(COLUMNS)}")
    wanted = list(COLUMNS) + (["split"] if "split" in names else [])
    try:
        table = pq.read_table(path, columns=wanted)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"cannot read WikiWeb2M parquet {path} ({first_line(exc)}); the file is corrupt: "
                        f"re-create it") from None
    return {c: table.column(c).to_pylist() for c in wanted}


def _read_split_pickle(path: Path) -> dict[str, list]:
    if not path.is_file():
        raise DataError(f"WikiWeb2M split file {path.name} not found in {path.parent}; create it with "
                        f"MMGL's wikiweb2m/preprocess_data.py, or use split_source='wikiweb2m'")
    try:
        with open(path, "rb") as fp:
            ids = pickle.load(fp)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a bad file
        raise DataError(f"cannot read WikiWeb2M split file {path} ({type(exc).__name__}); re-create it "
                        f"with MMGL's wikiweb2m/preprocess_data.py") from None
    if not isinstance(ids, dict) or any(not isinstance(ids.get(s, []), (list, tuple)) for s in SPLITS):
        raise DataError(f"WikiWeb2M split file {path} must hold a dict {{'train'|'val'|'test': "
                        f"[(page_id, section_id), ...]}}; got {type(ids).__name__}")
    out = {}
    for s in SPLITS:
        pairs = list(ids.get(s, []))
        if any(not isinstance(p, (list, tuple)) or len(p) != 2 for p in pairs):
            raise DataError(f"WikiWeb2M split file {path}: split {s!r} must list (page_id, section_id) pairs")
        out[s] = pairs
    return out


class _Page:
    """One page row, decoded lazily and once (images resolved against the files on disk)."""

    def __init__(self, cols: dict[str, list], row: int, file_split: str):
        self.cols, self.row, self.file_split = cols, row, file_split
        self._sections: list[dict] | None = None
        self._info: tuple[str, str] | None = None

    def value(self, column: str) -> Any:
        return self.cols[column][self.row]

    @property
    def page_id(self) -> Any:
        return _key(self.value("page_id"))

    def num_sections(self) -> int:
        return len(self.value("section_title") or [])

    def info(self, counts: _Counts) -> tuple[str, str]:
        """(page text: title + ", " + description, url)."""
        if self._info is None:
            title = _text(self.value("page_title"), counts)
            desc = _text(self.value("page_description"), counts)
            self._info = (", ".join([title, desc]) if desc else title, _text(self.value("page_url"), counts))
        return self._info

    def sections(self, counts: _Counts, image_files: dict[str, list[str]]) -> list[dict]:
        if self._sections is None:
            self._sections = self._decode(counts, image_files)
        return self._sections

    def _decode(self, counts: _Counts, image_files: dict[str, list[str]]) -> list[dict]:
        n = self.num_sections()
        lists = {}
        for c in SECTION_COLUMNS:
            v = self.value(c) or []
            if len(v) != n:
                raise DataError(f"WikiWeb2M page {self.page_id}: column {c!r} has {len(v)} values for "
                                f"{n} sections; the parquet row is malformed: re-create the file")
            lists[c] = v
        urls = _per_section(self.value("image_url"), n, "image_url", self.page_id)
        caps = _per_section(self.value("image_caption"), n, "image_caption", self.page_id)
        out = []
        for i in range(n):
            summary = _text(lists["section_summary"][i], counts)
            rest = _text(lists["section_rest_sentence"][i], counts)
            image = None
            for j, url in enumerate(urls[i]):
                url = _text(url, counts)
                if not url:
                    continue
                caption = _text(caps[i][j], counts) if j < len(caps[i]) else ""
                stem = f"{self.page_id}_{i}_{j}"
                ext = os.path.splitext(url)[1][1:]
                found = image_files.get(stem, [])
                name = f"{stem}.{ext}" if f"{stem}.{ext}" in found else (found[0] if found else None)
                if name is not None:
                    image = {"path": name, "url": url, "caption": caption}
                    break
                if image is None:   # remember the first image in case none has a file
                    image = {"path": None, "url": url, "caption": caption}
            if image is not None and image["path"] is None:
                counts.missing_images += 1
            out.append({"title": _text(lists["section_title"][i], counts), "summary": summary,
                        "rest": rest, "context": ", ".join(t for t in (summary, rest) if t),
                        "depth": _int(lists["section_depth"][i]),
                        "heading": _int(lists["section_heading"][i]),
                        "parent": _int(lists["section_parent_index"][i]), "image": image})
        return out


def _per_section(values: Any, n: int, column: str, page_id: Any) -> list[list]:
    """A page's image column as one list per section (flat MMGL layout or a list of lists)."""
    values = list(values or [])
    if n == 0:
        return []
    if values and all(isinstance(v, (list, tuple)) or v is None for v in values):
        if len(values) != n:
            raise DataError(f"WikiWeb2M page {page_id}: column {column!r} has {len(values)} lists for "
                            f"{n} sections; the parquet row is malformed: re-create the file")
        return [list(v or []) for v in values]
    if len(values) % n:
        raise DataError(f"WikiWeb2M page {page_id}: column {column!r} has {len(values)} values, not a "
                        f"multiple of its {n} sections; the parquet row is malformed: re-create the file")
    k = len(values) // n
    return [values[i * k:(i + 1) * k] for i in range(n)]


def _image_index(folder: Path) -> dict[str, list[str]]:
    """``{stem: [file names]}`` for the files in ``images/`` (listed once, sorted)."""
    if not folder.is_dir():
        return {}
    out: dict[str, list[str]] = {}
    with os.scandir(folder) as it:
        for entry in it:
            if entry.is_file():
                out.setdefault(os.path.splitext(entry.name)[0], []).append(entry.name)
    for names in out.values():
        names.sort()
    return out


# ----------------------------------------------------------------------------- one example


def _example(page: _Page, sid: int, split: str, counts: _Counts, image_files: dict[str, list[str]],
             max_text: int, max_image: int, meta: dict) -> HeteroData | None:
    sections = page.sections(counts, image_files)
    target = sections[sid]
    if not target["summary"]:
        counts.empty_targets += 1
        return None
    page_text, page_url = page.info(counts)

    sec_nodes = [sid]                      # page positions of the section nodes; node 0 = target
    as_text = [False]                      # whether a context section counts as a text neighbour
    images: list[tuple[int, dict]] = []    # (section node, image)
    captions: list[tuple[int, int]] = []   # (section node, image node)
    n_text = 0
    has_page = max_text >= 1
    n_text += int(has_page)

    def add_image(node: int) -> None:
        nonlocal n_text
        image = sections[sec_nodes[node]]["image"]
        if image is None or len(images) >= max_image:
            return
        images.append((node, image))
        if image["caption"] and n_text < max_text:
            captions.append((node, len(images) - 1))
            n_text += 1

    add_image(0)
    for i in range(len(sections)):
        if i == sid:
            continue
        added = False
        if n_text < max_text:
            sec_nodes.append(i)
            as_text.append(True)
            n_text += 1
            added = True
        if sections[i]["image"] is not None and len(images) < max_image:
            if not added:          # the image hangs on its section node, which then has no text
                sec_nodes.append(i)
                as_text.append(False)
            add_image(len(sec_nodes) - 1)

    data = new_graph("wikiweb2m", VERSION, "section", [], **meta)
    data.split, data.page_id, data.section_id = split, page.page_id, sid
    ns = len(sec_nodes)
    s = data["section"]
    s.num_nodes = ns
    texts = [target["rest"] or None] + [sections[i]["context"] or None if take else None
                                        for i, take in zip(sec_nodes[1:], as_text[1:])]
    s.text = RawList(texts)
    s.text_mask = torch.tensor([t is not None for t in texts], dtype=torch.bool)
    s.title = RawList(sections[i]["title"] or None for i in sec_nodes)
    s.section_index = torch.tensor(sec_nodes, dtype=torch.long)
    s.depth = torch.tensor([sections[i]["depth"] for i in sec_nodes], dtype=torch.long)
    s.heading = torch.tensor([sections[i]["heading"] for i in sec_nodes], dtype=torch.long)
    s.parent_index = torch.tensor([sections[i]["parent"] for i in sec_nodes], dtype=torch.long)
    s.is_target = torch.tensor([True] + [False] * (ns - 1), dtype=torch.bool)
    s.input_text = RawList([target["rest"]] + [None] * (ns - 1))
    s.target_text = RawList([target["summary"]] + [None] * (ns - 1))

    p = data["page"]
    p.num_nodes = int(has_page)
    p.text = RawList([page_text or None] if has_page else [])
    p.text_mask = torch.tensor([bool(page_text)] if has_page else [], dtype=torch.bool)
    p.url = RawList([page_url] if has_page else [])

    im = data["image"]
    im.num_nodes = len(images)
    im.image = RawList(img["path"] for _, img in images)
    im.image_mask = torch.tensor([img["path"] is not None for _, img in images], dtype=torch.bool)
    im.url = RawList(img["url"] for _, img in images)
    im.section_index = torch.tensor([sec_nodes[n] for n, _ in images], dtype=torch.long)

    c = data["caption"]
    c.num_nodes = len(captions)
    c.text = RawList(images[k][1]["caption"] for _, k in captions)
    c.text_mask = torch.ones(len(captions), dtype=torch.bool)
    c.section_index = torch.tensor([sec_nodes[n] for n, _ in captions], dtype=torch.long)

    position = {i: node for node, i in enumerate(sec_nodes)}
    edges: dict[str, list[tuple[int, int]]] = {
        "in_page": [(0, 0)] if has_page else [],
        "has_image": [(n, k) for k, (n, _) in enumerate(images)],
        "has_caption": [(n, k) for k, (n, _) in enumerate(captions)],
        "captioned_by": [(img, k) for k, (_, img) in enumerate(captions)],
        "next": [(position[i], position[i + 1]) for i in sorted(position) if i + 1 in position],
        "child_of": [(node, position[sections[i]["parent"]]) for node, i in enumerate(sec_nodes)
                     if sections[i]["parent"] in position and sections[i]["parent"] != i],
    }
    for src, rel, dst in EDGE_TYPES:
        if rel in edges:
            pairs = edges[rel]
            ei = torch.tensor(pairs, dtype=torch.long).t().reshape(2, -1)
            data[src, rel, dst].edge_index = ei
            data[dst, _REVERSE[rel], src].edge_index = ei.flip(0)
    return data


# ----------------------------------------------------------------------------- loader


def load_wikiweb2m(root: str | os.PathLike, split_source: str = "mmgl", max_text_neighbors: int = 11,
                   max_image_neighbors: int = 5, limit: int | None = None,
                   progress: bool | None = True) -> WikiWeb2MExamples:
    """Load MMGL's WikiWeb2M section-summarization examples (see the module docstring).

    Args:
        root: the folder holding the three parquet files, the split pickle and ``images/``.
        split_source: ``"mmgl"``: the pairs of ``section_id_split_large.pkl``; ``"wikiweb2m"``:
            every section, split by the page's ``split`` column or else by its parquet file.
        max_text_neighbors: at most this many text neighbours (page, context sections, captions).
        max_image_neighbors: at most this many image neighbours (the target's image included).
        limit: at most this many examples per split (``None``: all); for quick looks and tests.
        progress: report progress over the examples (see :class:`~mmgraph.progress.Progress`).

    Returns:
        A :class:`WikiWeb2MExamples`: train, then val, then test examples, each a
        :class:`HeteroData` with target node type ``section`` (node 0 is the target).

    Raises:
        DataError: a missing file, a missing column, an unreadable parquet or pickle file, or a
            malformed page row.
        ConfigError: an argument of the wrong kind or out of range.
    """
    checks.choice("split_source", split_source, ("mmgl", "wikiweb2m"))
    max_text = checks.integer("max_text_neighbors", max_text_neighbors, 0)
    max_image = checks.integer("max_image_neighbors", max_image_neighbors, 0)
    limit = checks.integer("limit", limit, 0, optional=True)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"WikiWeb2M folder {root} does not exist; point root at the folder with "
                        f"MMGL's wikiweb2m_*_large.parquet files")
    pairs = _read_split_pickle(root / SPLIT_FILE) if split_source == "mmgl" else None
    files = {s: _read_parquet(root / parquet_name(s)) for s in SPLITS}

    counts = _Counts()
    pages: dict[Any, _Page] = {}
    for s, cols in files.items():
        for row in range(len(cols["page_id"])):
            page = _Page(cols, row, s)
            pages.setdefault(page.page_id, page)

    # the (page, section, split) triples, in split order
    todo: dict[str, list[tuple[_Page, int]]] = {s: [] for s in SPLITS}
    if pairs is not None:
        for s in SPLITS:
            for page_id, sid in pairs[s]:
                page = pages.get(_key(page_id))
                sid = _int(sid)
                if page is None or not 0 <= sid < page.num_sections():
                    counts.unknown_ids += 1
                    continue
                todo[s].append((page, sid))
    else:
        for page in pages.values():
            split = page.file_split
            if "split" in page.cols:
                named = _text(page.value("split"), counts).lower()
                split = {"validation": "val", "valid": "val", "dev": "val"}.get(named, named)
                if split not in SPLITS:
                    raise DataError(f"WikiWeb2M page {page.page_id}: split {named!r} is not one of "
                                    f"train, val, test; fix the 'split' column")
            todo[split].extend((page, i) for i in range(page.num_sections()))

    image_dir = root / "images"
    image_files = _image_index(image_dir)
    stat = [(parquet_name(s), (root / parquet_name(s)).stat().st_size) for s in SPLITS]
    if pairs is not None:
        stat.append((SPLIT_FILE, (root / SPLIT_FILE).stat().st_size))
    meta = {"source": SOURCE, "image_root": str(image_dir), "root": str(root),
            "split_source": split_source, "max_text_neighbors": max_text,
            "max_image_neighbors": max_image}
    out = WikiWeb2MExamples(meta={"name": "wikiweb2m", "version": VERSION, **meta, "limit": limit,
                                  "files_fingerprint": fingerprint(stat)})
    total = sum(len(v) for v in todo.values()) if limit is None else None
    with Progress(total, "WikiWeb2M examples", unit="example", enabled=progress) as bar:
        for s in SPLITS:
            kept = 0
            for page, sid in todo[s]:
                if limit is not None and kept >= limit:
                    break
                ex = _example(page, sid, s, counts, image_files, max_text, max_image, meta)
                bar.update()
                if ex is not None:
                    out.append(ex)
                    kept += 1
    counts.report(root, image_dir.is_dir())
    out.meta["counts"] = out.counts()
    return out


# ----------------------------------------------------------------------------- one graph


def union_graph(examples: WikiWeb2MExamples) -> HeteroData:
    """The examples as one graph (the disjoint union of their graphs), for the runner.

    Node types and relations are those of the examples; every node gets ``example`` (the
    index of its example in ``examples``); ``section`` nodes get ``train/val/test_mask`` from
    the example's split on its target node (``is_target``) and false elsewhere. Text and image
    fields are concatenated, so the feature step encodes every node type once (a data set
    config's ``feature_node_types``).
    """
    if not examples:
        raise DataError("no WikiWeb2M examples: every listed section is unknown or has an empty "
                        "section_summary; check the files and the split")
    meta = dict(examples.meta)
    name, version = meta.pop("name"), meta.pop("version")
    data = new_graph(name, version, "section", [], **meta)
    node_types = ("section", "page", "image", "caption")
    offsets = {t: 0 for t in node_types}
    fields: dict[str, dict[str, list]] = {t: {} for t in node_types}
    edges: dict[tuple, list[torch.Tensor]] = {et: [] for et in EDGE_TYPES}
    for e, ex in enumerate(examples):
        for t in node_types:
            store, n = ex[t], int(ex[t].num_nodes or 0)
            acc = fields[t]
            acc.setdefault("example", []).append(torch.full((n,), e, dtype=torch.long))
            for key in store.keys():
                if key == "num_nodes":
                    continue
                value = store[key]
                acc.setdefault(key, []).append(value if isinstance(value, torch.Tensor) else list(value))
        for et in EDGE_TYPES:
            ei = ex[et].edge_index
            edges[et].append(ei + torch.tensor([[offsets[et[0]]], [offsets[et[2]]]]))
        for t in node_types:
            offsets[t] += int(ex[t].num_nodes or 0)
    for t in node_types:
        store = data[t]
        store.num_nodes = offsets[t]
        for key, parts in fields[t].items():
            if isinstance(parts[0], torch.Tensor):
                store[key] = torch.cat(parts)
            else:
                store[key] = RawList(v for part in parts for v in part)
    for et, parts in edges.items():
        data[et].edge_index = torch.cat(parts, dim=1)
    sec = data["section"]
    split = [examples[int(e)].split for e in sec.example]
    for s in SPLITS:
        sec[f"{s}_mask"] = torch.tensor([sp == s for sp in split], dtype=torch.bool) & sec.is_target
    data.meta["split"] = {"name": examples.meta.get("split_source", "mmgl"), "params": {}}  # mmgl | wikiweb2m
    return data


def load_wikiweb2m_graph(root: str | os.PathLike, **kwargs) -> HeteroData:
    """:func:`load_wikiweb2m` joined into one graph by :func:`union_graph` (the runner's loader)."""
    return union_graph(load_wikiweb2m(root, **kwargs))

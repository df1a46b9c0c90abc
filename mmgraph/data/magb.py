"""MAGB's five multimodal attributed graphs (Yan et al., arXiv 2410.09132), as published.

Data sets (``name`` is case-insensitive; MAGB's file prefixes are accepted too):

=============  ==============  ===========  ============  ======================================
``name``       Hub folder      file prefix  target        relation (both directions stored)
=============  ==============  ===========  ============  ======================================
``movies``     ``Movies``      ``Movies``   ``product``   ``(product, also_view_or_buy, product)``
``toys``       ``Toys``        ``Toys``     ``product``   ``(product, also_view_or_buy, product)``
``grocery``    ``Grocery``     ``GroceryS`` ``product``   ``(product, also_view_or_buy, product)``
``reddit_s``   ``Reddit-S``    ``RedditS``  ``post``      ``(post, same_author, post)``
``reddit_m``   ``Reddit-M``    ``RedditM``  ``post``      ``(post, same_author, post)``
=============  ==============  ===========  ============  ======================================

Files are read from ``<root>/magb/<folder>/`` (``root`` is ``paths.data_root``; a folder
named after the file prefix, e.g. ``<root>/magb/GroceryS/``, is accepted as well). Missing
files are fetched from the Hugging Face Hub data set ``Sherirto/MAGB`` with
``huggingface_hub.hf_hub_download`` when ``download`` is true: only the CSV, the graph file
(only when DGL is installed), the requested feature files and, when images are wanted and
not yet extracted, the image tarball. Anything missing that cannot be fetched raises a
one-line :class:`~mmgraph.errors.DataError`.

**Graph.** With DGL installed, the edges are read from ``<P>Graph.pt`` (``dgl.load_graphs``)
and its ``ndata['label']`` must equal the CSV's ``label`` column. Without DGL, the edges
are rebuilt from the CSV exactly as MAGB's construction script made them (same order):
for every node id in increasing order, an edge to each id of
``sorted(set(also_view + also_buy))`` (Amazon) or ``sorted(set(also_posted))`` (Reddit;
a post's ``also_posted`` list contains the post itself, so Reddit graphs carry a self loop
per node). As in MAGB's GNN scripts, reverse edges are then appended
(``edge_index = [stored, stored.flip(0)]``, duplicates kept), so the relation is undirected;
``meta["num_stored_edges"]`` is the count before that. MAGB's scripts also replace self
loops by one per node; mmgraph's GNNs add their own self loops, and
:func:`~mmgraph.data.graph.homogeneous_view` coalesces duplicate edges.

**Attributes.** ``text``: the CSV's ``text`` column (Amazon, ``"Title: ...; Description:
..."`` as published, including literal ``None`` parts) or ``caption`` (Reddit); empty texts
are ``None`` with ``text_mask`` false. ``y``: the ``label`` column; class names come from
``second_category`` (Amazon) or ``subreddit`` (Reddit). ``image``: ``"<id>.jpg"`` relative to
``meta["image_root"]`` = ``<folder>/images/``, extracted once from ``<P>Images.tar.gz``
(Reddit-M: the concatenation of ``RedditMImages_part{a,b,c}``) into a temporary folder that
is renamed into place, so an interrupted extraction leaves nothing half-done. Nodes without
an image in the tarball get ``image_mask`` false (counted warning).

**Published features** (``TextFeature/``, ``ImageFeature/``, ``MMFeature/``): pass the file
name or the part after the prefix, e.g. ``text_feature="roberta_base_512_mean"`` loads
``TextFeature/Movies_roberta_base_512_mean.npy``. They become ``x_text``, ``x_image`` and
``x_joint`` (MMFeature files embed text and image together) with encoder
``magb:<file name>`` and a file digest in the feature spec.
"""
from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import shutil
import sys
import tarfile
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from mmgraph.data.graph import RawList, add_feature, new_graph
from mmgraph.errors import DataError

__all__ = ["load_magb", "MAGB_DATASETS", "HUB_REPO", "resolve_feature_file"]

HUB_REPO = "Sherirto/MAGB"
VERSION = "magb-hf-2024"
_MIB = 1 << 20


@dataclass(frozen=True)
class _Spec:
    key: str
    prefix: str
    folders: tuple[str, ...]          # Hub folder names to try, in order
    kind: str                          # "amazon" or "reddit"
    image_parts: tuple[str, ...] = ()  # split tarball (Reddit-M)

    @property
    def target(self) -> str:
        return "product" if self.kind == "amazon" else "post"

    @property
    def relation(self) -> str:
        return "also_view_or_buy" if self.kind == "amazon" else "same_author"

    @property
    def text_column(self) -> str:
        return "text" if self.kind == "amazon" else "caption"

    @property
    def class_column(self) -> str:
        return "second_category" if self.kind == "amazon" else "subreddit"

    @property
    def list_columns(self) -> tuple[str, ...]:
        # MAGB's construct_graph: neighbour = also_view + also_buy (Amazon)
        return ("also_view", "also_buy") if self.kind == "amazon" else ("also_posted",)

    @property
    def columns(self) -> tuple[str, ...]:
        if self.kind == "amazon":
            return ("id", "category", "text", "description", "title", "also_buy", "also_view",
                    "imageURLHighRes", "second_category", "label")
        return ("id", "subreddit", "caption", "url", "also_posted", "label")


MAGB_DATASETS: dict[str, _Spec] = {
    "movies": _Spec("movies", "Movies", ("Movies",), "amazon"),
    "toys": _Spec("toys", "Toys", ("Toys",), "amazon"),
    "grocery": _Spec("grocery", "GroceryS", ("Grocery", "GroceryS"), "amazon"),
    "reddit_s": _Spec("reddit_s", "RedditS", ("Reddit-S", "RedditS"), "reddit"),
    "reddit_m": _Spec("reddit_m", "RedditM", ("Reddit-M", "RedditM"), "reddit",
                      image_parts=("RedditMImages_parta", "RedditMImages_partb",
                                   "RedditMImages_partc")),
}
_ALIASES = {"groceries": "grocery", "reddits": "reddit_s", "redditm": "reddit_m"}
_IMAGE_NAME = re.compile(r"^(\d+)\.(jpe?g|png)$", re.IGNORECASE)
_INT_LIST = re.compile(r"^\[\s*(?:-?\d+\s*(?:,\s*-?\d+\s*)*)?\]$")


def _spec_for(name: str) -> _Spec:
    key = str(name).strip().lower().replace(" ", "_")
    for prefix in ("magb_", "magb-"):
        if key.startswith(prefix):
            key = key[len(prefix):]
    key = _ALIASES.get(key, key).replace("-", "_")
    if key in MAGB_DATASETS:
        return MAGB_DATASETS[key]
    for spec in MAGB_DATASETS.values():
        if key == spec.prefix.lower() or key in (f.lower() for f in spec.folders):
            return spec
    raise DataError(f"unknown MAGB data set {name!r}; choose one of: {', '.join(MAGB_DATASETS)}")


# ----------------------------------------------------------------------------- files


class _Files:
    """Locates (and, if allowed, downloads) the files of one MAGB data set."""

    def __init__(self, spec: _Spec, root: Path, download: bool):
        self.spec, self.base, self.download = spec, root / "magb", download
        candidates = [self.base / f for f in spec.folders] + [self.base / spec.prefix]
        existing = [d for d in candidates if d.is_dir()]
        # The folder that already holds the CSV wins; else the first existing; else the Hub's.
        with_csv = [d for d in existing if (d / f"{spec.prefix}.csv").is_file()]
        self.folder = (with_csv or existing or [candidates[0]])[0]
        self._hub_folder: str | None = None     # the Hub folder name, once a download worked

    def local(self, rel: str) -> Path:
        return self.folder / rel

    def get(self, rel: str) -> Path:
        """The local path of ``rel`` (relative to the data set folder), downloading it if needed."""
        path = self.local(rel)
        if path.is_file():
            return path
        if not self.download:
            raise DataError(f"MAGB file {rel} not found in {self.folder} (download=False); place "
                            f"the Hub files of {HUB_REPO}/{self.spec.folders[0]} there, or set "
                            f"MMGRAPH_DATA / paths.data_root to a root with magb/{self.folder.name}/")
        return self._fetch(rel)

    def _fetch(self, rel: str) -> Path:
        try:
            from huggingface_hub import hf_hub_download
        except ImportError:  # pragma: no cover - a dependency of the project's environment
            raise DataError(f"MAGB file {rel} not found in {self.folder} and huggingface_hub is "
                            f"not installed; place the file there or install huggingface_hub") from None
        folders = [self._hub_folder] if self._hub_folder else list(self.spec.folders)
        last: Exception | None = None
        for hub_folder in folders:
            try:
                got = hf_hub_download(repo_id=HUB_REPO, repo_type="dataset",
                                      filename=f"{hub_folder}/{rel}", local_dir=str(self.base))
            except Exception as exc:  # noqa: BLE001 - offline, 404, auth, disk: all one message
                last = exc
                if type(exc).__name__ in ("EntryNotFoundError", "RemoteEntryNotFoundError"):
                    continue               # try the next candidate folder name
                break
            got = Path(got)
            if self._hub_folder is None:
                self._hub_folder = hub_folder
                if self.folder != self.base / hub_folder and not (self.folder / f"{self.spec.prefix}.csv").is_file():
                    self.folder = self.base / hub_folder
            want = self.local(rel)
            if got.resolve() != want.resolve():  # a local folder named otherwise: move it there
                want.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(str(got), str(want))
            return want
        reason = f"{type(last).__name__}: {str(last).splitlines()[0] if last and str(last) else ''}".rstrip(": ")
        reason = reason if len(reason) <= 160 else reason[:157] + "..."
        raise DataError(f"MAGB file {rel} not found in {self.folder} and the download from the "
                        f"Hugging Face Hub ({HUB_REPO}) failed ({reason}); place the file "
                        f"there, set MMGRAPH_DATA / paths.data_root to a root that has it, or go online")


def _cheap_digest(path: Path) -> str:
    """Size plus SHA-1 of the first and the last MiB: cheap for multi-GB feature files."""
    size = path.stat().st_size
    h = hashlib.sha1(str(size).encode())
    with open(path, "rb") as fp:
        h.update(fp.read(_MIB))
        if size > _MIB:
            fp.seek(max(_MIB, size - _MIB))
            h.update(fp.read(_MIB))
    return f"{size}:{h.hexdigest()[:16]}"


# ----------------------------------------------------------------------------- CSV


def _parse_int_list(value: str, column: str, row: int) -> list[int]:
    s = value.strip()
    if not s:
        return []
    if not _INT_LIST.match(s):
        raise DataError(f"MAGB CSV column {column!r}, row {row}: expected a list of node ids like "
                        f"'[1, 2]', got {s[:40]!r}")
    return [int(t) for t in s[1:-1].split(",") if t.strip()]


def _read_csv(path: Path, spec: _Spec) -> dict[str, list]:
    """The needed columns of the published CSV (pandas' ``to_csv`` output)."""
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    want = ("id", "label", spec.text_column, spec.class_column) + spec.list_columns
    try:
        with open(path, newline="", encoding="utf-8") as fp:
            reader = csv.reader(fp)
            header = next(reader, None)
            if header is None:
                raise DataError(f"MAGB CSV {path} is empty; delete it and retry")
            missing = [c for c in want if c not in header]
            if missing:
                raise DataError(f"MAGB CSV {path} lacks column {missing[0]!r} (has: "
                                f"{', '.join(header)[:200]}); is it the published file?")
            idx = {c: header.index(c) for c in want}
            out: dict[str, list] = {c: [] for c in want}
            width = len(header)
            for i, row in enumerate(reader):
                if len(row) != width:
                    raise DataError(f"MAGB CSV {path}: row {i} has {len(row)} fields, the header "
                                    f"{width}; the file is corrupt or truncated, delete it and retry")
                for c, j in idx.items():
                    out[c].append(row[j])
    except UnicodeDecodeError as exc:
        raise DataError(f"MAGB CSV {path} is not UTF-8 text ({exc.reason}); delete it and retry") from None
    except csv.Error as exc:
        raise DataError(f"cannot parse MAGB CSV {path}: {exc}") from None
    return out


def _int_column(values: list[str], column: str, path: Path) -> np.ndarray:
    try:
        return np.array([int(float(v)) if v.strip() else -1 for v in values], dtype=np.int64)
    except ValueError:
        bad = next((v for v in values if not re.fullmatch(r"\s*-?\d+(\.0*)?\s*", v)), "?")
        raise DataError(f"MAGB CSV {path}: column {column!r} must hold integers; found {bad[:40]!r}") from None


def _edges_from_csv(cols: dict[str, list], spec: _Spec, num_nodes: int, path: Path) -> torch.Tensor:
    """MAGB's ``construct_graph``: ids in increasing order, each to its sorted, deduplicated list."""
    lists = [[_parse_int_list(v, c, i) for i, v in enumerate(cols[c])] for c in spec.list_columns]
    src: list[int] = []
    dst: list[int] = []
    for node in range(num_nodes):                         # row == id (checked by the caller)
        neighbours = sorted(set().union(*(lst[node] for lst in lists)))
        src.extend([node] * len(neighbours))
        dst.extend(neighbours)
    ei = torch.tensor([src, dst], dtype=torch.long).view(2, -1)
    if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= num_nodes):
        raise DataError(f"MAGB CSV {path}: a neighbour id is outside 0..{num_nodes - 1}")
    return ei


def _edges_from_dgl(path: Path, labels: torch.Tensor) -> torch.Tensor:
    import dgl  # the `dgl` extra

    try:
        graphs, _ = dgl.load_graphs(str(path))
    except Exception as exc:  # noqa: BLE001 - DGL raises DGLError / OSError for bad files
        raise DataError(f"cannot read MAGB graph {path} ({type(exc).__name__}); delete it and retry") from None
    g = graphs[0]
    if g.num_nodes() != labels.numel():
        raise DataError(f"MAGB graph {path} has {g.num_nodes()} nodes but the CSV {labels.numel()} rows")
    if "label" in g.ndata and not torch.equal(g.ndata["label"].long().cpu(), labels):
        raise DataError(f"MAGB graph {path}: ndata['label'] disagrees with the CSV's label column")
    src, dst = g.edges(order="eid")
    return torch.stack([src.long().cpu(), dst.long().cpu()])


# ----------------------------------------------------------------------------- images


class _ChainReader(io.RawIOBase):
    """A read-only stream over several files in order (a tarball split into parts)."""

    def __init__(self, paths: Iterable[Path]):
        self._paths, self._fp = list(paths), None

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while True:
            if self._fp is None:
                if not self._paths:
                    return 0
                self._fp = open(self._paths.pop(0), "rb")
            n = self._fp.readinto(buf)
            if n:
                return n
            self._fp.close()
            self._fp = None

    def close(self) -> None:
        if self._fp is not None:
            self._fp.close()
        super().close()


def _extract_images(sources: list[Path], dest: Path) -> None:
    """Extract every ``<id>.jpg`` (at any depth) of the tarball into ``dest``, atomically."""
    tmp = dest.parent / f".{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    raw = _ChainReader(sources)
    try:
        with io.BufferedReader(raw, 1 << 20) as stream, tarfile.open(fileobj=stream, mode="r|*") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if not member.isfile() or not _IMAGE_NAME.match(base) or base.startswith("."):
                    continue
                src = tar.extractfile(member)
                if src is None:
                    continue
                with src, open(tmp / base, "wb") as out:   # our own flat name: no path traversal
                    shutil.copyfileobj(src, out, 1 << 20)
        try:
            os.rename(tmp, dest)
        except OSError:
            if not dest.is_dir():                          # someone else finished first: fine
                raise
            shutil.rmtree(tmp, ignore_errors=True)
    except (tarfile.TarError, EOFError, OSError, ValueError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        names = ", ".join(p.name for p in sources)
        raise DataError(f"cannot extract MAGB images from {names} in {sources[0].parent} "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                        f"delete the tarball and retry") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _image_sources(files: _Files) -> list[Path]:
    """The tarball (or its parts) on disk, downloading it if allowed; raises DataError if not."""
    spec = files.spec
    whole = f"{spec.prefix}Images.tar.gz"
    if files.local(whole).is_file():
        return [files.local(whole)]
    if spec.image_parts:
        if all(files.local(p).is_file() for p in spec.image_parts):
            return [files.local(p) for p in spec.image_parts]
        return [files.get(p) for p in spec.image_parts]
    return [files.get(whole)]


def _image_refs(files: _Files, num_nodes: int, images) -> tuple[RawList, torch.Tensor, str | None]:
    none = (RawList([None] * num_nodes), torch.zeros(num_nodes, dtype=torch.bool), None)
    if images is False:
        return none
    dest = files.folder / "images"
    if not dest.is_dir():
        try:
            sources = _image_sources(files)
        except DataError as exc:
            if images is True:
                raise
            warnings.warn(f"MAGB {files.spec.key}: no images ({exc}); image_mask is false for all "
                          f"{num_nodes} nodes", stacklevel=3)
            return none
        _extract_images(sources, dest)
    found: dict[int, str] = {}
    with os.scandir(dest) as it:
        for entry in it:
            m = _IMAGE_NAME.match(entry.name)
            if m and int(m.group(1)) < num_nodes:
                # prefer .jpg if a node has several files
                if int(m.group(1)) not in found or entry.name.lower().endswith(".jpg"):
                    found[int(m.group(1))] = entry.name
    refs = RawList(found.get(i) for i in range(num_nodes))
    mask = torch.tensor([r is not None for r in refs], dtype=torch.bool)
    missing = num_nodes - int(mask.sum())
    if missing:
        warnings.warn(f"MAGB {files.spec.key}: {missing} of {num_nodes} nodes have no image in "
                      f"{dest}; their image_mask is false", stacklevel=3)
    return refs, mask, str(dest)


# ----------------------------------------------------------------------------- features


def resolve_feature_file(name: str, prefix: str) -> str:
    """``"roberta_base_512_mean"`` -> ``"<prefix>_roberta_base_512_mean.npy"``; full names kept."""
    file = Path(str(name)).name
    if not file.endswith(".npy"):
        file += ".npy"
    if not file.startswith(f"{prefix}_"):
        file = f"{prefix}_{file}"
    return file


def _load_feature(files: _Files, subdir: str, name: str, num_nodes: int) -> tuple[torch.Tensor, str, dict]:
    file = resolve_feature_file(name, files.spec.prefix)
    path = files.get(f"{subdir}/{file}")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise DataError(f"cannot read MAGB feature file {path} ({str(exc).splitlines()[0]}); "
                        f"delete it and retry") from None
    if arr.ndim != 2 or arr.shape[0] != num_nodes:
        raise DataError(f"MAGB feature file {path} has shape {tuple(arr.shape)}, expected "
                        f"[{num_nodes} nodes, dim]: it does not belong to {files.spec.prefix} "
                        f"(or some nodes have no row)")
    if not (np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise DataError(f"MAGB feature file {path} has non-numeric dtype {arr.dtype}")
    out = torch.empty(arr.shape, dtype=torch.float32)
    view = out.numpy()
    step = max(1, (64 * _MIB) // max(1, arr.shape[1] * arr.dtype.itemsize))
    for start in range(0, arr.shape[0], step):           # chunked: no full float64 copy
        view[start:start + step] = arr[start:start + step]
    del arr
    spec = {"file": f"{subdir}/{file}", "digest": _cheap_digest(path), "dtype": "float32"}
    return out, file, spec


# ----------------------------------------------------------------------------- loader


def load_magb(name: str, root: str | os.PathLike = "datasets", download: bool = True,
              text_feature: str | None = None, image_feature: str | None = None,
              mm_feature: str | None = None, images: bool | str = True):
    """Load one of MAGB's data sets as a :class:`~torch_geometric.data.HeteroData`.

    Args:
        name: ``movies``, ``toys``, ``grocery``, ``reddit_s`` or ``reddit_m`` (case-insensitive;
            MAGB's prefixes ``Movies``, ``Toys``, ``GroceryS``, ``RedditS``, ``RedditM`` and a
            ``magb_`` prefix are accepted too).
        root: the data root; files live in ``<root>/magb/<folder>/`` (see the module docstring).
        download: fetch missing files from the Hub data set ``Sherirto/MAGB``.
        text_feature: a published ``TextFeature/`` file (full name or without the
            ``<prefix>_`` and ``.npy``) stored as ``x_text``; ``None`` for none.
        image_feature: the same for ``ImageFeature/``, stored as ``x_image``.
        mm_feature: the same for ``MMFeature/`` (joint text+image embeddings), stored as ``x_joint``.
        images: ``True``: node images are required (extracted from the tarball on first use,
            downloading it if needed; raises ``DataError`` if unavailable). ``"auto"``: use them
            if they can be had, else all ``image_mask`` false with a warning. ``False``: no
            images (all references ``None``).

    Returns:
        A graph with target node type ``product`` (Amazon) or ``post`` (Reddit): ``text``,
        ``text_mask``, ``image``, ``image_mask``, ``y``, the requested ``x_*`` features and the
        relation ``also_view_or_buy`` / ``same_author`` with reverse edges appended. No split.

    Raises:
        DataError: unknown name, a missing file that could not be downloaded, a corrupt file,
            or a feature file whose row count differs from the number of nodes.
    """
    spec = _spec_for(name)
    if images not in (True, False, "auto"):
        raise DataError(f"images must be true, false or 'auto'; got {images!r}")
    files = _Files(spec, Path(root).expanduser(), bool(download))
    csv_path = files.get(f"{spec.prefix}.csv")
    cols = _read_csv(csv_path, spec)
    n = len(cols["id"])
    if n == 0:
        raise DataError(f"MAGB CSV {csv_path} has no rows; delete it and retry")
    ids = _int_column(cols["id"], "id", csv_path)
    if not np.array_equal(ids, np.arange(n)):
        raise DataError(f"MAGB CSV {csv_path}: the id column must be 0..{n - 1} in row order")
    y = torch.from_numpy(_int_column(cols["label"], "label", csv_path))
    num_classes = int(y.max()) + 1 if n else 0
    class_names: list[str | None] = [None] * num_classes
    for label, cname in zip(y.tolist(), cols[spec.class_column]):
        if label < 0:
            continue
        if class_names[label] is None:
            class_names[label] = cname
        elif class_names[label] != cname:
            raise DataError(f"MAGB CSV {csv_path}: label {label} is both {class_names[label]!r} "
                            f"and {cname!r} in column {spec.class_column!r}")
    class_names = [c if c is not None else f"class_{i}" for i, c in enumerate(class_names)]

    try:
        import dgl  # noqa: F401
        has_dgl = True
    except Exception:  # noqa: BLE001 - a broken DGL install is treated as no DGL
        has_dgl = False
    stored = None
    if has_dgl:
        try:
            graph_file = files.get(f"{spec.prefix}Graph.pt")
        except DataError as exc:  # not published for this data set, or offline: the CSV has the edges
            warnings.warn(f"{exc}; rebuilding the edges from {csv_path.name} instead", stacklevel=2)
        else:
            stored = _edges_from_dgl(graph_file, y)
            graph_source = f"{spec.prefix}Graph.pt (dgl)"
    if stored is None:
        stored = _edges_from_csv(cols, spec, n, csv_path)
        graph_source = f"{spec.prefix}.csv (rebuilt like MAGB's construct_graph)"

    h = hashlib.blake2b(digest_size=8)
    with open(csv_path, "rb") as fp:
        for chunk in iter(lambda: fp.read(8 * _MIB), b""):
            h.update(chunk)
    refs, image_mask, image_root = _image_refs(files, n, images)

    t = spec.target
    data = new_graph(f"magb_{spec.key}", VERSION, t, class_names,
                     source=f"huggingface.co/datasets/{HUB_REPO} ({files.folder.name}/, CC-BY-4.0)",
                     image_root=image_root, csv_digest=h.hexdigest(), folder=str(files.folder),
                     prefix=spec.prefix, graph_source=graph_source,
                     num_stored_edges=int(stored.size(1)))
    store = data[t]
    store.num_nodes = n
    store.y = y
    texts = RawList(s if s.strip() else None for s in cols[spec.text_column])
    store.text = texts
    store.text_mask = torch.tensor([s is not None for s in texts], dtype=torch.bool)
    store.image = refs
    store.image_mask = image_mask
    data[t, spec.relation, t].edge_index = torch.cat([stored, stored.flip(0)], dim=1)

    for subdir, modality, feat in (("TextFeature", "text", text_feature),
                                   ("ImageFeature", "image", image_feature),
                                   ("MMFeature", "joint", mm_feature)):
        if feat is None or feat == "":
            continue
        x, file, fspec = _load_feature(files, subdir, feat, n)
        mask = store[f"{modality}_mask"] if f"{modality}_mask" in store else None
        if modality == "image" and not bool(image_mask.any()):
            mask = None            # no raw images loaded: the published rows are the truth
        add_feature(data, modality, x, encoder=f"magb:{file}", spec=fspec, mask=mask)
    return data

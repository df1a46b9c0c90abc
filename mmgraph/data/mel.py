r"""WikiMEL, RichpediaMEL and WikiDiverse in the file layout of MIMIC and M3EL (``load_mel``).

MIMIC (Luo et al., KDD 2023, github.com/pengfei-luo/MIMIC) distributes cleaned copies of the three
multimodal entity-linking data sets; M3EL (Hu et al., KDD 2025, github.com/zhiweihu1103/MEL-M3EL)
ships replacements in the same layout. Either copy is read into the graph of
:mod:`mmgraph.data.kb` (entities + mentions, see :func:`~mmgraph.data.kb.kb_graph`).

**Files** in ``root`` (one data set's folder)::

    kb_entity.json          a JSON list, one record per KB entity:
                            {"id": int row, "qid": "Q...", "type": "entity",
                             "entity_name": URL-quoted title, "attr" (MIMIC) or "desc" (M3EL): text,
                             "image_list": [file names under kb_image/]}
    qid2id.json             one JSON line {"Q...": row}: each QID's row id
    <P>_train.json          JSON lists of mention records {"id", "mentions" (URL-quoted words),
    <P>_dev.json            "sentence", "imgPath", "answer": QID or "nil"}; M3EL's add "entities"
    <P>_test.json
    kb_image/               entity images, named as in image_list
    mention_image/          mention images: imgPath's base name up to its first dot + ".jpg"
                            (RichpediaMEL's archive calls the folder mention_images)

with ``<P>`` = ``WIKIMEL`` (WikiMEL), ``RichpediaMEL``, and ``wiki_diverse`` (MIMIC) or
``WikiDiverse`` (M3EL's config) for WikiDiverse.

**What is kept.** Entities in ``id`` order (MIMIC's row order, so entity ``i`` is MIMIC's id ``i``
on the published files), keyed by QID (the record's ``qid``; for records without one, the QID
that ``qid2id.json`` gives its ``id``); ``name`` is ``entity_name`` URL-unquoted, the description is
``attr`` or ``desc``, whichever the record has. An entity's images are the ``image_list`` entries
that have a file under ``kb_image/``, in list order (MIMIC encodes the first entry at evaluation, a
random one in training, and a black image for a missing file; here the first existing one is
encoded). A mention's words are ``mentions`` URL-unquoted (as MIMIC does); its image is the file
MIMIC would open, ``None`` when ``imgPath`` is empty or the file is missing. ``answer`` ``"nil"``
becomes a nil mention (``y = -1``; MIMIC and M3EL drop these from every split), an answer QID the
KB lacks is kept (``y = -1``) and counted. Splits: train / dev / test -> train / val / test.
M3EL's ``entities`` field is not read (M3EL's code discards it too).

**Problems** that leave the data usable are counted, one warning line each: KB records that are
not entities or have no QID, duplicate QIDs (the first record wins), rows whose ``qid`` and
``qid2id.json`` disagree, listed entity images without a file, missing mention images, answers
not in the KB. A missing folder or file, unparsable JSON or records of the wrong shape raise a
one-line :class:`~mmgraph.errors.DataError`.

The built graph is cached in ``root/processed/`` (keyed by the build version, the options and the
files' sizes and modification times); a corrupt cache is rebuilt with a warning.
"""
from __future__ import annotations

import json
import os
import posixpath
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from torch_geometric.data import HeteroData

from mmgraph import checks
from mmgraph.data.graph import fingerprint
from mmgraph.data.graph_cache import cached_graph
from mmgraph.data.kb import Entity, Mention, kb_graph
from mmgraph.errors import ConfigError, DataError, first_line
from mmgraph.progress import track

__all__ = ["load_mel", "DATASETS", "BUILD_VERSION", "VERSION", "FILE_SPLITS", "KB_FILE",
           "QID2ID_FILE", "KB_IMAGES", "MENTION_IMAGES", "mention_image_name"]

#: Version of the construction logic; bump it when the built graph changes.
BUILD_VERSION = "1"
VERSION = f"mimic-layout/build-{BUILD_VERSION}"
KB_FILE = "kb_entity.json"
QID2ID_FILE = "qid2id.json"
KB_IMAGES = "kb_image"
#: Mention image folder names, in the order they are looked for.
MENTION_IMAGES = ("mention_image", "mention_images")
#: The files' split names and the graph's.
FILE_SPLITS = (("train", "train"), ("dev", "val"), ("test", "test"))
_RELEASES = "the MIMIC release (github.com/pengfei-luo/MIMIC) or M3EL's (github.com/zhiweihu1103/MEL-M3EL)"
_WIKIMEDIA = ("entity texts and images come from Wikidata, Wikipedia and Wikimedia Commons, each "
              "under its own terms")


@dataclass(frozen=True)
class MELDataset:
    """One published data set: its label, mention file prefixes, sizes and terms."""

    label: str
    prefixes: tuple[str, ...]     # mention files <prefix>_{train,dev,test}.json, first found wins
    origin: str
    license: str
    kb_size: int                  # entities in MIMIC's config (num_entity)
    test_size: int                # test mentions with an answer (MIMIC's and M3EL's test set)


DATASETS: dict[str, MELDataset] = {
    "wikimel": MELDataset(
        "WikiMEL", ("WIKIMEL",),
        "Wikidata-MEL of MELBench (github.com/seukgcode/MELBench)",
        "the publishers' terms: MELBench's repository carries an MIT licence file, MIMIC's and "
        f"M3EL's repositories state none for their copies; {_WIKIMEDIA}",
        109_976, 5_169),
    "richpediamel": MELDataset(
        "RichpediaMEL", ("RichpediaMEL",),
        "Richpedia-MEL of MELBench (github.com/seukgcode/MELBench), KB from Richpedia",
        "the publishers' terms: MELBench's repository carries an MIT licence file, MIMIC's and "
        f"M3EL's repositories state none for their copies; {_WIKIMEDIA} (via Richpedia)",
        160_933, 3_562),
    "wikidiverse": MELDataset(
        "WikiDiverse", ("wiki_diverse", "WikiDiverse"),
        "Wang et al., ACL 2022 (github.com/wangxw5/wikiDiverse), mentions from Wikinews",
        "CC BY-SA 4.0 (WikiDiverse's README); MIMIC's and M3EL's repositories state no licence "
        f"for their copies; {_WIKIMEDIA}",
        132_460, 2_078),
}


def _dataset(name: Any) -> tuple[str, MELDataset]:
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in DATASETS:
        raise ConfigError(f"unknown MEL data set {name!r}; choose one of {', '.join(DATASETS)}")
    return key, DATASETS[key]


def mention_image_name(img_path: str) -> str | None:
    """The file name MIMIC opens for a mention's ``imgPath`` (``None`` when it is empty): the last
    path part up to its first dot, plus ``.jpg`` (the authors converted every image to JPEG)."""
    base = img_path.replace("\\", "/").rsplit("/", 1)[-1].split(".", 1)[0]
    return f"{base}.jpg" if base else None


def _layout(ds: MELDataset) -> str:
    prefix = ds.prefixes[0]
    return (f"{KB_FILE}, {QID2ID_FILE}, {prefix}_{{train,dev,test}}.json, {KB_IMAGES}/ and "
            f"{MENTION_IMAGES[0]}/")


def _files(root: Path, ds: MELDataset) -> dict[str, Path]:
    """The JSON files of the layout under ``root`` (one-line DataError for the first missing one)."""
    if not root.is_dir():
        raise DataError(f"{ds.label} folder {root} does not exist; download {ds.label} from "
                        f"{_RELEASES} and point root at the folder holding {_layout(ds)}")
    files = {}
    for key, fname in (("kb", KB_FILE), ("qid2id", QID2ID_FILE)):
        files[key] = root / fname
        if not files[key].is_file():
            raise DataError(f"{ds.label} file {fname} not found in {root}; it comes with {_RELEASES}, "
                            f"whose layout is {_layout(ds)}")
    prefix = next((p for p in ds.prefixes if (root / f"{p}_train.json").is_file()), ds.prefixes[0])
    for file_split, split in FILE_SPLITS:
        path = root / f"{prefix}_{file_split}.json"
        if not path.is_file():
            names = " or ".join(f"{p}_{file_split}.json" for p in ds.prefixes)
            raise DataError(f"{ds.label} mention file {path.name} not found in {root}; it comes with "
                            f"{_RELEASES} (expected {names})")
        files[split] = path
    return files


def _mention_dir(root: Path) -> Path:
    return next((root / d for d in MENTION_IMAGES if (root / d).is_dir()), root / MENTION_IMAGES[0])


def _read_json(path: Path, kind: type, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as fp:
            value = json.load(fp)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DataError(f"cannot parse {path} as JSON ({first_line(exc)}); the file is corrupt or "
                        f"truncated: download it again from {_RELEASES}") from None
    if not isinstance(value, kind):
        found = _JSON_KINDS.get(type(value), type(value).__name__)
        raise DataError(f"{path} holds a JSON {found}; expected {what}")
    return value


_JSON_KINDS = {dict: "object", list: "list", str: "string", int: "number", float: "number",
               bool: "boolean", type(None): "null"}


def _index(folder: Path) -> set[str] | None:
    """The files under ``folder`` as relative POSIX paths (``None`` if there is no folder)."""
    if not folder.is_dir():
        return None
    out = set()
    for dirpath, _dirs, names in os.walk(folder):
        rel = os.path.relpath(dirpath, folder)
        prefix = "" if rel == "." else Path(rel).as_posix() + "/"
        out.update(prefix + n for n in names)
    return out


def _signature(root: Path, files: dict[str, Path]) -> list:
    """What the cache key depends on: the JSON files' and image folders' sizes and times."""
    out: list = [str(root.resolve())]
    for path in [*files.values(), root / KB_IMAGES, _mention_dir(root)]:
        try:
            st = path.stat()
            out.append((path.name, st.st_size if path.is_file() else None, st.st_mtime_ns))
        except OSError:
            out.append((path.name, None, None))
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _field(rec: Any, key: str, path: Path, i: int, keys: str) -> Any:
    if not isinstance(rec, dict) or key not in rec:
        what = "is not a JSON object" if not isinstance(rec, dict) else f"lacks {key!r}"
        raise DataError(f"{path.name}: record {i} {what}; each record needs {keys}")
    return rec[key]


class _Counts(Counter):
    """Problems counted while reading, each reported as one warning line."""

    def report(self, ds: MELDataset, root: Path, kb_dir_exists: bool, mention_dir: Path,
               mention_dir_exists: bool) -> None:
        label = ds.label
        lines = []
        if self["not_entity"]:
            lines.append(f"skipped {self['not_entity']} records of {KB_FILE} whose type is not 'entity'")
        if self["no_qid"]:
            lines.append(f"skipped {self['no_qid']} records of {KB_FILE} with no QID (no 'qid' and an "
                         f"'id' that {QID2ID_FILE} does not list)")
        if self["duplicate_qid"]:
            lines.append(f"skipped {self['duplicate_qid']} records of {KB_FILE} whose QID an earlier "
                         f"record has")
        if self["qid2id_mismatch"]:
            lines.append(f"{self['qid2id_mismatch']} records of {KB_FILE} have an 'id' other than the one "
                         f"{QID2ID_FILE} gives their 'qid' (the 'qid' is used)")
        if self["kb_images_missing"]:
            where = "" if kb_dir_exists else f" (there is no folder {root / KB_IMAGES})"
            lines.append(f"{self['kb_images_missing']} images listed in {KB_FILE} have no file in "
                         f"{root / KB_IMAGES}{where}; they are left out ({self['entities_lost_image']} "
                         f"entities are left without an image)")
        if self["mention_images_missing"]:
            where = "" if mention_dir_exists else " (no such folder)"
            lines.append(f"{self['mention_images_missing']} mention images have no file in "
                         f"{mention_dir}{where}; those mentions have no image")
        if self["answer_not_in_kb"]:
            lines.append(f"{self['answer_not_in_kb']} mentions answer a QID that {KB_FILE} lacks; they "
                         f"are kept with y = -1")
        for line in lines:
            warnings.warn(f"{label}: {line}", stacklevel=4)


def _qid(rec: dict, id2qid: dict) -> tuple[str, bool]:
    """A KB record's QID and whether the record names it itself (``""`` when it has none)."""
    row, qid = rec.get("id"), _text(rec.get("qid")).strip()
    if qid:
        return qid, True
    if isinstance(row, str) and row.strip().upper().startswith("Q"):
        return row.strip(), True
    return (_text(id2qid.get(row, "")).strip() if isinstance(row, (int, str)) else ""), False


def _entity_images(listed: Any, kb_files: set[str] | None, counts: _Counts) -> list[str]:
    """The entries of an ``image_list`` that have a file under ``kb_image/``, as paths from root."""
    listed = [listed] if isinstance(listed, str) else list(listed or [])
    images = []
    for entry in listed:
        rel = posixpath.normpath(_text(entry).replace("\\", "/")) if entry else ""
        inside = rel and rel != ".." and not rel.startswith(("../", "/"))
        if inside and kb_files is not None and rel in kb_files:
            images.append(f"{KB_IMAGES}/{rel}")
        else:
            counts["kb_images_missing"] += 1
    if listed and not images:
        counts["entities_lost_image"] += 1
    return images


def _entities(records: list, qid2id: dict, path: Path, kb_files: set[str] | None,
              counts: _Counts, progress: bool, label: str) -> tuple[list[Entity], Counter]:
    """The KB's entities in ``id`` order (file order when some record has no integer ``id``)."""
    id2qid: dict = {}
    for qid, row in qid2id.items():
        if isinstance(row, (int, str)):
            id2qid.setdefault(row, qid)
    rows = []
    for i, rec in enumerate(records):
        if isinstance(rec, dict) and rec.get("type", "entity") != "entity":
            counts["not_entity"] += 1
            continue
        _field(rec, "entity_name", path, i, "'entity_name' and 'attr' or 'desc'")
        rows.append(rec)
    if all(isinstance(r.get("id"), int) and not isinstance(r.get("id"), bool) for r in rows):
        rows.sort(key=lambda r: r["id"])
    desc_keys: Counter = Counter()
    seen: set[str] = set()
    out = []
    for rec in track(rows, f"{label}: entities", unit="entity", enabled=bool(progress)):
        qid, own = _qid(rec, id2qid)
        if not qid:
            counts["no_qid"] += 1
            continue
        if qid in seen:
            counts["duplicate_qid"] += 1
            continue
        seen.add(qid)
        if own and "id" in rec and qid in qid2id and qid2id[qid] != rec["id"]:
            counts["qid2id_mismatch"] += 1
        key = "attr" if "attr" in rec else "desc" if "desc" in rec else None
        desc_keys[key or "none"] += 1
        out.append(Entity(qid, unquote(_text(rec["entity_name"])), _text(rec.get(key)) if key else "",
                          _entity_images(rec.get("image_list"), kb_files, counts)))
    return out, desc_keys


def _mentions(records: list, split: str, path: Path, folder: str, mention_files: set[str] | None,
              kb_keys: set[str], counts: _Counts, limit: int | None) -> list[Mention]:
    keys = "'mentions', 'sentence', 'imgPath' and 'answer'"
    out = []
    for i, rec in enumerate(records[:limit] if limit is not None else records):
        words = unquote(_text(_field(rec, "mentions", path, i, keys)))
        sentence = _text(_field(rec, "sentence", path, i, keys))
        answer = _text(_field(rec, "answer", path, i, keys)).strip()
        gold = None if answer.lower() in ("", "nil") else answer
        if gold is not None and gold not in kb_keys:
            counts["answer_not_in_kb"] += 1
        fname = mention_image_name(_text(rec.get("imgPath")))
        image = None
        if fname is not None:
            if mention_files is not None and fname in mention_files:
                image = f"{folder}/{fname}"
            else:
                counts["mention_images_missing"] += 1
        else:
            counts["mentions_without_image"] += 1
        ident = rec.get("id", i)
        out.append(Mention(f"{split}/{ident}", words, sentence, split, gold, image))
    return out


def _build(root: Path, key: str, ds: MELDataset, files: dict[str, Path], limit: int | None,
           progress: bool) -> HeteroData:
    qid2id = _read_json(files["qid2id"], dict, "one JSON object {QID: id}")
    records = _read_json(files["kb"], list, "a JSON list of entity records")
    kb_dir, mention_dir = root / KB_IMAGES, _mention_dir(root)
    kb_files, mention_files = _index(kb_dir), _index(mention_dir)
    counts = _Counts()
    entities, desc_keys = _entities(records, qid2id, files["kb"], kb_files, counts, progress, ds.label)
    kb_keys = {e.key for e in entities}
    mentions: list[Mention] = []
    sizes = {}
    for _, split in FILE_SPLITS:
        raw = _read_json(files[split], list, "a JSON list of mention records")
        sizes[split] = len(raw)
        mentions += _mentions(raw, split, files[split], mention_dir.name, mention_files, kb_keys,
                              counts, limit)
    counts.report(ds, root, kb_files is not None, mention_dir, mention_files is not None)
    n_images = [len(e.images) for e in entities]
    stats = {
        "kb_records": len(records), "entities": len(entities),
        "entities_with_image": sum(n > 0 for n in n_images), "entity_images": sum(n_images),
        "max_images_per_entity": max(n_images, default=0),
        "description_key": dict(desc_keys),
        "mention_records": sizes, "mentions": {s: sum(m.split == s for m in mentions) for s in sizes},
        "mentions_with_image": sum(m.image is not None for m in mentions),
        "skipped_records": {k: counts[k] for k in ("not_entity", "no_qid", "duplicate_qid")},
        "qid2id_entries": len(qid2id), "qid2id_mismatch": counts["qid2id_mismatch"],
        "kb_images_missing": counts["kb_images_missing"],
        "mention_images_missing": counts["mention_images_missing"],
        "mentions_without_image_path": counts["mentions_without_image"],
        "answer_not_in_kb": counts["answer_not_in_kb"],
        "published": {"kb_entities": ds.kb_size, "test_mentions": ds.test_size},
    }
    return kb_graph(key, VERSION, entities, mentions, image_root=str(root),
                    source=f"{ds.label} ({ds.origin}) as distributed by MIMIC (Luo et al., KDD 2023, "
                           f"github.com/pengfei-luo/MIMIC) or M3EL (Hu et al., KDD 2025, "
                           f"github.com/zhiweihu1103/MEL-M3EL), read from {root}",
                    license=ds.license, dataset=ds.label, root=str(root), limit=limit,
                    files={k: p.name for k, p in files.items()} | {"mention_images": mention_dir.name},
                    stats=stats)


def load_mel(root: str | os.PathLike, name: str = "wikimel", use_cache: bool = True,
             limit: int | None = None, progress: bool = True) -> HeteroData:
    """Load WikiMEL, RichpediaMEL or WikiDiverse from MIMIC's / M3EL's files (see the module doc).

    Args:
        root: the data set's folder (``kb_entity.json``, ``qid2id.json``, the mention files,
            ``kb_image/``, ``mention_image/``); it becomes ``meta["image_root"]``.
        name: ``wikimel``, ``richpediamel`` or ``wikidiverse`` (any case).
        use_cache: read and write the built graph in ``root/processed/``.
        limit: at most this many mentions per split, the first in file order (``None``: all);
            the knowledge base is always whole. For quick looks and tests.
        progress: report progress over the KB's entities.

    Returns:
        The entity-linking graph of :func:`mmgraph.data.kb.kb_graph`: ``entity`` nodes keyed by
        QID, ``mention`` nodes (the target) with the files' train / val / test split.

    Raises:
        ConfigError: an unknown ``name`` or a bad ``limit``.
        DataError: a missing folder or file, unparsable JSON, or records of the wrong shape.
    """
    key, ds = _dataset(name)
    limit = checks.integer("limit", limit, 0, optional=True)
    root = Path(root).expanduser().absolute()
    files = _files(root, ds)
    cache_key = fingerprint({"version": VERSION, "name": key, "limit": limit,
                             "files": _signature(root, files)})
    return cached_graph(root / "processed" / f"{key}-{cache_key}.pt", VERSION, use_cache,
                        lambda: _build(root, key, ds, files, limit, progress))

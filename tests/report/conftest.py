"""A small folder of real runs (synthetic data, a few epochs), made once for the report tests.

Layout (relative to the runs folder)::

    synthetic/mlp_text      mlp, text only,        seeds 0, 1
    synthetic/mlp_image     mlp, image only,       seeds 0, 1
    synthetic/mlp_both      mlp, text+image,       seeds 0, 1
    synthetic/gcn_a         gcn, text+image,       seeds 0, 1   } pooled: seeds 0-2
    synthetic/gcn_b         gcn, text+image,       seed 2       }
    synthetic/gcn_concat    gcn, concat fusion,    seeds 0, 1
    synthetic_b/gcn         gcn on another graph,  seeds 0-2
    synthetic_b/mlp         mlp on another graph,  seeds 0, 1
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir

import mmgraph.bench  # noqa: F401  (registers the data-root resolver)
from mmgraph.paths import config_dir

SMALL = ["dataset=synthetic", "dataset.loader.num_nodes=300", "dataset.loader.num_edges=2000",
         "dataset.loader.text_dim=16", "dataset.loader.image_dim=16", "trainer=fast", "trainer.max_epochs=6",
         "trainer.patience=6", "trainer.progress=false", "model.module.hidden_channels=16"]
OTHER_GRAPH = ["dataset.name=synthetic_b", "dataset.loader.homophily=0.3", "dataset.loader.seed=1"]

RUNS = {
    "synthetic/mlp_text": ["model=mlp", "features.modalities=[text]", "seeds=[0,1]"],
    "synthetic/mlp_image": ["model=mlp", "features.modalities=[image]", "seeds=[0,1]"],
    "synthetic/mlp_both": ["model=mlp", "seeds=[0,1]"],
    "synthetic/gcn_a": ["model=gcn", "seeds=[0,1]"],
    "synthetic/gcn_b": ["model=gcn", "seeds=[2]"],
    "synthetic/gcn_concat": ["model=gcn", "fusion=concat", "seeds=[0,1]"],
    "synthetic_b/gcn": ["model=gcn", "seeds=[0,1,2]", *OTHER_GRAPH],
    "synthetic_b/mlp": ["model=mlp", "seeds=[0,1]", *OTHER_GRAPH],
}


def compose_cfg(*overrides: str):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=[*SMALL, *overrides])


def make_run(folder: Path, *overrides: str) -> dict:
    from mmgraph.bench.runner import run

    return run(compose_cfg(*overrides), output_dir=folder)


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory) -> Path:
    """The runs folder above, made by the runner (read-only: copy it before editing)."""
    root = tmp_path_factory.mktemp("runs")
    for rel, overrides in RUNS.items():
        make_run(root / rel, *overrides)
    return root


def records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((folder / "runs").glob("seed_*.json"))]


def edit_json(path: Path, change) -> None:
    obj = json.loads(path.read_text())
    change(obj)
    path.write_text(json.dumps(obj, indent=2))


def mark_clean(root: Path) -> None:
    """Records as a clean checkout would write them: the tests may run in a checkout with
    uncommitted changes, which every record would rightly be flagged for."""
    for path in root.rglob("seed_*.json"):
        edit_json(path, lambda r: r["git"].update(dirty=False))
    for path in root.rglob("summary.json"):
        edit_json(path, lambda s: s["record"]["git"].update(dirty=False))


@pytest.fixture
def clean_root(runs_root: Path, tmp_path: Path) -> Path:
    """A copy of the runs folder with clean-checkout records, free to edit."""
    root = tmp_path / "runs"
    shutil.copytree(runs_root, root)
    mark_clean(root)
    return root

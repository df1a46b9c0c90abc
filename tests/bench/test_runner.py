"""The runner composed from the real configs, shrunk to seconds."""
import json
import math
import statistics

import pytest
from hydra import compose, initialize_config_dir

import mmgraph.bench  # noqa: F401  (registers the data-root resolver)
from mmgraph.bench.records import markdown_table
from mmgraph.bench.runner import run
from mmgraph.errors import ConfigError
from mmgraph.paths import config_dir

SMALL = ["dataset=synthetic", "dataset.loader.num_nodes=400", "dataset.loader.num_edges=3000", "dataset.loader.text_dim=16",
         "dataset.loader.image_dim=16", "trainer=fast", "trainer.max_epochs=8", "trainer.progress=false",
         "runs=2"]


def compose_cfg(*overrides):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def trained_models() -> list[str]:
    """The node models that are trained (zero-shot and generation models choose their own task)."""
    from mmgraph.cli import compose

    return [p.stem for p in sorted((config_dir() / "model").glob("*.yaml"))
            if compose(config_dir(), [f"model={p.stem}"]).task._target_ == "mmgraph.tasks.NodeClassification"]


@pytest.mark.parametrize("model", trained_models())
def test_every_model_config_trains_on_synthetic(model, tmp_path):
    cfg = compose_cfg(f"model={model}", *SMALL, "model.module.hidden_channels=24")
    row = run(cfg, output_dir=tmp_path)
    assert row["model"] == model and row["runs"] == 2
    acc = row["summary"]["test/accuracy"]
    assert 0.0 <= acc["mean"] <= 1.0 and not math.isnan(acc["std"])
    assert len(list((tmp_path / "runs").glob("seed_*.json"))) == 2


def test_records_carry_everything_needed_to_reproduce(tmp_path):
    cfg = compose_cfg("model=gcn", *SMALL, "seeds=[7,9]")
    row = run(cfg, output_dir=tmp_path)
    records = [json.loads((tmp_path / "runs" / f"seed_{s}.json").read_text()) for s in (7, 9)]
    for seed, rec in zip((7, 9), records):
        assert rec["seed"] == seed
        assert rec["config"]["model"]["name"] == "gcn"
        assert rec["task"]["split"]["name"] == "magb" and len(rec["task"]["split"]["fingerprint"]) == 16
        assert set(rec["features"]) == {"x_text", "x_image"}
        assert all(len(f["fingerprint"]) == 16 for f in rec["features"].values())
        assert rec["input"]["modalities"] == ["text", "image"]
        assert {"torch", "torch_geometric", "python"} <= set(rec["versions"])
        assert "commit" in rec["git"]
        assert rec["selected"]["accuracy"]["epoch"] >= 1 and rec["history"]
    tests = [r["selected"]["accuracy"]["test"] for r in records]
    summary = row["summary"]["test/accuracy"]
    assert summary["mean"] == pytest.approx(statistics.fmean(tests))
    assert summary["std"] == pytest.approx(statistics.stdev(tests))  # unbiased (n - 1)
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert saved["seeds"] == [7, 9] and saved["summary"] == json.loads(json.dumps(row["summary"]))
    assert (tmp_path / "results.md").read_text().startswith("| dataset | model |")


def test_same_config_same_numbers(tmp_path):
    cfg = compose_cfg("model=sage", *SMALL, "runs=1")
    a = run(cfg, output_dir=tmp_path / "a")["summary"]
    b = run(cfg, output_dir=tmp_path / "b")["summary"]
    means = [{k: v["mean"] for k, v in s.items() if "/" in k} for s in (a, b)]
    assert means[0] == means[1] and a["epochs"] == b["epochs"]


def test_modality_choice_reaches_the_model(tmp_path):
    rows = {m: run(compose_cfg("model=mlp", *SMALL, "runs=1", f"features.modalities=[{m}]"), tmp_path / m)
            for m in ("text", "image")}
    assert rows["text"]["modalities"] == "text" and rows["image"]["modalities"] == "image"
    assert rows["text"]["input_fingerprint"] != rows["image"]["input_fingerprint"]


def test_link_prediction_through_the_same_runner(tmp_path):
    cfg = compose_cfg("model=gcn", "task=link_prediction", *SMALL, "task.embedding_channels=16",
                      "task.num_neg_eval=10")
    row = run(cfg, output_dir=tmp_path)
    assert row["primary"] == "mrr"
    assert set(row["metrics"]) == {"mrr", "hits@1", "hits@3", "hits@10"}
    assert 0 < row["summary"]["test/mrr"]["mean"] <= 1


def test_config_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="trainer.lr: Value 'fast'"):
        run(compose_cfg(*SMALL, "trainer.lr=fast"), tmp_path)
    with pytest.raises(ConfigError, match="cannot build model gcn .*unexpected keyword argument 'bogus'"):
        run(compose_cfg(*SMALL, "+model.module.bogus=1"), tmp_path)
    with pytest.raises(ConfigError, match="runs must be >= 1"):
        run(compose_cfg(*SMALL, "runs=0"), tmp_path)


def test_markdown_table_formats_mean_and_std():
    row = {"dataset": "d", "model": "m", "modalities": "text", "runs": 2, "metrics": ["accuracy"],
           "primary": "accuracy", "summary": {"val/accuracy": {"mean": 0.5, "std": 0.1},
                                              "test/accuracy": {"mean": 0.81234, "std": 0.00456},
                                              "epochs": 10, "seconds_per_run": 1.25}}
    table = markdown_table([row]).splitlines()
    assert table[0] == "| dataset | model | modalities | runs | val accuracy | test accuracy | epochs | s/run |"
    assert table[2] == "| d | m | text | 2 | 50.00 ± 10.00 | 81.23 ± 0.46 | 10 | 1.2 |"

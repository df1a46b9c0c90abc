"""Modality fusion through the runner: fusion=<kind> with any model, and modality ablation."""
import json

import pytest

from mmgraph.bench.records import markdown_table
from mmgraph.bench.runner import run
from mmgraph.errors import ConfigError
from mmgraph.nn import FusionModel
from mmgraph.paths import config_dir
from tests.bench.test_runner import SMALL, compose_cfg

FUSIONS = sorted(p.stem for p in (config_dir() / "fusion").glob("*.yaml"))
# Small but long enough to learn: 400 nodes, 6 classes (chance 1/6), 10% missing per modality.
FAST = [*SMALL, "runs=1", "trainer.max_epochs=20", "model.module.hidden_channels=24",
        "dataset.loader.num_classes=6"]


def test_every_fusion_has_a_config():
    assert set(FUSIONS) == {"none", "concat", "sum", "late", "attention", "lowrank"}
    assert compose_cfg().fusion.kind == "none"  # the default keeps the plain model


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_fusion_learns_on_synthetic(fusion, tmp_path):
    extra = [] if fusion in ("none", "concat") else ["fusion.fusion_dim=16"]
    row = run(compose_cfg("model=gcn", *FAST, f"fusion={fusion}", *extra), output_dir=tmp_path)
    assert row["fusion"] == ("late-logits" if fusion == "late" else fusion)
    assert row["summary"]["test/accuracy"]["mean"] > 2 / 6, row["summary"]  # twice chance
    record = json.loads(next((tmp_path / "runs").glob("seed_*.json")).read_text())
    assert record["config"]["fusion"]["kind"] == fusion
    table = (tmp_path / "results.md").read_text().splitlines()
    if fusion == "none":
        assert "fusion" not in table[0]
    else:
        assert table[0].startswith("| dataset | model | modalities | fusion | runs |")
        assert f"| {row['fusion']} |" in table[2]


@pytest.mark.parametrize("model", ["mlp", "sage"])
def test_late_embedding_and_other_backbones(model, tmp_path):
    row = run(compose_cfg(f"model={model}", *FAST, "trainer.max_epochs=5", "fusion=late",
                          "fusion.late_level=embedding", "fusion.fusion_dim=16"), tmp_path)
    assert row["fusion"] == "late-embedding" and row["model"] == model


@pytest.mark.parametrize("fusion", ["concat", "attention", "lowrank", "late"])
@pytest.mark.parametrize("modalities", ["[text]", "[image]"])
def test_modality_ablation_with_fusion(fusion, modalities, tmp_path):
    row = run(compose_cfg("model=gcn", *FAST, "trainer.max_epochs=3", f"fusion={fusion}",
                          f"features.modalities={modalities}"), tmp_path)
    assert row["modalities"] == modalities.strip("[]")


def test_fusion_model_is_built_over_the_input_modalities(tmp_path, monkeypatch):
    built = []
    original = FusionModel.__init__

    def spy(self, dims, *args, **kwargs):
        built.append((list(dims), kwargs))
        original(self, dims, *args, **kwargs)

    monkeypatch.setattr(FusionModel, "__init__", spy)
    run(compose_cfg("model=gcn", *FAST, "trainer.max_epochs=1", "fusion=lowrank",
                    "features.modalities=[image,text]", "dataset.loader.image_dim=12"), tmp_path)
    (dims, kwargs), = built
    assert dims == [12, 16] and kwargs["modalities"] == ["image", "text"] and kwargs["rank"] == 4


def test_link_prediction_with_fusion(tmp_path):
    row = run(compose_cfg("model=gcn", "task=link_prediction", *FAST, "trainer.max_epochs=3",
                          "task.embedding_channels=16", "task.num_neg_eval=10", "fusion=attention",
                          "fusion.fusion_dim=16"), tmp_path)
    assert row["fusion"] == "attention" and 0 < row["summary"]["test/mrr"]["mean"] <= 1


def test_fusion_config_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match="cannot build fusion sum: .*unexpected keyword argument 'bogus'"):
        run(compose_cfg(*FAST, "fusion=sum", "+fusion.bogus=1"), tmp_path)
    with pytest.raises(ConfigError, match="unknown late_level 'middle'"):
        run(compose_cfg(*FAST, "fusion=late", "fusion.late_level=middle"), tmp_path)
    with pytest.raises(ConfigError, match="cannot build model gcn .*unexpected keyword argument 'bogus'"):
        run(compose_cfg(*FAST, "fusion=attention", "+model.module.bogus=1"), tmp_path)


def test_markdown_table_fusion_column_only_when_fused():
    base = {"dataset": "d", "model": "m", "modalities": "text", "runs": 1, "metrics": ["accuracy"],
            "primary": "accuracy", "summary": {"val/accuracy": {"mean": 0.5, "std": float("nan")},
                                               "test/accuracy": {"mean": 0.5, "std": float("nan")},
                                               "epochs": 1, "seconds_per_run": 1.0}}
    assert "fusion" not in markdown_table([base, {**base, "fusion": "none"}])
    table = markdown_table([base, {**base, "fusion": "attention"}]).splitlines()
    assert table[0].startswith("| dataset | model | modalities | fusion | runs |")
    assert table[2].startswith("| d | m | text | none | 1 |")
    assert table[3].startswith("| d | m | text | attention | 1 |")

"""Every model config trains through the runner on the real Open Clip Art graph (text features).

The data root comes from the session fixture ``openclipart_root`` (tests/conftest.py): a local
extracted tree linked in, else, under CI, downloaded the way ``make bench`` does.
"""
import pytest

from mmgraph.bench.runner import run
from tests.bench.test_runner import compose_cfg, trained_models

MODELS = trained_models()


@pytest.mark.slow
@pytest.mark.parametrize("model", MODELS)
def test_every_model_config_trains_on_openclipart(model, openclipart_root, tmp_path):
    cfg = compose_cfg(f"model={model}", "dataset=openclipart", f"paths.data_root={openclipart_root}",
                      "features.modalities=[text]", f"features.cache_dir={openclipart_root / 'features'}",
                      "model.module.hidden_channels=48", "trainer.max_epochs=30", "trainer.lr=0.01",
                      "trainer.progress=false", "runs=1")
    row = run(cfg, output_dir=tmp_path)
    assert row["dataset"] == "openclipart" and row["modalities"] == "text"
    acc = row["summary"]["test/accuracy"]["mean"]
    # 14 classes, the largest about 16% of the nodes: 30 epochs on MiniLM text clear it well.
    assert acc > 0.3, f"{model}: test accuracy {acc:.3f} after 30 epochs"

"""Every model config trains through the runner on the real Open Clip Art graph (text features).

The graph is built once per session in a temporary data root: from a local extracted tree when
one exists (linked in), else, under CI, downloaded the way ``make bench`` does on a fresh machine.
"""
import os
import shutil
from pathlib import Path

import pytest

from mmgraph.bench.runner import run
from mmgraph.paths import config_dir
from tests.bench.test_runner import compose_cfg
from tests.data.test_openclipart import _real_tree

# models that are trained (zero-shot predictors, `zero_shot: true`, have tests of their own)
MODELS = sorted(p.stem for p in (config_dir() / "model").glob("*.yaml") if "zero_shot: true" not in p.read_text())


@pytest.fixture(scope="session")
def openclipart_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("openclipart_root")
    tree = _real_tree()
    if tree is not None:
        link = root / "openclipart" / "usr" / "share" / "openclipart"
        link.parent.mkdir(parents=True)
        link.symlink_to(tree)
    elif not (os.environ.get("CI") and shutil.which("apt-get")):
        pytest.skip("Open Clip Art not found (set MMGRAPH_OPENCLIPART_TREE or install "
                    "openclipart-png/openclipart-svg)")
    return root


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

"""The real-data anchor: Cora, 10 seeds on the public split, with the shipped experiment configs.

Published: GCN 81.5 (Kipf & Welling), GAT 83.0 ± 0.7 (Velickovic et al.). The bounds leave a
published-minus-one margin for the seed set.
"""
import pytest
from hydra import compose, initialize_config_dir

import mmgraph.bench  # noqa: F401
from mmgraph.bench.runner import run
from mmgraph.paths import config_dir


@pytest.mark.slow
@pytest.mark.parametrize("experiment, bound", [("cora_gcn", 0.805), ("cora_gat", 0.820)])
def test_cora_anchor(experiment, bound, cora_root, tmp_path):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={experiment}", f"paths.data_root={cora_root}",
                                                       "trainer.progress=false"])
    assert cfg.runs == 10
    row = run(cfg, output_dir=tmp_path)
    acc = row["summary"]["test/accuracy"]
    print(f"{experiment}: test accuracy {acc['mean'] * 100:.2f} ± {acc['std'] * 100:.2f}")
    assert acc["mean"] >= bound

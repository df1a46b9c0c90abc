"""The command line: bad input gives one readable line and a non-zero status."""
import os
import subprocess
import sys

import pytest

SMALL = ["dataset=synthetic", "dataset.loader.num_nodes=300", "dataset.loader.num_edges=2000", "trainer=fast",
         "trainer.max_epochs=3", "runs=1", "trainer.progress=false"]


def cli(*args, env=None, tmp_path=None):
    full_env = {**os.environ, **(env or {})}
    extra = [f"hydra.run.dir={tmp_path / 'run'}"] if tmp_path else []
    return subprocess.run([sys.executable, "-m", "mmgraph.bench", *args, *extra], capture_output=True,
                          text=True, env=full_env, timeout=300)


def test_runs_and_prints_a_table(tmp_path):
    out = cli("model=mlp", *SMALL, tmp_path=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "| synthetic | mlp | text+image | 1 |" in out.stdout
    assert (tmp_path / "run" / "runs" / "seed_42.json").is_file()


@pytest.mark.parametrize("args, message, status", [
    # others add models all the time: check the stable prefix here, and "gcn" in the list below
    (["model=transformerx"], "unknown model 'transformerx'; valid model names: ", 2),
    (["dataset=imagenet"], "unknown dataset 'imagenet'; valid dataset names: ", 2),
    (["model"], "malformed override 'model'", 2),
    (["trainer.lrr=0.1"], "unknown config key 'trainer.lrr'; valid keys of trainer: eval_every, lr,", 2),
    (["device=cuda:7"] if "torch" not in sys.modules else ["device=cuda:7"], "device=cuda:7", 2),
    (["dataset.loader.homophily=1.5"], "homophily", 2),
])
def test_bad_input_is_one_line(args, message, status, tmp_path):
    if args == ["device=cuda:7"]:
        import torch
        if torch.cuda.is_available():
            pytest.skip("a CUDA device exists here")
    out = cli(*SMALL, *args, tmp_path=tmp_path)
    assert out.returncode == status
    errors = [line for line in out.stderr.splitlines() if line.strip() and not line.startswith("[")]
    assert len(errors) == 1, out.stderr
    assert errors[0].startswith("mmgraph.bench: error: ") and message in errors[0]
    if args == ["model=transformerx"]:
        assert "gcn" in errors[0].split("valid model names: ", 1)[1].split(", ")
    if args == ["dataset=imagenet"]:
        assert {"cora", "magb_grocery", "synthetic_kb"} <= set(errors[0].split("valid dataset names: ", 1)[1].split(", "))
    assert "Traceback" not in out.stderr


def test_missing_data_path_is_one_line(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    out = cli("dataset=cora", "runs=1", "trainer.max_epochs=1", f"paths.data_root={root}",
              tmp_path=tmp_path)
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.strip() and not line.startswith("[")]
    assert len(errors) == 1 and "Cora raw files missing in" in errors[0] and "MMGRAPH_DATA" in errors[0]

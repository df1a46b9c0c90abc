"""``task=generation`` through the one runner: the WikiWeb2M fixture (MMGL's layout) and the real
openclipart graph, with tiny random LMs of the Llama and T5 families (SmolLM2's tokenizer)."""
from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from mmgraph.bench.runner import run
from tests.bench.test_runner import compose_cfg
from tests.data.test_wikiweb2m import _write

pytestmark = pytest.mark.usefixtures("one_thread")

LLAMA = ("model.module.lm_config={model_type:llama,hidden_size:32,intermediate_size:64,"
         "num_hidden_layers:2,num_attention_heads:2,num_key_value_heads:2}")
T5 = ("model.module.lm_config={model_type:t5,d_model:32,d_kv:16,d_ff:64,num_layers:2,"
      "num_decoder_layers:2,num_heads:2}")
TINY = ["runs=1", "trainer.max_epochs=2", "trainer.progress=false", "trainer.lr=0.003",
        "model.module.max_new_tokens=8", "model.module.lora_r=4", "device=cpu"]


@pytest.fixture(scope="module")
def wiki_root(tmp_path_factory) -> Path:
    return _write(tmp_path_factory.mktemp("wiki") / "wikiweb2m")


def wiki_cfg(root: Path, tmp: Path, *extra: str):
    return compose_cfg("dataset=wikiweb2m", f"dataset.loader.root={root}", f"features.cache_dir={tmp / 'features'}",
                       f"task.cache_file={tmp / 'generations.jsonl'}", *TINY, *extra)


def one_line_error(status: int, stderr: str) -> str:
    """The error line a failed run ended with (progress lines of the data and feature steps may
    come before it); fails on a traceback or a run that did not fail."""
    assert "Traceback" not in stderr and status in (1, 2), f"status {status}: {stderr}"
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("mmgraph.bench: error: "), stderr
    return last


def scores(row: dict) -> dict:
    return {k: v for k, v in row["summary"].items() if "/" in k}


def _run(cfg, out: Path) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the fixture's missing image and bad UTF-8 are counted warnings
        return run(cfg, output_dir=out)


@pytest.mark.parametrize("model,lm,extra", [
    ("sa_e", LLAMA, ["model.module.pe=laplacian"]),
    ("sa_te", LLAMA, ["model.module.pe=gnn", "model.module.num_beams=2"]),
    ("ca_e", LLAMA, ["model.module.xattn_every=1"]),
    ("sa_e", T5, ["task.context=text"]),
])
def test_wikiweb2m_fixture_runs_through_the_runner(model, lm, extra, wiki_root, tmp_path):
    row = _run(wiki_cfg(wiki_root, tmp_path, f"model={model}", lm, *extra), tmp_path / "run")
    assert row["model"] == model and row["metrics"] == ["bleu4", "rouge_l", "cider_d"]
    assert row["primary"] == "rouge_l"
    for m in ("bleu4", "rouge_l", "cider_d"):
        value = row["summary"][f"test/{m}"]["mean"]
        assert math.isfinite(value) and value >= 0
    gen = row["generation"]
    assert gen["encoding"] == model and gen["trainable_parameters"] > 0
    assert gen["train_tokens_per_second"] > 0 and gen["generation_tokens_per_second"] > 0
    record = json.loads(next((tmp_path / "run" / "runs").glob("seed_*.json")).read_text())
    assert record["task"]["examples"] == {"train": 4, "val": 2, "test": 1}
    assert record["task"]["split"]["name"] == "mmgl"
    assert set(record["features"]) >= {"x_text", "page/x_text", "caption/x_text", "image/x_image"}
    samples = record["generation"]["samples"]["val"]
    assert len(samples) == 2 and all(isinstance(s["generated"], str) for s in samples)
    assert samples[0]["target"] == "Gamma 0 first."


def test_a_repeated_run_decodes_nothing_and_an_interrupted_one_resumes(wiki_root, tmp_path):
    cfg = wiki_cfg(wiki_root, tmp_path, "model=sa_e", LLAMA)
    first = _run(cfg, tmp_path / "a")
    rec = json.loads(next((tmp_path / "a" / "runs").glob("seed_*.json")).read_text())["generation"]
    assert rec["decoded"] == 2 * 3 and rec["from_cache"] == 0      # 2 epochs x (2 val + 1 test)
    lines = (tmp_path / "generations.jsonl").read_text().splitlines()
    assert len(lines) == 6
    # a run cut off during its last decoding: the cache lost its last line (and half of another)
    (tmp_path / "generations.jsonl").write_text("\n".join(lines[:-1])[:-5])
    with pytest.warns(RuntimeWarning, match="truncated or corrupt"):
        second = run(cfg, output_dir=tmp_path / "b")
    rec = json.loads(next((tmp_path / "b" / "runs").glob("seed_*.json")).read_text())["generation"]
    assert rec["from_cache"] == 4 and rec["decoded"] == 2
    assert scores(second) == scores(first)
    third = _run(cfg, tmp_path / "c")
    rec = json.loads(next((tmp_path / "c" / "runs").glob("seed_*.json")).read_text())["generation"]
    assert rec["decoded"] == 0 and rec["from_cache"] == 6
    assert scores(third) == scores(first)


def run_cli(argv: list[str], run_dir: Path) -> tuple[int, str]:
    """``python -m mmgraph.bench <TINY> <argv>`` in a fresh process: (exit status, stderr)."""
    cmd = [sys.executable, "-m", "mmgraph.bench", *TINY, *argv, f"hydra.run.dir={run_dir}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return proc.returncode, proc.stderr


@pytest.fixture(scope="module")
def shared_features(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("features")


@pytest.mark.parametrize("argv,says", [
    (["model.module.lm=/no/such/model/folder", "model.module.lm_config=null"], "no such folder"),
    (["model.module.peft=flamingo"], "flamingo"),
    (["model.module.lora_targets=[nothing_here]"], "lora_targets"),
    (["task.context=everything"], "task.context"),
    (["task.target=no_field"], "no field 'no_field'"),
])
def test_bad_generation_settings_are_one_line(argv, says, wiki_root, shared_features, tmp_path):
    status, stderr = run_cli(["dataset=wikiweb2m", "model=sa_e", LLAMA, f"dataset.loader.root={wiki_root}",
                              f"features.cache_dir={shared_features}", "task.cache_file=null", *argv],
                             tmp_path / "run")
    assert says in one_line_error(status, stderr)


def test_empty_targets_only_is_a_one_line_error(shared_features, tmp_path):
    from tests.data.test_wikiweb2m import PAGES

    pages = {s: [dict(p, section_summary=[b""] * len(p["section_summary"])) for p in rows]
             for s, rows in PAGES.items()}
    root = _write(tmp_path / "w", pages=pages)
    status, stderr = run_cli(["dataset=wikiweb2m", "model=sa_e", LLAMA, f"dataset.loader.root={root}",
                              f"features.cache_dir={shared_features}", "task.cache_file=null"], tmp_path / "run")
    assert "no WikiWeb2M examples" in one_line_error(status, stderr)


@pytest.mark.slow
def test_openclipart_titles_through_the_runner(openclipart_root, tmp_path):
    cfg = compose_cfg("model=sa_e", LLAMA, "dataset=openclipart", f"paths.data_root={openclipart_root}",
                      "features.modalities=[text]", f"features.cache_dir={openclipart_root / 'features'}",
                      "task.train_limit=16", "task.eval_sample=8", "task.cache_file=null", *TINY)
    row = _run(cfg, tmp_path)
    rec = json.loads(next((tmp_path / "runs").glob("seed_*.json")).read_text())
    task = rec["task"]
    assert task["target"] == "title" and task["split"]["params"]["key"] == "title"
    assert task["overlap"]["test"]["target_in_train"] == 0.0
    assert task["evaluated"] == {"val": 8, "test": 8}
    assert sum(task["examples"].values()) > 4000
    assert math.isfinite(row["summary"]["test/rouge_l"]["mean"])

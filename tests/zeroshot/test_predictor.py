"""Zero-shot prediction through the runner: tiny random language models on the synthetic graph."""
import json

import pytest
import torch
from hydra import compose, initialize_config_dir

import mmgraph.bench  # noqa: F401  (registers the data-root resolver)
from mmgraph.bench.records import markdown_table
from mmgraph.bench.runner import run
from mmgraph.errors import ConfigError
from mmgraph.paths import config_dir
from mmgraph.zeroshot.parse import Parsed
from mmgraph.zeroshot.predictor import sample_nodes, score
from tests.zeroshot.test_generate import build_tiny_models

SMALL = ["dataset=synthetic", "dataset.loader.num_nodes=300", "dataset.loader.num_edges=2000",
         "dataset.loader.text_dim=16", "dataset.loader.image_dim=16", "runs=1", "model=smollm2",
         "model.sample=10", "model.max_new_tokens=4", "model.parse_embedding=false"]


def compose_cfg(*overrides):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_models(tmp_path_factory.mktemp("tiny-zero-shot"))


def record(folder):
    return json.loads((folder / "runs" / "seed_42.json").read_text())


def test_text_model_row_resumes_from_its_cache(tiny, tmp_path):
    args = [*SMALL, f"model.generator={tiny['lm']}", f"model.cache_dir={tmp_path / 'gen'}",
            "model.num_neighbors=2", "model.neighbor_mode=both"]
    row = run(compose_cfg(*args), output_dir=tmp_path / "a")
    assert row["model"] == "smollm2" and row["runs"] == 1 and row["metrics"] == ["accuracy", "macro_f1", "mismatch"]
    rec = record(tmp_path / "a")
    info = rec["zero_shot"]["test"]
    assert info["nodes"] == 10 and info["generated"] == 10 and info["new_tokens"] > 0
    assert sum(info["parsed"].values()) == 10
    sel = rec["selected"]
    assert 0.0 <= sel["accuracy"]["test"] <= 1.0 and 0.0 <= sel["mismatch"]["test"] <= 1.0
    assert rec["generator"]["accepts_images"] is False and rec["task"]["zero_shot"] is True
    # the same prompts again: nothing generated, the same numbers
    again = run(compose_cfg(*args), output_dir=tmp_path / "b")
    assert record(tmp_path / "b")["zero_shot"]["test"]["generated"] == 0
    assert again["summary"]["test/accuracy"] == row["summary"]["test/accuracy"]
    # its row sits in the runner's table with the trained models'
    table = markdown_table([row])
    assert "| synthetic | smollm2 | text+image, 2 neighbours (both) | 1 |" in table


def test_vision_model_sees_images(tiny, tmp_path):
    row = run(compose_cfg(*SMALL, f"model.generator={tiny['llava']}", f"model.cache_dir={tmp_path / 'gen'}",
                          "model.num_neighbors=1", "model.neighbor_mode=image"), output_dir=tmp_path / "v")
    rec = record(tmp_path / "v")
    assert rec["generator"]["accepts_images"] is True and rec["zero_shot"]["test"]["generated"] == 10
    assert row["summary"]["test/accuracy"]["mean"] >= 0.0


def test_same_sample_whatever_the_prompt():
    index = torch.arange(100, 200)
    a = sample_nodes(index, 30, seed=0)
    assert torch.equal(a, sample_nodes(index.flip(0), 30, seed=0)) and a.numel() == 30
    assert not torch.equal(a, sample_nodes(index, 30, seed=1))
    assert torch.equal(sample_nodes(index, None, 0), index)


def test_unknown_answers_count_as_wrong_and_as_mismatches():
    y = torch.tensor([0, 1, 2, 2])
    pred = torch.tensor([0, -1, 2, -1])
    s = score(y, pred, 3)
    assert s["accuracy"] == 0.5 and s["mismatch"] == 0.5
    # macro-F1 over classes 0..2 plus the "unknown" column (F1 0), as MAGB's string labels give
    f1 = {0: 1.0, 1: 0.0, 2: 2 * 1 / (2 + 1), 3: 0.0}
    assert s["macro_f1"] == pytest.approx(sum(f1.values()) / 4)
    assert Parsed(-1, None, "unknown").index == -1


def test_bad_generator_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such folder"):
        run(compose_cfg(*SMALL, f"model.generator={tmp_path / 'nothing'}", f"model.cache_dir={tmp_path}"))


def test_clip_zero_shot_through_the_runner(tmp_path):
    from mmgraph.zeroshot.clip import ClipZeroShot
    from tests.zeroshot.test_clip import _tiny_clip

    folder = _tiny_clip(tmp_path / "clip")
    base = [a for a in SMALL if not a.startswith("model.")]
    args = [*base, "model=clip", f"model.generator={folder}", "model.sample=10", "model.use=both"]
    row = run(compose_cfg(*args), output_dir=tmp_path / "c")
    rec = record(tmp_path / "c")
    assert row["model"] == "clip" and rec["zero_shot"]["test"]["nodes"] == 10
    assert rec["selected"]["mismatch"]["test"] == 0.0  # a joint-embedding model always names a class
    # neighbours mixed in with alpha = 1: the prediction is the neighbours' mean's class
    mixed = run(compose_cfg(*args, "model.num_neighbors=2", "model.alpha=1.0"), output_dir=tmp_path / "m")
    assert mixed["modalities"] == "text+image, 2 neighbours (alpha 1)"
    assert 0.0 <= mixed["summary"]["test/accuracy"]["mean"] <= 1.0
    assert isinstance(ClipZeroShot(str(folder)).fingerprint(), str)


@pytest.mark.slow
def test_real_smollm2_on_a_50_node_sample(tmp_path):
    args = [a for a in SMALL if not a.startswith("model.sample")]
    row = run(compose_cfg(*args, "model.sample=50", "model.num_neighbors=3", "model.max_new_tokens=12",
                          f"model.cache_dir={tmp_path / 'gen'}"), output_dir=tmp_path / "s")
    info = record(tmp_path / "s")["zero_shot"]["test"]
    assert info["nodes"] == 50 and info["generated"] == 50 and sum(info["parsed"].values()) == 50
    assert info["new_tokens"] > 50 and info["tokens_per_second"] > 0
    assert all(e["output"].strip() for e in info["examples"])  # the model answers something
    assert row["zero_shot"]["tokens_per_second"] == info["tokens_per_second"]


def test_a_model_without_chat_template_needs_one(tiny, tmp_path):
    args = [*SMALL, f"model.generator={tiny['nochat']}", f"model.cache_dir={tmp_path / 'gen'}"]
    with pytest.raises(ConfigError, match="has no chat template"):
        run(compose_cfg(*args))
    template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}Category:"
    cfg = compose_cfg(*args)
    cfg.model.chat_template = template  # (Jinja does not fit Hydra's override grammar)
    row = run(cfg, output_dir=tmp_path / "t")
    assert record(tmp_path / "t")["zero_shot"]["test"]["generated"] == 10 and row["runs"] == 1

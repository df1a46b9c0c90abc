"""Zero-shot prediction through the runner: tiny random language models on the synthetic graph.

The zero-shot models are models of the ``zero_shot`` task, built from their YAML's ``_target_``
and evaluated once by the one training loop (they have no trainable parameters).
"""
import json

import pytest
import torch
import torch.nn.functional as F
from hydra import compose, initialize_config_dir

import mmgraph.bench  # noqa: F401  (registers the data-root resolver)
from mmgraph.bench.records import markdown_table
from mmgraph.bench.runner import run
from mmgraph.errors import ConfigError
from mmgraph.evaluator import Evaluator
from mmgraph.metrics import macro_f1
from mmgraph.paths import config_dir
from mmgraph.tasks.zero_shot import SPEC, sample_nodes
from mmgraph.zeroshot.parse import Parsed
from tests.zeroshot.test_generate import build_tiny_models

SMALL = ["dataset=synthetic", "dataset.loader.num_nodes=300", "dataset.loader.num_edges=2000",
         "dataset.loader.text_dim=16", "dataset.loader.image_dim=16", "runs=1", "model=smollm2",
         "task.sample=10", "model.module.max_new_tokens=4", "model.module.parse_embedding=false"]


def compose_cfg(*overrides):
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_models(tmp_path_factory.mktemp("tiny-zero-shot"))


def record(folder):
    return json.loads((folder / "runs" / "seed_42.json").read_text())


def test_zero_shot_models_choose_their_task_and_build_from_target():
    for name, target in (("smollm2", "mmgraph.zeroshot.LMClassifier"), ("vlm", "mmgraph.zeroshot.LMClassifier"),
                         ("clip", "mmgraph.zeroshot.ClipClassifier")):
        cfg = compose_cfg(f"model={name}")
        assert cfg.model.module._target_ == target
        assert cfg.task._target_ == "mmgraph.tasks.ZeroShotNodeClassification"
    # a trained model keeps the default task
    assert compose_cfg("model=gcn").task._target_ == "mmgraph.tasks.NodeClassification"


def test_text_model_row_resumes_from_its_cache(tiny, tmp_path):
    args = [*SMALL, f"model.module.generator={tiny['lm']}", f"model.module.cache_file={tmp_path / 'gen.jsonl'}",
            "model.module.num_neighbors=2", "model.module.neighbor_mode=both"]
    row = run(compose_cfg(*args), output_dir=tmp_path / "a")
    assert row["model"] == "smollm2" and row["runs"] == 1 and row["metrics"] == ["accuracy", "macro_f1", "mismatch"]
    assert row["higher_is_better"] == {"accuracy": True, "macro_f1": True, "mismatch": False}
    rec = record(tmp_path / "a")
    info = rec["zero_shot"]["test"]
    assert info["nodes"] == 10 and info["generated"] == 10 and info["new_tokens"] > 0
    assert sum(info["parsed"].values()) == 10
    assert rec["epochs"] == 0 and rec["history"][0]["epoch"] == 0  # evaluated once, not trained
    sel = rec["selected"]
    # the recorded metrics are those of the answers: recompute them from the parsed outputs
    assert sel["mismatch"]["test"] == pytest.approx(info["parsed"].get("unknown", 0) / 10)
    assert rec["generator"]["accepts_images"] is False and rec["task"]["kind"] == "zero_shot_classification"
    # the same prompts again: nothing generated, the same numbers
    again = run(compose_cfg(*args), output_dir=tmp_path / "b")
    assert record(tmp_path / "b")["zero_shot"]["test"]["generated"] == 0
    assert again["summary"]["test/accuracy"] == row["summary"]["test/accuracy"]
    # its row sits in the runner's table with the trained models'
    table = markdown_table([row])
    assert "| synthetic | smollm2 | text+image, 2 neighbours (both) | 1 |" in table


def test_vision_model_sees_images(tiny, tmp_path, monkeypatch):
    """Every prompt of a VLM carries the node's and its neighbour's images as image tokens and
    pixels, not words."""
    from mmgraph.zeroshot.generate import HFVisionGenerator

    seen = []
    original = HFVisionGenerator._encode

    def spy(self, prompts):
        enc = original(self, prompts)
        seen.append((list(prompts), enc, self.model.config.image_token_id))
        return enc

    monkeypatch.setattr(HFVisionGenerator, "_encode", spy)
    run(compose_cfg(*SMALL, f"model.module.generator={tiny['llava']}", "model.module.cache_file=null",
                    "model.module.num_neighbors=1", "model.module.neighbor_mode=image"), output_dir=tmp_path / "v")
    rec = record(tmp_path / "v")
    assert rec["generator"]["accepts_images"] is True and rec["zero_shot"]["test"]["generated"] == 10
    prompts = [p for batch, _, _ in seen for p in batch]
    assert len(prompts) == 10
    for batch, enc, image_token in seen:
        assert "pixel_values" in enc and enc["pixel_values"].size(0) == sum(len(p.images) for p in batch)
        for p, ids in zip(batch, enc["input_ids"]):
            parts = [c["type"] for m in p.messages for c in m["content"] if isinstance(m["content"], list)]
            assert parts.count("image") == len(p.images) >= 1
            assert int((ids == image_token).sum()) >= len(p.images)  # the image's tokens are in the input
            assert "described in words" not in json.dumps(p.messages)
    # a node and its neighbour both show an image: two images in most prompts
    assert sum(len(p.images) == 2 for p in prompts) >= 5


def test_same_sample_whatever_the_prompt():
    index = torch.arange(100, 200)
    a = sample_nodes(index, 30, seed=0)
    assert torch.equal(a, sample_nodes(index.flip(0), 30, seed=0)) and a.numel() == 30
    assert not torch.equal(a, sample_nodes(index, 30, seed=1))
    assert torch.equal(sample_nodes(index, None, 0), index)


def test_unknown_answers_count_as_wrong_and_as_mismatches():
    y = torch.tensor([0, 1, 2, 2])
    pred = torch.tensor([0, -1, 2, -1])
    s = Evaluator(SPEC).eval({"y_true": y, "y_pred": pred, "num_classes": 3})
    assert s["accuracy"] == 0.5 and s["mismatch"] == 0.5
    # macro-F1 over classes 0..2 plus the "unknown" column (F1 0), as MAGB's string labels give
    f1 = {0: 1.0, 1: 0.0, 2: 2 * 1 / (2 + 1), 3: 0.0}
    assert s["macro_f1"] == pytest.approx(sum(f1.values()) / 4)
    from sklearn.metrics import f1_score

    assert s["macro_f1"] == pytest.approx(f1_score([0, 1, 2, 2], [0, 3, 2, 3], labels=[0, 1, 2, 3], average="macro"))
    assert macro_f1(y, torch.where(pred < 0, 3, pred), 4) == pytest.approx(s["macro_f1"])
    assert Parsed(-1, None, "unknown").index == -1
    with pytest.raises(ValueError, match="y_pred"):
        Evaluator(SPEC).eval({"y_true": y, "y_pred": torch.tensor([0, 5, 1, 1]), "num_classes": 3})


def test_bad_generator_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="no such folder"):
        run(compose_cfg(*SMALL, f"model.module.generator={tmp_path / 'nothing'}", "model.module.cache_file=null"))


def test_bad_prompt_settings_are_config_errors(tiny):
    for bad, match in (("model.module.neighbor_mode=sound", "neighbor_mode"),
                       ("model.module.num_neighbors=-1", "num_neighbors"),
                       ("task.sample=0", "task.sample"), ("task.splits=[holdout]", "unknown split")):
        with pytest.raises(ConfigError, match=match):
            run(compose_cfg(*SMALL, f"model.module.generator={tiny['lm']}", "model.module.cache_file=null", bad))


def test_trained_model_on_the_zero_shot_task_is_refused():
    with pytest.raises(ConfigError, match="cannot build model"):
        run(compose_cfg(*[a for a in SMALL if not a.startswith("model")], "model=gcn", "task=zero_shot",
                        "trainer.max_epochs=1"))


def test_clip_zero_shot_through_the_runner(tmp_path):
    from tests.zeroshot.test_clip import _tiny_clip

    folder = _tiny_clip(tmp_path / "clip")
    base = [a for a in SMALL if not a.startswith("model")]
    args = [*base, "model=clip", f"model.module.generator={folder}", "model.module.use=both"]
    row = run(compose_cfg(*args), output_dir=tmp_path / "c")
    rec = record(tmp_path / "c")
    assert row["model"] == "clip" and rec["zero_shot"]["test"]["nodes"] == 10
    assert rec["selected"]["mismatch"]["test"] == 0.0  # a joint-embedding model always names a class
    mixed = run(compose_cfg(*args, "model.module.num_neighbors=2", "model.module.alpha=1.0"),
                output_dir=tmp_path / "m")
    assert mixed["modalities"] == "text+image, 2 neighbours (alpha 1)"
    assert record(tmp_path / "m")["zero_shot"]["test"]["embedded"] > 10  # the neighbours were embedded


def test_clip_alpha_one_predicts_the_class_of_the_neighbours_mean(tmp_path):
    """With alpha = 1 a node with neighbours is classified by the mean of their embeddings alone:
    the model's predictions equal those computed by hand from the neighbours, and differ from
    the nodes' own (alpha = 0) predictions somewhere."""
    from mmgraph.data.graph import homogeneous_view
    from mmgraph.data.node_view import NodeView
    from mmgraph.data.synthetic import make_synthetic
    from mmgraph.zeroshot import ClipClassifier
    from mmgraph.zeroshot.clip import ClipZeroShot
    from mmgraph.zeroshot.neighbors import select_neighbors
    from tests.zeroshot.test_clip import _tiny_clip

    folder = _tiny_clip(tmp_path / "clip")
    data = make_synthetic(num_nodes=60, num_edges=240, text_dim=8, image_dim=8, missing_rate=0.0, seed=3)
    view = NodeView.of(data, homogeneous_view(data))
    names = view.class_names
    nodes = torch.arange(0, 60, 3)
    neighbours = ClipClassifier(str(folder), names, use="text", num_neighbors=3, alpha=1.0)
    alone = ClipClassifier(str(folder), names, use="text", num_neighbors=3, alpha=0.0)
    pred, _ = neighbours.predict(view, nodes, seed=7)
    own, _ = alone.predict(view, nodes, seed=7)
    zs = ClipZeroShot(str(folder))
    cls = zs.class_embeddings([c.replace("_", " ") for c in names])
    emb = zs.node_embeddings(None, view.texts, use="text")
    chosen = select_neighbors(view.edge_index, view.num_nodes, nodes, 3, "random", seed=7)
    for i, (node, nb) in enumerate(zip(nodes.tolist(), chosen)):
        z = F.normalize(emb[nb].mean(0), dim=0) if nb else emb[node]
        assert int(pred[i]) == int((cls @ z).argmax())
    assert not torch.equal(pred, own)


@pytest.mark.slow
def test_real_smollm2_on_a_50_node_sample(tmp_path):
    args = [a for a in SMALL if not a.startswith("task.sample")]
    row = run(compose_cfg(*args, "task.sample=50", "model.module.num_neighbors=3", "model.module.max_new_tokens=12",
                          f"model.module.cache_file={tmp_path / 'gen.jsonl'}"), output_dir=tmp_path / "s")
    info = record(tmp_path / "s")["zero_shot"]["test"]
    assert info["nodes"] == 50 and info["generated"] == 50 and sum(info["parsed"].values()) == 50
    assert info["new_tokens"] > 50 and info["tokens_per_second"] > 0
    assert all(e["output"].strip() for e in info["examples"])  # the model answers something
    assert row["zero_shot"]["tokens_per_second"] == info["tokens_per_second"]


def test_a_model_without_chat_template_needs_one(tiny, tmp_path):
    args = [*SMALL, f"model.module.generator={tiny['nochat']}", f"model.module.cache_file={tmp_path / 'gen.jsonl'}"]
    with pytest.raises(ConfigError, match="has no chat template"):
        run(compose_cfg(*args))
    template = "{% for m in messages %}{{ m['content'] }}\n{% endfor %}Category:"
    cfg = compose_cfg(*args)
    cfg.model.module.chat_template = template  # (Jinja does not fit Hydra's override grammar)
    row = run(cfg, output_dir=tmp_path / "t")
    assert record(tmp_path / "t")["zero_shot"]["test"]["generated"] == 10 and row["runs"] == 1

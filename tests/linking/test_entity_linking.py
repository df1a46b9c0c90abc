"""Entity linking: ranks against the whole KB, seen / unseen metrics, the linkers, the runner."""
import math
import subprocess
import sys

import pytest
import torch

from mmgraph.data.graph import set_model_input
from mmgraph.data.kb import Entity, Mention, kb_graph
from mmgraph.data.synthetic_kb import make_synthetic_kb
from mmgraph.errors import ConfigError, DataError
from mmgraph.evaluator import Evaluator
from mmgraph.linking import DualEncoder, GraphLinker
from mmgraph.metrics import summarize_ranks
from mmgraph.tasks import EntityLinking
from mmgraph.tasks.entity_linking import SPEC, gold_ranks

CPU = torch.device("cpu")


def small_kb(**kw):
    data = make_synthetic_kb(**{"num_entities": 120, "num_groups": 8, "text_dim": 16, "image_dim": 16,
                                "latent_dim": 8, **kw})
    set_model_input(data)
    return data


def ready(data, **kw):
    task = EntityLinking(**kw)
    task.setup(data, CPU)
    task.start_run(0)
    return task


# ------------------------------------------------------------------ ranks and metrics
def test_chunked_ranks_equal_the_evaluators_with_ties_against_the_gold():
    gen = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (30, 50), generator=gen).float()  # many ties
    gold = torch.randint(0, 50, (30,), generator=gen)
    ours = summarize_ranks(gold_ranks(scores, gold), ["mrr", "mr", "hits@1", "hits@5"])
    ref = Evaluator("entity_ranking").eval({"y_true": gold, "y_pred": scores})
    assert ours == pytest.approx({k: ref[k] for k in ours})
    # a constant scorer ranks every mention last: no credit from ties
    flat = gold_ranks(torch.zeros(30, 50), gold)
    assert torch.equal(flat, torch.full((30,), 50.0, dtype=torch.float64))
    assert Evaluator("entity_ranking").eval({"y_true": gold, "y_pred": torch.zeros(30, 50)})["mr"] == 50.0


def test_seen_and_unseen_metrics_are_the_parts_and_mr_is_lower_is_better():
    rank = torch.tensor([1.0, 2.0, 10.0, 4.0, 1.0])
    seen = torch.tensor([True, True, False, False, True])
    out = Evaluator(SPEC).eval({"rank": rank, "seen": seen})
    assert out["mrr"] == pytest.approx(summarize_ranks(rank, ["mrr"])["mrr"])
    assert out["mrr_seen"] == pytest.approx((1 + 0.5 + 1) / 3)
    assert out["mr_unseen"] == pytest.approx(7.0) and out["hits@1_unseen"] == 0.0
    none_unseen = Evaluator(SPEC).eval({"rank": rank[seen], "seen": seen[seen]})
    assert math.isnan(none_unseen["mrr_unseen"]) and none_unseen["mrr_seen"] == out["mrr_seen"]
    assert {m for m in SPEC.metrics if not SPEC.higher_is_better(m)} == {"mr", "mr_seen", "mr_unseen"}
    assert SPEC.better("mr", 2.0, 3.0) and not SPEC.better("mrr", 0.2, 0.3)


def test_task_ranks_every_mention_against_the_whole_kb():
    data = small_kb()
    task = ready(data, eval_chunk=7)
    model = DualEncoder(**task.model_kwargs(), channels=16)
    index = task.eval_index["test"]
    with torch.no_grad():
        full = model.score(task._mentions(model, index), model.encode_kb(task.kb))
    ref = Evaluator("entity_ranking").eval({"y_true": task.y[index], "y_pred": full})
    ours = task.evaluate(model)["test"]
    assert {k: ours[k] for k in ref} == pytest.approx(ref)
    assert task.info["unseen_gold"]["train"] == 0 and task.info["unseen_gold"]["test"] > 0


# ------------------------------------------------------------------ training
@pytest.mark.parametrize("cls", [DualEncoder, GraphLinker])
def test_training_lowers_the_loss_and_raises_validation_mrr(cls, one_thread):
    torch.manual_seed(0)
    data = small_kb(entity_noise=0.8, mention_noise=0.5)
    task = ready(data, batch_size=32)
    model = cls(**task.model_kwargs(), channels=32)
    before = task.evaluate(model)["val"]["mrr"]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = [task.train_epoch(model, opt) for _ in range(15)]
    after = task.evaluate(model)["val"]["mrr"]
    assert losses[-1] < losses[0] * 0.8
    assert after > before + 0.1


def test_the_graph_linker_lets_an_entity_borrow_from_its_neighbours():
    data = small_kb()
    task = ready(data)
    model = GraphLinker(**task.model_kwargs(), channels=16).eval()
    entity = 0
    group = int(data["entity", "in_group", "group"].edge_index[1][0])
    z = model.encode_kb(task.kb)[entity].clone()
    members = data["entity", "in_group", "group"].edge_index
    others = members[0][(members[1] == group) & (members[0] != entity)]
    task.kb.x["entity"]["text"][others] += 5.0  # only its group-mates change
    assert not torch.allclose(model.encode_kb(task.kb)[entity], z)
    plain = DualEncoder(**task.model_kwargs(), channels=16)
    assert plain.encode_kb(task.kb).shape == (120, 16)
    z = model.encode_kb(task.kb)
    assert torch.allclose(model.encode_kb(task.kb, torch.tensor([3, 5])), z[[3, 5]])


# ------------------------------------------------------------------ bad input
def test_bad_settings_are_one_line_errors():
    data = small_kb()
    task = ready(data)
    kw = task.model_kwargs()
    with pytest.raises(ConfigError, match="needs the knowledge base's relations"):
        GraphLinker(kw["dims"], {}, [])
    with pytest.raises(ConfigError, match="has no features"):
        GraphLinker(kw["dims"], {}, kw["kb_edge_types"])
    with pytest.raises(ConfigError, match="own mention split"):
        EntityLinking().setup(data, CPU, split={"name": "magb"})
    with pytest.raises(ConfigError, match="no relation 'cites'"):
        EntityLinking(relations=["cites"]).setup(data, CPU)
    del data["entity"].x_image
    with pytest.raises(DataError, match="entity nodes have no image features"):
        EntityLinking().setup(data, CPU)
    from mmgraph.data.synthetic import make_synthetic
    with pytest.raises(ConfigError, match="needs a knowledge base"):
        EntityLinking().setup(make_synthetic(num_nodes=50, num_edges=100), CPU)


def test_nil_and_missing_answers_are_dropped_and_counted():
    ents = [Entity(f"Q{i}", f"e{i}") for i in range(4)]
    ments = [Mention("a", "x", "", "train", "Q0"), Mention("b", "x", "", "val", "Q1"),
             Mention("c", "x", "", "val", None), Mention("d", "x", "", "test", "Q9"),
             Mention("e", "x", "", "test", "Q2")]
    data = kb_graph("t", "1", ents, ments, image_root=None)
    for t, n in (("entity", 4), ("mention", 5)):
        from mmgraph.data.graph import add_feature
        add_feature(data, "text", torch.randn(n, 8), "random", node_type=t)
    set_model_input(data)
    task = ready(data)
    assert task.info["mentions"] == {"train": 1, "val": 1, "test": 1}
    assert task.info["dropped_nil_or_not_in_kb"] == {"train": 0, "val": 1, "test": 1}
    assert data.meta["entity_linking"]["nil"]["val"] == 1
    assert data["mention", "links_to", "entity"].edge_index.tolist() == [[0], [0]]  # training only


# ------------------------------------------------------------------ the runner
def test_the_runner_links_on_the_synthetic_kb(tmp_path):
    args = ["dataset=synthetic_kb", "model=graph_linker", "runs=2", "trainer.max_epochs=3",
            "trainer.progress=false", "dataset.loader.num_entities=150", "dataset.loader.num_groups=10",
            "model.module.channels=16", f"hydra.run.dir={tmp_path}"]
    proc = subprocess.run([sys.executable, "-m", "mmgraph.bench", *args], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    head = next(line for line in proc.stdout.splitlines() if line.startswith("| dataset"))
    assert "test mrr_unseen" in head and "test mr |" in head
    import json
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["primary"] == "mrr" and summary["higher_is_better"]["mr"] is False
    assert summary["record"]["task"]["unseen_gold"]["test"] > 0
    row = next(line for line in proc.stdout.splitlines() if line.startswith("| synthetic_kb"))
    mr = float(row.split("|")[head.split("|").index(" test mr ")].split("±")[0])
    assert 1.0 <= mr <= 150.0  # mean ranks shown as ranks, not in percent


@pytest.mark.parametrize("name,desc_key,model", [("wikimel", "attr", "dual_encoder"),
                                                  ("wikidiverse", "desc", "mimic")])
def test_the_mimic_layout_fixture_runs_through_the_same_task(tmp_path, name, desc_key, model):
    from tests.data.mel_fixture import write_mel_fixture

    root = tmp_path / "data" / name
    write_mel_fixture(root, name, desc_key)
    args = [f"dataset={name}", f"model={model}", "runs=1", "trainer.max_epochs=2", "trainer.progress=false",
            f"paths.data_root={tmp_path / 'data'}", "model.module.channels=16", f"hydra.run.dir={tmp_path / 'run'}"]
    proc = subprocess.run([sys.executable, "-m", "mmgraph.bench", *args], capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    import json
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    task = summary["record"]["task"]
    assert task["dropped_nil_or_not_in_kb"]["test"] == 2 and task["mentions"]["test"] == 2
    text = summary["record"]["features"]["entity/x_text"]
    assert text["encoder"] == "minilm" and text["spec"].get("tokens") == (32 if model == "mimic" else None)
    assert f"| {name} | {model} | text+image |" in proc.stdout


# ------------------------------------------------------------------ the interaction linker
def multi_vector(x, parts, gen, signal=True):
    """Multi-vector features from single vectors: the vector first, then ``parts`` local vectors
    (the first of them a noisy copy of the vector when ``signal``, the rest noise)."""
    n, d = x.shape
    local = torch.randn(n, parts, d, generator=gen)
    if signal:
        local[:, 0] = x + 0.1 * torch.randn(n, d, generator=gen)
    return torch.cat([x.unsqueeze(1), local], dim=1).flatten(1)


def local_kb(parts=3):
    data = small_kb(entity_noise=0.8, mention_noise=0.5)
    gen = torch.Generator().manual_seed(0)
    for t in ("entity", "mention"):
        for m in ("text", "image"):
            data[t][f"x_{m}"] = multi_vector(data[t][f"x_{m}"], parts, gen)
    return data


def test_the_interaction_linkers_attention_equals_its_definition():
    from mmgraph.linking import InteractionLinker

    torch.manual_seed(0)
    task = ready(local_kb())
    model = InteractionLinker(**task.model_kwargs(), channels=8, text_tokens=3, image_cells=3)
    men = task._mentions(model, task.eval_index["val"][:4])
    ent = model.encode_kb(task.kb)
    local, mask = men["local"]["text"]
    q = ent["g"]["text"]
    fast = model._local(local, mask, q).detach()
    local, q = local.detach(), q.detach()
    for b in range(4):
        for e in range(0, 120, 17):
            a = torch.softmax(local[b] @ q[e] * model.attention_logit.exp(), dim=0)
            ref = torch.nn.functional.cosine_similarity((a[:, None] * local[b]).sum(0), q[e], dim=0)
            assert float(fast[b, e]) == pytest.approx(float(ref), abs=1e-5)
    assert model.score(men, ent).shape == (4, 120) and len(model.unit_scores(men, ent)) == 3


def test_the_interaction_linker_learns_and_needs_multi_vector_features(one_thread):
    from mmgraph.linking import InteractionLinker

    torch.manual_seed(0)
    task = ready(local_kb(), batch_size=32)
    model = InteractionLinker(**task.model_kwargs(), channels=32, text_tokens=3, image_cells=3)
    before = task.evaluate(model)["val"]["mrr"]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = [task.train_epoch(model, opt) for _ in range(10)]
    assert losses[-1] < losses[0] * 0.8 and task.evaluate(model)["val"]["mrr"] > before + 0.1
    with pytest.raises(ConfigError, match="use features=local"):
        InteractionLinker(**ready(small_kb()).model_kwargs(), text_tokens=32)


def test_the_graph_interaction_linker_propagates_its_entity_side_and_learns(one_thread):
    from mmgraph.linking import GraphInteractionLinker

    torch.manual_seed(0)
    data = local_kb()
    task = ready(data, batch_size=32)
    model = GraphInteractionLinker(**task.model_kwargs(), channels=16, text_tokens=3, image_cells=3).eval()
    group = int(data["entity", "in_group", "group"].edge_index[1][0])
    members = data["entity", "in_group", "group"].edge_index
    others = members[0][(members[1] == group) & (members[0] != 0)]
    before = model.encode_kb(task.kb)
    task.kb.x["entity"]["text"][others] += 5.0  # only entity 0's group-mates change
    after = model.encode_kb(task.kb)
    assert not torch.allclose(after["g"]["text"][0], before["g"]["text"][0])
    rows = model.encode_kb(task.kb, torch.tensor([3, 5]))
    assert torch.allclose(rows["g"]["image"], after["g"]["image"][[3, 5]])
    assert torch.allclose(rows["fused"], after["fused"][[3, 5]])
    task = ready(local_kb(), batch_size=32)
    model.train()
    start = task.evaluate(model)["val"]["mrr"]
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = [task.train_epoch(model, opt) for _ in range(10)]
    assert losses[-1] < losses[0] * 0.8 and task.evaluate(model)["val"]["mrr"] > start + 0.1


def test_ranks_written_over_the_scores_equal_the_plain_count():
    gen = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 5, (40, 300), generator=gen).float()
    gold = torch.randint(0, 300, (40,), generator=gen)
    plain = gold_ranks(scores, gold)
    assert torch.equal(gold_ranks(scores.clone(), gold, overwrite=True), plain)
    view = scores[:, :200]
    kept = view.clone()
    assert torch.equal(gold_ranks(view, gold % 200, overwrite=True), gold_ranks(kept, gold % 200))
    assert torch.equal(view, kept)  # a view is never overwritten

import pytest
import torch

from mmgraph.errors import ConfigError, DataError
from mmgraph.metrics import accuracy
from mmgraph.nn import GCN, GraphSAGE
from mmgraph.tasks import LinkPrediction, NodeClassification
from mmgraph.train import TrainerConfig, fit, seed_everything
from tests.conftest import fake_graph

CPU = torch.device("cpu")


def test_node_classification_setup_and_metrics(graph):
    task = NodeClassification(label_smoothing=0.1)
    task.setup(graph, CPU)
    assert task.model_kwargs() == {"in_channels": 12, "out_channels": 3}
    assert {k: v.numel() for k, v in task.index.items()} == {"train": 10, "val": 5, "test": 5}
    model = GCN(12, 8, 3)
    metrics = task.evaluate(model)
    pred = model.eval()(task.x, task.edge_index).argmax(-1)
    idx = task.index["test"]
    assert metrics["test"]["accuracy"] == pytest.approx(accuracy(task.y[idx], pred[idx]))
    assert set(metrics) == {"train", "val", "test"} and set(metrics["val"]) == {"accuracy", "macro_f1"}


def test_node_classification_relation_choice_and_split_override(graph):
    task = NodeClassification(edge_types=["near"])
    task.setup(graph, CPU, split={"name": "magb", "train_ratio": 0.5, "val_ratio": 0.25})
    assert task.edge_index.size(1) == 40
    assert task.index["train"].numel() == 10 and task.index["val"].numel() == 5
    assert graph.meta["split"]["name"] == "magb"


def test_node_classification_without_input_is_a_clear_error(graph):
    del graph["item"].x
    with pytest.raises(DataError, match="no model input"):
        NodeClassification().setup(graph, CPU)


def _lp_graph(communities: bool = False):
    g = fake_graph(num_nodes=60, num_classes=3)
    if communities:  # edges only inside classes: link structure the features can explain
        gen = torch.Generator().manual_seed(0)
        y = g["item"].y
        src = torch.randint(0, 60, (400,), generator=gen)
        dst = (src + 3 * torch.randint(1, 20, (400,), generator=gen)) % 60
        ei = torch.unique(torch.stack([src, dst]), dim=1)
        assert (y[ei[0]] == y[ei[1]]).all()
        g["item", "same", "item"].edge_index = torch.cat([ei, ei.flip(0)], 1)
        del g["item", "near", "item"]
    return g


def test_link_prediction_split_is_disjoint_and_hides_held_out_edges():
    task = LinkPrediction(val_ratio=0.1, test_ratio=0.2, num_neg_eval=7, embedding_channels=16)
    task.setup(_lp_graph(), CPU)
    sizes = task.split_meta["sizes"]
    assert sizes["train"] + sizes["val"] + sizes["test"] == 120  # undirected edges of both rings
    seen = {tuple(e) for e in task.edge_index.t().tolist()}
    for split in ("val", "test"):
        for u, v in task.pos[split].t().tolist():
            assert (u, v) not in seen and (v, u) not in seen
        assert task.neg[split].shape == (task.pos[split].size(1), 7)
    again = LinkPrediction(val_ratio=0.1, test_ratio=0.2, num_neg_eval=7)
    again.setup(_lp_graph(), CPU)
    assert again.split_meta["fingerprint"] == task.split_meta["fingerprint"]


@pytest.mark.parametrize("decoder", ["dot", "mlp"])
def test_link_prediction_trains_and_beats_chance(decoder):
    task = LinkPrediction(val_ratio=0.1, test_ratio=0.2, num_neg_eval=20, decoder=decoder,
                          embedding_channels=16)
    task.setup(_lp_graph(communities=True), CPU)
    seed_everything(0)
    model = task.wrap(GraphSAGE(**task.model_kwargs(), hidden_channels=32, dropout=0.0, norm=None))
    res = fit(task, model, TrainerConfig(max_epochs=150, patience=None, lr=0.01, progress=False,
                                         lr_patience=None))
    assert set(res.selected) == {"mrr", "hits@1", "hits@3", "hits@10"}
    # chance MRR with 20 negatives is about 0.18
    assert res.selected["mrr"]["val"] > 0.35


def test_link_prediction_bad_ratios():
    with pytest.raises(ConfigError, match="val_ratio and test_ratio"):
        LinkPrediction(val_ratio=0.6, test_ratio=0.5)
    with pytest.raises(ConfigError, match="unknown link decoder"):
        LinkPrediction(decoder="cosine").wrap(GCN(4, 4, 4))


def test_unlabelled_nodes_are_left_out_with_a_counted_warning(graph):
    graph["item"].y[[0, 1]] = -1
    task = NodeClassification()
    with pytest.warns(UserWarning, match="unlabelled nodes"):
        task.setup(graph, CPU)
    assert all((task.y[idx] >= 0).all() for idx in task.index.values())
    assert sum(idx.numel() for idx in task.index.values()) == 18


def _sbm(n=300, classes=3, p_in=0.05, p_out=0.005, seed=0):
    """A stochastic-block graph whose features carry a weak class signal."""
    from mmgraph.data.graph import add_feature, new_graph, set_model_input
    from mmgraph.data.splits import make_split

    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    same = y[:, None] == y[None, :]
    prob = torch.where(same, torch.tensor(p_in), torch.tensor(p_out))
    adj = torch.triu(torch.rand(n, n, generator=gen) < prob, diagonal=1)
    ei = adj.nonzero().t()
    data = new_graph("sbm", "0", "item", [f"c{i}" for i in range(classes)])
    data["item"].num_nodes = n
    data["item"].y = y
    data["item", "link", "item"].edge_index = torch.cat([ei, ei.flip(0)], 1)
    x = torch.nn.functional.one_hot(y, classes).float() * 0.6 + torch.randn(n, classes, generator=gen)
    add_feature(data, "text", x, "noisy-labels")
    set_model_input(data, ["text"])
    make_split(data, "magb", seed=1)
    return data


def test_correct_and_smooth_is_pygs_on_training_labels_and_helps_on_a_homophilous_graph():
    from torch_geometric.nn.models import CorrectAndSmooth

    from mmgraph.nn import MLP

    data = _sbm()
    results = {}
    for cs in (None, True):
        task = NodeClassification(correct_and_smooth=cs)
        task.setup(data, CPU)
        seed_everything(0)
        model = MLP(**task.model_kwargs(), hidden_channels=16, num_layers=2, dropout=0.0, norm=None)
        res = fit(task, model, TrainerConfig(max_epochs=60, patience=None, lr=0.01, progress=False,
                                             lr_patience=None))
        results[cs] = res.selected["accuracy"]["test"]
        if cs:
            model.eval()
            with torch.no_grad():
                logits = task._predict(model)
            ref = CorrectAndSmooth(50, 0.8, 50, 0.8, autoscale=True)
            train = task.index["train"]
            probs = ref.correct(logits.softmax(-1), task.y[train], train, task.edge_index)
            probs = ref.smooth(probs, task.y[train], train, task.edge_index)
            assert torch.allclose(task._correct_and_smooth(logits), probs)
            # only training labels enter: changing val/test labels leaves the scores unchanged
            hidden = torch.cat([task.index["val"], task.index["test"]])
            saved = task.y.clone()
            task.y[hidden] = (task.y[hidden] + 1) % 3
            assert torch.allclose(task._correct_and_smooth(logits), probs)
            task.y = saved
            assert task.describe()["correct_and_smooth"]["num_correction_layers"] == 50
    assert results[True] > results[None] + 0.05, results


def test_correct_and_smooth_options_are_checked():
    assert NodeClassification(correct_and_smooth={"smoothing_alpha": 0.5}).correct_and_smooth["smoothing_alpha"] == 0.5
    with pytest.raises(ConfigError, match="correct_and_smooth.alpha"):
        NodeClassification(correct_and_smooth={"alpha": 0.5})
    with pytest.raises(ConfigError, match="smoothing_alpha"):
        NodeClassification(correct_and_smooth={"smoothing_alpha": 2})
    with pytest.raises(ConfigError, match="null, true or a dict"):
        NodeClassification(correct_and_smooth="yes")
    with pytest.raises(ConfigError, match="full batch"):
        NodeClassification(correct_and_smooth=True, batch_size=8)

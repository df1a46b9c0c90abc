"""The vectorised neighbour sampler: exact semantics, uniformity, PyG loader interface, training."""
from __future__ import annotations

import logging
import math

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.utils import coalesce, k_hop_subgraph

from mmgraph.data.sampler import UniformNeighborSampler, build_csc, neighbor_loader, pyg_backend
from mmgraph.errors import ConfigError
from mmgraph.nn import GAT, GraphSAGE


pytestmark = pytest.mark.usefixtures("one_thread")  # many small ops (tests/conftest.py)


def power_law_graph(n: int = 400, e: int = 4000, seed: int = 0) -> Data:
    """A directed graph without duplicate edges whose in-degrees range from 0 to ~n/2."""
    gen = torch.Generator().manual_seed(seed)
    weight = 1.0 / torch.arange(1, n + 1, dtype=torch.float) ** 1.2      # hubs at low ids
    dst = torch.multinomial(weight, e, replacement=True, generator=gen)
    src = torch.randint(0, n, (e,), generator=gen)
    ei = coalesce(torch.stack([src, dst]), num_nodes=n)
    ei = ei[:, torch.randperm(ei.size(1), generator=gen)]                # unsorted on purpose
    return Data(x=torch.randn(n, 12, generator=gen), edge_index=ei, num_nodes=n,
                y=torch.randint(0, 3, (n,), generator=gen))


def in_degree(data: Data) -> torch.Tensor:
    return torch.bincount(data.edge_index[1], minlength=data.num_nodes)


def test_csc_groups_in_edges_by_destination():
    data = power_law_graph(50, 300)
    colptr, row, perm = build_csc(data.edge_index, 50)
    assert colptr[-1] == data.edge_index.size(1)
    assert torch.equal(data.edge_index[0, perm], row)
    dst = torch.repeat_interleave(torch.arange(50), colptr.diff())
    assert torch.equal(data.edge_index[1, perm], dst)


@pytest.mark.parametrize("fanouts", [[5, 3], [2, 2, 2], [1], [0, 4]])
def test_sampled_edges_are_distinct_real_in_edges_min_k_deg_per_node(fanouts):
    data = power_law_graph()
    deg = in_degree(data)
    seeds = torch.tensor([0, 1, 5, 17, 399, 250, 33])           # hubs, leaves, maybe deg 0
    out = UniformNeighborSampler(data, fanouts, seed=0).sample(seeds)
    node, row, col, edge = out.node, out.row, out.col, out.edge
    assert torch.equal(node[:seeds.numel()], seeds)              # seeds first, in order
    assert node.unique().numel() == node.numel()
    # Every sampled edge is the original edge e_id, message flowing neighbour -> frontier node.
    assert torch.equal(data.edge_index[:, edge], torch.stack([node[row], node[col]]))
    assert out.num_sampled_nodes[0] == seeds.numel() and sum(out.num_sampled_nodes) == node.numel()
    assert sum(out.num_sampled_edges) == edge.numel() and len(out.num_sampled_edges) == len(fanouts)
    first_node, first_edge = 0, 0
    for hop, k in enumerate(fanouts):
        frontier = torch.arange(first_node, first_node + out.num_sampled_nodes[hop])
        span = slice(first_edge, first_edge + out.num_sampled_edges[hop])
        e_hop, c_hop = edge[span], col[span]
        assert e_hop.unique().numel() == e_hop.numel()            # without replacement
        assert ((c_hop >= frontier[0]) & (c_hop <= frontier[-1])).all() if c_hop.numel() else True
        counts = torch.bincount(c_hop - first_node, minlength=frontier.numel())
        assert torch.equal(counts, deg[node[frontier]].clamp(max=k))
        # nodes first reached in this hop are exactly the new sources, in order of first sight
        new = node[first_node + frontier.numel():first_node + frontier.numel()
                   + out.num_sampled_nodes[hop + 1]]
        seen = set(node[:first_node + frontier.numel()].tolist())
        order = [v for v in dict.fromkeys(node[row[span]].tolist()) if v not in seen]
        assert new.tolist() == order
        first_node += frontier.numel()
        first_edge += out.num_sampled_edges[hop]


def test_fanout_all_gives_the_full_k_hop_subgraph():
    data = power_law_graph()
    seeds = torch.tensor([3, 200, 41])
    out = UniformNeighborSampler(data, [-1, -1]).sample(seeds)
    reach2, *_ = k_hop_subgraph(seeds, 2, data.edge_index, num_nodes=data.num_nodes)
    reach1, *_ = k_hop_subgraph(seeds, 1, data.edge_index, num_nodes=data.num_nodes)
    assert set(out.node.tolist()) == set(reach2.tolist())
    # the sampled edges: every in-edge of every node within one hop of a seed
    expected = torch.isin(data.edge_index[1], reach1).nonzero().view(-1)
    assert sorted(out.edge.tolist()) == expected.tolist()


def test_uniform_without_replacement_on_a_star():
    n_leaves, k, draws = 12, 4, 6000
    leaves = torch.arange(1, n_leaves + 1)
    data = Data(edge_index=torch.stack([leaves, torch.zeros_like(leaves)]), num_nodes=n_leaves + 1)
    sampler = UniformNeighborSampler(data, [k], seed=1)
    count, pos = sampler.sample_edges(torch.zeros(draws, dtype=torch.long), k)  # 6000 draws at once
    assert (count == k).all()
    picks = sampler.row[pos].view(draws, k)
    assert (picks.sort(dim=1).values.diff(dim=1) > 0).all()                 # distinct per draw
    # single leaves: chi-square, 11 degrees of freedom (p = 0.001 critical value 31.3)
    freq = torch.bincount(picks.view(-1), minlength=n_leaves + 1)[1:].double()
    expected = draws * k / n_leaves
    assert ((freq - expected) ** 2 / expected).sum() < 31.3
    # whole subsets: all C(12, 4) = 495 are equally likely (p = 0.001 critical value ~ 606)
    code = (torch.ones(draws, k, dtype=torch.long) << (picks - 1)).sum(1)
    freq = torch.bincount(torch.unique(code, return_inverse=True)[1]).double()
    n_subsets = math.comb(n_leaves, k)
    assert freq.numel() == n_subsets
    expected = draws / n_subsets
    assert ((freq - expected) ** 2 / expected).sum() < 606


def test_reproducible_under_a_seed():
    data = power_law_graph()

    def n_ids(seed):
        loader = neighbor_loader(data, [4, 3], batch_size=50, shuffle=True, seed=seed,
                                 backend="torch", generator=torch.Generator().manual_seed(1))
        return [batch.n_id for batch in loader]

    a, b, c = n_ids(7), n_ids(7), n_ids(8)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not all(torch.equal(x, y) for x, y in zip(a, c))
    torch.manual_seed(3)  # without a seed the sampler follows the global RNG
    s = UniformNeighborSampler(data, [4, 3])
    x = s.sample(torch.arange(20)).edge
    torch.manual_seed(3)
    assert torch.equal(x, s.sample(torch.arange(20)).edge)


@pytest.mark.parametrize("model_cls", [GraphSAGE, GAT])
def test_full_fanout_minibatch_outputs_equal_full_batch(model_cls):
    data = power_law_graph()
    torch.manual_seed(0)
    kwargs = {"heads": 2} if model_cls is GAT else {}
    model = model_cls(12, 16, 3, num_layers=2, **kwargs).eval()
    with torch.no_grad():
        full = model(data.x, data.edge_index)
        loader = neighbor_loader(data, [-1, -1], batch_size=64, shuffle=True, backend="torch")
        seen = torch.zeros(data.num_nodes, dtype=torch.bool)
        for batch in loader:
            out = model(batch.x, batch.edge_index)[:batch.batch_size]
            seeds = batch.n_id[:batch.batch_size]
            torch.testing.assert_close(out, full[seeds], atol=1e-5, rtol=1e-5)
            seen[seeds] = True
    assert seen.all()


def test_batches_are_pyg_neighbor_loader_batches():
    data = power_law_graph()
    data.edge_attr = torch.arange(data.edge_index.size(1), dtype=torch.float)
    loader = neighbor_loader(data, [3, 2], input_nodes=torch.arange(100, 300), batch_size=64,
                             backend="torch")
    batch = next(iter(loader))
    assert {"x", "y", "edge_index", "edge_attr", "n_id", "e_id", "input_id", "batch_size",
            "num_sampled_nodes", "num_sampled_edges"} <= set(batch.keys())
    assert batch.batch_size == 64 and torch.equal(batch.input_id, torch.arange(64))
    assert torch.equal(batch.n_id[:64], torch.arange(100, 164))
    assert torch.equal(batch.x, data.x[batch.n_id])
    assert torch.equal(batch.edge_attr, batch.e_id.float())
    assert len(loader) == math.ceil(200 / 64)


def test_factory_falls_back_without_compiled_samplers(monkeypatch, caplog):
    import torch_geometric.typing as pyg_typing

    data = power_law_graph()
    monkeypatch.setattr(pyg_typing, "WITH_PYG_LIB", False)
    monkeypatch.setattr(pyg_typing, "WITH_TORCH_SPARSE", False)
    with caplog.at_level(logging.INFO, logger="mmgraph.data.sampler"):
        loader = neighbor_loader(data, [3, 2], batch_size=32)
    assert loader.backend == "torch" and isinstance(loader.node_sampler, UniformNeighborSampler)
    assert "neighbour sampling with torch" in caplog.text
    with pytest.raises(ConfigError, match="needs pyg-lib or torch-sparse"):
        neighbor_loader(data, [3, 2], backend="pyg")
    with pytest.raises(ConfigError, match="unknown sampler backend"):
        neighbor_loader(data, [3, 2], backend="dgl")
    with pytest.raises(ConfigError, match="num_neighbors"):
        neighbor_loader(data, [3, -2])


@pytest.mark.skipif(pyg_backend() is None, reason="neither pyg-lib nor torch-sparse is installed")
def test_pyg_and_torch_backends_give_batches_of_the_same_structure():
    data = power_law_graph()
    deg = in_degree(data)
    seeds = torch.arange(0, 400, 3)
    batches = {b: next(iter(neighbor_loader(data, [4, 3], input_nodes=seeds, batch_size=128,
                                             backend=b))) for b in ("pyg", "torch")}
    pyg, ours = batches["pyg"], batches["torch"]
    assert set(pyg.keys()) == set(ours.keys())
    for batch in (pyg, ours):
        assert torch.equal(batch.n_id[:128], seeds[:128])
        assert torch.equal(data.edge_index[:, batch.e_id],
                           batch.n_id[batch.edge_index])
        hop1 = batch.edge_index[1, :batch.num_sampled_edges[0]]
        assert torch.equal(torch.bincount(hop1, minlength=128), deg[seeds[:128]].clamp(max=4))
    assert pyg.num_sampled_nodes[0] == ours.num_sampled_nodes[0]
    assert pyg.num_sampled_edges[0] == ours.num_sampled_edges[0]  # sum of min(4, deg)


# ----------------------------------------------------------------------------- the task

def _task_and_model(batch_size, **kwargs):
    from mmgraph.tasks import NodeClassification
    from tests.conftest import fake_graph

    graph = fake_graph(num_nodes=60, num_classes=3)
    task = NodeClassification(batch_size=batch_size, **kwargs)
    task.setup(graph, torch.device("cpu"))
    torch.manual_seed(0)
    model = task.wrap(GraphSAGE(**task.model_kwargs(), hidden_channels=16))
    return task, model


def test_minibatch_evaluation_with_full_fanout_equals_full_batch():
    from mmgraph.train import TrainerConfig, fit

    full, model = _task_and_model(None)
    fit(full, model, TrainerConfig(max_epochs=5, patience=None, progress=False))
    mini, _ = _task_and_model(7, eval_num_neighbors=[-1, -1], eval_batch_size=5)
    assert mini.evaluate(model) == full.evaluate(model)
    described = mini.describe()
    assert described["batch_size"] == 7 and full.describe()["batch_size"] is None
    assert described["minibatch"] == {"num_neighbors": [15, 10], "eval_batch_size": 5,
                                      "eval_num_neighbors": [-1, -1], "trim_layers": True,
                                      "sampler": "torch"}


def test_minibatch_training_is_reproducible_and_steps_once_per_batch():
    from mmgraph.train import seed_everything

    def epochs(seed):
        task, model = _task_and_model(4, num_neighbors=[3, 2])
        opt = torch.optim.AdamW(model.parameters(), lr=0.01)
        steps = []
        opt.register_step_post_hook(lambda *_: steps.append(1))
        seed_everything(seed)
        losses = [task.train_epoch(model, opt) for _ in range(3)]
        return losses, len(steps), task.evaluate(model)

    a, b, c = epochs(0), epochs(0), epochs(1)
    assert a == b and a[0] != c[0]
    assert a[1] == 3 * math.ceil(10 / 4)  # 10 training nodes, batches of 4, 3 epochs


def test_minibatch_config_errors():
    from mmgraph.tasks import NodeClassification

    with pytest.raises(ConfigError, match="batch_size"):
        NodeClassification(batch_size=0)
    with pytest.raises(ConfigError, match="unknown sampler backend"):
        _task_and_model(8, sampler="fast")


def test_minibatch_training_through_the_runner_matches_full_batch(tmp_path):
    from hydra import compose, initialize_config_dir

    import mmgraph.bench  # noqa: F401  (registers the data-root resolver)
    from mmgraph.bench.runner import run
    from mmgraph.paths import config_dir

    common = ["dataset=synthetic", "model=sage", "dataset.loader.num_nodes=1000",
              "dataset.loader.num_edges=8000", "dataset.loader.text_dim=16",
              "dataset.loader.image_dim=16", "dataset.loader.text_informativeness=0.3",
              "dataset.loader.image_informativeness=0.3", "model.module.hidden_channels=32",
              "trainer=fast", "trainer.max_epochs=60", "trainer.progress=false", "runs=2"]
    rows = {}
    for name, extra in (("full", []), ("mini", ["task.batch_size=100", "task.num_neighbors=[10,5]",
                                                "task.eval_batch_size=500"])):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(config_name="config", overrides=common + extra)
        rows[name] = run(cfg, output_dir=tmp_path / name)
    full, mini = (rows[k]["summary"]["test/accuracy"]["mean"] for k in ("full", "mini"))
    assert full > 0.6 and abs(mini - full) < 0.04, (full, mini)

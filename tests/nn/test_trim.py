"""Layer trimming (mmgraph.nn.trim): the seeds' outputs and gradients are those of the untrimmed model."""
from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data

from mmgraph.data.sampler import UniformNeighborSampler, neighbor_loader
from mmgraph.errors import DataError
from mmgraph.nn import GCN, GraphSAGE
from mmgraph.nn.sparse import Adjacency
from mmgraph.nn.trim import Block, HopGraph
from tests.nn.common import random_graph

pytestmark = pytest.mark.usefixtures("one_thread")

N, F_IN = 300, 6


def _data(seed: int = 0) -> Data:
    """A random directed graph with self loops and duplicate edges (GCN's loops and degrees)."""
    gen = torch.Generator().manual_seed(seed)
    return Data(x=torch.randn(N, F_IN, generator=gen), edge_index=random_graph(N, 2400, seed),
                y=torch.randint(0, 3, (N,), generator=gen), num_nodes=N)


def _batches(fanouts, batch_size=17):
    data = _data()
    loader = neighbor_loader(data, fanouts, batch_size=batch_size, backend="torch", seed=0,
                             input_nodes=torch.arange(0, N, 3))
    return list(loader)[:3]


def _model(cls, layers, **kwargs):
    torch.manual_seed(0)
    return cls(F_IN, 16, 3, num_layers=layers, **kwargs)


@pytest.mark.parametrize("cls,kwargs", [(GraphSAGE, {}), (GCN, {}), (GraphSAGE, {"aggr": "max"}),
                                        (GraphSAGE, {"aggr": "sum", "norm": "layer"})])
@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("fanouts", [[4, 3], [5, -1], [3, 2, 2]])
def test_trimmed_seed_outputs_equal_untrimmed(cls, kwargs, layers, fanouts):
    model = _model(cls, layers, **kwargs).eval()  # BatchNorm on running statistics
    with torch.no_grad():
        for batch in _batches(fanouts):
            n = batch.batch_size
            whole = model(batch.x, Adjacency.from_edge_index(batch.edge_index, batch.num_nodes))
            hops = HopGraph(batch.edge_index, batch.num_sampled_nodes, batch.num_sampled_edges)
            trimmed = model(batch.x, hops)
            assert trimmed.shape == (n, 3)                     # the last layer: the seeds only
            torch.testing.assert_close(trimmed, whole[:n], atol=1e-5, rtol=1e-5)
            # and the edge_index path of PyG's layers agrees as well
            torch.testing.assert_close(trimmed, model(batch.x, batch.edge_index)[:n],
                                       atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("cls", [GraphSAGE, GCN])
def test_trimmed_training_step_has_the_same_loss_and_gradients(cls):
    """Without layers that mix rows (BatchNorm statistics, dropout draws) training is the same."""
    batch = _batches([5, 4])[0]
    hops = HopGraph(batch.edge_index, batch.num_sampled_nodes, batch.num_sampled_edges)
    grads = []
    for graph in (Adjacency.from_edge_index(batch.edge_index, batch.num_nodes), hops):
        model = _model(cls, 2, norm=None, dropout=0.0).train()
        out = model(batch.x, graph)[:batch.batch_size]
        loss = torch.nn.functional.cross_entropy(out, batch.y[:batch.batch_size])
        loss.backward()
        grads.append([loss.detach()] + [p.grad for p in model.parameters()])
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_blocks_shrink_layer_by_layer():
    sampler = UniformNeighborSampler(_data(), [4, 3], seed=0)
    out = sampler.sample(torch.tensor([0, 7, 9]))
    ei = torch.stack([out.row, out.col])
    hops = HopGraph(ei, out.num_sampled_nodes, out.num_sampled_edges)
    n0, n1, n2 = out.num_sampled_nodes
    e1, e2 = out.num_sampled_edges
    first, last = hops.layer(0, 2), hops.layer(1, 2)
    assert isinstance(first, Block)
    assert (first.num_src, first.num_dst, first.num_edges) == (n0 + n1 + n2, n0 + n1, e1 + e2)
    assert (last.num_src, last.num_dst, last.num_edges) == (n0 + n1, n0, e1)
    assert hops.layer(1, 2) is last                                     # built once
    assert hops.sizes(0, 3) == (n0 + n1 + n2, n0 + n1 + n2, e1 + e2)  # more layers than hops
    assert hops.sizes(0, 1) == (n0 + n1, n0, e1)                        # fewer layers than hops
    # GCN's self loops: one per destination, weights from the whole subgraph's degrees
    looped = last.with_self_loops()
    assert looped.num_edges == last.num_edges - int((last.col == last.row).sum()) + n0
    whole, w = Adjacency.from_edge_index(ei, hops.num_nodes).gcn_norm()
    keep = whole.row < n0
    assert torch.allclose(looped.gcn_weights().sort().values, w[keep].sort().values)


def test_edges_out_of_hop_order_are_an_error():
    batch = _batches([4, 3])[0]
    ei = batch.edge_index
    with pytest.raises(DataError, match="not ordered by hop"):
        HopGraph(ei.flip(1), batch.num_sampled_nodes, batch.num_sampled_edges)
    with pytest.raises(DataError, match="one node count per hop"):
        HopGraph(ei, batch.num_sampled_nodes[:-1], batch.num_sampled_edges)


def test_the_task_trims_for_models_that_support_it_and_predicts_the_same():
    from mmgraph.nn import GAT
    from mmgraph.tasks import NodeClassification
    from tests.conftest import fake_graph

    graph = fake_graph(num_nodes=60, num_classes=3)
    tasks = {}
    for trim in (False, True):
        tasks[trim] = NodeClassification(batch_size=7, num_neighbors=[3, 2], trim_layers=trim)
        tasks[trim].setup(graph, torch.device("cpu"))
    assert tasks[True].describe()["minibatch"]["trim_layers"] is True
    for cls, kwargs in ((GraphSAGE, {}), (GCN, {}), (GAT, {"heads": 2})):
        torch.manual_seed(0)
        model = cls(**tasks[True].model_kwargs(), hidden_channels=16, **kwargs)
        seen = []
        model.register_forward_pre_hook(lambda _m, inputs: seen.append(type(inputs[1])))
        with torch.no_grad():
            preds = {trim: task._predict_minibatch(model) for trim, task in tasks.items()}
        assert torch.equal(preds[False], preds[True])
        expected = HopGraph if model.supports_trimming else Adjacency
        assert set(seen) == {Adjacency, expected}, cls.__name__
    with pytest.raises(Exception, match="trim_layers"):
        NodeClassification(batch_size=7, trim_layers="yes")


def test_a_batch_is_freed_without_the_cyclic_garbage_collector():
    """Blocks refer to their HopGraph, so the HopGraph must not hold its blocks strongly: a
    cycle would keep every batch's tensors until ``gc`` runs (hundreds of MiB over an epoch)."""
    import gc
    import weakref

    batch = _batches([4, 3])[0]
    model = _model(GCN, 2)
    gc.disable()
    try:
        graph = HopGraph(batch.edge_index, batch.num_sampled_nodes, batch.num_sampled_edges)
        model(batch.x, graph).sum().backward()
        again = graph.layer(0, 2)
        assert graph.layer(0, 2) is again  # still cached while in use
        alive = [weakref.ref(graph), weakref.ref(again)]
        del graph, again
        assert [ref() for ref in alive] == [None, None]
    finally:
        gc.enable()


def test_minibatch_training_builds_no_whole_graph_adjacency():
    """Mini-batches make their own graphs; the whole graph's sparse form is built only when a
    full-graph forward asks for it."""
    from mmgraph.tasks import NodeClassification
    from tests.conftest import fake_graph

    task = NodeClassification(batch_size=7, num_neighbors=[3, 2])
    task.setup(fake_graph(num_nodes=60, num_classes=3), torch.device("cpu"))
    model = task.wrap(GCN(**task.model_kwargs(), hidden_channels=8))
    assert task.graph is None
    task.train_epoch(model, torch.optim.Adam(model.parameters()))
    assert task.graph is None and set(task.evaluate(model)) == {"train", "val", "test"}
    assert task._predict(model).shape == (60, 3) and isinstance(task.graph, Adjacency)

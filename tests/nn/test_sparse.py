"""The sparse-adjacency path computes what PyG's edge_index path computes, values and gradients."""
import pytest
import torch

from mmgraph.data.synthetic import make_synthetic
from mmgraph.errors import DataError
from mmgraph.nn import GAT, GCN, MLP, GATv2, GraphSAGE
from mmgraph.nn.basic_gnn import GATLayer, GCNLayer, SAGELayer
from mmgraph.nn.sparse import Adjacency, SameInputs, ToAdjacency, as_adjacency, segment_softmax, spmm
from tests.nn.common import random_graph


def test_adjacency_layout_and_transpose():
    ei = random_graph()
    adj = Adjacency.from_edge_index(ei, 40)
    assert adj.num_edges == ei.size(1)
    # same multiset of edges, rows sorted
    assert sorted(map(tuple, adj.edge_index.t().tolist())) == sorted(map(tuple, ei.t().tolist()))
    assert torch.all(adj.row.diff() >= 0)
    dense = torch.zeros(40, 40)
    dense.index_put_((ei[1], ei[0]), torch.ones(ei.size(1)), accumulate=True)
    x = torch.randn(40, 7)
    w = torch.ones(adj.num_edges)
    assert torch.allclose(adj.matmul(w, x), dense @ x, atol=1e-5)
    assert torch.allclose(adj.t_matmul(w, x), dense.t() @ x, atol=1e-5)
    a, b = torch.randn(40, 5), torch.randn(40, 5)
    assert torch.allclose(adj.sddmm(a, b), (a[adj.row] * b[adj.col]).sum(-1), atol=1e-5)


def test_spmm_gradients_match_dense():
    ei = random_graph(loops=False, duplicates=False)
    adj = Adjacency.from_edge_index(ei, 40)
    values = torch.rand(adj.num_edges, dtype=torch.double, requires_grad=True)
    x = torch.randn(40, 6, dtype=torch.double, requires_grad=True)
    assert torch.autograd.gradcheck(lambda v, z: spmm(adj, v, z), (values, x))


def test_segment_softmax_sums_to_one_per_destination():
    adj = Adjacency.from_edge_index(random_graph(), 40)
    alpha = segment_softmax(torch.randn(adj.num_edges, 3) * 50, adj)
    sums = torch.zeros(40, 3).index_add_(0, adj.row, alpha)
    has_in = adj.in_degree > 0
    assert torch.allclose(sums[has_in], torch.ones(int(has_in.sum()), 3), atol=1e-5)


def test_bad_edge_index_is_a_data_error():
    with pytest.raises(DataError, match="outside"):
        Adjacency.from_edge_index(torch.tensor([[0, 9], [1, 2]]), 5)
    with pytest.raises(DataError, match=r"\[2, E\]"):
        Adjacency.from_edge_index(torch.zeros(3, 4, dtype=torch.long), 5)


@pytest.mark.parametrize("layer", [
    lambda: GCNLayer(16, 8), lambda: GCNLayer(4, 8), lambda: GCNLayer(16, 8, normalize=False),
    lambda: GCNLayer(16, 8, add_self_loops=False), lambda: SAGELayer(16, 8), lambda: SAGELayer(4, 8),
    lambda: SAGELayer(16, 8, aggr="sum"), lambda: SAGELayer(16, 8, root_weight=False),
    lambda: GATLayer(16, 4, heads=3), lambda: GATLayer(16, 8, heads=2, concat=False),
    lambda: GATLayer(16, 4, heads=3, add_self_loops=False, residual=True)])
def test_layer_paths_agree(layer):
    torch.manual_seed(0)
    conv = layer()
    ei = random_graph()
    adj = Adjacency.from_edge_index(ei, 40)
    x1 = torch.randn(40, conv.in_channels, requires_grad=True)
    x2 = x1.detach().clone().requires_grad_(True)
    ref = conv(x1, ei)
    ref.square().sum().backward()
    ref_grads = [p.grad.clone() for p in conv.parameters()]
    conv.zero_grad()
    out = conv(x2, adj)
    out.square().sum().backward()
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.allclose(x2.grad, x1.grad, atol=1e-4)
    for p, g in zip(conv.parameters(), ref_grads):
        assert torch.allclose(p.grad, g, atol=1e-4)


@pytest.mark.parametrize("cls", [GCN, GraphSAGE, GAT, MLP, GATv2])
def test_models_agree_on_a_synthetic_graph(cls):
    data = make_synthetic(num_nodes=300, num_edges=2000, num_classes=3, text_dim=16, image_dim=16, seed=1)
    store = data["item"]
    x = torch.cat([store.x_text, store.x_image], dim=1)
    ei = data["item", "links", "item"].edge_index if ("item", "links", "item") in data.edge_types \
        else data[data.edge_types[0]].edge_index
    torch.manual_seed(0)
    kwargs = {"heads": 2} if cls in (GAT, GATv2) else {}
    model = cls(32, 16, 3, num_layers=2, dropout=0.0, **kwargs).eval()
    graph = Adjacency.from_edge_index(ei, 300) if cls.accepts_adjacency else ei
    assert torch.allclose(model(x, graph), model(x, ei), atol=1e-5)


def test_fast_dropout_distribution_scale_and_reproducibility():
    from mmgraph.nn.dropout import Dropout, keep_mask

    x = torch.ones(400, 500)
    for p in (0.5, 0.1, 0.3):
        drop = Dropout(p).train()
        torch.manual_seed(0)
        a = drop(x)
        torch.manual_seed(0)
        b = drop(x)
        assert torch.equal(a, b)
        kept = (a != 0).float().mean().item()
        assert abs(kept - (1 - p)) < 0.005
        assert abs(a.mean().item() - 1.0) < 0.01  # survivors rescaled: expectation kept
    assert torch.equal(Dropout(0.5).eval()(x), x) and torch.equal(Dropout(0.0).train()(x), x)
    mask, keep = keep_mask(torch.Size([10]), 1.0)
    assert not mask.any() and keep == 0.0
    # gradients flow through the survivors only, with the same scale
    z = torch.randn(50, 60, requires_grad=True)
    torch.manual_seed(1)
    out = Dropout(0.5).train()(z)
    out.sum().backward()
    assert torch.equal(z.grad, (out != 0).float() * 2.0)


def test_per_head_spmm_matches_one_product_per_head():
    adj = Adjacency.from_edge_index(random_graph(loops=False, duplicates=False), 40)
    values = torch.rand(adj.num_edges, 3, dtype=torch.double, requires_grad=True)
    x = torch.randn(40, 3, 5, dtype=torch.double, requires_grad=True)
    out = spmm(adj, values, x)
    ref = torch.stack([spmm(adj, values[:, k], x[:, k]) for k in range(3)], dim=1)
    assert torch.allclose(out, ref)
    assert torch.autograd.gradcheck(lambda v, z: spmm(adj, v, z), (values, x))
    with pytest.raises(ValueError, match="per-head"):
        spmm(adj, values, x[:, :2])


def test_attention_is_the_step_by_step_computation_in_one_function():
    import torch.nn.functional as F
    from mmgraph.nn.sparse import attention, attention_logits

    # a node without incoming edges (39) and duplicate edges included
    ei = random_graph()
    ei = ei[:, ei[1] != 39]
    adj = Adjacency.from_edge_index(ei, 40)
    torch.manual_seed(0)
    x = torch.randn(40, 3, 5, dtype=torch.double, requires_grad=True)
    att_src = torch.randn(1, 3, 5, dtype=torch.double, requires_grad=True)
    att_dst = torch.randn(1, 3, 5, dtype=torch.double, requires_grad=True)
    inputs = (x, att_src, att_dst)
    a_src, a_dst = attention_logits(x, att_src, att_dst)
    assert torch.allclose(a_src, (x * att_src).sum(-1)) and torch.allclose(a_dst, (x * att_dst).sum(-1))
    alpha = segment_softmax(F.leaky_relu(a_src[adj.col] + a_dst[adj.row], 0.2), adj)
    ref = spmm(adj, alpha, x)
    out = attention(adj, *inputs, 0.2)
    assert torch.allclose(out, ref) and not out[39].any()
    grads = torch.autograd.grad(out.square().sum(), inputs)
    ref_grads = torch.autograd.grad(ref.square().sum(), inputs)
    assert all(torch.allclose(g, r) for g, r in zip(grads, ref_grads))
    assert torch.autograd.gradcheck(lambda *args: attention(adj, *args, 0.2), inputs)
    with pytest.raises(ValueError, match="attention needs"):
        attention(adj, x[:30], att_src, att_dst)


def test_gat_layer_with_attention_dropout_trains_on_an_adjacency():
    torch.manual_seed(0)
    conv = GATLayer(16, 4, heads=3, dropout=0.5)
    ei = random_graph()
    adj = Adjacency.from_edge_index(ei, 40)
    x = torch.randn(40, 16)
    out = conv(x, adj)  # training: dropout on the attention weights, then the per-head product
    out.square().sum().backward()
    assert out.shape == (40, 12) and torch.isfinite(out).all()
    assert conv.att_src.grad is not None and conv.att_src.grad.abs().sum() > 0
    conv.eval()
    assert torch.allclose(conv(x, adj), conv(x, ei), atol=1e-5)


def test_gcn_norm_matches_pyg_and_follows_the_dtype():
    from torch_geometric.nn.conv.gcn_conv import gcn_norm

    ei = random_graph()
    adj = Adjacency.from_edge_index(ei, 40)
    for loops in (True, False):
        graph, weight = adj.gcn_norm(loops, torch.double)
        ref_ei, ref_w = gcn_norm(ei, None, 40, add_self_loops=loops, dtype=torch.double)
        dense, ref = torch.zeros(40, 40, dtype=torch.double), torch.zeros(40, 40, dtype=torch.double)
        dense.index_put_((graph.row, graph.col), weight, accumulate=True)
        ref.index_put_((ref_ei[1], ref_ei[0]), ref_w, accumulate=True)
        assert weight.dtype == torch.double and torch.allclose(dense, ref)
    assert adj.gcn_norm()[1] is adj.gcn_norm()[1]  # cached on the adjacency


def test_as_adjacency_takes_every_graph_form():
    from torch_geometric.utils import coalesce, to_torch_csr_tensor

    ei = coalesce(random_graph(loops=False, duplicates=False))  # adj_t stores each edge once
    ref = Adjacency.from_edge_index(ei, 40)
    assert as_adjacency(ref, 40) is ref

    adj_t = to_torch_csr_tensor(ei.flip(0), size=(40, 40))
    for adj in (as_adjacency(ei, 40), as_adjacency(adj_t, 40)):
        assert torch.equal(adj.crow, ref.crow) and torch.equal(adj.col, ref.col)
    weighted = to_torch_csr_tensor(ei.flip(0), torch.rand(ei.size(1)) + 2, size=(40, 40))
    with pytest.raises(DataError, match="weighted"):
        as_adjacency(weighted, 40)
    with pytest.raises(DataError, match="layout"):
        as_adjacency(adj_t.to_sparse_coo(), 40)


def test_to_adjacency_caches_only_for_the_same_unmodified_graph():
    ei = random_graph()
    for cached in (False, True):
        to_adj = ToAdjacency(cached)
        first = to_adj(ei, 40)
        assert (to_adj(ei, 40) is first) == cached
        assert to_adj(ei.clone(), 40) is not first  # an equal but other tensor: converted
        assert to_adj(ei, 41).num_dst == 41  # another node count
    to_adj = ToAdjacency(cached=True)
    first = to_adj(ei, 40)
    ei[0, 0] = 39  # changed in place: another graph
    again = to_adj(ei, 40)
    assert again is not first and torch.equal(again.edge_index, Adjacency.from_edge_index(ei, 40).edge_index)
    given = Adjacency.from_edge_index(ei, 40)
    assert to_adj(given, 40) is given  # an Adjacency passes through
    to_adj.reset_parameters()
    assert to_adj._cache is None


def test_same_inputs_compares_identity_versions_and_extras():
    a, b = torch.zeros(3), torch.zeros(3)
    stamp = SameInputs(a, None, extra=(3,))
    assert stamp.matches(a, None, extra=(3,))
    assert not stamp.matches(b, None, extra=(3,))  # equal values, other tensor
    assert not stamp.matches(a, None, extra=(4,))
    assert not stamp.matches(a, extra=(3,))
    a.add_(1)
    assert not stamp.matches(a, None, extra=(3,))

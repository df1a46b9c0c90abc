"""Modality fusion (mmgraph.nn.fusion): every kind around every backbone, and mask-awareness."""
import pytest
import torch
from torch import nn

from mmgraph.errors import ConfigError, DataError
from mmgraph.nn import GCN, MLP, FusionModel, GraphSAGE
from mmgraph.tasks import LinkPrediction, NodeClassification
from mmgraph.tasks.link_prediction import LinkModel
from tests.nn.common import assert_reset_is_seeded

KINDS = [("concat", {}), ("sum", {}), ("late", {"late_level": "logits"}),
         ("late", {"late_level": "embedding"}), ("attention", {}), ("lowrank", {"rank": 3})]
IDS = ["concat", "sum", "late-logits", "late-embedding", "attention", "lowrank"]
BACKBONES = [GCN, GraphSAGE, MLP]
DIMS = [8, 5]
N = 12
MISSING_IMAGE, MISSING_TEXT, MISSING_BOTH = 3, 4, 7


def _graph(dims=DIMS, seed=0):
    gen = torch.Generator().manual_seed(seed)
    mask = torch.ones(N, len(dims), dtype=torch.bool)
    mask[MISSING_IMAGE, -1] = False
    mask[MISSING_TEXT, 0] = False
    mask[MISSING_BOTH] = False
    x = torch.randn(N, sum(dims), generator=gen) * 3
    blocks = list(torch.split(x, dims, dim=1))
    for i, b in enumerate(blocks):
        b[~mask[:, i]] = 0.0  # the convention: missing rows are zero, the mask says so
    ring = torch.arange(N)
    ei = torch.stack([ring, (ring + 1) % N])
    ei = torch.cat([ei, ei.flip(0), torch.tensor([[0, 6], [6, 0]])], 1)
    return torch.cat(blocks, 1), ei, mask


def _capture_input(module, seen):
    def hook(mod, args):
        seen["x"] = args[0]
    module.register_forward_pre_hook(hook)


def _model(kind, params, backbone=GCN, dims=DIMS, out=3, seed=0):
    torch.manual_seed(seed)
    factory = lambda i, o: backbone(i, 16, o, dropout=0.0)  # noqa: E731
    return FusionModel(dims, factory, out, kind=kind, fusion_dim=6, **params)


@pytest.mark.parametrize("backbone", BACKBONES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("kind,params", KINDS, ids=IDS)
def test_every_kind_around_every_backbone_trains(kind, params, backbone):
    x, ei, mask = _graph()
    model = _model(kind, params, backbone)
    out = model(x, ei, modality_mask=mask)
    assert out.shape == (N, 3) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    assert model.wants_modality_mask


@pytest.mark.parametrize("backbone", BACKBONES, ids=lambda c: c.__name__)
@pytest.mark.parametrize("kind,params", KINDS, ids=IDS)
def test_values_in_missing_rows_never_reach_the_output(kind, params, backbone):
    x, ei, mask = _graph()
    model = _model(kind, params, backbone).eval()
    ref = model(x, ei, modality_mask=mask)
    other = x.clone()
    other[MISSING_IMAGE, DIMS[0]:] = torch.randn(DIMS[1]) * 100  # garbage in the zeroed image row
    other[MISSING_TEXT, :DIMS[0]] = float("nan")
    other[MISSING_BOTH] = 7.0
    assert torch.equal(model(other, ei, modality_mask=mask), ref)
    assert torch.isfinite(ref[[MISSING_IMAGE, MISSING_TEXT, MISSING_BOTH]]).all()  # still predicted
    # The mask is used: the same zero rows read as present give other predictions.
    assert not torch.allclose(model(x, ei)[MISSING_IMAGE], ref[MISSING_IMAGE])


def test_without_fusion_the_zero_row_is_read_as_features():
    x, ei, mask = _graph()
    torch.manual_seed(0)
    model = GCN(sum(DIMS), 16, 3, dropout=0.0).eval()
    other = x.clone()
    other[MISSING_IMAGE, DIMS[0]:] = 1.0
    assert not torch.equal(model(other, ei), model(x, ei))


def test_concat_missing_vector_is_learned_not_zero():
    x, ei, mask = _graph()
    model = _model("concat", {})
    assert all(p.requires_grad and p.abs().sum() > 0 for p in model.missing)
    seen = {}
    _capture_input(model.backbone, seen)
    model.eval()(x, ei, modality_mask=mask)
    fused = seen["x"]
    assert torch.equal(fused[MISSING_IMAGE, DIMS[0]:], model.missing[1].detach())
    assert torch.equal(fused[MISSING_TEXT, :DIMS[0]], model.missing[0].detach())
    # present blocks are layer-normalised
    text = fused[0, :DIMS[0]]
    assert text.mean().abs() < 1e-5 and text.var(unbiased=False).sub(1).abs() < 1e-2


def test_sum_is_the_mean_over_present_modalities():
    x, ei, mask = _graph()
    model = _model("sum", {}).eval()
    seen = {}
    _capture_input(model.backbone, seen)
    model(x, ei, modality_mask=mask)
    blocks = torch.split(x, DIMS, 1)
    p = [model.proj[i](model.norms[i](b)) for i, b in enumerate(blocks)]
    fused = seen["x"].detach()
    torch.testing.assert_close(fused[0], (p[0][0] + p[1][0]) / 2)
    torch.testing.assert_close(fused[MISSING_IMAGE], p[0][MISSING_IMAGE])
    torch.testing.assert_close(fused[MISSING_TEXT], p[1][MISSING_TEXT])
    assert torch.equal(fused[MISSING_BOTH], model.empty.detach())


def test_attention_weights_are_a_distribution_over_present_modalities():
    dims = [4, 6, 3]
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(N, sum(dims), generator=gen)
    mask = torch.rand(N, 3, generator=gen) > 0.4
    mask[0] = True
    mask[1] = torch.tensor([False, True, False])
    mask[2] = False
    ei = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 0]])
    model = _model("attention", {}, dims=dims)
    out = model(x, ei, modality_mask=mask)
    w = model.last_weights
    assert w.shape == (N, 3) and not w.requires_grad
    some = mask.any(1)
    torch.testing.assert_close(w[some].sum(1), torch.ones(int(some.sum())))
    assert (w[~mask] == 0).all() and (w[mask] > 0).all()
    assert torch.equal(w[1], torch.tensor([0.0, 1.0, 0.0])) and (w[2] == 0).all()
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_lowrank_skips_a_missing_modality_multiplicatively():
    x, ei, mask = _graph()
    model = _model("lowrank", {"rank": 3}).eval()
    seen = {}
    _capture_input(model.backbone, seen)
    model(x, ei, modality_mask=mask)
    fused = seen["x"].detach()

    def factor(i, rows):
        h = model.norms[i](torch.split(x, DIMS, 1)[i][rows])
        z = torch.cat([h, torch.ones(h.size(0), 1)], 1)
        return (z @ model.factors[i]).view(-1, model.rank, model.fusion_dim).detach()

    lam, b = model.rank_weights.detach(), model.fusion_bias.detach()
    both = torch.tensor([0, 1])
    torch.testing.assert_close(fused[both], torch.einsum("r,nrf->nf", lam, factor(0, both) * factor(1, both)) + b)
    # image missing: exactly the computation without the image factor
    only_text = torch.einsum("r,nrf->nf", lam, factor(0, torch.tensor([MISSING_IMAGE]))) + b
    torch.testing.assert_close(fused[MISSING_IMAGE], only_text[0])
    only_image = torch.einsum("r,nrf->nf", lam, factor(1, torch.tensor([MISSING_TEXT]))) + b
    torch.testing.assert_close(fused[MISSING_TEXT], only_image[0])
    torch.testing.assert_close(fused[MISSING_BOTH], lam.sum().expand(model.fusion_dim) + b)
    # ... and not the product with a zero feature vector
    assert not torch.allclose(fused[MISSING_IMAGE], torch.einsum(
        "r,nrf->nf", lam, factor(0, torch.tensor([MISSING_IMAGE])) * factor(1, torch.tensor([MISSING_IMAGE])))[0] + b)


@pytest.mark.parametrize("backbone", BACKBONES, ids=lambda c: c.__name__)
def test_late_logits_are_the_mean_of_present_per_modality_logits(backbone):
    x, ei, mask = _graph()
    model = _model("late", {"late_level": "logits"}, backbone).eval()
    out = model(x, ei, modality_mask=mask)
    blocks, m = model._inputs(x, mask)
    per = [bb(h, ei) for bb, h in zip(model.backbones, model._filled(blocks, m))]
    torch.testing.assert_close(out[0], (per[0][0] + per[1][0]) / 2)
    torch.testing.assert_close(out[MISSING_IMAGE], per[0][MISSING_IMAGE])
    torch.testing.assert_close(out[MISSING_TEXT], per[1][MISSING_TEXT])
    torch.testing.assert_close(out[MISSING_BOTH], (per[0][MISSING_BOTH] + per[1][MISSING_BOTH]) / 2)
    assert len(model.backbones) == 2 and model.backbones[1].in_channels == DIMS[1]


@pytest.mark.parametrize("kind,params", KINDS, ids=IDS)
def test_one_modality_works_with_every_kind(kind, params):
    x, ei, mask = _graph(dims=[8])
    model = _model(kind, params, dims=[8])
    for m in (mask, mask[:, 0], None):
        out = model(x, ei, modality_mask=m)
        assert out.shape == (N, 3) and torch.isfinite(out).all()
    if kind == "attention":
        assert torch.equal(model.last_weights[:, 0], torch.ones(N))


@pytest.mark.parametrize("kind,params", KINDS, ids=IDS)
def test_reset_parameters_is_a_seeded_reinitialisation(kind, params):
    model = _model(kind, params)
    assert_reset_is_seeded(model)


def test_bad_arguments_are_clear_errors():
    factory = lambda i, o: MLP(i, 8, o)  # noqa: E731
    with pytest.raises(ConfigError, match="unknown fusion kind 'bogus'"):
        FusionModel([4], factory, 2, kind="bogus")
    with pytest.raises(ConfigError, match="late_level"):
        FusionModel([4], factory, 2, kind="late", late_level="middle")
    model = FusionModel([4, 2], factory, 2, kind="sum")
    with pytest.raises(DataError, match=r"fusion input must be \[N, 6\]"):
        model(torch.randn(3, 5), torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(DataError, match="modality_mask must be"):
        model(torch.randn(3, 6), torch.zeros(2, 0, dtype=torch.long), modality_mask=torch.ones(3, 3))


class _Recorder(nn.Module):
    """A node model that records whether it received a modality mask."""

    def __init__(self, wants: bool, out: int):
        super().__init__()
        self.wants_modality_mask = wants
        self.lin = nn.Linear(12, out)
        self.masks = []

    def reset_parameters(self):
        self.lin.reset_parameters()

    def forward(self, x, edge_index, modality_mask=None):
        self.masks.append(modality_mask)
        return self.lin(x)


def test_tasks_hand_the_mask_to_models_that_want_it(graph):
    nc = NodeClassification()
    nc.setup(graph, torch.device("cpu"))
    expected = torch.stack([graph["item"].text_mask, graph["item"].image_mask], 1)
    assert torch.equal(nc.modality_mask, expected)
    for wants in (True, False):
        model = nc.wrap(_Recorder(wants, 3))
        nc.evaluate(model)
        assert (model.masks[-1] is not None) == wants
        if wants:
            assert torch.equal(model.masks[-1], expected)

    lp = LinkPrediction(val_ratio=0.1, test_ratio=0.2, num_neg_eval=5, embedding_channels=4)
    lp.setup(graph, torch.device("cpu"))
    for wants in (True, False):
        model = lp.wrap(_Recorder(wants, 4))
        assert isinstance(model, LinkModel) and model.wants_modality_mask == wants
        lp.evaluate(model)
        assert (model.encoder.masks[-1] is not None) == wants


def test_fusion_trains_through_both_tasks(graph):
    from mmgraph.train import TrainerConfig, fit, seed_everything

    for task in (NodeClassification(), LinkPrediction(val_ratio=0.1, test_ratio=0.2, num_neg_eval=5,
                                                      embedding_channels=4)):
        task.setup(graph, torch.device("cpu"))
        kw = task.model_kwargs()
        seed_everything(0)
        model = task.wrap(FusionModel([8, 4], lambda i, o: GCN(i, 8, o), kw["out_channels"],
                                      kind="attention", fusion_dim=6))
        result = fit(task, model, TrainerConfig(max_epochs=3, progress=False))
        assert result.epochs == 3


def test_modality_mask_follows_the_input_order(graph):
    from torch_geometric.data import Data

    from mmgraph.data import modality_mask, set_model_input

    store = graph["item"]
    assert torch.equal(modality_mask(graph), torch.stack([store.text_mask, store.image_mask], 1))
    set_model_input(graph, ["image"])
    assert torch.equal(modality_mask(graph), store.image_mask.view(-1, 1))
    del store.image_mask  # no mask: present everywhere
    assert modality_mask(graph, ["text", "image"])[:, 1].all()
    with pytest.raises(DataError, match="no input modalities"):
        modality_mask(Data(num_nodes=3))  # a homogeneous view needs the modalities named

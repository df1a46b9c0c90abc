"""Data-parallel mini-batch training: the sharding of global batches, DDP in the task, the
sharded evaluation, and the runner's checks under torchrun."""
from __future__ import annotations

import pytest
import torch

from mmgraph import distributed
from mmgraph.distributed import ShardedBatchSampler
from mmgraph.errors import ConfigError
from tests.distributed.launch import run_ranks


# ------------------------------------------------------------------ sharding (no process group)
@pytest.mark.parametrize("num_items, batch_size, world", [
    (10, 4, 2), (10, 3, 3), (179, 64, 2), (180, 179, 2), (7, 2, 4), (5, 8, 3), (1, 1, 2), (50, 50, 1)])
def test_every_rank_takes_a_disjoint_part_of_every_global_batch(num_items, batch_size, world):
    def samplers(seed):
        return [ShardedBatchSampler(num_items, batch_size, r, world, shuffle=True,
                                    generator=torch.Generator().manual_seed(seed)) for r in range(world)]

    for seed in (0, 1):
        parts = [list(s) for s in samplers(seed)]
        plans = [s.plan() for s in samplers(seed)]
        steps = {len(p) for p in parts} | {len(s) for s in samplers(seed)} | {len(p) for p in plans}
        assert steps == {-(-num_items // batch_size)}  # every rank: as many steps as one process
        perm = torch.randperm(num_items, generator=torch.Generator().manual_seed(seed)).tolist()
        epoch = []
        for step in range(len(parts[0])):
            global_batch = perm[step * batch_size:(step + 1) * batch_size]
            taken = []
            for r in range(world):
                mine, size = plans[r][step]
                assert size == len(global_batch)
                if mine:
                    assert len(parts[r][step]) == mine
                    taken += parts[r][step]
                else:  # a stand-in (weight 0) so that every rank still steps
                    assert len(parts[r][step]) == 1 and parts[r][step][0] in global_batch
            assert taken == global_batch  # disjoint parts, together the global batch, in order
            sizes = [plans[r][step][0] for r in range(world)]
            assert max(sizes) - min(sizes) <= 1
            epoch += taken
        assert epoch == perm  # the union over the epoch: every item exactly once
    # another epoch seed, another permutation; the same seed, the same one on every rank
    assert [list(s) for s in samplers(0)] != [list(s) for s in samplers(1)] or num_items <= 2


def test_one_rank_is_one_process_batches():
    from torch.utils.data import BatchSampler, RandomSampler

    gen_a, gen_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    ours = list(ShardedBatchSampler(23, 5, 0, 1, generator=gen_a))
    plain = list(BatchSampler(RandomSampler(range(23), generator=gen_b), 5, drop_last=False))
    assert ours == plain


def test_torchrun_config_errors_are_one_line_before_any_process_group(monkeypatch):
    from hydra import compose, initialize_config_dir

    import mmgraph.bench  # noqa: F401  (registers the data-root resolver)
    from mmgraph.bench.torchrun import describe, prepare_device
    from mmgraph.paths import config_dir

    def cfg(*overrides):
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            return compose(config_name="config", overrides=["dataset=synthetic", *overrides])

    cpu = torch.device("cpu")
    assert prepare_device(cfg("model=sage"), cpu) == cpu  # one process: nothing to check
    assert describe(cpu) == {"world_size": 1, "backend": None}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    for overrides, message in [(["model=sage"], "needs mini-batches: set task.batch_size"),
                               (["model=rgcn", "task.batch_size=64"], "homogeneous models only"),
                               (["task=link_prediction"], "task=node_classification in mini-batches")]:
        with pytest.raises(ConfigError, match=message) as err:
            prepare_device(cfg(*overrides), cpu)
        assert "\n" not in str(err.value) and "2 processes (torchrun)" in str(err.value)
    assert not distributed.active()  # the checks come before the process group


def test_a_configuration_error_is_printed_by_rank_0_only(monkeypatch, capsys):
    from mmgraph.bench.__main__ import _fail

    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank, printed in (("0", True), ("1", False)):
        monkeypatch.setenv("RANK", rank)
        for status in (2, 1):  # other errors may differ between ranks: every rank says them
            with pytest.raises(SystemExit) as exit_:
                _fail("something is wrong", status)
            assert exit_.value.code == status
            err = capsys.readouterr().err
            assert err == ("mmgraph.bench: error: something is wrong\n"
                           if printed or status == 1 else "")


# ------------------------------------------------------------------ two processes, one model
def _graph():
    from mmgraph.data import make_split, make_synthetic

    data = make_synthetic(num_nodes=300, num_edges=2400, text_dim=16, image_dim=16, seed=0)
    make_split(data, "magb")  # 180 training nodes
    return data


def _task(data, batch_size, **kw):
    from mmgraph.tasks import NodeClassification

    task = NodeClassification(batch_size=batch_size, num_neighbors=[-1, -1],
                              eval_num_neighbors=[-1, -1], eval_batch_size=64, sampler="torch", **kw)
    task.setup(data, torch.device("cpu"))
    return task


def _model(task, seed):
    from mmgraph.nn import GraphSAGE
    from mmgraph.train import seed_everything

    seed_everything(seed)
    model = task.wrap(GraphSAGE(**task.model_kwargs(), hidden_channels=16, dropout=0.0, norm=None))
    model.reset_parameters()
    return model


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()


def _same_on_all_ranks(t):
    got = distributed.all_gather_rows(t.reshape(1, -1))
    return all(torch.equal(g, got[0]) for g in got)


def _ddp_worker(rank, world):
    from mmgraph.tasks.base import Task, graph_input
    from mmgraph.train import seed_everything

    data = _graph()
    # 179 = one global batch of 179 (90 + 89 seeds) and one of 1 (rank 1: a stand-in, weight 0)
    batch = 179
    # ---- the one-process reference, before the group exists
    single = _task(data, batch)
    ref = _model(single, 0)
    opt = torch.optim.SGD(ref.parameters(), lr=0.5)
    seed_everything(7)
    ref_losses = [single.train_epoch(ref, opt) for _ in range(3)]

    assert distributed.init() and distributed.world_size() == world == 2
    task = _task(data, batch)
    assert isinstance(task._loaders["train"].batch_sampler, ShardedBatchSampler)

    # ---- every rank starts from rank 0's parameters, for every new optimiser (= run): the
    # first builds the DDP wrapper, the second re-initialises the same model, as the runner does
    model = _model(task, 0)
    for init_seed in (100, 200):
        seed_everything(init_seed + rank)  # different on every rank, on purpose
        model.reset_parameters()
        start = distributed.broadcast_object(_flat(model))  # rank 0's
        task.train_epoch(model, torch.optim.SGD(model.parameters(), lr=0.0))
        assert torch.equal(_flat(model), start)

    # ---- the same steps as one process on the same global batches: the same parameters
    model = _model(task, 0)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    seed_everything(7)
    losses = [task.train_epoch(model, opt) for _ in range(3)]
    assert torch.allclose(_flat(model), _flat(ref), atol=1e-5, rtol=0), \
        (_flat(model) - _flat(ref)).abs().max()
    assert not torch.allclose(_flat(model), _flat(_model(task, 0)))  # it did train
    assert losses == pytest.approx(ref_losses, rel=1e-5)
    assert _same_on_all_ranks(_flat(model)) and _same_on_all_ranks(torch.tensor(losses))

    # ---- sharded evaluation == the one-process evaluation of the same model
    pred = task._predict_minibatch(model)
    assert torch.equal(pred, single._predict_minibatch(model))  # single's loaders: all nodes
    assert task.evaluate(model) == single.evaluate(model)
    scored = torch.cat(list(task.index.values())).unique()
    assert (pred[scored] >= 0).all()
    with torch.no_grad():
        full = Task._forward(model.eval(), task.x, graph_input(model, task.edge_index, task.x.size(0)))
    assert torch.equal(pred[scored], full.argmax(-1)[scored])  # = the full-batch predictions
    assert _same_on_all_ranks(pred)

    # ---- full batch cannot be data-parallel
    with pytest.raises(ConfigError, match="set task.batch_size"):
        _task(data, None)


def test_two_ranks_train_and_evaluate_exactly_like_one_process():
    run_ranks(_ddp_worker, world=2)


def test_model_flags_are_read_through_a_wrapper():
    from mmgraph.nn import GraphSAGE
    from mmgraph.nn.sparse import Adjacency
    from mmgraph.tasks.base import graph_input

    model = GraphSAGE(in_channels=4, out_channels=2, hidden_channels=8)
    wrapped = torch.nn.DataParallel(model)  # hides accepts_adjacency, as DDP does
    assert distributed.unwrap(wrapped) is model and distributed.unwrap(model) is model
    assert getattr(wrapped, "accepts_adjacency", False) is False
    edges = torch.tensor([[0, 1], [1, 0]])
    assert isinstance(graph_input(wrapped, edges, 2), Adjacency)
    assert distributed.ddp(model) is model  # one process: no wrapper

"""Transductive node classification, full batch or in mini-batches of sampled neighbourhoods."""
from __future__ import annotations

import warnings
import weakref
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch_geometric.data import HeteroData

from mmgraph import distributed
from mmgraph.checks import boolean, integer, integers, number
from mmgraph.data.graph import homogeneous_view, split_indices
from mmgraph.data.sampler import check_backend
from mmgraph.data.splits import make_split
from mmgraph.errors import ConfigError, DataError
from mmgraph.nn.trim import HopGraph
from mmgraph.tasks.base import Metrics, Task, edge_types_arg, graph_input


class NodeClassification(Task):
    """Predict the class of every target node from its features and the graph.

    Args:
        label_smoothing: label smoothing of the cross-entropy loss (MAGB uses 0.1).
        edge_types: relations (names or triples) merged into the homogeneous graph; all by default.
        batch_size: ``None`` trains full batch; otherwise seeds (training nodes) per mini-batch,
            each with its sampled neighbourhood (:func:`mmgraph.data.sampler.neighbor_loader`).
        num_neighbors: neighbours sampled per hop in mini-batches (``-1``: all); one per layer.
        eval_batch_size: seeds per evaluation mini-batch (default: ``batch_size``).
        eval_num_neighbors: fanouts for evaluation (default: ``num_neighbors``; ``[-1, -1]``
            evaluates on full neighbourhoods, i.e. exactly the full-batch predictions).
        sampler: ``"auto"`` (PyG's NeighborLoader when pyg-lib or torch-sparse is installed,
            else the vectorised pure-PyTorch sampler), ``"pyg"`` or ``"torch"``.
        trim_layers: in mini-batches, hand models whose ``supports_trimming`` is true (GCN,
            GraphSAGE) the sampled subgraph as a :class:`~mmgraph.nn.trim.HopGraph`, so that each
            layer computes only the nodes later layers need (the last layer: the seeds). The
            seeds' outputs are unchanged (evaluation gives the same predictions); in training,
            BatchNorm's batch statistics then cover the nodes each layer computes, as with
            DGL's blocks, instead of every sampled node.
        correct_and_smooth: ``None`` (off), ``True`` (defaults below) or a dict of the
            arguments of PyG's :class:`~torch_geometric.nn.models.CorrectAndSmooth` (Huang et
            al., ICLR 2021): every evaluation turns the model's class probabilities into C&S
            predictions over the task's relations, propagating the training labels only (never
            val or test labels), and scores those; early stopping then selects on the C&S
            validation score. Defaults: ``num_correction_layers=50, correction_alpha=0.8,
            num_smoothing_layers=50, smoothing_alpha=0.8, autoscale=True``. Full batch only.

    Under torchrun (an initialised process group of W > 1 processes, :mod:`mmgraph.distributed`)
    mini-batch training is data-parallel: ``batch_size`` is the *global* batch, each rank takes
    its part of every global batch of one shared permutation, gradients are averaged by
    ``DistributedDataParallel`` (the task wraps the model itself), evaluation is split over the
    ranks and the predictions combined, so every rank gets the same metrics. Full-batch
    training is an error there.
    """

    kind = "node_classification"
    supports_hetero = True

    def __init__(self, label_smoothing: float = 0.0, edge_types: Sequence[str] | None = None,
                 batch_size: int | None = None, num_neighbors: Sequence[int] = (15, 10),
                 eval_batch_size: int | None = None,
                 eval_num_neighbors: Sequence[int] | None = None, sampler: str = "auto",
                 correct_and_smooth: bool | dict | None = None, trim_layers: bool = True):
        super().__init__()
        self.label_smoothing = number("task.label_smoothing", label_smoothing, 0.0, 1.0)
        self.edge_types = edge_types_arg(edge_types)
        self.batch_size = integer("task.batch_size", batch_size, 1, optional=True)
        self.num_neighbors = integers("task.num_neighbors", num_neighbors, -1, example="[15,10]")
        eval_batch_size = integer("task.eval_batch_size", eval_batch_size, 1, optional=True)
        self.eval_batch_size = eval_batch_size if eval_batch_size is not None else self.batch_size
        self.eval_num_neighbors = (self.num_neighbors if eval_num_neighbors is None else integers(
            "task.eval_num_neighbors", eval_num_neighbors, -1, example="[-1,-1]"))
        self.sampler = check_backend(sampler, "task.sampler")
        self.trim_layers = boolean("task.trim_layers", trim_layers)
        self.correct_and_smooth = _cs_options(correct_and_smooth)
        if self.correct_and_smooth and self.batch_size:
            raise ConfigError("task.correct_and_smooth post-processes full-graph predictions; "
                              "use it without task.batch_size (full batch)")
        self._loaders = None
        self._ddp = None  # (model, its DDP wrapper, weakref to the optimiser it last trained with)

    def setup(self, data: HeteroData, device: torch.device, split: dict | None = None) -> None:
        self.device = device
        if distributed.active() and not self.batch_size:
            raise ConfigError(f"training in {distributed.world_size()} processes (torchrun) needs "
                              f"mini-batches: set task.batch_size (the global batch size)")
        if split:
            make_split(data, **split)
        graph = homogeneous_view(data, self.edge_types)
        if getattr(graph, "x", None) is None:
            raise DataError("the graph has no model input 'x'; choose modalities with "
                            "features.modalities=[...] (mmgraph.data.set_model_input)")
        self.num_classes = len(data.meta["class_names"])
        self.x = graph.x.to(device)
        self.modality_mask = self.input_modality_mask(data, graph, device)  # bool [N, M] or None
        self.edge_index = graph.edge_index.to(device)
        self.graph = self.edge_index  # what the model is called with; see wrap()
        self.y = graph.y.to(device)
        self.index = {}
        for split, idx in split_indices(graph).items():
            labelled = idx[graph.y[idx] >= 0]
            if labelled.numel() < idx.numel():
                warnings.warn(f"{idx.numel() - labelled.numel()} unlabelled nodes (y = -1) left out "
                              f"of the {split} split", stacklevel=2)
            if labelled.numel() == 0:
                raise DataError(f"the {split} split has no labelled nodes")
            self.index[split] = labelled.to(device)
        self.split_meta = data.meta.get("split", {})
        self._data, self._hetero = data, None  # the heterogeneous inputs are built on demand
        self._loaders = self._make_loaders(graph) if self.batch_size else None

    def model_kwargs(self, hetero: bool = False) -> dict[str, Any]:
        """``in_channels``/``out_channels``; with ``hetero=True`` the arguments of a heterogeneous
        model (:mod:`mmgraph.nn.hetero`): ``metadata``, ``in_channels`` and ``num_nodes`` per node
        type, ``out_channels`` and ``target``."""
        if hetero:
            return self.hetero_kwargs()
        return {"in_channels": self.x.size(1), "out_channels": self.num_classes}

    # Heterogeneous models (``model.is_hetero``) are called as model(x_dict, edge_index_dict) on
    # mmgraph.data.hetero.hetero_view: every node type, the target-target relations chosen by
    # edge_types plus every relation with another node type (and reverses where missing).
    def hetero_inputs(self) -> tuple[dict[str, torch.Tensor], dict[tuple, torch.Tensor]]:
        if self._hetero is None:
            from mmgraph.data.hetero import hetero_view

            view = hetero_view(self._data, self.edge_types)
            self._hetero = view, {nt: view[nt].x.to(self.device) for nt in view.node_types
                                  if "x" in view[nt]}, \
                {et: view[et].edge_index.to(self.device) for et in view.edge_types}
        return self._hetero[1], self._hetero[2]

    def hetero_kwargs(self) -> dict[str, Any]:
        x_dict, _ = self.hetero_inputs()
        view = self._hetero[0]
        return {"metadata": (list(view.node_types), [list(et) for et in view.edge_types]),
                "in_channels": {nt: int(x_dict[nt].size(1)) if nt in x_dict else None
                                for nt in view.node_types},
                "num_nodes": {nt: int(view[nt].num_nodes) for nt in view.node_types},
                "out_channels": self.num_classes, "target": self._data.meta["target"]}

    def _predict(self, model: nn.Module) -> torch.Tensor:
        if getattr(model, "is_hetero", False):
            return model(*self.hetero_inputs())
        if self.graph is None:  # mini-batch mode: the whole graph is wanted only now
            self.graph = graph_input(model, self.edge_index, self.x.size(0))
        return self._forward(model, self.x, self.graph, self.modality_mask)

    def wrap(self, model: nn.Module) -> nn.Module:
        # Mini-batches build their own graph per batch; the whole graph's sparse form (large on
        # large graphs, more while it is built) is made only when a full-graph forward asks for it.
        self.graph = (None if self._loaders is not None
                      else graph_input(model, self.edge_index, self.x.size(0)))
        return model

    def train_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> float:
        if self._loaders is not None:
            return self._train_epoch_minibatch(model, optimizer)
        model.train()
        optimizer.zero_grad(set_to_none=True)
        out = self._predict(model)
        idx = self.index["train"]
        loss = F.cross_entropy(out[idx], self.y[idx], label_smoothing=self.label_smoothing)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> Metrics:
        if self._loaders is not None:
            return self._evaluate_minibatch(model)
        model.eval()
        out = self._predict(model)
        if self.correct_and_smooth:
            out = self._correct_and_smooth(out)
        pred = out.argmax(dim=-1)
        return {split: self.evaluator.eval({"y_true": self.y[idx], "y_pred": pred[idx]})
                for split, idx in self.index.items()}

    def _correct_and_smooth(self, logits: torch.Tensor) -> torch.Tensor:
        """C&S class scores from the model's logits: training labels only, the task's edges."""
        from torch_geometric.nn.models import CorrectAndSmooth

        cs = CorrectAndSmooth(**self.correct_and_smooth)
        train = self.index["train"]
        probs = logits.float().softmax(dim=-1)
        probs = cs.correct(probs, self.y[train], train, self.edge_index)
        return cs.smooth(probs, self.y[train], train, self.edge_index)

    def describe(self) -> dict[str, Any]:
        out = {"kind": self.kind, "label_smoothing": self.label_smoothing,
               "correct_and_smooth": self.correct_and_smooth,
               "edge_types": self.edge_types, "num_edges": int(self.edge_index.size(1)),
               "split": self.split_meta}
        if self._hetero is not None:  # relation -> edges, as the heterogeneous model sees them
            out["hetero_edges"] = {"__".join(et): int(ei.size(1)) for et, ei in self._hetero[2].items()}
        out["batch_size"] = self.batch_size
        if self.batch_size:
            out["minibatch"] = {"num_neighbors": self.num_neighbors,
                                "eval_batch_size": self.eval_batch_size,
                                "eval_num_neighbors": self.eval_num_neighbors,
                                "trim_layers": self.trim_layers,
                                "sampler": (self._loaders["train"].backend if self._loaders
                                            else self.sampler)}
        return out

    # ------------------------------------------------------------------ mini-batch training
    # Batches come from mmgraph.data.sampler.neighbor_loader: PyG Data with x, y, edge_index
    # (sampled edges, local ids), n_id (seeds first) and batch_size; the model's first
    # batch_size output rows are the seeds' predictions.

    def _make_loaders(self, graph) -> dict[str, Any]:
        from torch_geometric.data import Data

        from mmgraph.data.sampler import neighbor_loader

        # Only what a batch needs: the loader gathers every node attribute per batch. CPU
        # tensors (sampling runs on the CPU); batches are moved to the device.
        slim = Data(x=graph.x, y=graph.y, edge_index=graph.edge_index, num_nodes=graph.num_nodes)
        if distributed.active():  # torchrun: this rank's part of every global batch
            gen = torch.Generator()
            shard = distributed.ShardedBatchSampler(
                self.index["train"].numel(), self.batch_size, distributed.rank(),
                distributed.world_size(), shuffle=True, generator=gen)
            train = neighbor_loader(slim, self.num_neighbors, input_nodes=self.index["train"].cpu(),
                                    batch_size=1, batch_sampler=shard, backend=self.sampler,
                                    seed=0, generator=gen)
        else:
            train = neighbor_loader(slim, self.num_neighbors, input_nodes=self.index["train"].cpu(),
                                    batch_size=self.batch_size, shuffle=True, backend=self.sampler,
                                    seed=0, generator=torch.Generator())
        csc = getattr(train.node_sampler, "csc", None)
        # Every node some split scores, each once, in a fixed order (under torchrun: this
        # rank's contiguous part of them).
        eval_nodes = torch.cat([idx.cpu() for idx in self.index.values()]).unique()
        eval_nodes = eval_nodes.tensor_split(distributed.world_size())[distributed.rank()]
        evaluate = neighbor_loader(slim, self.eval_num_neighbors, input_nodes=eval_nodes,
                                   batch_size=self.eval_batch_size, shuffle=False,
                                   backend=self.sampler, seed=0, csc=csc)
        return {"train": train, "eval": evaluate}

    def _batch_forward(self, model: nn.Module, batch) -> torch.Tensor:
        """The model's outputs for the seeds of ``batch`` (its first ``batch_size`` nodes)."""
        if getattr(distributed.unwrap(model), "is_hetero", False):
            raise ConfigError("mini-batch training (task.batch_size) supports homogeneous "
                              "models only")
        n_id = batch.n_id.to(self.device)
        mask = self.modality_mask[n_id] if self.modality_mask is not None else None
        x = batch.x.to(self.device)
        if self.trim_layers and getattr(distributed.unwrap(model), "supports_trimming", False) \
                and hasattr(batch, "num_sampled_nodes"):  # each layer only the nodes it needs
            graph = HopGraph(batch.edge_index.to(self.device), batch.num_sampled_nodes,
                             batch.num_sampled_edges)
        else:
            graph = graph_input(model, batch.edge_index.to(self.device), x.size(0))  # sparse products
        out = self._forward(model, x, graph, mask)
        return out[:batch.batch_size]

    def _train_epoch_minibatch(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> float:
        model.train()
        loader = self._loaders["train"]
        # One draw from the global RNG seeds the epoch's shuffle and sampling: reproducible
        # under the run's seed, independent of how many numbers the sampler consumes. Under
        # torchrun rank 0's draw for all (dropout on batches of different sizes moves the ranks'
        # generators apart); each rank samples neighbourhoods from its own stream.
        seed = distributed.broadcast_object(int(torch.randint(0, 2**62, ())))
        loader.generator.manual_seed(seed)
        if hasattr(loader.node_sampler, "reseed"):
            loader.node_sampler.reseed(seed + 1 + distributed.rank())
        if isinstance(loader.batch_sampler, distributed.ShardedBatchSampler):
            return self._train_epoch_sharded(model, optimizer, loader)
        total, count = 0.0, 0
        for batch in loader:
            optimizer.zero_grad(set_to_none=True)
            out = self._batch_forward(model, batch)
            y = batch.y[:batch.batch_size].to(self.device)
            loss = F.cross_entropy(out, y, label_smoothing=self.label_smoothing)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * batch.batch_size
            count += batch.batch_size
        return total / max(count, 1)

    def _train_epoch_sharded(self, model: nn.Module, optimizer: torch.optim.Optimizer,
                             loader) -> float:
        """One epoch of this rank's part of every global batch, through DDP."""
        net = self._ddp_model(model, optimizer)
        net.train()
        world = distributed.world_size()
        total, count = 0.0, 0
        for batch, (mine, size) in zip(loader, loader.batch_sampler.plan()):
            optimizer.zero_grad(set_to_none=True)
            out = self._batch_forward(net, batch)
            y = batch.y[:batch.batch_size].to(self.device)
            loss = F.cross_entropy(out, y, label_smoothing=self.label_smoothing, reduction="sum")
            # DDP averages the ranks' gradients; weighting each rank's summed loss by world/size
            # makes that the gradient of the global batch's mean loss (a stand-in batch counts 0).
            (loss * (world / size if mine else 0.0)).backward()
            optimizer.step()
            if mine:
                total += float(loss.detach())
                count += mine
        total, count = distributed.all_reduce_sum([total, count])  # the same loss on every rank
        return total / max(count, 1)

    def _ddp_model(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> nn.Module:
        """``model`` in DistributedDataParallel, built once per model. Whenever training starts
        with a new optimiser (a new run: the runner resets the parameters per seed), every rank
        takes rank 0's parameters and buffers, so all ranks start each run identical."""
        if self._ddp is None or self._ddp[0] is not model:
            self._ddp = (model, distributed.ddp(model), None)  # DDP copies rank 0's state too
        elif self._ddp[2]() is not optimizer:
            distributed.broadcast_module(model)
        self._ddp = (model, self._ddp[1], weakref.ref(optimizer))
        return self._ddp[1]

    @torch.no_grad()
    def _evaluate_minibatch(self, model: nn.Module) -> Metrics:
        pred = self._predict_minibatch(model)
        return {split: self.evaluator.eval({"y_true": self.y[idx], "y_pred": pred[idx]})
                for split, idx in self.index.items()}

    @torch.no_grad()
    def _predict_minibatch(self, model: nn.Module) -> torch.Tensor:
        """The predicted class of every node some split scores (-1 elsewhere). Under torchrun
        each rank predicts its part of the nodes and the parts are combined, so every rank
        returns the same tensor."""
        model = distributed.unwrap(model)
        distributed.broadcast_buffers(model)  # e.g. batch-norm statistics: rank 0's, as in DDP
        model.eval()
        loader = self._loaders["eval"]
        if hasattr(loader.node_sampler, "reseed"):
            loader.node_sampler.reseed(0)  # the same sampled neighbourhoods at every evaluation
        pred = torch.full((self.x.size(0),), -1, dtype=torch.long, device=self.device)
        for batch in loader:
            pred[batch.n_id[:batch.batch_size].to(self.device)] = \
                self._batch_forward(model, batch).argmax(dim=-1)
        return distributed.all_reduce(pred, "max")  # the ranks' parts are disjoint


_CS_DEFAULTS = {"num_correction_layers": 50, "correction_alpha": 0.8,
                "num_smoothing_layers": 50, "smoothing_alpha": 0.8, "autoscale": True}


def _cs_options(value: Any) -> dict | None:
    """``task.correct_and_smooth`` checked: ``None``/``False`` (off), ``True`` or a dict."""
    if value is None or value is False:
        return None
    if value is True:
        return dict(_CS_DEFAULTS)
    if not isinstance(value, Mapping):
        raise ConfigError(f"task.correct_and_smooth must be null, true or a dict of "
                          f"{', '.join(_CS_DEFAULTS)}; got {value!r}")
    unknown = sorted(set(value) - set(_CS_DEFAULTS) - {"scale"})
    if unknown:
        raise ConfigError(f"unknown key task.correct_and_smooth.{unknown[0]}; valid: "
                          f"{', '.join([*_CS_DEFAULTS, 'scale'])}")
    opts = {**_CS_DEFAULTS, **value}
    for key in ("num_correction_layers", "num_smoothing_layers"):
        opts[key] = integer(f"task.correct_and_smooth.{key}", opts[key], 0)
    for key in ("correction_alpha", "smoothing_alpha"):
        opts[key] = number(f"task.correct_and_smooth.{key}", opts[key], 0.0, 1.0)
    opts["autoscale"] = boolean("task.correct_and_smooth.autoscale", opts["autoscale"])
    if "scale" in opts:
        opts["scale"] = number("task.correct_and_smooth.scale", opts["scale"], 0.0)
    return opts

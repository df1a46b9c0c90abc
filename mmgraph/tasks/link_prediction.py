"""Link prediction with a GNN encoder and a dot-product or MLP decoder.

Protocol (MAGB's): the undirected edges are split once, with a fixed seed, into train /
validation / test (by default 91% / 1% / 8%); message passing only sees training edges.
Every validation and test edge ``(u, v)`` is ranked against ``num_neg_eval`` random
corruptions ``(u, w)`` (fixed by the split seed) and scored by MRR and Hits@1/3/10.
Training draws fresh uniform negatives every epoch, as many as positives, with a binary
cross-entropy loss.
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from mmgraph.checks import integer, number
from mmgraph.data.graph import homogeneous_view, tensor_digest
from mmgraph.errors import ConfigError, DataError
from mmgraph.tasks.base import Metrics, Task, edge_types_arg, graph_input


def _check_decoder(decoder: Any, key: str) -> str:
    if not isinstance(decoder, str) or decoder not in ("dot", "mlp"):
        raise ConfigError(f"{key}: unknown link decoder {decoder!r}; choose one of: dot, mlp")
    return decoder


class LinkModel(nn.Module):
    """A node encoder plus a pair decoder.

    Args:
        encoder: any node model ``(x, edge_index) -> [N, d]``.
        decoder: ``"dot"`` (inner product) or ``"mlp"`` (Hadamard product then a 2-layer MLP).
        channels: embedding size ``d`` (needed by the MLP decoder).
    """

    def __init__(self, encoder: nn.Module, decoder: str = "dot", channels: int = 0):
        super().__init__()
        _check_decoder(decoder, "decoder")
        self.encoder = encoder
        self.decoder = decoder
        self.mlp = (nn.Sequential(nn.Linear(channels, channels), nn.ReLU(), nn.Linear(channels, 1))
                    if decoder == "mlp" else None)

    def reset_parameters(self) -> None:
        self.encoder.reset_parameters()
        if self.mlp is not None:
            for layer in self.mlp:
                if hasattr(layer, "reset_parameters"):
                    layer.reset_parameters()

    @property
    def accepts_adjacency(self) -> bool:
        return bool(getattr(self.encoder, "accepts_adjacency", False))

    @property
    def wants_modality_mask(self) -> bool:
        """Pass-through: the task hands the modality mask on when the encoder (fusion) takes it."""
        return bool(getattr(self.encoder, "wants_modality_mask", False))

    def forward(self, x: Tensor, edge_index, modality_mask: Tensor | None = None) -> Tensor:
        if modality_mask is not None and self.wants_modality_mask:
            return self.encoder(x, edge_index, modality_mask=modality_mask)
        return self.encoder(x, edge_index)

    def score(self, z_src: Tensor, z_dst: Tensor) -> Tensor:
        """Logits for pairs; broadcasts, so ``[P, 1, d]`` against ``[P, K, d]`` gives ``[P, K]``."""
        h = z_src * z_dst
        return h.sum(-1) if self.mlp is None else self.mlp(h).squeeze(-1)


class LinkPrediction(Task):
    """Predict held-out edges of the target node type.

    Args:
        val_ratio: fraction of undirected edges held out for validation.
        test_ratio: fraction held out for testing.
        num_neg_eval: random negatives ranked against each validation/test edge.
        decoder: ``"dot"`` or ``"mlp"``.
        embedding_channels: output size of the encoder.
        split_seed: seed of the edge split and of the evaluation negatives.
        edge_types: relations to predict (and to message-pass over); all by default.
    """

    kind = "link_prediction"

    def __init__(self, val_ratio: float = 0.01, test_ratio: float = 0.08, num_neg_eval: int = 100,
                 decoder: str = "dot", embedding_channels: int = 128, split_seed: int = 42,
                 edge_types: Sequence[str] | None = None, eval_chunk: int = 4096):
        super().__init__()
        val_ratio = number("task.val_ratio", val_ratio, 0.0, 1.0)
        test_ratio = number("task.test_ratio", test_ratio, 0.0, 1.0)
        if not (0 < val_ratio < 1 and 0 < test_ratio < 1 and val_ratio + test_ratio < 1):
            raise ConfigError(f"val_ratio and test_ratio must be in (0, 1) with a sum below 1; "
                              f"got {val_ratio} and {test_ratio}")
        self.val_ratio, self.test_ratio = val_ratio, test_ratio
        self.num_neg_eval = integer("task.num_neg_eval", num_neg_eval, 1)
        self.decoder = _check_decoder(decoder, "task.decoder")
        self.embedding_channels = integer("task.embedding_channels", embedding_channels, 1)
        self.split_seed = integer("task.split_seed", split_seed, 0)
        self.edge_types = edge_types_arg(edge_types)
        self.eval_chunk = integer("task.eval_chunk", eval_chunk, 1)

    def setup(self, data: HeteroData, device: torch.device, split: dict | None = None) -> None:
        # ``split`` is the data set's node split; link prediction makes its own edge split,
        # unless the data set ships one (``meta["lp_split"]``, e.g. MM-GRAPH's).
        self.device = device
        if data.meta.get("lp_split"):
            return self._setup_given(data, device)
        graph = homogeneous_view(data, self.edge_types)
        if getattr(graph, "x", None) is None:
            raise DataError("the graph has no model input 'x'; choose modalities with "
                            "features.modalities=[...]")
        n = graph.num_nodes
        src, dst = graph.edge_index
        keep = src < dst  # one copy of each undirected edge
        pairs = torch.stack([src[keep], dst[keep]])
        if pairs.size(1) < 10:
            raise DataError(f"link prediction needs at least 10 undirected edges; found {pairs.size(1)}")
        gen = torch.Generator().manual_seed(self.split_seed)
        pairs = pairs[:, torch.randperm(pairs.size(1), generator=gen)]
        n_test = max(1, int(round(self.test_ratio * pairs.size(1))))
        n_val = max(1, int(round(self.val_ratio * pairs.size(1))))
        parts = {"test": pairs[:, :n_test], "val": pairs[:, n_test:n_test + n_val],
                 "train": pairs[:, n_test + n_val:]}
        train = parts["train"]
        self.num_nodes = n
        self.x = graph.x.to(device)
        self.modality_mask = self.input_modality_mask(data, graph, device)  # bool [N, M] or None
        self.train_pairs = train.to(device)
        self.edge_index = torch.cat([train, train.flip(0)], dim=1).to(device)
        self.pos = {k: v.to(device) for k, v in parts.items()}
        # Training-split metrics on a fixed sample the size of the validation set keep
        # evaluation cheap while still showing over-fitting.
        sample = torch.randperm(train.size(1), generator=gen)[:max(n_val, 1)]
        self.pos["train"] = train[:, sample].to(device)
        self.neg = {k: torch.randint(0, n, (v.size(1), self.num_neg_eval), generator=gen).to(device)
                    for k, v in self.pos.items()}
        self.split_meta = {"name": "random_edges", "seed": self.split_seed,
                           "sizes": {k: int(v.size(1)) for k, v in parts.items()},
                           "fingerprint": tensor_digest(*(parts[k] for k in ("train", "val", "test")))}

    def _setup_given(self, data: HeteroData, device: torch.device) -> None:
        """Use the data set's own edge split: train edges for message passing and training,
        its validation/test positives ranked against its own negatives ``[P, K]``."""
        info = data.meta["lp_split"]
        et = tuple(info["edge_type"])
        graph = homogeneous_view(data, [et])
        if getattr(graph, "x", None) is None:
            raise DataError("the graph has no model input 'x'; choose modalities with "
                            "features.modalities=[...]")
        store = data[et]
        missing = [k for k in ("train_pos", "val_pos", "val_neg", "test_pos", "test_neg") if k not in store]
        if missing:
            raise DataError(f"the data set's edge split lacks {missing[0]} on {et}")
        gen = torch.Generator().manual_seed(self.split_seed)
        train = store.train_pos
        self.num_nodes = graph.num_nodes
        self.x = graph.x.to(device)
        self.modality_mask = self.input_modality_mask(data, graph, device)
        self.train_pairs = train.to(device)
        self.edge_index = graph.edge_index.to(device)  # the loader keeps only training edges
        n_val = store.val_pos.size(1)
        sample = torch.randperm(train.size(1), generator=gen)[:max(n_val, 1)]
        self.pos = {"train": train[:, sample].to(device), "val": store.val_pos.to(device),
                    "test": store.test_pos.to(device)}
        k = store.val_neg.size(1)
        self.neg = {"train": torch.randint(0, self.num_nodes, (sample.numel(), k), generator=gen).to(device),
                    "val": store.val_neg.to(device), "test": store.test_neg.to(device)}
        self.num_neg_eval = k
        self.split_meta = {"name": "given", **{kk: v for kk, v in info.items() if kk != "edge_type"},
                           "edge_type": list(et),
                           "sizes": {"train": int(train.size(1)), "val": n_val, "test": int(store.test_pos.size(1))}}

    def model_kwargs(self) -> dict[str, Any]:
        return {"in_channels": self.x.size(1), "out_channels": self.embedding_channels}

    def wrap(self, model: nn.Module) -> nn.Module:
        link = LinkModel(model, self.decoder, self.embedding_channels)
        self.graph = graph_input(model, self.edge_index, self.num_nodes)
        return link

    def train_epoch(self, model: LinkModel, optimizer: torch.optim.Optimizer) -> float:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        z = self._forward(model, self.x, self.graph, self.modality_mask)
        pos = self.train_pairs
        neg = torch.randint(0, self.num_nodes, pos.shape, device=self.device)
        logits = torch.cat([model.score(z[pos[0]], z[pos[1]]), model.score(z[neg[0]], z[neg[1]])])
        target = torch.cat([torch.ones(pos.size(1)), torch.zeros(neg.size(1))]).to(logits.device)
        loss = F.binary_cross_entropy_with_logits(logits, target)
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    @torch.no_grad()
    def evaluate(self, model: LinkModel) -> Metrics:
        model.eval()
        z = self._forward(model, self.x, self.graph, self.modality_mask)
        out = {}
        for split, pos in self.pos.items():
            neg = self.neg[split]
            pos_scores, neg_scores = [], []
            for start in range(0, pos.size(1), self.eval_chunk):
                u, v = pos[0, start:start + self.eval_chunk], pos[1, start:start + self.eval_chunk]
                w = neg[start:start + self.eval_chunk]
                pos_scores.append(model.score(z[u], z[v]))
                neg_scores.append(model.score(z[u].unsqueeze(1), z[w]))
            out[split] = self.evaluator.eval({"y_pred_pos": torch.cat(pos_scores),
                                              "y_pred_neg": torch.cat(neg_scores)})
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "decoder": self.decoder, "num_neg_eval": self.num_neg_eval,
                "embedding_channels": self.embedding_channels, "split": self.split_meta}

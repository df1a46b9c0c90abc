"""Graph-level prediction on cohorts of patient graphs: survival or a class per patient.

The data is a cohort graph (:mod:`mmgraph.data.cohort`): every patient a small heterogeneous graph
of its modalities, some missing. The endpoint is the data set's: ``survival`` (time and event;
Cox partial-likelihood loss with Efron's ties from torchsurv; metrics Harrell's C-index from
torchsurv, checked equal to scikit-survival's, and the ROC AUC of the binary endpoint "event by
the cohort's horizon" over the patients whose status at the horizon is known) or
``classification`` (cross-entropy; ROC AUC, one-vs-rest macro for more than two classes, macro F1
and accuracy).

**Cross-validation.** Cohorts are small, so every result is repeated stratified k-fold
cross-validation (``folds`` x ``repeats``; strata: the event or the class), one run of the runner
per fold: run ``seed_base + r * folds + f`` is fold ``f`` of repeat ``r`` (the top-level ``runs``
defaults to ``folds * repeats``; ``runs=5`` with 5 folds is one repeat). The folds depend only
on ``split_seed`` and the repeat, so every model and peer sees the same folds; the run's seed
only initialises the model. Inside the training folds a stratified share ``val_fraction`` is the
validation split that early stopping and model selection use; the held-out fold is the test split
and is never used for any choice. Features are standardised with the training split's means and
deviations (present rows only). The table's mean +- std is over folds.

**Missingness.** ``missing`` simulates missing modalities (:func:`mmgraph.data.missingness.
simulate_missing`: ``rate``, ``mechanism`` mcar / mnar_outcome / mnar_covariate, ``modalities``,
``strength``, ``covariate``, ``seed``) on the training split, the test split or both (``where``);
a data set's natural missingness (hepatocellular's immune panel) is always there.

**Models** (called on batched patient graphs, full batch):

- node models (``model=mlp``, with ``fusion=concat|late|attention|...``): the patient's modality
  vectors concatenated, with the modality mask (early and late fusion at graph level);
- heterogeneous models (``model=rgcn|hgt``, ``model=prompted``): ``x_dict`` / ``edge_index_dict``
  of the batched patient graphs, the logits of the ``patient`` readout nodes. Messages from missing
  modality nodes are removed for models that do not handle absence themselves; a model with
  ``wants_presence`` (the prompted model) gets every edge and ``present_dict``;
- peers (``model=coxph|rsf``, ``is_peer``): fitted on the whole training fold (training and
  validation splits) with mean imputation learnt there, then scored.

A model may add a training loss of its own: after each forward pass in training the task adds
``model.extra_loss`` when it is set (the prompted model's completion loss).
"""
from __future__ import annotations

import math
import warnings
from typing import Any, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import HeteroData

from mmgraph import metrics as M
from mmgraph.checks import choice, integer, number
from mmgraph.data.cohort import PATIENT, cohort_modalities, collate, patient_metadata
from mmgraph.data.missingness import MECHANISMS, outcome_score, simulate_missing
from mmgraph.distributed import unwrap
from mmgraph.errors import ConfigError, DataError
from mmgraph.evaluator import MetricSpec
from mmgraph.tasks.base import Metrics, Task

SPLITS = ("train", "val", "test")


def concordance_index(risk: Tensor, event: Tensor, time: Tensor) -> float:
    """Harrell's C-index of ``risk`` (higher = earlier event) by torchsurv; NaN without a
    comparable pair."""
    from torchsurv.metrics.cindex import ConcordanceIndex

    event, time = event.bool().view(-1), time.double().view(-1)
    if not bool(event.any()):
        return math.nan
    # torchsurv compares scores in float32; the C-index depends on their order only, so it gets the
    # dense ranks of the float64 scores (exact in float32), and ties stay exactly the scores' ties
    rank = torch.unique(risk.double().view(-1), return_inverse=True)[1]
    try:
        return float(ConcordanceIndex()(rank.float(), event, time))
    except ValueError:  # torchsurv: no comparable pair (no event before another patient's time)
        return math.nan


def horizon_auc(risk: Tensor, event: Tensor, time: Tensor, horizon: float | None) -> float:
    """ROC AUC of ``risk`` for "event by ``horizon``": positives had the event at or before it,
    negatives were followed beyond it, patients censored before it are left out. NaN when the
    horizon is unset or one class is empty."""
    if horizon is None:
        return math.nan
    t, e = time.double().view(-1), event.bool().view(-1)
    pos = e & (t <= horizon)
    neg = t > horizon
    return _auc(risk.double().view(-1)[pos | neg], pos[pos | neg])


def _auc(score: Tensor, label: Tensor) -> float:
    from sklearn.metrics import roc_auc_score

    if label.numel() == 0 or bool(label.all()) or not bool(label.any()):
        return math.nan
    return float(roc_auc_score(label.numpy(), score.numpy()))


def _survival(inp: Mapping, names: tuple[str, ...]) -> dict[str, float]:
    risk = torch.as_tensor(inp["risk"]).view(-1)
    time = torch.as_tensor(inp["time"]).view(-1)
    event = torch.as_tensor(inp["event"]).view(-1)
    if not (risk.numel() == time.numel() == event.numel()) or risk.numel() == 0:
        raise ValueError(f"risk ({risk.numel()}), time ({time.numel()}) and event ({event.numel()}) "
                         f"must be non-empty and of equal length")
    if not bool(torch.isfinite(risk).all()):
        raise ValueError("risk contains NaN or infinite scores")
    compute = {"c_index": lambda: concordance_index(risk, event, time),
               "auc_h": lambda: horizon_auc(risk, event, time, inp.get("horizon"))}
    return {n: compute[n]() for n in names}


def _classification(inp: Mapping, names: tuple[str, ...]) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    y = torch.as_tensor(inp["y_true"]).long().view(-1)
    prob = torch.as_tensor(inp["y_prob"]).double()
    if prob.dim() != 2 or prob.size(0) != y.numel() or y.numel() == 0:
        raise ValueError(f"y_prob must be [N, C] probabilities for the {y.numel()} labels")
    if not bool(torch.isfinite(prob).all()):
        raise ValueError("y_prob contains NaN or infinite values")

    def auc() -> float:
        if prob.size(1) == 2:
            return _auc(prob[:, 1], y == 1)
        if len(set(y.tolist())) < prob.size(1):
            return math.nan  # one-vs-rest needs every class in the split
        return float(roc_auc_score(y.numpy(), prob.numpy(), multi_class="ovr", average="macro"))

    compute = {"auc": auc, "macro_f1": lambda: M.macro_f1(y, prob.argmax(1), num_classes=prob.size(1)),
               "accuracy": lambda: M.accuracy(y, prob.argmax(1))}
    return {n: compute[n]() for n in names}


SURVIVAL_SPEC = MetricSpec(
    task="graph_prediction", metrics=("c_index", "auc_h"), primary="c_index",
    expected_input="{'risk': [N] scores (higher = earlier event), 'time': [N] > 0, 'event': [N] 0/1, "
                   "'horizon': the fixed horizon (or None)}",
    compute=_survival)
CLASSIFICATION_SPEC = MetricSpec(
    task="graph_prediction", metrics=("auc", "macro_f1", "accuracy"), primary="auc",
    expected_input="{'y_true': [N] class indices, 'y_prob': [N, C] class probabilities}",
    compute=_classification)


class GraphPrediction(Task):
    """One label per patient graph, by repeated stratified k-fold cross-validation (module doc).

    Args:
        endpoint: ``survival`` or ``classification``; must be the data set's.
        folds, repeats: the cross-validation; ``cv_runs`` (``folds * repeats``, filled in by the
            config) is checked against them.
        seed_base: the runner's first seed (``${seed}``); run ``seed`` is CV run ``seed - seed_base``.
        split_seed: seeds the folds and the inner validation splits.
        val_fraction: share of each training fold held out for validation (stratified).
        missing: simulated missingness, ``None`` or a dict with ``rate`` (0 = none), ``mechanism``,
            ``modalities`` (default: every modality but the cohort's first table), ``where`` (train | test | both),
            ``strength``, ``covariate`` (``<modality>.<column>``), ``seed``.
        standardize: z-score features with the training split's statistics.
    """

    kind = "graph_prediction"
    supports_hetero = True

    def __init__(self, endpoint: str = "survival", folds: int = 5, repeats: int = 5,
                 cv_runs: int | None = None, seed_base: int = 42, split_seed: int = 0,
                 val_fraction: float = 0.2, missing: Mapping[str, Any] | None = None,
                 standardize: bool = True):
        self.endpoint = choice("task.endpoint", endpoint, ("survival", "classification"))
        self.spec = SURVIVAL_SPEC if self.endpoint == "survival" else CLASSIFICATION_SPEC
        super().__init__()
        self.folds = integer("task.folds", folds, 2)
        self.repeats = integer("task.repeats", repeats, 1)
        if cv_runs is not None and integer("task.cv_runs", cv_runs, 1) != self.folds * self.repeats:
            raise ConfigError(f"task.cv_runs ({cv_runs}) must be folds x repeats "
                              f"({self.folds} x {self.repeats})")
        self.seed_base = integer("task.seed_base", seed_base)
        self.split_seed = integer("task.split_seed", split_seed)
        self.val_fraction = number("task.val_fraction", val_fraction, 0.0, 0.9)
        if self.val_fraction <= 0:
            raise ConfigError("task.val_fraction must be > 0: early stopping needs a validation split")
        self.missing = self._missing_options(missing)
        self.standardize = bool(standardize)
        self._run: dict[str, Any] | None = None
        self._peer_fit: tuple | None = None

    @staticmethod
    def _missing_options(missing: Mapping[str, Any] | None) -> dict[str, Any]:
        opts = {"rate": 0.0, "mechanism": "mcar", "modalities": None, "where": "both", "strength": 2.0,
                "covariate": None, "seed": 0}
        if missing is None:
            return opts
        if not isinstance(missing, Mapping):
            raise ConfigError(f"task.missing must be a group of keys (rate, mechanism, ...); got {missing!r}")
        unknown = sorted(set(missing) - set(opts))
        if unknown:
            raise ConfigError(f"task.missing has no key {unknown[0]!r}; valid: {', '.join(opts)}")
        opts.update({k: v for k, v in missing.items()})
        opts["rate"] = number("task.missing.rate", opts["rate"], 0.0, 0.99)
        opts["mechanism"] = choice("task.missing.mechanism", opts["mechanism"], MECHANISMS)
        opts["where"] = choice("task.missing.where", opts["where"], ("train", "test", "both"))
        opts["strength"] = number("task.missing.strength", opts["strength"])
        opts["seed"] = integer("task.missing.seed", opts["seed"])
        if opts["mechanism"] == "mnar_covariate" and opts["rate"] > 0 and not opts["covariate"]:
            raise ConfigError("task.missing.mechanism=mnar_covariate needs task.missing.covariate, "
                              "e.g. clinical.age")
        if opts["modalities"] is not None:
            opts["modalities"] = [str(m) for m in opts["modalities"]]
        return opts

    # ------------------------------------------------------------------ setup
    def setup(self, data: HeteroData, device: torch.device, split: dict | None = None) -> None:
        meta = getattr(data, "meta", {})
        if meta.get("task") != "graph_prediction":
            raise ConfigError(f"task graph_prediction needs a cohort of patient graphs (e.g. "
                              f"dataset=breast_cancer); {meta.get('name', 'this data set')} is not one")
        if split is not None:
            raise ConfigError("task graph_prediction splits by cross-validation (task.folds, "
                              "task.repeats); leave split unset")
        if meta["endpoint"] != self.endpoint:
            raise ConfigError(f"{meta['name']} is a {meta['endpoint']} cohort; set "
                              f"task.endpoint={meta['endpoint']}")
        self.device = device
        self.data = data
        self.modalities = cohort_modalities(data)
        store = data[PATIENT]
        self.n = int(store.num_nodes)
        self.x = {m: store[f"x_{m}"].float() for m in self.modalities}
        self.present = {m: store[f"{m}_mask"].bool() for m in self.modalities}
        self.horizon = meta.get("horizon")
        if self.endpoint == "survival":
            self.time, self.event = store.time.float(), store.event.bool()
            strata = self.event.long().numpy()
            self.num_classes = 1
        else:
            self.y = store.y.long()
            strata = self.y.numpy()
            self.num_classes = len(meta["class_names"])
        counts = np.bincount(strata)
        # the training fold must keep at least 2 of each stratum for its stratified validation split
        small = [i for i, c in enumerate(counts) if 0 < c <= self.folds]
        if small:
            what = "events" if self.endpoint == "survival" and small[0] == 1 else \
                ("censored patients" if self.endpoint == "survival" else
                 f"patients of class {meta['class_names'][small[0]]!r}")
            raise DataError(f"{meta['name']}: only {counts[small[0]]} {what}; cross-validation with "
                            f"task.folds={self.folds} needs more than {self.folds}; lower the number of folds")
        self.strata = strata
        self.simulated, self.missing_stats = self._simulate(meta)

    def _simulate(self, meta: dict) -> tuple[dict[str, Tensor], dict[str, Any]]:
        opts = self.missing
        if opts["rate"] == 0:
            return self.present, {}
        first = meta["modalities"][0]  # the cohort's first table (clinical variables) stays
        mods = opts["modalities"] if opts["modalities"] is not None else [m for m in self.modalities if m != first]
        if not mods:
            raise ConfigError("task.missing: with one modality there is nothing to remove; "
                              "set task.missing.modalities")
        score = None
        if opts["mechanism"] == "mnar_outcome":
            score = outcome_score(y=self.y) if self.endpoint == "classification" else \
                outcome_score(time=self.time, event=self.event)
        elif opts["mechanism"] == "mnar_covariate":
            score = self._covariate(str(opts["covariate"]), meta)
        masks, stats = simulate_missing(self.present, opts["rate"], opts["mechanism"], mods,
                                        seed=opts["seed"], strength=opts["strength"], score=score)
        return masks, stats

    def _covariate(self, spec: str, meta: dict) -> np.ndarray:
        mod, _, col = spec.partition(".")
        cols = meta["columns"].get(mod)
        if cols is None or col not in cols:
            raise ConfigError(f"task.missing.covariate {spec!r}: use <modality>.<column>, e.g. "
                              f"clinical.{meta['columns'].get('clinical', ['age'])[0]}")
        if mod not in self.x:
            raise ConfigError(f"task.missing.covariate: modality {mod!r} is not in the input")
        values = self.x[mod][:, cols.index(col)].double().numpy().copy()
        have = self.present[mod].numpy()
        values[~have] = values[have].mean() if have.any() else 0.0
        return values

    # ------------------------------------------------------------------ runs (folds)
    def fold_indices(self, repeat: int, fold: int) -> dict[str, Tensor]:
        """Patient indices of the ``train`` / ``val`` / ``test`` splits of one CV run."""
        from sklearn.model_selection import StratifiedKFold, train_test_split

        skf = StratifiedKFold(n_splits=self.folds, shuffle=True,
                              random_state=self.split_seed * 1000 + repeat)
        rest, test = list(skf.split(np.zeros(self.n), self.strata))[fold]
        try:
            train, val = train_test_split(rest, test_size=self.val_fraction, stratify=self.strata[rest],
                                          random_state=self.split_seed * 1000 + repeat * 100 + fold)
        except ValueError as exc:
            raise DataError(f"cannot hold out a stratified validation split of {self.val_fraction} "
                            f"from {len(rest)} training patients ({exc}); raise task.val_fraction") from None
        return {"train": torch.as_tensor(np.sort(train)), "val": torch.as_tensor(np.sort(val)),
                "test": torch.as_tensor(np.sort(test))}

    def start_run(self, seed: int) -> None:
        super().start_run(seed)
        k = self.seed - self.seed_base
        if not 0 <= k < self.folds * self.repeats:
            raise ConfigError(f"seed {self.seed} is not one of the {self.folds * self.repeats} "
                              f"cross-validation runs (seeds {self.seed_base}.."
                              f"{self.seed_base + self.folds * self.repeats - 1}); use runs<= "
                              f"{self.folds * self.repeats} from seed={self.seed_base}")
        repeat, fold = divmod(k, self.folds)
        index = self.fold_indices(repeat, fold)
        where = self.missing["where"]
        present = {}
        for m in self.modalities:  # simulated masks where missing.where says, the cohort's elsewhere
            mask = self.present[m].clone()
            for split in SPLITS:
                if where == "both" or (where == "train") == (split != "test"):
                    mask[index[split]] = self.simulated[m][index[split]]
            present[m] = mask
        x = {}
        for m in self.modalities:
            rows = index["train"][present[m][index["train"]]]
            if self.standardize and rows.numel() > 1:
                mu, sd = self.x[m][rows].mean(0), self.x[m][rows].std(0)
                sd = torch.where(sd > 1e-6, sd, torch.ones_like(sd))
                x[m] = (self.x[m] - mu) / sd * present[m].unsqueeze(1)
            else:
                x[m] = self.x[m] * present[m].unsqueeze(1)
        batches = {s: collate(self.data, index[s], self.modalities, x=x, present=present).to(self.device)
                   for s in SPLITS}
        self._run = {"repeat": repeat, "fold": fold, "index": index, "present": present, "x": x,
                     "batches": batches}

    def _current(self) -> dict[str, Any]:
        if self._run is None:
            raise RuntimeError("GraphPrediction: start_run(seed) must come before training")
        return self._run

    # ------------------------------------------------------------------ models
    def model_kwargs(self, hetero: bool = False) -> dict[str, Any]:
        dims = {m: int(self.x[m].size(1)) for m in self.modalities}
        if not hetero:
            return {"in_channels": sum(dims.values()), "out_channels": self.num_classes}
        node_types, edge_types = patient_metadata(self.data, self.modalities)
        return {"metadata": (node_types, [list(et) for et in edge_types]),
                "in_channels": {**dims, PATIENT: len(self.modalities)},
                "num_nodes": {nt: 1 for nt in node_types},
                "out_channels": self.num_classes, "target": PATIENT}

    def _predict(self, model: nn.Module, split: str) -> Tensor:
        batch = self._current()["batches"][split]
        inner = unwrap(model)
        if getattr(inner, "is_hetero", False):
            x_dict = {nt: batch[nt].x for nt in batch.node_types}
            if getattr(inner, "wants_presence", False):
                present = {m: batch[m].present for m in self.modalities}
                return model(x_dict, {et: batch[et].edge_index for et in batch.edge_types},
                             present_dict=present)
            edges = {}
            for et in batch.edge_types:  # no messages from missing modality nodes
                ei = batch[et].edge_index
                keep = batch[et[0]].present[ei[0]] if et[0] != PATIENT else torch.ones_like(ei[0], dtype=torch.bool)
                edges[et] = ei[:, keep]
            return model(x_dict, edges)
        x = torch.cat([batch[m].x for m in self.modalities], dim=1)
        mask = torch.stack([batch[m].present for m in self.modalities], dim=1)
        empty = torch.empty(2, 0, dtype=torch.long, device=x.device)
        return self._forward(model, x, empty, mask)

    def _loss(self, out: Tensor, split: str) -> Tensor:
        batch = self._current()["batches"][split]
        if self.endpoint == "survival":
            from torchsurv.loss.cox import neg_partial_log_likelihood

            if not bool(batch.event.any()):
                raise DataError("the training split has no event: the Cox loss is undefined")
            with warnings.catch_warnings():  # torchsurv announces Efron's method for tied times
                warnings.filterwarnings("ignore", message="Ties in `time` detected")
                return neg_partial_log_likelihood(out.view(-1, 1), batch.event, batch.time, ties_method="efron")
        return F.cross_entropy(out, batch.y)

    def train_epoch(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> float:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        out = self._predict(model, "train")
        loss = self._loss(out, "train")
        extra = getattr(unwrap(model), "extra_loss", None)
        if extra is not None:
            loss = loss + extra
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    def _inputs(self, scores: Tensor, split: str, probabilities: bool = False) -> dict[str, Any]:
        batch = self._current()["batches"][split]
        if self.endpoint == "survival":
            return {"risk": scores.view(-1).detach().cpu(), "time": batch.time.cpu(),
                    "event": batch.event.cpu(), "horizon": self.horizon}
        prob = scores if probabilities else torch.softmax(scores.float(), dim=1)
        return {"y_true": batch.y.cpu(), "y_prob": prob.detach().cpu()}

    @torch.no_grad()
    def evaluate(self, model: nn.Module) -> Metrics:
        inner = unwrap(model)
        if getattr(inner, "is_peer", False):
            return self._evaluate_peer(inner)
        model.eval()
        return {s: self.evaluator.eval(self._inputs(self._predict(model, s), s)) for s in SPLITS}

    # ------------------------------------------------------------------ peers
    def peer_table(self, split: str) -> np.ndarray:
        """The split's features as one ``[N, sum d]`` table, ``NaN`` where a modality is missing
        (the peers impute them)."""
        run = self._current()
        idx = run["index"][split]
        blocks = []
        for m in self.modalities:
            block = run["x"][m][idx].double().numpy().copy()
            block[~run["present"][m][idx].numpy()] = np.nan
            blocks.append(block)
        return np.concatenate(blocks, axis=1)

    def _evaluate_peer(self, peer) -> Metrics:
        run = self._current()
        key = (id(peer), self.seed)
        if self._peer_fit != key or peer.model is None:  # fitted once per run, on the whole training fold
            fit_idx = torch.cat([run["index"]["train"], run["index"]["val"]])
            X = np.concatenate([self.peer_table("train"), self.peer_table("val")])
            if self.endpoint == "survival":
                peer.fit_survival(X, self.time[fit_idx].numpy(), self.event[fit_idx].numpy(), seed=self.seed)
            else:
                peer.fit_classes(X, self.y[fit_idx].numpy(), self.num_classes, seed=self.seed)
            self._peer_fit = key
        out = {}
        for s in SPLITS:
            scores = torch.as_tensor(peer.predict(self.peer_table(s)), dtype=torch.float64)
            out[s] = self.evaluator.eval(self._inputs(scores, s, probabilities=True))
        return out

    # ------------------------------------------------------------------ records
    def describe(self) -> dict[str, Any]:
        meta = self.data.meta if hasattr(self, "data") else {}
        out = {"kind": self.kind, "endpoint": self.endpoint,
               "split": {"kind": "repeated_stratified_kfold", "folds": self.folds, "repeats": self.repeats,
                         "split_seed": self.split_seed, "val_fraction": self.val_fraction,
                         "seed_base": self.seed_base},
               "missing": {**self.missing, "stats": getattr(self, "missing_stats", {})}}
        if meta:
            out.update({"patients": self.n, "modalities": self.modalities, "horizon": self.horizon,
                        "time_unit": meta.get("time_unit"),
                        "present": {m: int(self.present[m].sum()) for m in self.modalities},
                        "present_after_simulation": {m: int(self.simulated[m].sum()) for m in self.modalities}})
            if self.endpoint == "survival":
                out["events"] = int(self.event.sum())
        return out

    def run_record(self, model: nn.Module) -> dict[str, Any]:
        run = self._current()
        sizes = {s: int(i.numel()) for s, i in run["index"].items()}
        rec = {"fold": {"repeat": run["repeat"], "fold": run["fold"], "sizes": sizes,
                        "present": {s: {m: int(run["present"][m][i].sum()) for m in self.modalities}
                                    for s, i in run["index"].items()}}}
        if self.endpoint == "survival":
            rec["fold"]["events"] = {s: int(self.event[i].sum()) for s, i in run["index"].items()}
        return rec

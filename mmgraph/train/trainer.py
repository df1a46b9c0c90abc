"""The one training and evaluation loop, shared by every model of every task kind.

The loop is task-agnostic: a :class:`~mmgraph.tasks.Task` supplies ``train_epoch`` and
``evaluate``; the trainer owns the optimiser, warm-up and plateau schedule, early stopping
and model selection. Selection is on the validation split only: for every metric, the epoch
with the best validation value of *that* metric is selected (MAGB's protocol; "best" in the
direction the task's metric spec gives) and the test value at that epoch is reported. Test
values are computed alongside but never compared.

A model without trainable parameters (a zero-shot predictor) is not trained: it is evaluated
once, as epoch 0, and that evaluation is its result. Splits a task does not evaluate are NaN.
"""
from __future__ import annotations

import math
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from mmgraph.errors import ConfigError
from mmgraph.progress import Progress
from mmgraph.tasks.base import Task


@dataclass
class TrainerConfig:
    """Optimisation and selection settings (MAGB's defaults)."""

    max_epochs: int = 1000          # upper bound on epochs
    patience: int | None = 100      # stop after this many epochs without a better val primary metric
    min_epochs: int = 0             # never stop before this epoch
    optimizer: str = "adamw"        # "adam" or "adamw"
    lr: float = 0.005
    weight_decay: float = 0.0
    warmup_epochs: int = 0          # linear LR warm-up from lr/warmup_epochs to lr
    lr_factor: float = 0.5          # ReduceLROnPlateau factor on the val primary metric
    lr_patience: int | None = 100   # plateau patience; None disables the schedule
    min_lr: float = 0.0
    eval_every: int = 1             # evaluate every this many epochs
    progress: bool = True           # a bar over epochs on a terminal, a line now and then in a log


@dataclass
class FitResult:
    """What one run produced: per-metric selected epochs and the training history."""

    selected: dict[str, dict[str, Any]]      # metric -> {"epoch", "val", "test", "train"}
    epochs: int                               # epochs actually run
    seconds: float                            # wall time of the loop
    stopped_early: bool
    history: list[dict[str, float]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and PyTorch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_optimizer(params, cfg: TrainerConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise ConfigError(f"unknown optimizer {cfg.optimizer!r}; choose one of: adam, adamw")


def fit(task: Task, model: nn.Module, cfg: TrainerConfig, desc: str = "train",
        on_eval: Callable[[int, dict[str, float], dict[str, dict[str, Any]]], None] | None = None) -> FitResult:
    """Train ``model`` on ``task`` and select, per metric, the epoch with the best validation value.

    ``on_eval(epoch, row, selected)`` is called after every evaluation with the history row and
    the selection so far (a sweep reports the validation value to its pruner there; an exception
    it raises, such as ``optuna.TrialPruned``, ends the run and propagates).
    """
    spec = task.evaluator.spec
    selected: dict[str, dict[str, Any]] = {m: {"epoch": -1, "val": spec.worst(m), "test": math.nan,
                                               "train": math.nan} for m in task.metrics}
    history: list[dict[str, float]] = []
    start = time.perf_counter()
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:  # nothing to train: one evaluation is the result
        metrics = task.evaluate(model)
        row = {"epoch": 0, **{f"{split}/{m}": v for split, values in metrics.items() for m, v in values.items()}}
        history.append(row)
        for m in selected:
            selected[m] = {"epoch": 0, **{split: float(metrics.get(split, {}).get(m, math.nan))
                                          for split in ("val", "test", "train")}}
        if on_eval is not None:
            on_eval(0, row, selected)
        return FitResult(selected=selected, epochs=0, seconds=time.perf_counter() - start,
                         stopped_early=False, history=history)
    if cfg.max_epochs < 1:
        raise ConfigError(f"trainer.max_epochs must be >= 1, got {cfg.max_epochs}")
    optimizer = make_optimizer(params, cfg)
    mode = "max" if spec.higher_is_better(task.primary) else "min"
    plateau = (torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, mode=mode, factor=cfg.lr_factor, patience=cfg.lr_patience, min_lr=cfg.min_lr)
        if cfg.lr_patience is not None else None)
    bar = Progress(cfg.max_epochs, desc, unit="epoch", enabled=bool(cfg.progress), leave=False)
    try:
        epoch, stopped = _loop(task, model, cfg, optimizer, plateau, selected, history, bar, on_eval)
    finally:
        bar.close()
    _fill_never_selected(selected, history, task.primary)
    return FitResult(selected=selected, epochs=epoch, seconds=time.perf_counter() - start,
                     stopped_early=stopped, history=history)


def _fill_never_selected(selected: dict, history: list[dict], primary: str) -> None:
    """A metric that was NaN on validation at every evaluation (e.g. an AUC on a validation split
    with one class) is reported at the epoch the primary metric selected (its validation value
    NaN), never at an epoch chosen by its test value."""
    epoch = selected[primary]["epoch"]
    row = next((r for r in history if r["epoch"] == epoch), None)
    for m, best in selected.items():
        if best["epoch"] == -1:
            selected[m] = {"epoch": epoch if row is not None else -1, "val": math.nan,
                           **{split: float(row.get(f"{split}/{m}", math.nan)) if row is not None else math.nan
                              for split in ("test", "train")}}


def _loop(task, model, cfg, optimizer, plateau, selected, history, bar, on_eval) -> tuple[int, bool]:
    """The epochs of :func:`fit`; returns the last epoch run and whether early stopping ended it."""
    primary, spec = task.primary, task.evaluator.spec
    since_best, epoch = 0, 0
    for epoch in range(1, cfg.max_epochs + 1):
        bar.update()
        if cfg.warmup_epochs and epoch <= cfg.warmup_epochs:
            for group in optimizer.param_groups:
                group["lr"] = cfg.lr * epoch / cfg.warmup_epochs
        loss = task.train_epoch(model, optimizer)
        if not math.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss} at epoch {epoch}; "
                                     f"lower trainer.lr or check the features for NaN")
        if epoch % cfg.eval_every and epoch != cfg.max_epochs:
            continue
        metrics = task.evaluate(model)
        row = {"epoch": epoch, "loss": loss, "lr": optimizer.param_groups[0]["lr"]}
        row.update({f"{split}/{m}": v for split, values in metrics.items() for m, v in values.items()})
        history.append(row)
        for m, best in selected.items():
            if spec.better(m, metrics["val"][m], best["val"]):
                selected[m] = {"epoch": epoch, "val": metrics["val"][m],
                               "test": metrics["test"][m], "train": metrics["train"][m]}
        improved = selected[primary]["epoch"] == epoch
        since_best = 0 if improved else since_best + cfg.eval_every
        if plateau is not None and epoch > cfg.warmup_epochs:
            plateau.step(metrics["val"][primary])
        bar.set_postfix(loss=f"{loss:.4f}", val=f"{metrics['val'][primary]:.4f}",
                        best=f"{selected[primary]['val']:.4f}")
        if on_eval is not None:
            on_eval(epoch, row, selected)
        if cfg.patience is not None and since_best >= cfg.patience and epoch >= cfg.min_epochs:
            return epoch, True
    return epoch, False

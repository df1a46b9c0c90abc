"""How one trial is judged: the sampler that suggests values of the search space, the pruner that
stops poor trials, and the :class:`Objective` that trains a suggested configuration."""
from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig

from mmgraph.bench.sweep.space import apply_params
from mmgraph.errors import ConfigError

if TYPE_CHECKING:
    from mmgraph.bench.sweep.settings import Settings

log = logging.getLogger("mmgraph.sweep")


# ------------------------------------------------------------------------------- sampler and pruner
def load_optuna():
    """The ``optuna`` module, its own log quiet below warnings."""
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - optuna is a dependency
        raise ConfigError("sweeps need optuna (pip install optuna); it is a dependency of mmgraph") from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def sampler(settings: Settings, offset: int):
    """``sweep.sampler``; worker ``offset`` draws from its own random stream."""
    optuna = load_optuna()
    spec = dict(settings.sampler)
    kind = spec.pop("kind", "tpe")
    seed = spec.pop("seed", 0)
    # Workers must not draw the same "random" start-up configurations: each gets its own stream.
    seed = None if seed is None else int(seed) * 1000 + offset
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, **spec)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ConfigError(f"sweep.sampler.kind must be tpe or random, got {kind!r}")


def pruner(settings: Settings, max_epochs: int):
    """``sweep.pruner``, fed the best validation value after each evaluation (epochs as steps)."""
    optuna = load_optuna()
    spec = dict(settings.pruner)
    kind = spec.pop("kind", "median")
    try:
        if kind == "median":
            return optuna.pruners.MedianPruner(**spec)
        if kind == "percentile":
            return optuna.pruners.PercentilePruner(**spec)
        if kind == "hyperband":
            return optuna.pruners.HyperbandPruner(**{"max_resource": max_epochs, **spec})
        if kind == "none":
            return optuna.pruners.NopPruner()
    except TypeError as exc:
        raise ConfigError(f"sweep.pruner ({kind}): {exc}") from exc
    raise ConfigError(f"sweep.pruner.kind must be median, percentile, hyperband or none, got {kind!r}")


# ------------------------------------------------------------------------------- one trial
class Objective:
    """Train the suggested configuration for the trial seeds; the mean validation primary metric."""

    def __init__(self, cfg: DictConfig, settings: Settings, prepared: tuple):
        self.cfg, self.settings, self.prepared = cfg, settings, prepared

    def __call__(self, trial) -> float:
        from mmgraph.bench.runner import build_task, make_model, trainer_config
        from mmgraph.train import fit, seed_everything

        optuna = load_optuna()
        params = {p.key: p.suggest(trial) for p in self.settings.params}
        cfg = apply_params(self.cfg, params)
        device, data, task = self.prepared
        if any(p.key.startswith("task.") for p in self.settings.params):
            task = build_task(cfg, data, device)
        model = make_model(cfg, data, task, device)
        tcfg = trainer_config(cfg.trainer)
        tcfg.progress = False
        primary = task.primary
        values, epochs, seconds, val = [], [], 0.0, {m: [] for m in task.metrics}
        for i, seed in enumerate(self.settings.trial_seeds):
            seed_everything(seed)
            model.reset_parameters()

            def report(epoch: int, row: dict, selected: dict, first: bool = i == 0) -> None:
                if not first:
                    return
                trial.report(float(selected[primary]["val"]), epoch)
                if trial.should_prune():
                    raise optuna.TrialPruned(f"val/{primary} {selected[primary]['val']:.4f} at epoch {epoch}")

            result = fit(task, model, tcfg, on_eval=report)
            values.append(float(result.selected[primary]["val"]))
            epochs.append(result.epochs)
            seconds += result.seconds
            for m in task.metrics:
                val[m].append(float(result.selected[m]["val"]))
        # validation only: a trial never keeps a test value
        trial.set_user_attr("val", {m: sum(v) / len(v) for m, v in val.items()})
        trial.set_user_attr("primary", primary)
        trial.set_user_attr("epochs", epochs)
        trial.set_user_attr("seconds", round(seconds, 3))
        return sum(values) / len(values)


def log_trial(t) -> None:
    """One log line about a finished trial: its value (or where it was pruned) and parameters."""
    params = ", ".join(f"{k.rsplit('.', 1)[-1]}={fmt(v)}" for k, v in t.params.items())
    if t.state.name == "COMPLETE":
        epochs = "/".join(map(str, t.user_attrs.get("epochs", [])))
        log.info("trial %d: val %.4f in %s s, %s epochs (%s)", t.number, t.value, t.user_attrs.get("seconds"),
                 epochs, params)
    elif t.state.name == "PRUNED":
        step = t.last_step
        log.info("trial %d: pruned at epoch %s, val %.4f (%s)", t.number, step,
                 t.intermediate_values.get(step, math.nan), params)
    else:
        log.warning("trial %d: %s (%s)", t.number, t.state.name.lower(), params)


def fmt(v: Any) -> str:
    """A parameter value for messages: floats with 4 significant digits."""
    return f"{v:.4g}" if isinstance(v, float) and not math.isnan(v) else str(v)

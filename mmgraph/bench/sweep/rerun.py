"""The whole sweep command (:func:`run_sweep`): work on the study, then re-run the best trial's
configuration over the final seeds, which alone gives test numbers; ``study.json`` and the table."""
from __future__ import annotations

import logging
import os
import sys
from typing import Any

import torch
from omegaconf import DictConfig

from mmgraph.bench.records import markdown_table, write_json
from mmgraph.bench.sweep.objective import fmt
from mmgraph.bench.sweep.space import apply_params
from mmgraph.bench.sweep.settings import Settings, settings_of
from mmgraph.bench.sweep.storage import best_trial, counts, fail_dead_trials, finished, open_storage, open_study
from mmgraph.bench.sweep.workers import FileLock, run_workers, work
from mmgraph.errors import MMGraphError

log = logging.getLogger("mmgraph.sweep")


def describe(study, settings: Settings, cfg: DictConfig) -> dict[str, Any]:
    """The content of ``study.json`` (the storage with its password masked)."""
    best = best_trial(study)
    return {"study_name": settings.study_name, "storage": settings.shown_storage, "direction": settings.direction,
            "metric": None if best is None else f"val/{_primary_of(study)}",
            "dataset": cfg.dataset.name, "model": cfg.model.name, "sweep": settings.name,
            "n_trials": settings.trials, "trial_seeds": settings.trial_seeds, "final_seeds": settings.final_seeds,
            "params": [p.__dict__ for p in settings.params],
            "best": None if best is None else {"number": best.number, "value": best.value, "params": best.params},
            "states": counts(study), "final": "final"}


def _primary_of(study) -> str:
    """The task's primary metric, as the trials recorded it."""
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("val"):
            return t.user_attrs.get("primary") or next(iter(t.user_attrs["val"]))
    return "metric"


def final_config(cfg: DictConfig, settings: Settings, best) -> DictConfig:
    """The configuration of the re-run: the best trial's parameters, the final seeds, and the sweep
    recorded by what identifies it (not by how many workers ran it, nor where it is stored)."""
    out = apply_params(cfg, best.params)
    out.seeds = list(settings.final_seeds)
    out.sweep = _sweep_info(settings, best)
    return out


def _sweep_info(settings: Settings, best) -> dict[str, Any]:
    return {"name": settings.name, "study_name": settings.study_name, "best_trial": best.number,
            "best_value": best.value, "best_params": dict(best.params), "n_trials": settings.trials}


def run_sweep(cfg: DictConfig) -> dict[str, Any] | None:
    """The command line's sweep: work on the study, then re-run the best configuration.

    Returns the summary row of the re-run, or ``None`` when there is none (``final_seeds=0``, or
    another process is doing it).
    """
    from mmgraph.bench.runner import build_task, prepare, run

    settings = settings_of(cfg)
    settings.dir.mkdir(parents=True, exist_ok=True)
    storage = open_storage(settings)
    study = open_study(cfg, settings, storage)
    fail_dead_trials(study, storage)
    c = counts(study)
    log.info("study %s in %s: %d of %d trials finished (%s)", settings.study_name, settings.shown_storage,
             finished(c), settings.trials, ", ".join(f"{k.lower()} {v}" for k, v in sorted(c.items())) or "new")
    print(f"sweep folder: {settings.dir}", file=sys.stderr, flush=True)
    prepared = None
    if finished(c) < settings.trials:
        if settings.workers == 1:
            torch.set_num_threads(settings.threads)
            prepared = prepare(cfg)
            work(cfg, settings, 0, prepared)
        else:
            run_workers(cfg, settings, study, storage)
    c = counts(study)
    write_json(settings.dir / "study.json", describe(study, settings, cfg))
    if finished(c) < settings.trials:
        raise MMGraphError(f"the study has {finished(c)} of {settings.trials} finished trials after its "
                           f"workers ended; run the same command again to resume it")
    best = best_trial(study)
    if best is None:
        raise MMGraphError(f"no trial of study {settings.study_name} completed (all pruned or failed)")
    print(f"best trial {best.number}: val {best.value:.4f} with "
          + ", ".join(f"{k}={fmt(v)}" for k, v in best.params.items()), file=sys.stderr, flush=True)
    if not settings.final_seeds:
        return None
    with FileLock(settings.dir / "final.lock") as mine:
        if not mine:
            print(f"the best configuration is being re-run by another process; its table will be in "
                  f"{settings.dir / 'final'} (python -m mmgraph.report {settings.dir})", file=sys.stderr)
            return None
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        fcfg = final_config(cfg, settings, best)
        if prepared is None:
            prepared = prepare(fcfg)
        elif any(p.key.startswith("task.") for p in settings.params):
            prepared = (prepared[0], prepared[1], build_task(fcfg, prepared[1], prepared[0]))
        info = {**_sweep_info(settings, best), "states": counts(study)}
        row = run(fcfg, settings.dir / "final", prepared=prepared, extra={"sweep": info}, resume=True)
    write_json(settings.dir / "study.json", describe(study, settings, cfg))
    return row


def sweep_table(row: dict[str, Any]) -> str:
    """The re-run's table row and the parameters the sweep chose."""
    info = row.get("sweep", {})
    params = ", ".join(f"`{k}={fmt(v)}`" for k, v in info.get("best_params", {}).items())
    return (markdown_table([row]) + f"\n\nBest of {info.get('n_trials')} trials (study "
            f"{info.get('study_name')}, trial {info.get('best_trial')}): {params}")

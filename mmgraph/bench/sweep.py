"""Hyperparameter sweeps: an Optuna study over a search space of ``configs/sweep/``, then a re-run
of the best configuration over many seeds, which alone produces test numbers.

``python -m mmgraph.bench sweep=gat model=gat dataset=openclipart sweep.workers=2``:

1. The study lives in ``sweep.storage`` (any SQLAlchemy URL; by default the SQLite file
   ``study.db`` in the sweep folder ``sweeps/<dataset>/<model>/<sweep>[-<modalities>][-<fusion>]``).
   Running the same command again, here or on another machine with the same storage, joins or
   resumes the study: completed trials are kept and never run twice.
2. ``sweep.workers`` processes (each loads the data once, with ``cores / workers`` threads) take
   trials until ``sweep.trials`` trials have finished (completed or pruned). A trial trains the
   configuration Optuna suggests for ``sweep.trial_seeds`` seeds and returns the mean
   *validation* value of the task's primary metric; the best-so-far validation value after each
   evaluation goes to the pruner, which may stop the trial early. Test values are never stored
   with a trial.
3. A trial whose process died is marked failed, not left running: at once when the process ran
   on this host (its pid is gone), otherwise when its heartbeat is older than
   ``sweep.grace_period`` seconds. Failed trials do not count towards ``sweep.trials``.
4. The best trial's configuration is re-run over ``sweep.final_seeds`` seeds into ``final/`` of
   the sweep folder (seeds already stored there by the same configuration are kept), and its
   summary, with the sweep recorded in it, is the row of the results table.

``study.json`` in the sweep folder describes the study for ``python -m mmgraph.report``.
"""
from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import signal
import socket
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from mmgraph.bench.records import markdown_table, write_json
from mmgraph.errors import ConfigError, MMGraphError

log = logging.getLogger("mmgraph.sweep")

HOST = socket.gethostname()
# Keys of the configuration that do not change what a trial computes (how many processes,
# where things are stored, how many trials); the study's identity ignores them.
_VOLATILE = ("trials", "workers", "threads", "storage", "dir", "study_name", "final_seeds", "heartbeat",
             "grace_period", "poll")
# Groups a trial may not change: the data are prepared once per worker.
_FIXED_GROUPS = ("dataset", "features", "sweep", "paths", "device", "seed", "seeds", "runs")


# ------------------------------------------------------------------------------- search space
@dataclass
class Param:
    """One dimension of a search space: a config key and the distribution of its values."""

    key: str
    kind: str                    # float | int | categorical
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] = field(default_factory=list)

    def suggest(self, trial) -> Any:
        if self.kind == "categorical":
            return trial.suggest_categorical(self.key, self.choices)
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=int(self.step or 1),
                                     log=self.log)
        return trial.suggest_float(self.key, float(self.low), float(self.high), step=self.step, log=self.log)


def parse_space(params: Any, cfg: DictConfig) -> list[Param]:
    """The ``params`` node of a sweep config (``key: {low, high[, log, step, type]}`` or
    ``key: {choices: [...]}``) as :class:`Param` s, checked against ``cfg``."""
    if not params:
        raise ConfigError("the sweep has no params to search; add some under params: in its config")
    out = []
    for key, spec in _flatten(OmegaConf.to_container(params, resolve=True)
                              if isinstance(params, DictConfig) else dict(params)).items():
        if key.split(".")[0] in _FIXED_GROUPS:
            raise ConfigError(f"sweep param {key!r}: {key.split('.')[0]} cannot be searched (the data "
                              f"are prepared once per worker); search model, trainer, task or fusion keys")
        parent, _, leaf = key.rpartition(".")
        node = OmegaConf.select(cfg, parent) if parent else cfg
        if not isinstance(node, DictConfig) or leaf not in node:
            valid = sorted(node.keys()) if isinstance(node, DictConfig) else []
            raise ConfigError(f"sweep param {key!r} is not a key of the configuration"
                              + (f"; keys of {parent}: {', '.join(map(str, valid))}" if valid else ""))
        spec = OmegaConf.to_container(spec, resolve=True) if isinstance(spec, DictConfig) else spec
        if not isinstance(spec, dict):
            raise ConfigError(f"sweep param {key!r}: give {{low, high}} or {{choices: [...]}}, got {spec!r}")
        unknown = set(spec) - {"low", "high", "log", "step", "type", "choices"}
        if unknown:
            raise ConfigError(f"sweep param {key!r}: unknown field(s) {', '.join(sorted(unknown))}; "
                              f"use low, high, log, step, type or choices")
        if "choices" in spec:
            if not spec["choices"]:
                raise ConfigError(f"sweep param {key!r}: choices is empty")
            out.append(Param(key, "categorical", choices=list(spec["choices"])))
            continue
        if "low" not in spec or "high" not in spec:
            raise ConfigError(f"sweep param {key!r}: give low and high (or choices)")
        low, high = spec["low"], spec["high"]
        kind = spec.get("type") or ("int" if all(isinstance(v, int) and not isinstance(v, bool)
                                                  for v in (low, high, spec.get("step", 1))) else "float")
        if kind not in ("int", "float"):
            raise ConfigError(f"sweep param {key!r}: type must be int or float, got {kind!r}")
        if not float(low) < float(high) or (spec.get("log") and float(low) <= 0):
            raise ConfigError(f"sweep param {key!r}: need 0 < low < high for log ranges and low < high "
                              f"otherwise; got low={low}, high={high}")
        out.append(Param(key, kind, low=low, high=high, log=bool(spec.get("log", False)), step=spec.get("step")))
    return out


_SPEC_FIELDS = {"low", "high", "choices"}


def _flatten(params: dict, prefix: str = "") -> dict[str, Any]:
    """``{"trainer.lr": spec}`` and ``{"trainer": {"lr": spec}}`` (what a command-line override
    ``+sweep.params.trainer.lr=...`` makes) both as ``{"trainer.lr": spec}``; nested entries win."""
    flat: dict[str, Any] = {}
    nested = {k: v for k, v in params.items() if isinstance(v, dict) and not (_SPEC_FIELDS & set(v))}
    for key, value in params.items():
        if key not in nested:
            flat[f"{prefix}{key}"] = value
    for key, value in nested.items():
        flat.update(_flatten(value, f"{prefix}{key}."))
    return flat


def apply_params(cfg: DictConfig, params: dict[str, Any]) -> DictConfig:
    """A copy of ``cfg`` with ``params`` (dotted keys) set."""
    out = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    for key, value in params.items():
        OmegaConf.update(out, key, value, merge=False)
    return out


# ------------------------------------------------------------------------------- settings
@dataclass
class Settings:
    """The ``sweep`` group of the configuration, checked."""

    name: str
    params: list[Param]
    trials: int
    workers: int
    dir: Path
    storage: str
    study_name: str
    direction: str
    trial_seeds: list[int]
    final_seeds: list[int]
    sampler: dict[str, Any]
    pruner: dict[str, Any]
    heartbeat: int
    grace_period: int
    threads: int
    poll: float

    @property
    def default_storage(self) -> bool:
        return self.storage == f"sqlite:///{self.dir.resolve() / 'study.db'}"


def _variant(cfg: DictConfig) -> str:
    from mmgraph.bench.runner import fusion_label

    mods = cfg.get("features", {}).get("modalities")
    parts = ["+".join(mods)] if mods else []
    if fusion_label(cfg) != "none":
        parts.append(fusion_label(cfg))
    return "".join(f"-{p}" for p in parts)


def settings_of(cfg: DictConfig) -> Settings:
    node = cfg.sweep
    name = str(node.get("name") or "sweep")
    trials = int(node.get("trials", 20))
    workers = int(node.get("workers", 1))
    if trials < 1 or workers < 1:
        raise ConfigError(f"sweep.trials and sweep.workers must be >= 1; got {trials} and {workers}")
    variant = _variant(cfg)
    folder = Path(node.get("dir") or Path("sweeps") / cfg.dataset.name / cfg.model.name / f"{name}{variant}")
    storage = node.get("storage") or f"sqlite:///{folder.resolve() / 'study.db'}"
    study_name = node.get("study_name") or f"{cfg.dataset.name}-{cfg.model.name}-{name}{variant}"
    direction = str(node.get("direction", "maximize"))
    if direction not in ("maximize", "minimize"):
        raise ConfigError(f"sweep.direction must be maximize or minimize, got {direction!r}")
    seed = int(cfg.seed)
    n_trial, n_final = int(node.get("trial_seeds", 1)), int(node.get("final_seeds", 10))
    if n_trial < 1 or n_final < 0:
        raise ConfigError(f"sweep.trial_seeds must be >= 1 and sweep.final_seeds >= 0; got {n_trial}, {n_final}")
    threads = int(node.get("threads") or 0) or max(1, (os.cpu_count() or 1) // workers)
    plain = lambda key: OmegaConf.to_container(node[key], resolve=True) if node.get(key) else {}  # noqa: E731
    return Settings(name=name, params=parse_space(node.get("params"), cfg), trials=trials, workers=workers,
                    dir=folder, storage=str(storage), study_name=str(study_name), direction=direction,
                    trial_seeds=[seed + i for i in range(n_trial)],
                    final_seeds=[seed + i for i in range(n_final)],
                    sampler=plain("sampler"), pruner=plain("pruner"),
                    heartbeat=int(node.get("heartbeat", 30)), grace_period=int(node.get("grace_period", 120)),
                    threads=threads, poll=float(node.get("poll", 5.0)))


def identity(cfg: DictConfig) -> tuple[str, dict[str, Any]]:
    """What defines a study: the configuration without per-process settings (workers, storage,
    trial count, progress bars); returns its digest and the configuration itself."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain.pop("runs", None), plain.pop("seeds", None), plain.pop("hydra", None)
    for key in _VOLATILE:
        plain.get("sweep", {}).pop(key, None)
    plain.get("trainer", {}).pop("progress", None)
    plain.get("features", {}).pop("num_workers", None)
    text = json.dumps(plain, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16], plain


# ------------------------------------------------------------------------------- storage and study
def _optuna():
    try:
        import optuna
    except ImportError as exc:  # pragma: no cover - optuna is a dependency
        raise ConfigError("sweeps need optuna (pip install optuna); it is a dependency of mmgraph") from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def open_storage(settings: Settings):
    """The study's RDB storage, with heartbeats so that a dead worker's trial is failed."""
    optuna = _optuna()
    url = settings.storage
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite:"):
        path = url.split("sqlite:///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 120}  # several processes write one file
    else:
        kwargs["pool_pre_ping"] = True
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=settings.heartbeat,
                                              grace_period=settings.grace_period)
    except ImportError as exc:
        raise ConfigError(f"sweep.storage {masked(url)}: the database driver is not installed ({exc}); "
                          f"for PostgreSQL install mmgraph[postgres]") from exc
    except Exception as exc:  # SQLAlchemy's errors: bad URL, server not reachable, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot open sweep.storage {masked(url)}: {first}") from exc


def masked(url: str) -> str:
    """``url`` with any password hidden."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def _sampler(settings: Settings, offset: int):
    optuna = _optuna()
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


def _pruner(settings: Settings, max_epochs: int):
    optuna = _optuna()
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


def open_study(cfg: DictConfig, settings: Settings, storage=None, offset: int = 0):
    """Create the study or join the existing one; a study made by another configuration is an error."""
    optuna = _optuna()
    storage = storage or open_storage(settings)
    digest, plain = identity(cfg)
    study = optuna.create_study(study_name=settings.study_name, storage=storage, direction=settings.direction,
                                sampler=_sampler(settings, offset),
                                pruner=_pruner(settings, int(cfg.trainer.max_epochs)), load_if_exists=True)
    attrs = study.user_attrs
    if "identity" not in attrs:
        study.set_user_attr("identity", digest)
        study.set_user_attr("config", plain)
    elif attrs["identity"] != digest:
        old = attrs.get("config", {})
        diff = sorted(_differences(old, plain))[:5]
        raise ConfigError(f"study {settings.study_name!r} in {masked(settings.storage)} was made by another "
                          f"configuration (differs at: {', '.join(diff) or '?'}); set sweep.dir or "
                          f"sweep.study_name for a new study")
    return study


def _differences(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in set(a) | set(b):
            out += _differences(a.get(k), b.get(k), f"{prefix}{k}.")
        return out
    return [] if a == b else [prefix.rstrip(".")]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def fail_dead_trials(study, storage, pids: set[int] | None = None) -> list[int]:
    """Mark failed the running trials of processes of this host that no longer exist (or, with
    ``pids``, of exactly those processes); returns their numbers."""
    optuna = _optuna()
    failed = []
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        host, pid = t.user_attrs.get("host"), t.user_attrs.get("pid")
        if host != HOST or pid is None:
            continue
        if (pids is not None and pid in pids) or (pids is None and not _alive(int(pid))):
            try:
                storage.set_trial_user_attr(t._trial_id, "failed_because", f"process {pid} on {HOST} died")
                storage.set_trial_state_values(t._trial_id, optuna.trial.TrialState.FAIL)
                failed.append(t.number)
            except RuntimeError:  # finished in the meantime
                pass
    if failed:
        log.warning("trial(s) %s of a dead process marked failed", ", ".join(map(str, failed)))
    return failed


def counts(study) -> dict[str, int]:
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def finished(c: dict[str, int]) -> int:
    return c.get("COMPLETE", 0) + c.get("PRUNED", 0)


# ------------------------------------------------------------------------------- trials
class Objective:
    """Train the suggested configuration for the trial seeds; the mean validation primary metric."""

    def __init__(self, cfg: DictConfig, settings: Settings, prepared: tuple):
        self.cfg, self.settings, self.prepared = cfg, settings, prepared

    def __call__(self, trial) -> float:
        optuna = _optuna()
        from mmgraph.bench.runner import build_task, make_model, trainer_config
        from mmgraph.train import fit, seed_everything

        trial.set_user_attr("host", HOST)
        trial.set_user_attr("pid", os.getpid())
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


def work(cfg: DictConfig, settings: Settings, index: int = 0, prepared: tuple | None = None) -> int:
    """One worker: take trials until the study has ``settings.trials`` finished ones; returns the
    number of trials this worker ran."""
    optuna = _optuna()
    from mmgraph.bench.runner import prepare

    storage = open_storage(settings)
    study = open_study(cfg, settings, storage, offset=index + 100 * len(study_trials(settings, storage)))
    prepared = prepared or prepare(cfg)
    objective = Objective(cfg, settings, prepared)
    ran = failures = 0
    while True:
        fail_dead_trials(study, storage)
        c = counts(study)
        if finished(c) >= settings.trials:
            return ran
        if finished(c) + c.get("RUNNING", 0) >= settings.trials:
            time.sleep(settings.poll)  # the last trials run elsewhere; take over if they die
            continue
        before = len(study.get_trials(deepcopy=False))
        study.optimize(objective, n_trials=1, catch=(FloatingPointError,), gc_after_trial=False)
        ran += 1
        last = [t for t in study.get_trials(deepcopy=False)[before:] if t.user_attrs.get("pid") == os.getpid()]
        if last:
            _log_trial(last[-1])
        if last and last[-1].state == optuna.trial.TrialState.FAIL:
            failures += 1
            if failures >= settings.trials:
                raise MMGraphError(f"{failures} trials of this worker failed (diverging training?); "
                                   f"narrow the search space (see the log for the errors)")


def _log_trial(t) -> None:
    params = ", ".join(f"{k.rsplit('.', 1)[-1]}={_fmt(v)}" for k, v in t.params.items())
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


def study_trials(settings: Settings, storage) -> list:
    """The trials stored so far (none for a new study)."""
    optuna = _optuna()
    try:
        return optuna.load_study(study_name=settings.study_name, storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return []


def _worker_main(cfg_plain: dict, index: int, threads: int, level: int) -> None:
    """Entry of a worker process (spawned): quiet logs with a prefix, SIGTERM ends the trial cleanly."""
    logging.basicConfig(level=level, stream=sys.stderr, format=f"[worker {index}] %(name)s: %(message)s")
    torch.set_num_threads(threads)
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    from mmgraph._malloc import tune_malloc

    tune_malloc()
    cfg = OmegaConf.create(cfg_plain)
    try:
        work(cfg, settings_of(cfg), index)
    except KeyboardInterrupt:
        sys.exit(130)
    except MMGraphError as exc:
        print(f"[worker {index}] error: {exc}", file=sys.stderr)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)


# ------------------------------------------------------------------------------- the whole sweep
def _run_workers(cfg: DictConfig, settings: Settings, study, storage) -> None:
    """Start ``settings.workers`` processes and follow ``study`` until they end."""
    import multiprocessing as mp

    from tqdm.auto import tqdm

    plain = OmegaConf.to_container(cfg, resolve=True)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(plain, i, settings.threads, logging.getLogger().level),
                         name=f"mmgraph-sweep-{i}") for i in range(settings.workers)]
    for p in procs:
        p.start()
    log.info("%d workers (pids %s), %d threads each", len(procs), ", ".join(str(p.pid) for p in procs),
             settings.threads)
    bar = tqdm(total=settings.trials, desc=f"sweep {settings.study_name}", unit="trial", disable=None,
               dynamic_ncols=True)
    reported: set[int] = set()
    try:
        while True:
            alive = [p for p in procs if p.is_alive()]
            for p in procs:
                if not p.is_alive() and p.pid not in reported:
                    reported.add(p.pid)
                    if p.exitcode:
                        fail_dead_trials(study, storage, {p.pid})
                        how = f"signal {-p.exitcode}" if p.exitcode < 0 else f"exit status {p.exitcode}"
                        log.warning("worker %s (pid %d) ended with %s; the others go on (run the same "
                                    "command again to add a worker)", p.name, p.pid, how)
            c = counts(study)
            bar.n = min(finished(c), settings.trials)
            best = _best(study)
            bar.set_postfix(best=f"{best.value:.4f}" if best else "-", failed=c.get("FAIL", 0), refresh=False)
            bar.refresh()
            if not alive:
                break
            time.sleep(min(settings.poll, 2.0))
    except KeyboardInterrupt:
        for p in procs:
            if p.is_alive():
                p.terminate()
        for p in procs:
            p.join(30)
        fail_dead_trials(study, storage, {p.pid for p in procs})
        raise
    finally:
        bar.close()


def _best(study):
    try:
        return study.best_trial
    except ValueError:
        return None


def describe(study, settings: Settings, cfg: DictConfig) -> dict[str, Any]:
    """The content of ``study.json``."""
    best = _best(study)
    storage = "sqlite:///study.db" if settings.default_storage else masked(settings.storage)
    return {"study_name": settings.study_name, "storage": storage, "direction": settings.direction,
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
    recorded by what identifies it (not by how many workers ran it)."""
    out = apply_params(cfg, best.params)
    out.seeds = list(settings.final_seeds)
    out.sweep = {"name": settings.name, "study_name": settings.study_name, "best_trial": best.number,
                 "best_value": best.value, "best_params": dict(best.params), "n_trials": settings.trials}
    return out


class _Lock:
    """An exclusive, non-blocking lock on a file (one final re-run per sweep folder at a time)."""

    def __init__(self, path: Path):
        self.path, self.fh = path, None

    def __enter__(self) -> bool:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fh = open(self.path, "a+")
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            return False

    def __exit__(self, *exc) -> None:
        self.fh.close()


def run_sweep(cfg: DictConfig) -> dict[str, Any] | None:
    """The command line's sweep: work on the study, then re-run the best configuration.

    Returns the summary row of the re-run, or ``None`` when there is none (``final_seeds=0``, or
    another process is doing it).
    """
    from mmgraph.bench.runner import prepare, run

    settings = settings_of(cfg)
    settings.dir.mkdir(parents=True, exist_ok=True)
    storage = open_storage(settings)
    study = open_study(cfg, settings, storage)
    fail_dead_trials(study, storage)
    c = counts(study)
    log.info("study %s in %s: %d of %d trials finished (%s)", settings.study_name, masked(settings.storage),
             finished(c), settings.trials, ", ".join(f"{k.lower()} {v}" for k, v in sorted(c.items())) or "new")
    print(f"sweep folder: {settings.dir}", file=sys.stderr, flush=True)
    prepared = None
    if finished(c) < settings.trials:
        if settings.workers == 1:
            torch.set_num_threads(settings.threads)
            prepared = prepare(cfg)
            work(cfg, settings, 0, prepared)
        else:
            _run_workers(cfg, settings, study, storage)
    c = counts(study)
    write_json(settings.dir / "study.json", describe(study, settings, cfg))
    if finished(c) < settings.trials:
        raise MMGraphError(f"the study has {finished(c)} of {settings.trials} finished trials after its "
                           f"workers ended; run the same command again to resume it")
    best = _best(study)
    if best is None:
        raise MMGraphError(f"no trial of study {settings.study_name} completed (all pruned or failed)")
    print(f"best trial {best.number}: val {best.value:.4f} with "
          + ", ".join(f"{k}={_fmt(v)}" for k, v in best.params.items()), file=sys.stderr, flush=True)
    if not settings.final_seeds:
        return None
    with _Lock(settings.dir / "final.lock") as mine:
        if not mine:
            print(f"the best configuration is being re-run by another process; its table will be in "
                  f"{settings.dir / 'final'} (python -m mmgraph.report {settings.dir})", file=sys.stderr)
            return None
        torch.set_num_threads(max(1, os.cpu_count() or 1))
        fcfg = final_config(cfg, settings, best)
        if prepared is None:
            prepared = prepare(fcfg)
        elif any(p.key.startswith("task.") for p in settings.params):
            from mmgraph.bench.runner import build_task

            prepared = (prepared[0], prepared[1], build_task(fcfg, prepared[1], prepared[0]))
        info = {"name": settings.name, "study_name": settings.study_name, "best_trial": best.number,
                "best_value": best.value, "best_params": dict(best.params), "n_trials": settings.trials,
                "states": counts(study)}
        row = run(fcfg, settings.dir / "final", prepared=prepared, extra={"sweep": info}, resume=True)
    write_json(settings.dir / "study.json", describe(study, settings, cfg))
    return row


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) and not math.isnan(v) else str(v)


def sweep_table(row: dict[str, Any]) -> str:
    """The re-run's table row and the parameters the sweep chose."""
    info = row.get("sweep", {})
    params = ", ".join(f"`{k}={_fmt(v)}`" for k, v in info.get("best_params", {}).items())
    return (markdown_table([row]) + f"\n\nBest of {info.get('n_trials')} trials (study "
            f"{info.get('study_name')}, trial {info.get('best_trial')}): {params}")

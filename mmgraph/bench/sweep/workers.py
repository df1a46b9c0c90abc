"""The processes that run trials: :func:`work` takes trials until the study has enough finished
ones; :func:`run_workers` starts ``sweep.workers`` of them as processes and follows the study,
failing the trials of a worker that dies; :class:`FileLock` lets one process of many do a step."""
from __future__ import annotations

import logging
import os
import signal
import sys
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from mmgraph.bench.sweep.objective import Objective, load_optuna, log_trial
from mmgraph.bench.sweep.settings import Settings, settings_of
from mmgraph.bench.sweep.storage import (best_trial, claim, counts, fail_dead_trials, finished, open_storage,
                                         open_study, study_trials)
from mmgraph.errors import ConfigError, MMGraphError
from mmgraph.redact import install_log_redaction, redact

log = logging.getLogger("mmgraph.sweep")


def work(cfg: DictConfig, settings: Settings, index: int = 0, prepared: tuple | None = None) -> int:
    """One worker: take trials until the study has ``settings.trials`` finished ones; returns the
    number of trials this worker ran."""
    from mmgraph.bench.runner import prepare

    optuna = load_optuna()
    storage = open_storage(settings)
    study = open_study(cfg, settings, storage, offset=index + 100 * len(study_trials(settings, storage)))
    objective = Objective(cfg, settings, prepared or prepare(cfg))

    def trial_of_this_process(trial) -> float:
        claim(trial)  # failed, not left running, if this process dies
        return objective(trial)

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
        study.optimize(trial_of_this_process, n_trials=1, catch=(FloatingPointError,), gc_after_trial=False)
        ran += 1
        last = [t for t in study.get_trials(deepcopy=False)[before:] if t.user_attrs.get("pid") == os.getpid()]
        if last:
            log_trial(last[-1])
        if last and last[-1].state == optuna.trial.TrialState.FAIL:
            failures += 1
            if failures >= settings.trials:
                raise MMGraphError(f"{failures} trials of this worker failed (diverging training?); "
                                   f"narrow the search space (see the log for the errors)")


def _worker_main(cfg_plain: dict, index: int, threads: int, level: int) -> None:
    """Entry of a worker process (spawned): quiet logs with a prefix, SIGTERM ends the trial cleanly."""
    install_log_redaction()
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
        print(f"[worker {index}] error: {redact(str(exc))}", file=sys.stderr)
        sys.exit(2 if isinstance(exc, ConfigError) else 1)


def run_workers(cfg: DictConfig, settings: Settings, study, storage) -> None:
    """Start ``settings.workers`` processes and follow ``study`` until they end."""
    import multiprocessing as mp

    from mmgraph.progress import Progress

    plain = OmegaConf.to_container(cfg, resolve=True)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker_main, args=(plain, i, settings.threads, logging.getLogger().level),
                         name=f"mmgraph-sweep-{i}") for i in range(settings.workers)]
    for p in procs:
        p.start()
    log.info("%d workers (pids %s), %d threads each", len(procs), ", ".join(str(p.pid) for p in procs),
             settings.threads)
    bar = Progress(settings.trials, f"sweep {settings.study_name}", unit="trial")
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
            best = best_trial(study)
            bar.set_postfix(best=f"{best.value:.4f}" if best else "-", failed=c.get("FAIL", 0))
            bar.update(min(finished(c), settings.trials) - bar.n)
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


class FileLock:
    """An exclusive, non-blocking lock on a file: ``with FileLock(path) as mine:`` is true in the
    one process that holds it."""

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

"""The study in its database: the SQLite or SQLAlchemy storage (with heartbeats), creating or
joining a study (refused when another configuration made it), and failing the trials of dead
processes.

The URL Optuna connects with is ``sweep.storage`` as given; every message and stored value
shows it with the password masked (:attr:`Settings.shown_storage`).
"""
from __future__ import annotations

import logging
import os
import socket
import time
import warnings
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from mmgraph.bench.sweep.objective import load_optuna, pruner, sampler
from mmgraph.bench.sweep.settings import Settings, identity
from mmgraph.errors import ConfigError
from mmgraph.redact import redact

log = logging.getLogger("mmgraph.sweep")

HOST = socket.gethostname()
_INIT_ATTEMPTS = 5  # opening a database that another process is setting up at the same moment


def open_storage(settings: Settings):
    """The study's RDB storage, with heartbeats so that a dead worker's trial is failed."""
    optuna = load_optuna()
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
        for attempt in range(_INIT_ATTEMPTS):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    return optuna.storages.RDBStorage(url, engine_kwargs=kwargs, heartbeat_interval=settings.heartbeat,
                                                      grace_period=settings.grace_period)
            except Exception as exc:
                if attempt + 1 == _INIT_ATTEMPTS or not _set_up_concurrently(exc):
                    raise
                log.debug("sweep.storage was being set up by another process (%s); opening it again", exc)
                time.sleep(0.2 * (attempt + 1))
        raise AssertionError("unreachable")
    except ImportError as exc:
        raise ConfigError(f"sweep.storage {settings.shown_storage}: the database driver is not installed "
                          f"({exc}); for PostgreSQL install mmgraph[postgres]") from exc
    except Exception as exc:  # SQLAlchemy's errors: bad URL, server not reachable, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot open sweep.storage {settings.shown_storage}: {redact(first)}") from exc


def _set_up_concurrently(exc: BaseException) -> bool:
    """Whether ``exc`` is what a process gets when another one creates the same new database at
    that moment: both find its tables missing, or its version rows empty, and both add them; the
    slower one then meets a table that exists or a row that breaks a unique constraint. The
    database is set up by then, so opening it again succeeds."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError  # installed with optuna

    if isinstance(exc, IntegrityError):
        return True
    return isinstance(exc, (OperationalError, ProgrammingError)) and "already exists" in str(exc)


def open_study(cfg: DictConfig, settings: Settings, storage=None, offset: int = 0):
    """Create the study or join the existing one; a study made by another configuration is an error.

    The study keeps the configuration that made it (secrets masked, see :func:`identity`) and its
    digest; a new one is compared with it."""
    optuna = load_optuna()
    storage = storage or open_storage(settings)
    digest, plain = identity(cfg)
    study = optuna.create_study(study_name=settings.study_name, storage=storage, direction=settings.direction,
                                sampler=sampler(settings, offset),
                                pruner=pruner(settings, int(cfg.trainer.max_epochs)), load_if_exists=True)
    attrs = study.user_attrs
    if "identity" not in attrs:
        study.set_user_attr("identity", digest)
        study.set_user_attr("config", plain)
    elif attrs["identity"] != digest:
        old = attrs.get("config", {})
        diff = sorted(_differences(old, plain))[:5]
        raise ConfigError(f"study {settings.study_name!r} in {settings.shown_storage} was made by another "
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


def study_trials(settings: Settings, storage) -> list:
    """The trials stored so far (none for a new study)."""
    optuna = load_optuna()
    try:
        return optuna.load_study(study_name=settings.study_name, storage=storage).get_trials(deepcopy=False)
    except KeyError:
        return []


# ------------------------------------------------------------------------------- trials of dead processes
def claim(trial) -> None:
    """Mark ``trial`` as run by this process of this host, so that it is failed if the process dies."""
    trial.set_user_attr("host", HOST)
    trial.set_user_attr("pid", os.getpid())


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
    ``pids``, of exactly those processes); returns their numbers. Trials of other hosts are
    failed by Optuna when their heartbeat is older than ``sweep.grace_period``."""
    optuna = load_optuna()
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


# ------------------------------------------------------------------------------- progress
def counts(study) -> dict[str, int]:
    """Trials per state name (``COMPLETE``, ``PRUNED``, ``FAIL``, ``RUNNING``, ...)."""
    out: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        out[t.state.name] = out.get(t.state.name, 0) + 1
    return out


def finished(c: dict[str, int]) -> int:
    """Completed and pruned trials of :func:`counts`: what counts towards ``sweep.trials``."""
    return c.get("COMPLETE", 0) + c.get("PRUNED", 0)


def best_trial(study):
    """The best completed trial, or ``None``."""
    try:
        return study.best_trial
    except ValueError:
        return None

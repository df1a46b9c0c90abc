"""The ``sweep`` group of the configuration, checked (:class:`Settings`), and what identifies a study."""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mmgraph.bench.sweep.space import Param, parse_space
from mmgraph.errors import ConfigError
from mmgraph.redact import add_url_secret, mask_url, redact

# Keys of the configuration that do not change what a trial computes (how many processes,
# where things are stored, how many trials); the study's identity ignores them.
_VOLATILE = ("trials", "workers", "threads", "storage", "dir", "study_name", "final_seeds", "heartbeat",
             "grace_period", "poll")


@dataclass
class Settings:
    """The ``sweep`` group of the configuration, checked."""

    name: str
    params: list[Param]
    trials: int
    workers: int
    dir: Path
    storage: str = field(repr=False)  # the URL Optuna connects with, password included: never stored
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

    @property
    def shown_storage(self) -> str:
        """The storage as files and messages show it: password masked, the default SQLite file
        relative to the sweep folder."""
        return "sqlite:///study.db" if self.default_storage else mask_url(self.storage)


def _variant(cfg: DictConfig) -> str:
    from mmgraph.bench.runner import fusion_label

    mods = cfg.get("features", {}).get("modalities")
    parts = ["+".join(mods)] if mods else []
    if fusion_label(cfg) != "none":
        parts.append(fusion_label(cfg))
    return "".join(f"-{p}" for p in parts)


def _storage(node: DictConfig, folder: Path) -> str:
    """``sweep.storage`` (``${oc.env:NAME}`` read from the environment) or the default SQLite file."""
    from omegaconf.errors import InterpolationResolutionError

    try:
        url = node.get("storage")
    except InterpolationResolutionError as exc:  # ${oc.env:NAME} of an unset variable
        unset = re.search(r"Environment variable '([^']+)' not found", str(exc))
        reason = (f"the environment variable {unset[1]} is not set; export it with the study's URL"
                  if unset else str(exc).splitlines()[0])
        raise ConfigError(f"sweep.storage: {reason}") from None
    if not url:
        return f"sqlite:///{folder.resolve() / 'study.db'}"
    add_url_secret(str(url))  # its password is masked wherever this process writes it
    return str(url)


def settings_of(cfg: DictConfig) -> Settings:
    node = cfg.sweep
    name = str(node.get("name") or "sweep")
    trials = int(node.get("trials", 20))
    workers = int(node.get("workers", 1))
    if trials < 1 or workers < 1:
        raise ConfigError(f"sweep.trials and sweep.workers must be >= 1; got {trials} and {workers}")
    variant = _variant(cfg)
    folder = Path(node.get("dir") or Path("sweeps") / cfg.dataset.name / cfg.model.name / f"{name}{variant}")
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
                    dir=folder, storage=_storage(node, folder), study_name=str(study_name), direction=direction,
                    trial_seeds=[seed + i for i in range(n_trial)],
                    final_seeds=[seed + i for i in range(n_final)],
                    sampler=plain("sampler"), pruner=plain("pruner"),
                    heartbeat=int(node.get("heartbeat", 30)), grace_period=int(node.get("grace_period", 120)),
                    threads=threads, poll=float(node.get("poll", 5.0)))


def identity(cfg: DictConfig) -> tuple[str, dict[str, Any]]:
    """What defines a study: the configuration without per-process settings (workers, storage,
    trial count, progress bars), secrets masked; returns its digest and the configuration itself
    (stored with the study)."""
    plain = OmegaConf.to_container(cfg, resolve=True)
    plain.pop("runs", None), plain.pop("seeds", None), plain.pop("hydra", None)
    for key in _VOLATILE:
        plain.get("sweep", {}).pop(key, None)
    plain.get("trainer", {}).pop("progress", None)
    plain.get("features", {}).pop("num_workers", None)
    plain = redact(plain)  # a token does not change what a trial computes, and is never stored
    text = json.dumps(plain, sort_keys=True, default=str)
    return hashlib.sha1(text.encode()).hexdigest()[:16], plain

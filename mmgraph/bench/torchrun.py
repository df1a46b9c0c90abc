"""The runner under ``torchrun``: one model trained data-parallel by several processes.

``torchrun --nproc_per_node=2 -m mmgraph.bench dataset=synthetic model=sage task.batch_size=256``
starts two copies of the runner. Each one runs Hydra and :func:`mmgraph.bench.runner.run`;
this module makes them behave as one run:

- :func:`cli_argv` (command line, before Hydra): initialises the process group, gives every
  rank the output folder of rank 0's clock (``${now:...}`` in ``hydra.run.dir`` /
  ``hydra.sweep.dir`` replaced by rank 0's time), and makes ranks > 0 write no ``.hydra/`` folder,
  no log file and nothing on stdout;
- :func:`prepare_device` (runner, before the data): checks the configuration can run
  data-parallel (node classification in mini-batches, a homogeneous model) and maps ``cuda`` to
  ``cuda:<LOCAL_RANK>``;
- :func:`describe`: what the run records (``world_size``, ``backend``), so results of one and of
  several processes are never mixed silently.

Only rank 0 writes result files; the others train and evaluate with it (see
:mod:`mmgraph.distributed`).
"""
from __future__ import annotations

import os
import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from mmgraph import distributed
from mmgraph.cli import overrides_of
from mmgraph.errors import ConfigError
from mmgraph.redact import install_log_redaction

__all__ = ["cli_argv", "prepare_device", "describe"]

_NOW = re.compile(r"\$\{now:([^}]*)\}")
_QUIET_RANK = ["hydra.output_subdir=null", "hydra/job_logging=disabled", "hydra/hydra_logging=disabled"]


def prepare_device(cfg: DictConfig, device: torch.device) -> torch.device:
    """``device`` unchanged in a single process. Under torchrun: the process group is
    initialised, the configuration checked (one-line ConfigErrors) and a bare ``cuda`` becomes
    ``cuda:<LOCAL_RANK>``."""
    if not distributed.launched():
        return device
    what = f"training in {os.environ['WORLD_SIZE']} processes (torchrun)"
    if cfg.get("sweep") is not None:
        raise ConfigError(f"{what}: hyperparameter sweeps are not supported; run the sweep in one "
                          f"process")
    if "batch_size" not in cfg.task:
        raise ConfigError(f"{what} supports task=node_classification in mini-batches only "
                          f"(task.batch_size)")
    if cfg.task.get("batch_size") is None:
        raise ConfigError(f"{what} needs mini-batches: set task.batch_size (the global batch size)")
    if cfg.model.get("hetero"):
        raise ConfigError(f"{what} supports homogeneous models only (mini-batches); model "
                          f"{cfg.model.name} is heterogeneous")
    distributed.init()
    return distributed.local_device(device)


def describe(device: torch.device | str) -> dict[str, Any]:
    """``{"world_size": W, "backend": "gloo" | "nccl" | None}`` for the run record."""
    return {"world_size": distributed.world_size(), "backend": distributed.backend_for(device)}


def cli_argv(config_dir: Path, argv: list[str]) -> list[str]:
    """``argv`` for Hydra; unchanged unless this process is one of several started by torchrun.

    Then (a collective call: every rank must make it) the process group is initialised, every
    ``${now:FORMAT}`` in the output-folder settings is replaced by rank 0's time (so all ranks
    name the same folder, whatever their clocks say), and ranks > 0 get overrides that keep
    them from writing ``.hydra/`` and log files, and their stdout goes to ``os.devnull``.
    """
    if not distributed.launched():
        return argv
    install_log_redaction()  # every rank's log lines (torch's too) with secrets masked, from the start
    distributed.init()
    stamp = distributed.broadcast_object(datetime.now())
    args = list(argv[1:])
    multirun = any(a in ("-m", "--multirun") for a in args)
    keys = ("hydra.sweep.dir", "hydra.sweep.subdir") if multirun else ("hydra.run.dir",)
    patterns = _output_patterns(config_dir, overrides_of(args))
    fixed = []
    for key in keys:
        pattern = patterns.get(key)
        if pattern and _NOW.search(pattern):
            value = _NOW.sub(lambda m: stamp.strftime(m.group(1)), pattern)
            fixed.append(f"{key}='{_escape(value)}'")
    if fixed:
        drop = {f.split("=", 1)[0] for f in fixed}
        args = [a for a in args if a.split("=", 1)[0].lstrip("+") not in drop] + fixed
    if not distributed.is_main():
        args += _QUIET_RANK
        sys.stdout = open(os.devnull, "w")  # the table and messages come from rank 0
    return [argv[0], *args]


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "\\'")


def _output_patterns(config_dir: Path, overrides: list[str]) -> dict[str, str]:
    """The unresolved output-folder settings of the composed config (with the user's
    overrides; without those a single compose rejects, such as sweeps ``a,b``)."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    hydra_only = [o for o in overrides if o.lstrip("+~").startswith(("hydra.", "hydra/"))]
    for attempt in (overrides, hydra_only):
        try:
            with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
                cfg = compose(config_name="config", overrides=attempt, return_hydra_config=True)
            node = OmegaConf.to_container(cfg.hydra, resolve=False)
        except Exception:  # noqa: BLE001  (Hydra raises many kinds; the next attempt decides)
            GlobalHydra.instance().clear()
            continue
        return {"hydra.run.dir": str(node["run"]["dir"]), "hydra.sweep.dir": str(node["sweep"]["dir"]),
                "hydra.sweep.subdir": str(node["sweep"]["subdir"])}
    return {}

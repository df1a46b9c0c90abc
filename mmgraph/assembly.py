"""From a composed configuration to objects: the device, the seeds, anything with a
``_target_``, and the data set.

The runner (:mod:`mmgraph.bench.runner`) and the feature command line
(``python -m mmgraph.features``) both assemble their inputs here; this module knows neither.
It is the only place, with the runner, where a config becomes objects
(``hydra.utils.instantiate``); data sets, encoders, models and tasks take typed arguments.
"""
from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from mmgraph import distributed
from mmgraph.checks import integer, integers
from mmgraph.errors import ConfigError, MMGraphError

__all__ = ["resolve_device", "seeds_of", "build", "plain", "build_dataset"]


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA when available; ``cuda`` without a GPU is an error, not a silent CPU run."""
    name = str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device={name} requested but no CUDA device is available; use device=cpu or auto")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise ConfigError(f"invalid device {name!r}; use auto, cpu, cuda or cuda:<index>") from exc


def seeds_of(cfg: DictConfig) -> list[int]:
    """``cfg.seeds`` if given, else ``cfg.runs`` seeds from ``cfg.seed`` on."""
    seeds = cfg.get("seeds")
    if seeds:
        return integers("seeds", seeds, example="[0,1,2]")
    return [integer("seed", cfg.seed) + i for i in range(integer("runs", cfg.runs, 1))]


def build(node: DictConfig, what: str, **kwargs) -> Any:
    """Instantiate a config node (its ``_target_`` with its keys as arguments), turning
    constructor errors into one-line :class:`~mmgraph.errors.ConfigError` s."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    if not isinstance(node, DictConfig) or "_target_" not in node:
        raise ConfigError(f"{what}: the config has no _target_ naming the class to build")
    target = node.get("_target_")
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, MMGraphError):
            raise cause
        if cause is None:  # Hydra's own complaint (a _target_ that is no callable): its first line
            raise ConfigError(f"cannot build {what}: {str(exc).strip().splitlines()[0]}") from exc
        if isinstance(cause, ImportError) and str(exc).startswith("Error locating target"):
            raise ConfigError(f"cannot build {what}: _target_ {target!r} cannot be imported "
                              f"({_last_line(cause)})") from exc
        if not isinstance(cause, (TypeError, ValueError)):
            raise  # a bug in the constructor, not a value the user can fix: keep its traceback
        raise ConfigError(f"cannot build {what} ({target}): {_last_line(cause)}") from exc
    except MMGraphError:
        raise
    except (TypeError, ValueError) as exc:  # e.g. an argument of the wrong kind before __init__
        raise ConfigError(f"cannot build {what} ({target}): {_last_line(exc)}") from exc


def _last_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


def plain(node: Any) -> Any:
    """A config node as plain Python containers (resolved); ``None`` stays ``None``."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, (DictConfig,)) or \
        OmegaConf.is_list(node) else node


def build_dataset(cfg: DictConfig):
    """The graph of ``cfg.dataset`` (its ``loader``), built or read from its cache; under
    torchrun one process per machine builds it first."""
    with distributed.local_main_first():
        return build(cfg.dataset.loader, f"dataset {cfg.dataset.name}")

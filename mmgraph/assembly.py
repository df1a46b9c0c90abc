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


def _integer(value: Any, key: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"{key} must be an integer; got {value!r}")
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{key} must be an integer; got {value!r}") from None


def seeds_of(cfg: DictConfig) -> list[int]:
    """``cfg.seeds`` if given, else ``cfg.runs`` seeds from ``cfg.seed`` on."""
    seeds = cfg.get("seeds")
    if seeds:
        if isinstance(seeds, (str, int)) or not hasattr(seeds, "__iter__"):
            raise ConfigError(f"seeds must be a list of integers, e.g. seeds=[0,1,2]; got {seeds!r}")
        return [_integer(s, "seeds") for s in seeds]
    runs = _integer(cfg.runs, "runs")
    if runs < 1:
        raise ConfigError(f"runs must be >= 1, got {runs}")
    return [_integer(cfg.seed, "seed") + i for i in range(runs)]


def build(node: DictConfig, what: str, **kwargs) -> Any:
    """Instantiate a config node (its ``_target_`` with its keys as arguments), turning
    constructor errors into one-line :class:`~mmgraph.errors.ConfigError` s."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    if not isinstance(node, DictConfig) or "_target_" not in node:
        raise ConfigError(f"{what}: the config has no _target_ naming the class to build")
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as exc:
        cause = exc.__cause__ or exc
        if isinstance(cause, MMGraphError):
            raise cause
        target = node.get("_target_", "?")
        msg = str(cause).strip().splitlines()[-1] if str(cause).strip() else type(cause).__name__
        raise ConfigError(f"cannot build {what} ({target}): {msg}") from exc
    except MMGraphError:
        raise
    except (TypeError, ValueError) as exc:  # e.g. an argument of the wrong kind before __init__
        msg = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise ConfigError(f"cannot build {what} ({node.get('_target_', '?')}): {msg}") from exc


def plain(node: Any) -> Any:
    """A config node as plain Python containers (resolved); ``None`` stays ``None``."""
    return OmegaConf.to_container(node, resolve=True) if isinstance(node, (DictConfig,)) or \
        OmegaConf.is_list(node) else node


def build_dataset(cfg: DictConfig):
    """The graph of ``cfg.dataset`` (its ``loader``), built or read from its cache; under
    torchrun one process per machine builds it first."""
    with distributed.local_main_first():
        return build(cfg.dataset.loader, f"dataset {cfg.dataset.name}")

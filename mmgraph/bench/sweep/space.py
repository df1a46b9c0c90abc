"""The search space of a ``configs/sweep/`` config: :class:`Param` per searched key, checked
against the configuration, and a configuration with chosen values set."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mmgraph.errors import ConfigError

# Groups a trial may not change: the data are prepared once per worker.
_FIXED_GROUPS = ("dataset", "features", "sweep", "paths", "device", "seed", "seeds", "runs")
_SPEC_FIELDS = {"low", "high", "choices"}


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

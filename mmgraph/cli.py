"""What the command-line tools share: one-line errors, the overrides of an argument list, and
composing ``configs/config.yaml`` with them, Hydra's errors explained in one line.

``python -m mmgraph.bench``, ``python -m mmgraph.features`` and ``torchrun -m mmgraph.bench`` use
these; nothing here knows the runner or the feature step.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import NoReturn

from omegaconf import OmegaConf

from mmgraph.paths import default_data_root

# ${mmgraph_data_root:} in configs/config.yaml
OmegaConf.register_new_resolver("mmgraph_data_root", lambda: str(default_data_root()), replace=True)
# ${mmgraph_mul:a,b} in configs/task/graph_prediction.yaml (cross-validation runs = folds x repeats)
OmegaConf.register_new_resolver("mmgraph_mul", lambda a, b: int(a) * int(b), replace=True)

# Hydra flags that take a value in the next argument.
VALUE_FLAGS = frozenset({"--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd",
                         "--experimental-rerun", "--package", "-p", "--info", "-i"})


def fail(prog: str, message: str, status: int) -> NoReturn:
    """Print ``<prog>: error: <message>`` on stderr and exit with ``status`` (2: configuration,
    1: data or run). Under torchrun a configuration error is printed by rank 0 only: every rank
    has the same one."""
    from mmgraph.distributed import launch_rank

    from mmgraph.redact import redact

    if status != 2 or launch_rank() == 0:
        print(f"{prog}: error: {redact(message)}", file=sys.stderr)
    sys.exit(status)


def overrides_of(argv: list[str]) -> list[str]:
    """The ``key=value`` overrides of a command line (Hydra's flags and their values left out)."""
    out, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg.startswith("-"):
            skip = arg in VALUE_FLAGS
        else:
            out.append(arg)
    return out


def group_options(config_dir: Path, group: str) -> list[str]:
    """The config names of a group (``model`` -> ``gat, gcn, ...``)."""
    return sorted(p.stem for p in (config_dir / group).glob("*.yaml") if not p.stem.startswith("_"))


def explain_config_error(exc: Exception, config_dir: Path, overrides: list[str]) -> str:
    """Turn a Hydra composition error into one line saying what is wrong and what is valid."""
    from hydra.errors import MissingConfigException, OverrideParseException

    text = str(exc).strip()
    if isinstance(exc, MissingConfigException) or "Could not find" in text:
        found = re.search(r"Could not find '([^']+)/([^'/]+)'", text)
        if found:
            group, name = found.groups()
            valid = group_options(config_dir, group.strip("/"))
            return f"unknown {group.strip('/')} {name!r}; valid {group.strip('/')} names: {', '.join(valid) or 'none'}"
    if isinstance(exc, OverrideParseException):
        bad = next((o for o in overrides if "=" not in o or o.startswith("=")), None)
        where = f" {bad!r}" if bad else ""
        return (f"malformed override{where}: overrides look like key=value, "
                f"e.g. dataset=cora model=gat trainer.lr=0.01")
    key = re.search(r"Key '([^']+)' is not in struct|Could not override '([^']+)'", text)
    if key:
        name = key.group(1) or key.group(2)
        parent, _, leaf = name.rpartition(".")
        valid = _keys_of(config_dir, parent, [o for o in overrides if not o.lstrip("+~").startswith(name)])
        if not parent:
            valid = sorted(set(valid) | {p.name for p in config_dir.iterdir() if p.is_dir()})
        where = f" of {parent}" if parent else ""
        return (f"unknown config key {name!r}; valid keys{where}: {', '.join(valid) or 'none'} "
                f"(prefix a new key with '+' to add it)")
    first = next((line for line in text.splitlines() if line.strip()), type(exc).__name__)
    return first.strip()


def compose(config_dir: Path, overrides: list[str], **kwargs):
    """``configs/config.yaml`` composed with ``overrides``; a Hydra error becomes a one-line
    :class:`~mmgraph.errors.ConfigError`."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from mmgraph.errors import ConfigError

    try:
        with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
            return hydra_compose(config_name="config", overrides=overrides, **kwargs)
    except Exception as exc:  # noqa: BLE001  (every Hydra error is a user error at this point)
        GlobalHydra.instance().clear()
        raise ConfigError(explain_config_error(exc, config_dir, overrides)) from None


def _keys_of(config_dir: Path, parent: str, overrides: list[str]) -> list[str]:
    """Keys of the node ``parent`` in the config composed with the other overrides."""
    from omegaconf import DictConfig

    from mmgraph.errors import ConfigError

    try:
        cfg = compose(config_dir, overrides)
        node = OmegaConf.select(cfg, parent) if parent else cfg
    except (ConfigError, Exception):  # noqa: BLE001
        return []
    return sorted(k for k in node.keys() if k != "hydra") if isinstance(node, DictConfig) else []

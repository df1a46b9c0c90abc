"""Where mmgraph finds its configs and keeps its data."""
from __future__ import annotations

import os
from pathlib import Path

from mmgraph.errors import ConfigError

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent


def default_data_root() -> Path:
    """``$MMGRAPH_DATA`` if set; else ``datasets/`` of a source checkout; else ``~/.cache/mmgraph``."""
    env = os.environ.get("MMGRAPH_DATA")
    if env:
        return Path(env).expanduser()
    if (_CHECKOUT / "datasets").is_dir() and (_CHECKOUT / "pyproject.toml").is_file():
        return _CHECKOUT / "datasets"
    return Path.home() / ".cache" / "mmgraph"


def config_dir() -> Path:
    """``$MMGRAPH_CONFIG_DIR`` if set, else ``configs/`` of the source checkout mmgraph runs from."""
    env = os.environ.get("MMGRAPH_CONFIG_DIR")
    path = Path(env).expanduser() if env else _CHECKOUT / "configs"
    if not (path / "config.yaml").is_file():
        raise ConfigError(f"no config.yaml in {path}; install mmgraph from a source checkout "
                          f"(pip install -e .) or set MMGRAPH_CONFIG_DIR to a configs folder")
    return path.resolve()


def repo_root() -> Path | None:
    """The git checkout mmgraph runs from, if any (recorded with results)."""
    return _CHECKOUT if (_CHECKOUT / ".git").exists() else None

"""Where mmgraph finds its configs and keeps its data.

mmgraph runs either from a source checkout (``pip install -e .``, as ``make`` does: the package
folder sits next to ``pyproject.toml``, ``configs/`` and ``datasets/``) or from an installed
wheel (``pip install mmgraph`` / ``pip install <checkout>``), which carries the same configs as
the package ``mmgraph._configs`` (see setup.py).
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

from mmgraph.errors import ConfigError

_PACKAGE = Path(__file__).resolve().parent
_CHECKOUT = _PACKAGE.parent
_SHIPPED_CONFIGS = _PACKAGE / "_configs"   # configs/ of the checkout, installed inside the wheel


def source_checkout() -> Path | None:
    """The source checkout mmgraph runs from, or None when it runs from an installed copy.

    A checkout is the folder above the package whose ``pyproject.toml`` declares the project
    ``mmgraph``; an installed package's parent (``site-packages``, a ``--target`` folder) is not.
    """
    return _checkout(_CHECKOUT)


@lru_cache(maxsize=None)
def _checkout(folder: Path) -> Path | None:
    try:
        text = (folder / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return folder if re.search(r'^name\s*=\s*["\']mmgraph["\']', text, flags=re.M) else None


def user_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/mmgraph`` if that variable holds an absolute path, else ``~/.cache/mmgraph``."""
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "mmgraph"


def default_data_root() -> Path:
    """``$MMGRAPH_DATA`` if set; else ``datasets/`` of a source checkout; else the user cache folder."""
    env = os.environ.get("MMGRAPH_DATA")
    if env:
        return Path(env).expanduser()
    checkout = source_checkout()
    if checkout is not None and (checkout / "datasets").is_dir():
        return checkout / "datasets"
    return user_cache_dir()


def config_dir() -> Path:
    """The Hydra configs of the runner.

    ``$MMGRAPH_CONFIG_DIR`` if set; else ``configs/`` of the source checkout mmgraph runs from;
    else the configs shipped inside the installed package.
    """
    env = os.environ.get("MMGRAPH_CONFIG_DIR")
    if env:
        path = Path(env).expanduser()
    else:
        checkout = source_checkout()
        path = checkout / "configs" if checkout is not None else _SHIPPED_CONFIGS
    if not (path / "config.yaml").is_file():
        hint = ("set MMGRAPH_CONFIG_DIR to a configs folder" if env else
                "reinstall mmgraph (pip install mmgraph, or pip install -e . in a source checkout) "
                "or set MMGRAPH_CONFIG_DIR to a configs folder")
        raise ConfigError(f"no config.yaml in {path}; {hint}")
    return path.resolve()


def repo_root() -> Path | None:
    """The git checkout mmgraph runs from, if any (its commit is recorded with results).

    None for an installed copy, and for a source tree without its own ``.git`` (an unpacked
    sdist): a git repository that merely encloses the package is not mmgraph's.
    """
    checkout = source_checkout()
    return checkout if checkout is not None and (checkout / ".git").exists() else None

"""A loader's processed graph on disk: written atomically, read back only when its version
matches, rebuilt (with a warning) when the file is corrupt. Used by the loaders of Debian-packaged
data sets (openclipart, Tux Paint stamps)."""
from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Callable

import torch
from torch_geometric.data import HeteroData


def read_graph_cache(cache: Path, version: str) -> HeteroData | None:
    """The graph cached by :func:`write_graph_cache`, or ``None`` (with a warning if it is corrupt)."""
    if not cache.is_file():
        return None
    try:
        # The loader's own output in the data root, not a downloaded file: HeteroData needs
        # the full unpickler.
        data = torch.load(cache, weights_only=False)
        if not isinstance(data, HeteroData) or data.meta.get("version") != version:
            raise ValueError("not a graph of this version")
        return data
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a corrupt cache
        warnings.warn(f"corrupt processed cache {cache} ({type(exc).__name__}); rebuilding",
                      stacklevel=3)
        return None


def write_graph_cache(data: HeteroData, cache: Path) -> None:
    """Save atomically: a temporary file in the same folder, then ``os.replace``."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".pt", dir=cache.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)            # mkstemp's 0600 -> an ordinary file mode
        torch.save(data, tmp)
        os.replace(tmp, cache)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def cached_graph(cache: Path, version: str, use_cache: bool, build: Callable[[], HeteroData]) -> HeteroData:
    """The graph of ``cache`` when it holds ``version``, else ``build()`` (then cached)."""
    if use_cache:
        data = read_graph_cache(cache, version)
        if data is not None:
            return data
    data = build()
    if use_cache:
        write_graph_cache(data, cache)
    return data


"""Make glibc keep freed memory for reuse instead of handing it back after every step.

Full-batch training allocates and frees the same large tensors every epoch. With glibc's
defaults each of them is a fresh ``mmap`` that the kernel has to fault in page by page, which
on large graphs and small CPU machines costs as much as the arithmetic (see
``benchmarks/results/runner_overhead.md``; on a graph of openclipart's size it makes no
difference, ``benchmarks/results/malloc_tuning.md``). The price is that the process keeps its peak memory until it exits. Only the command-line entry
points (``python -m mmgraph.bench`` / ``mmgraph.features``) call this; importing mmgraph as a
library changes nothing. Nothing is changed when the user set any
``MALLOC_*`` variable, on other C libraries, or with ``MMGRAPH_KEEP_MALLOC=1``.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD = -1, -2, -3


def tune_malloc() -> bool:
    """Apply the settings; returns whether they were applied."""
    if (not sys.platform.startswith("linux") or os.environ.get("MMGRAPH_KEEP_MALLOC") == "1"
            or any(k.startswith("MALLOC_") for k in os.environ)):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    ok = mallopt(M_MMAP_THRESHOLD, 1 << 30)
    ok &= mallopt(M_TRIM_THRESHOLD, 1 << 31)
    ok &= mallopt(M_TOP_PAD, 256 << 20)
    return bool(ok)

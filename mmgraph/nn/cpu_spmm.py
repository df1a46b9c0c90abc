r"""A compiled CPU kernel for the CSR sparse-dense product ``out = A @ x`` (:class:`Adjacency`'s
``matmul`` / ``t_matmul``).

On x86 torch's CPU product of a sparse CSR matrix with a dense one calls MKL's sparse BLAS. At
Reddit-M's size (99,638 nodes, 1.27M nonzeros, width 256) that takes 1.72x the time of DGL's
aggregation kernel on a 2-core AMD EPYC, where this kernel takes 1.02x
(``benchmarks/results/spmm_kernels.md``); torch's product made the full-batch GCN and GraphSAGE
epochs slower than DGL's. The kernel here is plain C with
OpenMP: rows are split over torch's threads, each output row is accumulated two edges at a
time, and the feature rows of the edges 16 places ahead in the edge list are prefetched, which
hides most of the latency of the random row reads that bound this product.

It is compiled on first use with the system's C compiler (``$CC``, else ``cc`` / ``gcc``) into
``<user cache>/kernels/`` (see :func:`mmgraph.paths.user_cache_dir`), under a name that hashes
the source, the flags, the compiler and the CPU, so a shared home folder serves several
machines. Where no compiler with OpenMP is found, or the build fails, one warning says so and
the products use torch's kernel: the results are the same (the test suite checks both paths
against each other), only slower. ``MMGRAPH_SPMM_KERNEL=torch`` chooses torch's kernel
without trying.

The kernel takes float32 and float64 CPU tensors with int64 indices and unit stride along the
feature dimension (row strides are free, so one head ``h[:, k]`` of ``[N, H, C]`` features works);
anything else goes to torch. Each output row is summed in CSR order, so results do not depend
on the thread count.
"""
from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import warnings
from pathlib import Path

import torch
from torch import Tensor

__all__ = ["csr_spmm", "kernel_available", "ENV"]

#: ``MMGRAPH_SPMM_KERNEL=torch`` keeps torch's product (no compiler is called).
ENV = "MMGRAPH_SPMM_KERNEL"
PREFETCH = 16  # edges ahead whose feature rows are prefetched

_SOURCE = r"""
#include <stdint.h>
#include <string.h>

#define PF %(prefetch)d

static inline void prefetch_row(const void *row, int64_t bytes) {
    const char *c = (const char *)row;
    for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(c + b, 0, 0);
}

#define CSR_SPMM(NAME, T)                                                                    \
void NAME(const int64_t *crow, const int64_t *col, const T *val, const T *x, T *out,        \
          int64_t rows, int64_t d, int64_t ldx, int64_t ldo, int threads) {                  \
    const int64_t nnz = crow[rows], bytes = d * (int64_t)sizeof(T);                          \
    _Pragma("omp parallel for schedule(dynamic, 64) num_threads(threads)")                   \
    for (int64_t i = 0; i < rows; i++) {                                                     \
        T *restrict o = out + i * ldo;                                                       \
        const int64_t end = crow[i + 1];                                                     \
        int64_t p = crow[i];                                                                 \
        memset(o, 0, bytes);                                                                 \
        for (; p + 1 < end; p += 2) {                                                        \
            if (p + PF + 1 < nnz) {                                                          \
                prefetch_row(x + col[p + PF] * ldx, bytes);                                  \
                prefetch_row(x + col[p + PF + 1] * ldx, bytes);                              \
            }                                                                                \
            const T *restrict a = x + col[p] * ldx, *restrict b = x + col[p + 1] * ldx;      \
            const T va = val[p], vb = val[p + 1];                                            \
            _Pragma("omp simd")                                                              \
            for (int64_t k = 0; k < d; k++) o[k] += va * a[k] + vb * b[k];                   \
        }                                                                                    \
        if (p < end) {                                                                       \
            const T *restrict a = x + col[p] * ldx;                                          \
            const T va = val[p];                                                             \
            _Pragma("omp simd")                                                              \
            for (int64_t k = 0; k < d; k++) o[k] += va * a[k];                               \
        }                                                                                    \
    }                                                                                        \
}

CSR_SPMM(mmgraph_csr_spmm_f32, float)
CSR_SPMM(mmgraph_csr_spmm_f64, double)
""" % {"prefetch": PREFETCH}

_FLAGS = ("-O3", "-march=native", "-fopenmp", "-shared", "-fPIC", "-std=c11")
_ARGS = [ctypes.c_void_p] * 5 + [ctypes.c_int64] * 4 + [ctypes.c_int]

_lock = threading.Lock()
_state: dict[str, object] = {}   # "lib": the loaded library, or "error": why there is none


def _compiler() -> str | None:
    found = (shutil.which(name) for name in (os.environ.get("CC"), "cc", "gcc") if name)
    return next((path for path in found if path), None)


def _cpu() -> str:
    """What identifies this CPU's instruction set (``-march=native`` depends on it)."""
    try:
        with open("/proc/cpuinfo") as fh:
            lines = [line for line in fh if line.startswith(("flags", "model name", "Features", "CPU part"))]
        return "".join(sorted(set(lines)))
    except OSError:
        return platform.processor() or platform.machine()


def _library_path(cc: str) -> Path:
    from mmgraph.paths import user_cache_dir

    version = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=60).stdout
    key = hashlib.sha256("\0".join([_SOURCE, " ".join(_FLAGS), cc, version, platform.machine(), _cpu()])
                         .encode()).hexdigest()[:16]
    return user_cache_dir() / "kernels" / f"csr_spmm-{key}.so"


def _build(cc: str, target: Path) -> None:
    """Compile into a file beside ``target`` and rename it into place (atomic: processes that
    build at once each leave a whole library)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mmgraph-kernel-") as tmp:
        src = Path(tmp) / "csr_spmm.c"
        src.write_text(_SOURCE)
        partial = target.with_name(f"{target.name}.{os.getpid()}.tmp")
        proc = subprocess.run([cc, *_FLAGS, str(src), "-o", str(partial)], capture_output=True, text=True,
                              timeout=300)
        if proc.returncode != 0:
            partial.unlink(missing_ok=True)
            first = next((line for line in proc.stderr.splitlines() if "error" in line.lower()),
                         proc.stderr.strip().splitlines()[0] if proc.stderr.strip() else f"exit {proc.returncode}")
            raise OSError(f"{Path(cc).name} failed: {first.strip()}")
        os.replace(partial, target)


def _load() -> ctypes.CDLL | None:
    """The kernel library, built and loaded on the first call; ``None`` where it is off or fails."""
    if _state:  # decided already (the common case: no lock on the products' path)
        return _state.get("lib")  # type: ignore[return-value]
    with _lock:
        if _state:
            return _state.get("lib")  # type: ignore[return-value]
        if os.environ.get(ENV, "").strip().lower() == "torch":
            _state["error"] = f"{ENV}=torch"
            return None
        try:
            cc = _compiler()
            if cc is None:
                raise OSError("no C compiler found (set CC, or install gcc)")
            path = _library_path(cc)
            if not path.is_file():
                _build(cc, path)
            try:
                lib = ctypes.CDLL(str(path))
            except OSError:  # a cached library that does not load (damaged, copied in): build it again
                _build(cc, path)
                lib = ctypes.CDLL(str(path))
            for name in ("mmgraph_csr_spmm_f32", "mmgraph_csr_spmm_f64"):
                getattr(lib, name).argtypes = _ARGS
                getattr(lib, name).restype = None
            _state["lib"] = lib
        except (OSError, subprocess.SubprocessError, AttributeError) as exc:
            _state["error"] = str(exc)
            warnings.warn(f"mmgraph: the CPU sparse-product kernel is not available ({exc}); using torch's "
                          f"product, which gives the same results more slowly (set {ENV}=torch to "
                          f"skip the build)", stacklevel=3)
        return _state.get("lib")  # type: ignore[return-value]


def kernel_available() -> bool:
    """Whether :func:`csr_spmm` runs the compiled kernel here (builds it on the first call)."""
    return _load() is not None


def _reset() -> None:
    """Forget the loaded kernel (tests: to rebuild or to read ``MMGRAPH_SPMM_KERNEL`` again)."""
    with _lock:
        _state.clear()


def csr_spmm(crow: Tensor, col: Tensor, values: Tensor, x: Tensor, shape: tuple[int, int],
             out: Tensor | None = None) -> Tensor | None:
    """``out = A @ x`` for the CSR matrix ``(crow, col, values)`` of ``shape`` ``(rows, cols)``,
    or ``None`` when the kernel does not take these tensors (the caller then uses torch's product,
    which also raises the errors of mismatched shapes).

    ``x``: ``[cols, d]`` with unit stride along ``d``; ``out``: ``[rows, d]`` likewise, a new
    tensor when ``None``. The column indices are trusted to lie in ``[0, cols)``, as
    :class:`~mmgraph.nn.sparse.Adjacency` guarantees."""
    num_rows, num_cols = shape
    if (x.device.type != "cpu" or x.dim() != 2 or x.size(0) != num_cols or crow.numel() != num_rows + 1
            or values.dim() != 1 or values.numel() != col.numel() or x.dtype not in (torch.float32, torch.float64)
            or values.dtype != x.dtype or crow.dtype != torch.int64 or col.dtype != torch.int64
            or (x.stride(1) != 1 and x.size(1) > 1) or x.requires_grad and torch.is_grad_enabled()):
        return None
    if out is not None and (out.dtype != x.dtype or out.device.type != "cpu" or out.shape != (num_rows, x.size(1))
                            or (out.stride(1) != 1 and out.size(1) > 1)):
        return None
    lib = _load()
    if lib is None:
        return None
    if out is None:
        out = x.new_empty((num_rows, x.size(1)))
    if num_rows == 0 or x.size(1) == 0:
        return out
    crow, col, values = crow.contiguous(), col.contiguous(), values.contiguous()
    fn = lib.mmgraph_csr_spmm_f32 if x.dtype == torch.float32 else lib.mmgraph_csr_spmm_f64
    fn(crow.data_ptr(), col.data_ptr(), values.data_ptr(), x.data_ptr(), out.data_ptr(), num_rows, x.size(1),
       x.stride(0), out.stride(0), torch.get_num_threads())
    return out

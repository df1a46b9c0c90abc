"""The compiled CPU sparse-product kernel against torch's product, and its fallbacks."""
from __future__ import annotations

import warnings

import pytest
import torch

from mmgraph.nn import cpu_spmm
from mmgraph.nn.basic_gnn import GCN, GraphSAGE
from mmgraph.nn.sparse import Adjacency, _product


needs_compiler = pytest.mark.skipif(cpu_spmm._compiler() is None,
                                    reason="no C compiler here: only torch's product can run")


@pytest.fixture
def fresh():
    """The kernel state is forgotten before and after (tests change the environment)."""
    cpu_spmm._reset()
    yield
    cpu_spmm._reset()


def torch_product(crow, col, values, x, shape):
    a = torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)
    return _product(a, x, None)


def graph(num_src, num_dst, edges, seed):
    gen = torch.Generator().manual_seed(seed)
    src = 3 * torch.randint(0, (num_src + 2) // 3, (edges,), generator=gen)  # 2 sources in 3 send nothing
    dst = 2 * torch.randint(0, (num_dst + 1) // 2, (edges,), generator=gen)  # odd rows stay empty
    src[:5] = src[5]  # duplicate edges count twice
    dst[:5] = dst[5]
    return Adjacency.from_edge_index(torch.stack([src, dst]), (num_src, num_dst)), gen


@needs_compiler
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("width", [1, 7, 16, 33, 256])
def test_the_kernel_equals_torchs_product(dtype, width, fresh):
    assert cpu_spmm.kernel_available()  # a compiler is here, so the build must work
    adj, gen = graph(300, 200, 3000, seed=width)
    w = torch.rand(adj.num_edges, generator=gen, dtype=dtype)
    x = torch.randn(300, width, generator=gen, dtype=dtype)
    g = torch.randn(200, width, generator=gen, dtype=dtype)
    tol = dict(rtol=1e-5, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-12)
    want = torch_product(adj.crow, adj.col, w, x, (200, 300))
    assert cpu_spmm.csr_spmm(adj.crow, adj.col, w, x, (200, 300)) is not None
    torch.testing.assert_close(adj.matmul(w, x), want, **tol)
    want_t = torch_product(adj.crow_t, adj.col_t, w[adj.perm], g, (300, 200))
    torch.testing.assert_close(adj.t_matmul(w, g), want_t, **tol)
    assert (adj.in_degree == 0).any() and (adj.matmul(w, x)[adj.in_degree == 0] == 0).all()
    assert (adj.crow_t.diff() == 0).any()


@needs_compiler
def test_strided_heads_and_out_views_and_thread_counts(fresh):
    adj, gen = graph(500, 500, 6000, seed=0)
    w = torch.rand(adj.num_edges, generator=gen)
    h = torch.randn(500, 4, 24, generator=gen)          # [N, heads, C]: one head is a strided view
    out = torch.full((500, 4, 24), float("nan"))
    for k in range(4):
        adj.matmul(w, h[:, k], out=out[:, k])
        torch.testing.assert_close(out[:, k], torch_product(adj.crow, adj.col, w, h[:, k].contiguous(), (500, 500)))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = adj.matmul(w, h[:, 0])
        torch.set_num_threads(2)
        two = adj.matmul(w, h[:, 0])
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(one, two)  # each row is summed in CSR order, whatever the threads


@needs_compiler
def test_inputs_the_kernel_does_not_take_go_to_torch(fresh):
    adj, gen = graph(50, 40, 300, seed=1)
    w = torch.rand(adj.num_edges, generator=gen)
    x = torch.randn(50, 8, generator=gen)
    assert cpu_spmm.csr_spmm(adj.crow.int(), adj.col.int(), w, x, (40, 50)) is None      # int32 indices
    assert cpu_spmm.csr_spmm(adj.crow, adj.col, w.half(), x.half(), (40, 50)) is None   # float16
    assert cpu_spmm.csr_spmm(adj.crow, adj.col, w, x.t().contiguous().t(), (40, 50)) is None  # column-major
    assert cpu_spmm.csr_spmm(adj.crow, adj.col, w, x[:49], (40, 50)) is None            # too few rows
    assert cpu_spmm.csr_spmm(adj.crow, adj.col, w[:-1], x, (40, 50)) is None            # too few values
    with pytest.raises(RuntimeError):
        adj.matmul(w, x[:49])  # torch's product says what does not fit
    cm = x.t().contiguous().t()
    torch.testing.assert_close(adj.matmul(w, cm), adj.matmul(w, x))


@needs_compiler
def test_gcn_and_sage_train_the_same_on_either_kernel(fresh, monkeypatch):
    gen = torch.Generator().manual_seed(0)
    edge_index = torch.randint(0, 400, (2, 4000), generator=gen)
    x = torch.randn(400, 32, generator=gen, dtype=torch.float64)  # float64: compare to 1e-9
    results = {}
    for kernel in ("compiled", "torch"):
        if kernel == "torch":
            monkeypatch.setenv(cpu_spmm.ENV, "torch")
            cpu_spmm._reset()
        assert cpu_spmm.kernel_available() == (kernel == "compiled")
        for name, cls in (("gcn", GCN), ("sage", GraphSAGE)):
            torch.manual_seed(0)
            model = cls(32, 16, num_layers=2, out_channels=5).double()
            adj = Adjacency.from_edge_index(edge_index, 400)
            out = model(x, adj)
            out.square().sum().backward()
            results[kernel, name] = out.detach(), [p.grad.clone() for p in model.parameters()]
    for name in ("gcn", "sage"):
        (a, ga), (b, gb) = results["compiled", name], results["torch", name]
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
        for p, q in zip(ga, gb):
            torch.testing.assert_close(p, q, rtol=1e-9, atol=1e-9)


def test_no_compiler_is_one_warning_and_the_same_results(fresh, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))   # no library built before
    monkeypatch.setenv("CC", "false")                        # a "compiler" that always fails
    adj, gen = graph(60, 60, 500, seed=2)
    w, x = torch.rand(adj.num_edges, generator=gen), torch.randn(60, 9, generator=gen)
    with pytest.warns(UserWarning, match=r"CPU sparse-product kernel is not available \(false failed: .*\); "
                                         r"using torch's product"):
        out = adj.matmul(w, x)
    with warnings.catch_warnings():
        warnings.simplefilter("error")   # once: later products are quiet
        again = adj.matmul(w, x)
    torch.testing.assert_close(out, torch_product(adj.crow, adj.col, w, x, (60, 60)))
    assert torch.equal(out, again)
    assert not any(tmp_path.rglob("*.so")) and not any(tmp_path.rglob("*.tmp"))


def test_torch_kernel_by_environment_builds_nothing(fresh, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv(cpu_spmm.ENV, "torch")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not cpu_spmm.kernel_available()
    assert not (tmp_path / "mmgraph").exists()


@needs_compiler
def test_the_library_is_cached_per_source_and_cpu(fresh, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cpu_spmm.kernel_available()
    built = list((tmp_path / "mmgraph" / "kernels").glob("csr_spmm-*.so"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    cpu_spmm._reset()
    assert cpu_spmm.kernel_available()          # loaded, not rebuilt
    assert built[0].stat().st_mtime_ns == stamp
    assert list((tmp_path / "mmgraph" / "kernels").iterdir()) == built


@needs_compiler
def test_a_damaged_cached_library_is_built_again(fresh, monkeypatch, tmp_path):
    import subprocess
    import sys

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cpu_spmm.kernel_available()
    (built,) = (tmp_path / "mmgraph" / "kernels").glob("csr_spmm-*.so")
    built.unlink()                      # a new file: this process keeps the library it has mapped
    built.write_bytes(b"not a shared library")
    probe = ("import warnings; from mmgraph.nn import cpu_spmm; warnings.simplefilter('error'); "
             "print(cpu_spmm.kernel_available())")
    proc = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and proc.stdout.strip() == "True", proc.stderr[-2000:]
    assert built.read_bytes()[:4] == b"\x7fELF"

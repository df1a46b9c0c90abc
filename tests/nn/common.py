"""Checks shared by the model tests."""
import torch


def assert_reset_is_seeded(model: torch.nn.Module) -> None:
    """``reset_parameters()`` under the same seed re-initialises every parameter identically,
    whatever the parameters held before; another seed gives other weight matrices."""

    def init(seed):
        torch.manual_seed(seed)
        model.reset_parameters()
        return [p.detach().clone() for p in model.parameters()]

    first = init(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(1.0)
    assert all(torch.equal(a, b) for a, b in zip(first, init(0)))
    assert any(not torch.equal(a, b) for a, b in zip(first, init(1)) if a.dim() > 1)


# A small graph for the node models: N nodes with F_IN features; models use HIDDEN and OUT.
N, F_IN, HIDDEN, OUT = 10, 5, 12, 3


def random_graph(n=40, e=300, seed=0, loops=True, duplicates=True):
    gen = torch.Generator().manual_seed(seed)
    ei = torch.randint(0, n, (2, e), generator=gen)
    if loops:
        ei = torch.cat([ei, torch.tensor([[3, 5], [3, 5]])], dim=1)
    if duplicates:
        ei = torch.cat([ei, ei[:, :20]], dim=1)
    return ei


def ring_graph(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A ring with two chords, both directions stored, as the runner passes it."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(N, F_IN, generator=gen)
    ring = torch.arange(N)
    ei = torch.cat([torch.stack([ring, (ring + 1) % N]), torch.tensor([[0, 2], [5, 7]])], 1)
    return x, torch.cat([ei, ei.flip(0)], 1)


def csr_adj_t(edge_index: torch.Tensor) -> torch.Tensor:
    """The graph as a torch sparse CSR ``adj_t`` (row = target), as PyG builds it."""
    import warnings

    from torch_geometric.utils import to_torch_csr_tensor

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "sparse CSR support is in beta"
        return to_torch_csr_tensor(edge_index.flip(0), size=(N, N))


def dense_a_hat(edge_index: torch.Tensor) -> torch.Tensor:
    r"""GCN's :math:`\hat D^{-1/2}(A + I)\hat D^{-1/2}`, dense."""
    a = torch.zeros(N, N)
    a[edge_index[1], edge_index[0]] = 1.0
    a = a + torch.eye(N)
    d = a.sum(1).pow(-0.5)
    return d[:, None] * a * d[None, :]

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

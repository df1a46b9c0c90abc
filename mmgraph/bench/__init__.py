"""The benchmark runner: ``python -m mmgraph.bench dataset=<name> model=<name> [overrides]``."""
import mmgraph.cli  # noqa: F401  (registers ${mmgraph_data_root:} for the configs)

__all__ = ["run"]


def __getattr__(name: str):
    # ``run`` is imported on first use: ``python -m mmgraph.bench`` imports this package before
    # its __main__, which then reports Ctrl-C and bad overrides while torch is still loading
    if name == "run":
        from mmgraph.bench.runner import run

        return run
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

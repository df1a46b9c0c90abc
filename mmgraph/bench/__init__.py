"""The benchmark runner: ``python -m mmgraph.bench dataset=<name> model=<name> [overrides]``."""
import mmgraph.cli  # noqa: F401  (registers ${mmgraph_data_root:} for the configs)
from mmgraph.bench.runner import run

__all__ = ["run"]

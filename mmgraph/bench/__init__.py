"""The benchmark runner: ``python -m mmgraph.bench dataset=<name> model=<name> [overrides]``."""
from mmgraph.bench.runner import run

__all__ = ["run"]

from omegaconf import OmegaConf as _OmegaConf

from mmgraph.paths import default_data_root as _default_data_root

# ${mmgraph_data_root:} in configs/config.yaml
_OmegaConf.register_new_resolver("mmgraph_data_root", lambda: str(_default_data_root()), replace=True)

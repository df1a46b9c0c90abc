"""The shared training loop: optimiser, schedule, early stopping, selection on validation."""
from mmgraph.train.trainer import FitResult, TrainerConfig, fit, seed_everything

__all__ = ["FitResult", "TrainerConfig", "fit", "seed_everything"]

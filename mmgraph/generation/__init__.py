"""Text generation on multimodal graphs (MMGL's WikiWeb2M section-summary task): metrics and
the neighbour-context language model :class:`NeighborLM`."""
from mmgraph.generation.metrics import (bleu4, cider_d, cut_prediction, generation_metrics,
                                        rouge_l)
from mmgraph.generation.model import NeighborLM

__all__ = ["NeighborLM", "bleu4", "cider_d", "cut_prediction", "generation_metrics", "rouge_l"]

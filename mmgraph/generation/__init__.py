"""Text generation on multimodal graphs (MMGL's WikiWeb2M section-summary task): metrics."""
from mmgraph.generation.metrics import (bleu4, cider_d, cut_prediction, generation_metrics,
                                        rouge_l)

__all__ = ["bleu4", "cider_d", "cut_prediction", "generation_metrics", "rouge_l"]

"""Multimodal graph data: conventions, data sets, splits. Never imports models or the runner."""
from mmgraph.data.graph import (RawList, add_feature, fingerprint, homogeneous_view, modalities,
                                new_graph, relations, set_model_input, split_indices, target_type)

__all__ = ["RawList", "add_feature", "fingerprint", "homogeneous_view", "modalities", "new_graph",
           "relations", "set_model_input", "split_indices", "target_type"]

"""Multimodal graph data: conventions, data sets, splits. Never imports models or the runner."""
from mmgraph.data.graph import (RawList, add_feature, fingerprint, homogeneous_view, modalities,
                                modality_mask, new_graph, relations, set_model_input, split_indices,
                                target_type, tensor_digest)
from mmgraph.data.images import load_image
from mmgraph.data.planetoid import load_planetoid
from mmgraph.data.splits import (apply_split, kshot_split, magb_split, make_split,
                                 planetoid_public_split)
from mmgraph.data.synthetic import make_synthetic, render_image

__all__ = ["RawList", "add_feature", "fingerprint", "homogeneous_view", "modalities", "new_graph",
           "modality_mask", "relations", "set_model_input", "split_indices", "target_type", "tensor_digest",
           "load_image", "load_planetoid", "apply_split", "kshot_split", "magb_split", "make_split",
           "planetoid_public_split", "make_synthetic", "render_image"]

"""mmgraph: learning on multimodal graphs (text and images on nodes) with PyTorch Geometric."""

__version__ = "0.1.0"

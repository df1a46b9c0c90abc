"""Models: ``nn.Module``s configured only by constructor arguments."""
from mmgraph.nn.basic_gnn import GAT, GCN, BasicGNN, GATv2, GraphSAGE
from mmgraph.nn.mlp import MLP

__all__ = ["BasicGNN", "GCN", "GraphSAGE", "GAT", "GATv2", "MLP"]

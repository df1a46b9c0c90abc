"""Models: ``nn.Module``s configured only by constructor arguments."""
from mmgraph.nn.basic_gnn import GAT, GCN, BasicGNN, GATv2, GraphSAGE
from mmgraph.nn.dropout import Dropout
from mmgraph.nn.fusion import FusionModel
from mmgraph.nn.hetero import HGT, RGCN, HeteroGNN, ToHetero
from mmgraph.nn.mlp import MLP
from mmgraph.nn.sparse import Adjacency
from mmgraph.nn.zoo import APPNP, GCNII, SGC, JKNet, RevGAT

__all__ = ["BasicGNN", "GCN", "GraphSAGE", "GAT", "GATv2", "MLP", "SGC", "APPNP", "GCNII", "JKNet", "RevGAT",
           "FusionModel", "HeteroGNN", "RGCN", "HGT", "ToHetero", "Adjacency", "Dropout"]

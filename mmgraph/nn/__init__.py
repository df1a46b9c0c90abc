"""Models: ``nn.Module``s configured only by constructor arguments."""
from mmgraph.nn.appnp import APPNP
from mmgraph.nn.basic_gnn import GAT, GCN, BasicGNN, GATv2, GNNBase, GraphSAGE
from mmgraph.nn.dropout import Dropout
from mmgraph.nn.fusion import FusionModel
from mmgraph.nn.gcnii import GCNII
from mmgraph.nn.hetero import HGT, RGCN, HeteroGNN, ToHetero
from mmgraph.nn.jknet import JKNet
from mmgraph.nn.mlp import MLP
from mmgraph.nn.revgat import RevGAT
from mmgraph.nn.sgc import SGC
from mmgraph.nn.sparse import Adjacency

__all__ = ["GNNBase", "BasicGNN", "GCN", "GraphSAGE", "GAT", "GATv2", "MLP", "SGC", "APPNP", "GCNII",
           "JKNet", "RevGAT", "FusionModel", "HeteroGNN", "RGCN", "HGT", "ToHetero", "Adjacency", "Dropout"]

"""Prediction problems the runner trains and evaluates (one loop per task kind)."""
from mmgraph.tasks.base import Task
from mmgraph.tasks.entity_linking import EntityLinking
from mmgraph.tasks.generation import GenerationTask
from mmgraph.tasks.graph_prediction import GraphPrediction
from mmgraph.tasks.link_prediction import LinkPrediction
from mmgraph.tasks.node_classification import NodeClassification
from mmgraph.tasks.zero_shot import ZeroShotNodeClassification

__all__ = ["Task", "NodeClassification", "LinkPrediction", "ZeroShotNodeClassification", "GenerationTask",
           "EntityLinking", "GraphPrediction"]

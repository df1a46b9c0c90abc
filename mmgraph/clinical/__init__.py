"""Models for graph-level prediction on cohorts of patient graphs (:mod:`mmgraph.tasks.graph_prediction`):
the modality-prompted patient graph model and the peers a biostatistician would use."""
from mmgraph.clinical.peers import Peer
from mmgraph.clinical.prompted import PromptedPatientGNN

__all__ = ["PromptedPatientGNN", "Peer"]

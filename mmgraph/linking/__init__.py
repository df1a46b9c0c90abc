"""Multimodal entity linking: linkers that rank every entity of a knowledge base for a mention.

The data model is :mod:`mmgraph.data.kb`; the task is :class:`mmgraph.tasks.EntityLinking`.
"""
from mmgraph.linking.interaction import GraphInteractionLinker, InteractionLinker
from mmgraph.linking.models import DualEncoder, GraphLinker, KBInput, KBPropagation, ModalityProjection

__all__ = ["DualEncoder", "GraphLinker", "InteractionLinker", "GraphInteractionLinker", "KBInput",
           "KBPropagation", "ModalityProjection"]
